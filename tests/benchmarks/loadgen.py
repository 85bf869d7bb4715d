"""Load generators: wrk where installed (C, so the client does not take the server's CPU), else a
closed loop on asyncio. Both report throughput and latency percentiles."""

import asyncio
import re
import shutil
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def summary(self, name: str) -> str:
        answers = f"; answers {dict(self.statuses)}" if self.statuses else ""
        return (
            f"{name}: {self.rate:,.0f} req/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms "
            f"({self.requests} requests in {self.seconds:.0f}s, {self.tool}){answers}"
        )


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def wrk(url: str, concurrency: int, seconds: int) -> LoadResult:
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", url, stdout=asyncio.subprocess.PIPE
    )
    output = (await process.communicate())[0].decode()

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    requests = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    statuses = Counter({"2xx": requests - int(errors.group(1)) if errors else requests})
    if errors:
        statuses["other"] = int(errors.group(1))
    return LoadResult("wrk", requests, seconds, latency("50%"), latency("99%"), statuses)


async def closed_loop(request: Callable[[], Awaitable[int]], concurrency: int, seconds: float) -> LoadResult:
    """``concurrency`` asyncio workers, each sending ``request`` (returning a status) back to back."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while (start := time.perf_counter()) < stop_at:
            statuses[await request()] += 1
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(
        "asyncio", len(latencies), seconds, percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000, statuses
    )


def have_wrk() -> bool:
    return shutil.which("wrk") is not None
