"""The price of observability, side by side in one run: the booking workloads (spread, flash crowd)
on the product as ``make run`` starts it (metrics on, tracing off), on the same product with
metrics off (``METRICS_ENABLED=false``: no /metrics, no request timing; the few counters the code
increments stay), and with tracing on, every request traced and exported over OTLP to a collector
stand-in in this process that counts the spans and keeps none (a real collector's work is not
ours). Each configuration twice, so the machine's noise shows beside the difference. The figure
that matters: the booking service's CPU per booking. On two shared cores that figure moves by
±10 % between two runs of one configuration, more than the price of metrics; so the first run of
each configuration is also profiled (py-spy, every booking process), and the share of the booking
processes' samples spent in the metrics' code, or in OpenTelemetry's, is the price read directly.
Run with ``make bench``."""

import asyncio
import contextlib
import re
import shutil
import signal
import sys
import sysconfig
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.benchmarks.results import Results
from tests.benchmarks.test_booking_bench import ZONE, confirmed_rate, record
from tests.benchmarks.test_scaling_bench import measure
from tests.conftest import client_session, free_port_block, running_system
from tests.span_store import SpanStore

pytestmark = pytest.mark.bench

TABLE = "The price of observability: booking through the public entry (spread and flash crowd)"
CPU_TABLE = "The price of observability: the booking service's CPU per booking"
ROUNDS = 2
BARE, METRICS, TRACED = "metrics off", "metrics on, tracing off (make run)", "metrics on, tracing to a collector"
RECORD = re.compile(r"(.*?) (\d+)$", re.MULTILINE | re.DOTALL)  # "frame;frame;… count"; a name may span lines
FRAME_FILE = re.compile(r"\((.*):\d+\)$")
PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))  # the dev dependency, beside Python
STDLIB = sysconfig.get_paths()["stdlib"] + "/"
# The code each price is paid in: the libraries, and ours that feeds them.
METRICS_CODE = ("/site-packages/prometheus_client/", "/common/metrics.py", "/booking/metrics.py")
TRACING_CODE = ("/site-packages/opentelemetry/", "/site-packages/google/protobuf/", "/site-packages/wrapt/", "/common/tracing.py")


def owner(stack: str) -> str:
    """Whose CPU a sample is: that of the innermost frame outside the standard library (a profiler's
    "self time" by package; a wrapper such as a tracing middleware owns only what it does itself)."""
    for frame in reversed(stack.strip().split(";")):
        found = FRAME_FILE.search(frame)
        path = found.group(1) if found else ""
        if path.startswith("<") or (path.startswith(STDLIB) and "/site-packages/" not in path):
            continue
        if any(code in path for code in METRICS_CODE):
            return "metrics"
        if any(code in path for code in TRACING_CODE):
            return "tracing"
        return "other"
    return "other"


