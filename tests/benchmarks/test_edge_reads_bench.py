"""Reads through the public entry against what the same nginx serves as a file: a day's answer and a
month's, each through the entry (which keeps availability's answers for the milliseconds the service
allows, and passes on what it does not keep), and the very same bytes as a static file from an nginx
configured like the entry (same worker count, same keep-alive), wrk at 100 connections, in one run,
with the share of reads the service itself answered. Run with ``make bench``."""

import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from devstack.edge import nginx, render
from devstack.supervisor import Process, wait_ready
from tests.benchmarks.results import Results
from tests.benchmarks.test_availability_bench import wrk
from tests.conftest import free_port_block
from tests.integration.helpers import (
    add_shift,
    create_event,
    create_professional,
    local,
    scrape,
    sign_in_admin,
    total,
    wait_for_availability,
)

pytestmark = pytest.mark.bench

ZONE = ZoneInfo("Europe/Berlin")
SECONDS = 5
CONNECTIONS = 100
TARGET = 0.5  # issue 26: reads through the entry at least half of what nginx serves as a file

# The file server's routes, under the entry's own nginx.conf (deploy/edge/nginx.conf.template):
# the same workers, events and buffers, the same listen options and keep-alive as the entry's.
STATIC_ROUTES = """server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    keepalive_requests 100000;
    location / {{ root {home}/files; default_type application/json; }}
}}
"""


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk (Debian's package) measures the reads")
async def test_reads_through_the_entry_against_the_same_nginx_serving_a_file(api, system, results: Results, tmp_path):
    admin = await sign_in_admin(api, system)
    day = datetime.now(ZONE).date() + timedelta(days=7)
    event = await create_event(admin, timezone=ZONE.key, start_date=day, end_date=day, opens_at="08:00", closes_at="20:00")
    pro, _ = await create_professional(api, admin)
    await add_shift(admin, event, local(day, 8, 0, ZONE), local(day, 20, 0, ZONE), 3, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda a: a["reason"] is None)
    reads = {
        "a day (GET /availability)": f"/api/v1/availability?{urlencode({'event_id': event['id'], 'date': day.isoformat()})}",
        "a month (GET /availability/month)": (
            f"/api/v1/availability/month?{urlencode({'event_id': event['id'], 'month': day.strftime('%Y-%m')})}"
        ),
    }
    answers = []
    async with aiohttp.ClientSession() as http:
        for path in reads.values():
            async with http.get(system.public_url + path) as response:
                answers.append(await response.read())
    port = free_port_block(1)
    home = _static_home(answers, port)
    static = Process(
        "static-nginx", ["-p", str(home), "-c", str(home / "nginx.conf"), "-g", "daemon off;"], {},
        tmp_path / "nginx.log", program=nginx(),
    )  # fmt: skip
    await static.start()
    try:
        await wait_ready(f"http://127.0.0.1:{port}/0.json", static)
        table = f"Reads through the public entry against the same nginx serving the answer as a file, {CONNECTIONS} connections"
        print(f"\n--- {table}")
        for n, (what, path) in enumerate(reads.items()):
            before = await scrape(system)
            entry = await wrk(system.public_url + path, CONNECTIONS, SECONDS)
            asked = _asked(await scrape(system)) - _asked(before)  # the reads the entry's kept answers did not serve
            as_file = await wrk(f"http://127.0.0.1:{port}/{n}.json", CONNECTIONS, SECONDS)
            ratio = entry.rate / as_file.rate
            served_by_service = asked / (entry.rate * SECONDS)
            print(
                f"{what}: entry {entry.rate:,.0f}/s (p99 {entry.p99_ms:.1f} ms, {served_by_service:.1%} asked of the service),"
                f" file {as_file.rate:,.0f}/s: {ratio:.2f}"
            )
            results.row(
                table,
                read=what,
                through_the_entry=f"{entry.rate:,.0f}/s, p99 {entry.p99_ms:.1f} ms",
                asked_of_the_service=f"{served_by_service:.1%}",
                same_bytes_as_a_file=f"{as_file.rate:,.0f}/s, p99 {as_file.p99_ms:.1f} ms",
                ratio=f"{ratio:.2f}",
                target=f"≥ {TARGET}",
            )
            assert set(entry.statuses) == {"200"} and set(as_file.statuses) == {"200"}
    finally:
        await static.stop()
        shutil.rmtree(home, ignore_errors=True)


def _asked(samples) -> float:
    """Requests the availability processes answered themselves."""
    return total(samples, "availability", "http_server_request_duration_seconds_count")


def _static_home(answers: list[bytes], port: int) -> Path:
    """nginx's folder, with the answers as files ``0.json``, ``1.json``…: where its workers (another
    user, when started as root) may read them, not in pytest's own 0700 folders."""
    home = Path(tempfile.mkdtemp(prefix="static-answers-"))
    home.chmod(0o755)
    (home / "files").mkdir(mode=0o755)
    for n, answer in enumerate(answers):
        (home / "files" / f"{n}.json").write_bytes(answer)
        (home / "files" / f"{n}.json").chmod(0o644)
    (home / "routes.conf").write_text(STATIC_ROUTES.format(home=home, port=port))
    main = {"EDGE_HOME": str(home), "EDGE_WORKERS": "auto", "EDGE_ACCESS_LOG": "access_log off;"}
    (home / "nginx.conf").write_text(render("nginx.conf.template", main))
    return home
