"""Faults under load (issue 15): each test runs the steady load (tests/faults/load.py: 1,000
booking attempts over 20 s at a fixed rate, cancels and shift changes mixed in) through the
public entry, injects its fault while the load runs, lets the system settle, checks the system's
own records (tests/faults/checker.py) and prints one line:

    FAULT <name>: attempts N, confirmed N, faults injected N, lost 0, duplicated 0, overbooked 0,
    mails missing 0, mails duplicated N, settled in S s

``make test-faults`` runs them; so does CI, with the rest."""

import asyncio
import contextlib
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from booking.settings import Settings as BookingSettings
from common.messaging import Broker
from devstack.mailsink import REFUSED_PREFIX
from tests.faults.checker import (
    assert_nothing_lost,
    confirmation_mails,
    duplicate_window,
    mails_accepted_but_not_recorded,
    record_rows,
    report,
    verdict_after,
)
from tests.faults.load import SteadyLoad, scene
from tests.faults.proxy import FaultProxy

pytestmark = [pytest.mark.fault, pytest.mark.timeout(300)]


async def run(*command: str) -> str:
    done = await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True, text=True, timeout=120)
    return done.stdout


async def during(load: SteadyLoad, inject) -> int:
    """Run the load and, beside it, ``inject`` (which returns how many faults it injected)."""
    injected, _ = await asyncio.gather(inject(), load.run())
    return injected


async def settle_and_check(name: str, load: SteadyLoad, system, redis, faults: int, mails_duplicated_at_most: int = 0) -> None:
    started = time.monotonic()
    verdict, settled = await verdict_after(load, system, redis, started)
    report(name, load, verdict, faults, settled)
    assert_nothing_lost(verdict, mails_duplicated_at_most)


@dataclass
class Proxied:
    """A service restarted to reach one of its servers through a fault proxy."""

    system: object
    service: str
    proxy: FaultProxy
    env: dict[str, str]  # what the service runs with meanwhile, for a restart within the test

    async def crash_at(self, pattern: bytes, after_reply: bool, while_down=None, cause=None) -> None:
        """SIGKILL the service when the proxy sees ``pattern`` go out (``after_reply``: once the
        server answered it), run ``while_down`` before anything restarts, then restart the service.
        ``cause``: what makes the pattern go out, if the load alone does not."""
        crashed = asyncio.Event()

        async def crash() -> None:
            await self.system.stack.kill(self.service)
            if while_down is not None:
                await while_down()
            crashed.set()

        self.proxy.arm(pattern, crash, after_reply=after_reply)
        if cause is not None:
            await cause()
        await asyncio.wait_for(crashed.wait(), 15)
        await self.system.stack.restart(self.service, self.env)


@contextlib.asynccontextmanager
async def behind_a_proxy(system, service: str, server: tuple[str, int], env, **more_env: str) -> AsyncIterator[Proxied]:
    """``env(host, port)``: the settings that point ``service`` at a server; it runs through the
    proxy (and with ``more_env``) inside the block, and as before after it (``more_env`` unset)."""
    proxy = FaultProxy(*server)
    await proxy.start()
    proxied = Proxied(system, service, proxy, {**env("127.0.0.1", proxy.port), **more_env})
    await system.stack.kill(service)
    await system.stack.restart(service, proxied.env)
    try:
        yield proxied
    finally:
        await system.stack.kill(service)
        await system.stack.restart(service, {**env(*server), **dict.fromkeys(more_env)})
        await proxy.stop()


@contextlib.asynccontextmanager
async def the_broker(system) -> AsyncIterator[Broker]:
    broker = Broker(system.settings.rabbitmq_url, "fault-test")
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.close()


def booking_to_postgresql(system):
    url = system.settings.database_for("booking")
    return ("127.0.0.1", 5432), lambda host, port: {"DATABASE_URL": url.replace("@127.0.0.1:5432/", f"@{host}:{port}/")}


def booking_to_redis(system):
    url = system.settings.redis_url
    return ("127.0.0.1", 6379), lambda host, port: {"REDIS_URL": url.replace("127.0.0.1:6379", f"{host}:{port}")}


def notifier_to_smtp(system):
    return (system.mail.host, system.mail.port), lambda host, port: {"SMTP_HOST": host, "SMTP_PORT": str(port)}


async def test_the_booking_service_killed_five_times(api, system, redis):
    load = SteadyLoad(system, await scene(api, system))

    async def kill_booking() -> int:
        for at in (2.5, 3.5, 3.5, 3.5, 3.5):  # every few seconds of the 20
            await asyncio.sleep(at)
            await system.stack.kill("booking")
            await asyncio.sleep(0.3)
            await system.stack.restart("booking")
        return 5

    faults = await during(load, kill_booking)
    await settle_and_check("booking SIGKILL x5", load, system, redis, faults)


