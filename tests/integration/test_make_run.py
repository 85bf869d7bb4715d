"""``make run``'s program as a newcomer meets it: its servers started where they are not running, a
seeded demo, its logins printed, Ctrl-C stops all."""

import asyncio
import contextlib
import os
import re
import signal
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import psutil
from redis.asyncio import Redis
from redis.exceptions import RedisError

from devstack.client import ApiClient
from tests.conftest import free_port_block
from tests.integration.helpers import wait_for_availability


class Output:
    """What ``make run`` prints, read all along as a terminal would: a pipe left unread fills, and
    then every service that logs blocks on its next line."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._more = asyncio.Condition()
        self._reader = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            async with self._more:
                self.lines.append(line.decode(errors="replace"))
                self._more.notify_all()
        async with self._more:
            self.lines.append("")  # the end
            self._more.notify_all()

    async def until(self, marker: str, timeout: float) -> str:
        """Everything printed up to the first line with ``marker``."""

        def found() -> bool:
            return any(marker in line for line in self.lines) or "" in self.lines

        async with asyncio.timeout(timeout), self._more:
            await self._more.wait_for(found)
        text = "".join(self.lines)
        if marker not in text:
            raise AssertionError(f"output ended before {marker!r}:\n" + "".join(self.lines[-40:]))
        return text[: text.index(marker) + len(marker)]


async def test_run_starts_a_stopped_server_seeds_the_demo_prints_the_logins_and_stops_everything_on_ctrl_c(servers, tmp_path):
    base = free_port_block(2 + 2 * 5 + 2)
    prometheus_port = base + 2 + 2 * 5
    stopped_redis = base + 2 + 2 * 5 + 1  # no Redis runs there: as on a machine where it is stopped
    env = {
        **os.environ,
        "DATABASE_URL": f"{servers.postgres_url}/{servers.run_id}_demo",
        "REDIS_URL": f"redis://127.0.0.1:{stopped_redis}/0",
        "REDIS_KEY_PREFIX": f"{servers.run_id}:demo",
        "RABBITMQ_URL": servers.another_vhost("demo"),
        "PUBLIC_PORT": str(base),
        "SMTP_PORT": str(base + 1),
        "FIRST_SERVICE_PORT": str(base + 2),
        "MAIL_DIR": str(tmp_path / "mail"),
        "EDGE_DIR": str(tmp_path / "edge"),
        "PROMETHEUS_PORT": str(prometheus_port),  # the README's extra variable
        "PROMETHEUS_DIR": str(tmp_path / "prometheus"),
    }
    env.pop("SMTP_HOST", None)
    run = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devstack",
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert run.stdout
    output = Output(run.stdout)
    try:
        banner = await output.until("Ctrl-C stops everything", timeout=90)
        assert f"Redis at 127.0.0.1:{stopped_redis}: was not running; started (redis-server)" in banner
        assert re.search(r"PostgreSQL at \S+: up", banner) and re.search(r"RabbitMQ at \S+: up", banner)
        assert f"http://127.0.0.1:{base}/ " in banner and "/api/v1" in banner and "demo seeded" in banner
        for login in (
            "admin@example.com / admin-password",
            "client@example.com / client-password",
            "ada@example.com / ada-password",
            f"127.0.0.1:{base + 1}",
            f"Prometheus    http://127.0.0.1:{prometheus_port}/graph?g0.expr=",
        ):
            assert login in banner
        children = psutil.Process(run.pid).children()
        services = [p for p in children if "-m" in p.cmdline()]
        assert sorted(p.cmdline()[-1] for p in services) == [
            "availability",
            "booking",
            "booking",
            "gateway",
            "notifier",
            "shifts",
        ]
        (edge,) = [p for p in children if p.name() == "nginx"]  # the public entry, in front of them
        (prometheus,) = [p for p in children if p.name() == "prometheus"]
        services += [edge, prometheus]

        async with aiohttp.ClientSession() as http:
            api = ApiClient(http, f"http://127.0.0.1:{base}")
            client = await api.sign_in("client@example.com", "client-password")
            assert (await client.call("GET", "/me"))["name"] == "Casey Client"
            events = (await api.call("GET", "/events"))["items"]
            demo = next(e for e in events if e["name"] == "Demo clinic")
            zone = ZoneInfo(demo["timezone"])
            today = datetime.now(zone).date()
            assert (demo["start_date"], demo["end_date"]) == (today.isoformat(), (today + timedelta(days=14)).isoformat())
            assert (demo["opens_at"], demo["closes_at"], demo["slot_minutes"]) == ("09:00", "17:00", 30)
            day = today + timedelta(days=1)

            def by_time(availability: dict) -> dict[str, dict]:
                return {datetime.fromisoformat(s["start"]).strftime("%H:%M"): s for s in availability["slots"]}

            # The counters follow the seeded changes through the broker a moment after they are
            # written, not always in the order written (a change that met the first rebuild is tried
            # again 0.1 s later, after the next one): all are there when lunch is blocked, 09:00
            # has Ada 1 + Grace 2 and 16:30 Ada 1 + Alan 1.
            def all_seeded(availability: dict) -> bool:
                slots = by_time(availability)
                lunch = slots["12:00"]["status"] == slots["12:30"]["status"] == "blocked"
                return lunch and slots["09:00"]["remaining"] == 3 and slots["16:30"]["remaining"] == 2

            try:
                seeded = await wait_for_availability(api, demo["id"], day, all_seeded)
            except AssertionError as never:
                said = "".join(line for line in output.lines if '"level": "INFO"' not in line)
                raise AssertionError(f"{never}\nwhat make run said beside INFO:\n{said}") from None
            slots = by_time(seeded)
            assert len(slots) == 16

            # Prometheus scrapes every process, and its first look (the banner's link) answers.
            graphs = next(line for line in banner.splitlines() if "Prometheus    http" in line).split()[-1]
            async with http.get(graphs) as page:
                assert page.status == 200
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                async with http.get(f"http://127.0.0.1:{prometheus_port}/api/v1/query", params={"query": "up == 1"}) as got:
                    up = (await got.json())["data"]["result"]
                if len(up) == len(services) - 2:  # every service process
                    break
                assert asyncio.get_running_loop().time() < deadline, f"{len(up)} processes scraped"
                await asyncio.sleep(0.5)

        # Compose's seed step against the running system: it finds the demo there and prints the logins.
        seed = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devstack", "seed", env={**env, "PUBLIC_HOST": "127.0.0.1"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        said = (await asyncio.wait_for(seed.communicate(), 60))[0].decode()
        assert seed.returncode == 0 and "demo already there" in said and "client@example.com / client-password" in said, said

        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert await asyncio.wait_for(run.wait(), 30) == 0
        await output.until("all stopped.", timeout=5)
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in services)
    finally:
        if run.returncode is None:
            os.killpg(run.pid, signal.SIGKILL)
            await run.wait()
        started = Redis(port=stopped_redis)  # a server, left running by make run as by a package: ours to stop
        with contextlib.suppress(RedisError):
            await started.shutdown(nosave=True)
        await started.aclose()
