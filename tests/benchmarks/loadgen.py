"""The load generator: its own process (as wrk would be), asyncio on uvloop, raw HTTP/1.1 keep-alive.

A plan is a list of prepared requests (kind, bytes), sent in order over ``connections`` keep-alive
connections until the list is used up or ``seconds`` have passed (``repeat`` cycles the list).

- Closed loop (the default): each connection sends its next request when the last is answered;
  the rate is what the system sustains, and latency is measured from sending.
- Open loop (``rate``): request *i* is due at *i* / ``rate`` seconds, answered or not; latency is
  measured from when it was due, so a stall shows in the figures instead of slowing the sender
  down (no coordinated omission, as in wrk2). A connection busy past a due time makes the request
  wait, and that wait is counted.

It reports, per kind of request, the count of each status, p50/p95/p99 latency and the rate.
Preparing every request beforehand keeps the generator's own CPU per request small: the machine
it shares with the system has two cores.

    python -m tests.benchmarks.loadgen PLAN.json   # prints the report as JSON
"""

import asyncio
import json
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)


def http_request(method: str, url: str, *, body: dict | None = None, token: str | None = None, key: str | None = None) -> str:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Accept: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if key:
        lines.append(f"Idempotency-Key: {key}")
    payload = orjson.dumps(body).decode() if body is not None else ""
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return "\r\n".join(lines) + "\r\n\r\n" + payload


@dataclass
class Plan:
    url: str  # where to connect: scheme://host:port
    requests: list[tuple[str, str]]  # (kind, the whole request)
    connections: int
    seconds: float | None = None
    repeat: bool = False
    rate: float | None = None  # open loop: requests due per second


@dataclass
class KindReport:
    count: int
    statuses: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rate: float


@dataclass
class Report:
    seconds: float
    requests: int
    rate: float
    kinds: dict[str, KindReport] = field(default_factory=dict)
    cpu_seconds: float = 0.0  # the load generator's own
    cpu_by_process: dict[str, float] = field(default_factory=dict)  # filled in by whoever meters the servers

    def status(self, kind: str, code: int) -> int:
        return self.kinds[kind].statuses.get(str(code), 0) if kind in self.kinds else 0


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


async def _drive(plan: Plan) -> Report:
    parts = urlsplit(plan.url)
    prepared = [(kind, request.encode()) for kind, request in plan.requests]
    latencies: dict[str, list[float]] = {kind: [] for kind, _ in prepared}
    statuses: dict[str, Counter] = {kind: Counter() for kind, _ in prepared}
    next_index = 0
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    stop_at = started + plan.seconds if plan.seconds else float("inf")

    async def worker() -> None:
        nonlocal next_index
        reader = writer = None
        while (sent_at := time.perf_counter()) < stop_at:
            if next_index >= len(prepared) and not plan.repeat:
                break
            index, next_index = next_index, next_index + 1  # this worker's, before any wait
            kind, request = prepared[index % len(prepared)]
            if plan.rate:
                due = started + index / plan.rate
                if due >= stop_at:
                    break
                if due > sent_at:
                    await asyncio.sleep(due - sent_at)
                sent_at = due  # late or not, its latency counts from when it was due
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = CONTENT_LENGTH.search(head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                status = head[9:12].decode()
                if b"\r\nconnection: close" in head.lower():
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError) as exc:  # counted, then a new connection
                status = type(exc).__name__
                if writer is not None:
                    writer.close()
                writer = None
            latencies[kind].append(time.perf_counter() - sent_at)
            statuses[kind][status] += 1
        if writer is not None:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(plan.connections)))
    seconds = time.perf_counter() - started
    report = Report(seconds, sum(len(v) for v in latencies.values()), 0.0)
    report.rate = report.requests / seconds
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report.cpu_seconds = usage.ru_utime + usage.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    for kind, samples in latencies.items():
        report.kinds[kind] = KindReport(
            len(samples),
            dict(statuses[kind]),
            percentile(samples, 50) * 1000,
            percentile(samples, 95) * 1000,
            percentile(samples, 99) * 1000,
            len(samples) / seconds,
        )
    return report


async def run(plan: Plan) -> Report:
    """Run ``plan`` in a separate load-generator process and return its report."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(asdict(plan), file)
        file.flush()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.benchmarks.loadgen",
            file.name,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        output, errors = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"load generator failed with {process.returncode}: {errors.decode()[-2000:]}")
    raw = json.loads(output)
    kinds = {k: KindReport(**v) for k, v in raw.pop("kinds").items()}
    return Report(**raw, kinds=kinds)


if __name__ == "__main__":
    import uvloop

    plan = Plan(**json.loads(Path(sys.argv[1]).read_text()))
    plan.requests = [tuple(r) for r in plan.requests]
    print(json.dumps(asdict(uvloop.run(_drive(plan)))))