@contextlib.asynccontextmanager
async def profiled(pids: list[int], into: Path) -> AsyncIterator[dict[str, float]]:
    """py-spy on each of ``pids`` while the block runs; yields, once it has ended, the share of
    their samples (on CPU, not idle) owned by ``METRICS_CODE`` and by ``TRACING_CODE``."""
    samplers = [
        await asyncio.create_subprocess_exec(
            PY_SPY, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
            "--full-filenames", "--nonblocking", "--output", str(into / f"profile-{pid}.txt"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        for pid in pids
    ]  # fmt: skip
    shares: dict[str, float] = {}
    try:
        yield shares
    finally:
        for sampler in samplers:
            sampler.send_signal(signal.SIGINT)  # py-spy writes what it sampled, then exits
            await sampler.wait()
    samples: Counter[str] = Counter()
    for pid in pids:
        for stack, count in RECORD.findall((into / f"profile-{pid}.txt").read_text(errors="replace")):
            samples[owner(stack)] += int(count)
    total = sum(samples.values())
    shares |= {"samples": total, "metrics": samples["metrics"] / total, "tracing": samples["tracing"] / total}


@pytest.mark.timeout(1800)
async def test_the_price_of_metrics_and_of_tracing(system, servers, tmp_path_factory, results: Results):
    """One system at a time beside the session's (PostgreSQL's 100 connections do not hold three)."""
    started = time.perf_counter()
    first = datetime.now(ZONE).date() + timedelta(days=20)
    collector = SpanStore(keep=False)
    endpoint = await collector.start(free_port_block(1))
    configurations = {
        BARE: {"METRICS_ENABLED": "false"},
        METRICS: None,  # the session's system
        TRACED: {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint},
    }
    reports: dict[str, list[dict]] = {name: [] for name in configurations}
    shares: dict[str, dict[str, float]] = {}
    try:
        async with client_session() as http:
            for name, overrides in configurations.items():
                logs = tmp_path_factory.mktemp(re.sub(r"\W+", "_", name))
                async with contextlib.AsyncExitStack() as stack:
                    each = system
                    if overrides is not None:
                        label = "bench_" + name.split(",")[0].replace(" ", "_")
                        each = await stack.enter_async_context(running_system(servers, logs, overrides, name=label))
                    booking_pids = [p.proc.pid for p in each.stack.supervisor.of("booking")]
                    async with profiled(booking_pids, logs) as shares[name]:
                        reports[name].append((await measure(name, each, http, first))[1])
                    for round_ in range(1, ROUNDS):
                        reports[name].append((await measure(name, each, http, first + timedelta(days=round_)))[1])
    finally:
        await collector.stop()
    print(f"\nmeasured in {time.perf_counter() - started:.0f} s; the collector stand-in received {collector.received:,} spans")
    assert collector.received > 0  # tracing was on where asked for

    def booking_cpu_ms(report) -> float:
        """The booking processes' CPU per booking request (ms)."""
        return report.cpu_by_process.get("booking", 0.0) * 1000 / report.requests

    bare = {w: sum(booking_cpu_ms(r[w]) for r in reports[BARE]) / ROUNDS for w in ("spread", "flash")}
    print(f"\n--- {TABLE}")
    for name, rounds in reports.items():
        for index, run_of in enumerate(rounds):
            path = f"{name}, run {index + 1}"
            record(results, "spread", path, run_of["spread"], table=TABLE)
            record(results, "flash crowd, one hot event", path, run_of["flash"], table=TABLE)
            for workload, report in run_of.items():
                ms = booking_cpu_ms(report)
                results.row(
                    CPU_TABLE,
                    workload=workload,
                    path=path,
                    booking_cpu_ms_per_booking=f"{ms:.3f}",
                    over_metrics_off=f"{(ms / bare[workload] - 1) * 100:+.1f} %",
                    total_cpu_ms_per_booking=f"{sum(report.cpu_by_process.values()) * 1000 / report.requests:.3f}",
                    target="≤ +5 % (metrics)" if name == METRICS else "",
                )
            print(
                f"  {path}: spread {confirmed_rate(run_of['spread']):,.0f} confirmed/s, booking CPU "
                f"{booking_cpu_ms(run_of['spread']):.3f} ms/booking; flash {run_of['flash'].kinds['book'].rate:,.0f}/s, "
                f"{booking_cpu_ms(run_of['flash']):.3f} ms/attempt"
            )
    profile_table = "The price of observability, profiled: the booking processes' samples in its code (py-spy, 200 Hz, run 1)"
    for name, share in shares.items():
        results.row(
            profile_table,
            path=name,
            samples=f"{share['samples']:,}",
            in_metrics_code=f"{share['metrics'] * 100:.1f} %",
            in_tracing_code=f"{share['tracing'] * 100:.1f} %",
            target="metrics ≤ 5 %" if name == METRICS else "",
        )
        metrics, tracing = share["metrics"] * 100, share["tracing"] * 100
        print(f"  {name}: {metrics:.1f} % of booking's samples in metrics' code, {tracing:.1f} % in tracing's")
    # What is off costs next to nothing (a log line or an outbox row still asks for the current span).
    assert shares[BARE]["metrics"] < 0.01 and shares[BARE]["tracing"] < 0.005
    assert shares[METRICS]["tracing"] < 0.005
    for rounds in reports.values():
        for run_of in rounds:
            assert not [c for r in run_of.values() for k in r.kinds.values() for c in k.statuses if c[0] == "5"]