async def test_the_booking_service_killed_just_before_its_commit_and_just_after(api, system, redis):
    """The booking service reaches PostgreSQL through the fault proxy, which kills it the moment it
    sends a COMMIT (the unit is taken in Redis, the booking not committed), or the moment
    PostgreSQL answers one (committed, the client not told): alternately, five times."""
    async with behind_a_proxy(system, "booking", *booking_to_postgresql(system)) as proxied:
        proxy = proxied.proxy
        load = SteadyLoad(system, await scene(api, system))

        async def crash_at_commits() -> int:
            for n in range(5):
                await asyncio.sleep(2.5)
                await proxied.crash_at(b"COMMIT", after_reply=n % 2 == 1)
            return 5

        faults = await during(load, crash_at_commits)
        assert proxy.injected.count("crash before it arrived") == 3
        assert proxy.injected.count("crash before the reply reached the client") == 2
        await settle_and_check(
            "booking SIGKILL x5 at COMMIT (3 before it arrives, 2 before its answer)", load, system, redis, faults
        )


async def test_the_capacity_owner_killed_as_it_applies_a_shift_change(api, system, redis):
    """The booking service (the one owner of capacity) reaches Redis through the fault proxy, which
    kills it when it sends a shift's change to the counters: before Redis has it (the record's
    change not committed either), or once Redis applied it (the counters changed, the record not):
    three times, while the load books and changes shifts. Each change is applied in the end, once,
    from its redelivered message; what clients see is the shifts' capacity less the bookings."""
    async with behind_a_proxy(system, "booking", *booking_to_redis(system)) as proxied:
        proxy = proxied.proxy
        setting = await scene(api, system)
        load = SteadyLoad(system, setting)

        async def crash_as_shifts_change() -> int:
            for n in range(3):
                await asyncio.sleep(3)
                shift = setting.shifts[n]
                change = {"capacity": shift["capacity"] - 3}
                await proxied.crash_at(
                    shift["id"].encode(),
                    after_reply=n % 2 == 0,
                    cause=lambda shift=shift, change=change: setting.admin.call("PATCH", f"/shifts/{shift['id']}", json=change),
                )
            return 3

        faults = await during(load, crash_as_shifts_change)
        assert proxy.injected.count("crash before the reply reached the client") == 2
        name = "capacity owner SIGKILL x3 applying a shift change (2 after Redis applied it, 1 before)"
        await settle_and_check(name, load, system, redis, faults)


async def test_rabbitmq_stopped_and_every_connection_closed(api, system, redis):
    load = SteadyLoad(system, await scene(api, system))

    async def break_the_broker() -> int:
        await asyncio.sleep(4)
        await run("rabbitmqctl", "stop_app")
        try:
            await asyncio.sleep(4)
        finally:  # whatever happens, the broker is left running for the tests after this one
            await run("rabbitmqctl", "start_app")
        await asyncio.sleep(4)
        await run("rabbitmqctl", "close_all_connections", "fault test")
        return 2

    faults = await during(load, break_the_broker)
    await settle_and_check("rabbitmq stop_app/start_app, close_all_connections", load, system, redis, faults)


async def test_redis_shut_down_without_saving_and_started_again(api, system, redis):
    load = SteadyLoad(system, await scene(api, system))

    async def lose_redis() -> int:
        await asyncio.sleep(6)
        await asyncio.to_thread(subprocess.run, ["redis-cli", "-p", "6379", "SHUTDOWN", "NOSAVE"], capture_output=True)
        await asyncio.sleep(1)
        await run(
            "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
            "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
        )  # fmt: skip
        for _ in range(50):
            ping = await asyncio.to_thread(subprocess.run, ["redis-cli", "-p", "6379", "ping"], capture_output=True, text=True)
            if ping.stdout.strip() == "PONG":
                break
            await asyncio.sleep(0.1)
        return 1

    faults = await during(load, lose_redis)
    await settle_and_check("redis SHUTDOWN NOSAVE and restart", load, system, redis, faults)


async def test_postgresql_restarted_immediately(api, system, redis):
    load = SteadyLoad(system, await scene(api, system))
    version = (await run("ls", "/etc/postgresql")).split()[0]

    async def crash_postgresql() -> int:
        await asyncio.sleep(7)
        await run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "immediate")
        return 1

    faults = await during(load, crash_postgresql)
    await settle_and_check("postgresql restart -m immediate", load, system, redis, faults)


async def until_fired(proxy: FaultProxy, timeout: float = 15.0) -> None:
    """Until the fault armed last has been injected."""
    deadline = time.monotonic() + timeout
    while proxy.armed:
        assert time.monotonic() < deadline, "the armed fault never found its moment"
        await asyncio.sleep(0.05)


async def test_postgresql_slow_then_silent_to_the_booking_service(api, system, redis):
    """Between the booking service and PostgreSQL: 200 ms each way for 6 s, then 5 s in which
    nothing gets through (a blackhole; the connections it broke are cut when it heals)."""
    async with behind_a_proxy(system, "booking", *booking_to_postgresql(system)) as proxied:
        proxy = proxied.proxy
        load = SteadyLoad(system, await scene(api, system))

        async def slow_then_silent() -> int:
            await asyncio.sleep(3)
            await proxy.late_for(6)
            await proxy.blackhole_for(5)
            return 2

        faults = await during(load, slow_then_silent)
        answers = Counter(a.answers[0] for a in load.attempts)
        print(f"\nfirst answers: {dict(answers)}")
        await settle_and_check("postgresql 200 ms late, then silent for 5 s, to booking", load, system, redis, faults)


async def test_the_smtp_server_slow_late_then_silent(api, system, redis):
    """Between the notifier and the SMTP server: 200 ms each way for 5 s; then the answer to one
    mail's data comes 3 s late (later than a command may take, 2 s here); two answers never come
    after the server kept the mail (a timeout after DATA: 10 s here, wide of the late answer even
    when this process, which runs the load, the proxy and the SMTP server, is starved), one mail's
    end never arrives; then 5 s of blackhole. Every mail arrives; the only copies are of mails
    whose 250 was swallowed (the slow one is not among them)."""
    timeouts = {"SMTP_TIMEOUT_SECONDS": "2", "SMTP_DATA_TIMEOUT_SECONDS": "10"}
    async with behind_a_proxy(system, "notifier", *notifier_to_smtp(system), **timeouts) as proxied:
        proxy = proxied.proxy
        load = SteadyLoad(system, await scene(api, system))

        async def slow_late_then_silent() -> int:
            await asyncio.sleep(2)
            await proxy.late_for(5)
            for late, after_reply in ((3.0, True), (None, True), (None, True), (None, False)):
                proxy.arm(b"\r\n.\r\n", after_reply=after_reply, late=late)
                await until_fired(proxy)
            await asyncio.sleep(1)
            await proxy.blackhole_for(5)
            return 6

        faults = await during(load, slow_late_then_silent)
        swallowed = proxy.injected.count("silence before the reply reached the client")
        swallowed += proxy.answers_dropped_to(b"\r\n.\r\n")
        print(f"\n250s swallowed: {swallowed}; injected: {proxy.injected}")
        assert proxy.injected.count("late before the reply reached the client") == 1
        name = "smtp 200 ms late, an answer 3 s late, 3 never, then silent for 5 s, to the notifier"
        await settle_and_check(name, load, system, redis, faults, mails_duplicated_at_most=swallowed)


async def accepted_when_it_died(system, load: SteadyLoad, in_the_window: list[set[str]]) -> int:
    """How many of the event's confirmation mails the SMTP server had accepted and the notifier not
    yet recorded, at any of its crashes (a mail still unrecorded at the next crash is one mail)."""
    duplicable = set().union(*in_the_window) & await confirmation_mails(system, load.scene.event["id"])
    print(f"\nconfirmation mails the SMTP server had accepted and the notifier not yet recorded when it died: {len(duplicable)}")
    return len(duplicable)


async def test_the_notifier_killed_three_times(api, system, redis):
    load = SteadyLoad(system, await scene(api, system))

    in_the_window = []  # per crash: mails the SMTP server had accepted and the notifier not yet recorded

    async def kill_notifier() -> int:
        for _ in range(3):
            await asyncio.sleep(5)
            await system.stack.kill("notifier")
            in_the_window.append(await mails_accepted_but_not_recorded(system))
            await system.stack.restart("notifier")
        return 3

    faults = await during(load, kill_notifier)
    # Each mail between the SMTP server's 250 and the notifier's "sent" mark when it died goes
    # again, once (README, "Mail, exactly once"): that window, and nothing else, duplicates.
    duplicable = await accepted_when_it_died(system, load, in_the_window)
    window = await duplicate_window(system, load.scene.event["id"])
    print(
        f"from the SMTP server's 250 to the notifier's record: median {statistics.median(window) * 1000:.1f} ms, "
        f"p99 {window[int(len(window) * 0.99)] * 1000:.1f} ms, max {window[-1] * 1000:.1f} ms ({len(window)} mails)"
    )
    await settle_and_check("notifier SIGKILL x3", load, system, redis, faults, mails_duplicated_at_most=duplicable)


async def test_the_notifier_killed_as_it_hands_a_mail_over_and_once_the_smtp_server_accepted_it(api, system, redis):
    """The notifier reaches the SMTP server through the fault proxy, which kills it when a mail's
    last line goes out: before the server has it (it must be sent again), or once the server
    answered 250 (it was accepted, the notifier never heard: the one duplicate window), three times."""
    async with behind_a_proxy(system, "notifier", *notifier_to_smtp(system)) as proxied:
        proxy = proxied.proxy
        load = SteadyLoad(system, await scene(api, system))

        in_the_window = []  # per crash: mails the SMTP server had accepted and the notifier not yet recorded

        async def count_the_window() -> None:
            in_the_window.append(await mails_accepted_but_not_recorded(system))

        async def crash_at_hand_over() -> int:
            for n in range(3):
                await asyncio.sleep(2)  # a restart takes seconds: all three land while the load runs
                await proxied.crash_at(b"\r\n.\r\n", after_reply=n != 1, while_down=count_the_window)
            return 3

        faults = await during(load, crash_at_hand_over)
        assert proxy.injected.count("crash before the reply reached the client") == 2
        assert in_the_window[0] and in_the_window[2]  # the mail whose 250 the notifier never heard, at least
        duplicable = await accepted_when_it_died(system, load, in_the_window)
        name = "notifier SIGKILL x3 at the end of DATA (1 before the server has it, 2 after its 250)"
        await settle_and_check(name, load, system, redis, faults, mails_duplicated_at_most=duplicable)


async def test_a_recipient_refused_with_550_does_not_stop_the_other_readers_mail(api, system, redis):
    """A tenth of the clients give an address the SMTP server refuses for good (550): their
    professional's mail still goes, once, and the refusal is not retried for ever."""
    load = SteadyLoad(system, await scene(api, system), refused_share=0.1)
    await load.run()
    refused = sum(1 for a in load.acknowledged if a.body["email"].startswith(REFUSED_PREFIX))
    assert refused > 0
    await settle_and_check("a client's address refused with 550 (a tenth of them)", load, system, redis, refused)


async def until_no_booking_is_with(system, event_id: str, professional_id: str, timeout: float = 60.0) -> float:
    """Seconds until the record holds no confirmed booking with this professional."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        rows = await record_rows(system, event_id)
        if not [r for r in rows if r["status"] == "confirmed" and str(r["professional_id"]) == professional_id]:
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - started


async def test_postgresql_unreachable_for_a_minute_across_a_shift_cancel(api, system, redis):
    """The booking service (the owner of capacity) cannot reach PostgreSQL for 60 s, and meanwhile
    an admin cancels a shift with bookings on it. Once PostgreSQL is back, the owner applies the
    cancel and moves or flags those bookings by itself: no message stays parked for a fault that
    has passed, and no operator replays anything."""
    async with behind_a_proxy(system, "booking", *booking_to_postgresql(system)) as proxied, the_broker(system) as broker:
        proxy = proxied.proxy
        parked_before = await broker.dead_letters(BookingSettings().queue_name)  # other tests' poison messages
        setting = await scene(api, system)
        load = SteadyLoad(system, setting)
        cancelled = setting.shifts[0]

        async def outage() -> int:
            await asyncio.sleep(8)  # bookings on every shift first
            proxy.refuse = True
            proxy.reset_all()
            await setting.admin.call("DELETE", f"/shifts/{cancelled['id']}")  # the shifts service is reachable
            await asyncio.sleep(60)
            proxy.heal()
            return 1

        faults = await during(load, outage)
        applied_in = await until_no_booking_is_with(system, setting.event["id"], cancelled["professional_id"])
        print(f"\nthe cancel was applied {applied_in:.1f} s after PostgreSQL came back, with no operator")
        rows = await record_rows(system, setting.event["id"])
        on_cancelled = [
            r for r in rows if r["status"] == "confirmed" and str(r["professional_id"]) == cancelled["professional_id"]
        ]
        assert on_cancelled == [], f"{len(on_cancelled)} bookings still with a professional whose shift was cancelled"
        name = "postgresql unreachable from booking for 60 s across a shift cancel"
        await settle_and_check(name, load, system, redis, faults)
        assert await broker.dead_letters(BookingSettings().queue_name) == parked_before  # nothing more parked
