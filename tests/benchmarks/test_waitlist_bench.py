"""Reschedule, the waitlist and claims are bookings too: what each costs beside a booking's, through
the public entry in one run; and what 500 waiters do to a flash crowd of 2,000 on their slot
(refused as fast as on a full slot nobody waits for, and none of the crowd gets a unit freed
under it). Run with ``make bench``."""

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from common.roles import Role
from tests.benchmarks.loadgen import KindReport, Plan, http_request, run
from tests.benchmarks.results import Results
from tests.integration.helpers import (
    add_shift,
    booking_rows,
    create_event,
    create_professional,
    local,
    sign_in_admin,
    wait_for_availability,
)

pytestmark = pytest.mark.bench

ZONE = ZoneInfo("America/Sao_Paulo")
OPERATIONS = 600  # bookings, then as many reschedules, joins and claims
CONNECTIONS = 16
CROWD = 2000
WAITERS = 500
UNITS = 50  # in the flash crowd's slot


def tokens(system, count: int, name: str) -> list[str]:
    return [system.token_for(Role.CLIENT, name=f"{name} {i}") for i in range(count)]


async def measured(system, kind: str, requests: list[str], connections: int = CONNECTIONS) -> KindReport:
    report = await run(Plan(system.public_url, [(kind, r) for r in requests], connections))
    return report.kinds[kind]


async def wait_until(check, timeout: float = 60.0) -> float:
    started = time.perf_counter()
    while not await check():
        assert time.perf_counter() - started < timeout, "never happened"
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def test_reschedule_join_and_claim_against_booking_and_a_flash_crowd_on_a_waited_for_slot(
    api, system, servers, results: Results
):
    admin = await sign_in_admin(api, system)
    day = datetime.now(ZONE).date() + timedelta(days=5)
    event = await create_event(admin, timezone=ZONE.key, start_date=day, end_date=day, opens_at="08:00", closes_at="18:00")
    for i in range(5):
        pro, _ = await create_professional(api, admin, name=f"Dr. Wait {i}")
        await add_shift(admin, event, local(day, 8, 0, ZONE), local(day, 18, 0, ZONE), 100, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda b: all(s["remaining"] == 500 for s in b["slots"]))
    slots = [local(day, 8, 0, ZONE) + timedelta(minutes=30 * i) for i in range(20)]
    url = f"{system.public_url}/api/v1"
    figures: dict[str, KindReport] = {}

    # Bookings spread over the day, then each moved one slot later: a move against a booking.
    clients = tokens(system, OPERATIONS, "Mover")
    booking_requests = [
        http_request("POST", f"{url}/bookings", body={"event_id": event["id"], "start": slots[i % 18].isoformat()}, token=t)
        for i, t in enumerate(clients)
    ]
    figures["book"] = await measured(system, "book", booking_requests)
    booked = await servers_rows(servers, event["id"])
    assert len(booked) == OPERATIONS
    by_client = {row["client_name"]: row for row in booked}
    move_requests = [
        http_request(
            "POST",
            f"{url}/bookings/{by_client[f'Mover {i}']['id']}/reschedule",
            body={"start": (by_client[f"Mover {i}"]["slot_start"] + timedelta(minutes=30)).isoformat()},
            token=t,
        )
        for i, t in enumerate(clients)
    ]
    figures["reschedule"] = await measured(system, "reschedule", move_requests)

    # The last slot full (500 units), 600 waiting for it; 500 cancels free it, offered to the first 500.
    last = slots[19]
    holders = tokens(system, 500, "Holder")
    await measured(
        system,
        "fill",
        [
            http_request("POST", f"{url}/bookings", body={"event_id": event["id"], "start": last.isoformat()}, token=t)
            for t in holders
        ],
    )
    waiters = tokens(system, OPERATIONS, "Waiter")
    join_requests = [
        http_request("POST", f"{url}/waitlist", body={"event_id": event["id"], "start": last.isoformat()}, token=t)
        for t in waiters
    ]
    figures["join the waitlist"] = await measured(system, "join the waitlist", join_requests)
    holding = [r for r in await servers_rows(servers, event["id"]) if r["client_name"].startswith("Holder")]
    cancel_requests = [
        http_request("POST", f"{url}/bookings/{r['id']}/cancel", token=holders[int(r["client_name"].split()[1])]) for r in holding
    ]
    await measured(system, "cancel", cancel_requests)
    await wait_until(lambda: offered_at_least(servers, event["id"], 500))
    offers = await waitlist_rows(servers, event["id"], "offered")
    claim_requests = [
        http_request("POST", f"{url}/waitlist/{r['id']}/claim", body={}, token=waiters[int(r["client_name"].split()[1])])
        for r in offers
    ]
    figures["claim an offer"] = await measured(system, "claim an offer", claim_requests)

    table = f"Reschedule, waitlist and claim beside a booking: {OPERATIONS} (claims: 500) each, {CONNECTIONS} connections"
    print(f"\n--- {table}")
    for kind, k in figures.items():
        print(f"{kind}: {k.rate:,.0f}/s, p50 {k.p50_ms:.1f} ms, p99 {k.p99_ms:.1f} ms {k.statuses}")
        results.row(table, operation=kind, per_s=f"{k.rate:,.0f}", p50=f"{k.p50_ms:.1f} ms", p99=f"{k.p99_ms:.1f} ms")
        results.bar("Reschedule and claim beside a booking: p99", "ms", kind, "p99", k.p99_ms)
    assert figures["book"].statuses == {"201": OPERATIONS}
    assert figures["reschedule"].statuses == {"200": OPERATIONS}
    assert figures["join the waitlist"].statuses == {"201": OPERATIONS}
    assert figures["claim an offer"].statuses == {"201": 500}

    await flash_crowds(api, system, servers, admin, results)


async def flash_crowds(api, system, servers, admin, results: Results) -> None:
    """2,000 attempts on a full slot of 50 units, with 500 waiters and without; then on the waited-for
    slot while its 50 bookings are cancelled: every freed unit goes to a waiter, none to the crowd."""
    day = datetime.now(ZONE).date() + timedelta(days=6)
    event = await create_event(admin, timezone=ZONE.key, start_date=day, end_date=day, opens_at="08:00", closes_at="10:00")
    pro, _ = await create_professional(api, admin, name="Dr. Crowd")
    await add_shift(admin, event, local(day, 8, 0, ZONE), local(day, 10, 0, ZONE), UNITS, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda b: all(s["remaining"] == UNITS for s in b["slots"]))
    url = f"{system.public_url}/api/v1"
    waited, unwaited = local(day, 8, 0, ZONE), local(day, 8, 30, ZONE)

    def book_all(start, people):
        return [
            http_request("POST", f"{url}/bookings", body={"event_id": event["id"], "start": start.isoformat()}, token=t)
            for t in people
        ]

    holders = tokens(system, UNITS, "Crowd holder")
    await measured(system, "fill", book_all(waited, holders))
    await measured(system, "fill", book_all(unwaited, tokens(system, UNITS, "Other holder")))
    joins = [
        http_request("POST", f"{url}/waitlist", body={"event_id": event["id"], "start": waited.isoformat()}, token=t)
        for t in tokens(system, WAITERS, "Crowd waiter")
    ]
    assert (await measured(system, "join", joins)).statuses == {"201": WAITERS}

    crowds = {}
    crowds["full slot, nobody waiting"] = await measured(system, "book", book_all(unwaited, tokens(system, CROWD, "A")), 100)
    crowds[f"full slot, {WAITERS} waiting"] = await measured(system, "book", book_all(waited, tokens(system, CROWD, "B")), 100)

    # The crowd again while the slot's 50 bookings are cancelled under it.
    rows = [r for r in await servers_rows(servers, event["id"]) if r["client_name"].startswith("Crowd holder")]
    cancels = [
        http_request("POST", f"{url}/bookings/{r['id']}/cancel", token=holders[int(r["client_name"].split()[2])]) for r in rows
    ]
    started = time.perf_counter()
    crowd_task = asyncio.create_task(measured(system, "book", book_all(waited, tokens(system, CROWD, "C")), 100))
    await measured(system, "cancel", cancels, 8)
    offered_in = await wait_until(lambda: offered_at_least(servers, event["id"], UNITS))
    crowds[f"{UNITS} units freed under it, {WAITERS} waiting"] = await crowd_task
    offered_after = time.perf_counter() - started

    table = f"A flash crowd of {CROWD:,} on a slot of {UNITS} units, full (100 connections)"
    print(f"\n--- {table}")
    for name, k in crowds.items():
        print(f"{name}: {k.rate:,.0f} attempts/s, p50 {k.p50_ms:.1f} ms, p99 {k.p99_ms:.1f} ms {k.statuses}")
        results.row(table, case=name, attempts_per_s=f"{k.rate:,.0f}", p50=f"{k.p50_ms:.1f} ms", p99=f"{k.p99_ms:.1f} ms",
                    booked=k.statuses.get("201", 0))  # fmt: skip
    print(
        f"the {UNITS} freed units offered to the first {UNITS} waiters {offered_in:.2f} s after the last cancel "
        f"({offered_after:.2f} s in all)"
    )
    results.row(
        "Waitlist: units freed under a flash crowd",
        what=f"{UNITS} cancels under a flash crowd → offered to {UNITS} waiters",
        value=f"{offered_after:.2f} s",
        target="",
    )
    assert all("201" not in k.statuses for k in crowds.values())  # nobody in a crowd ever got a unit
    assert len(await waitlist_rows(servers, event["id"], "offered")) == UNITS


async def servers_rows(servers, event_id: str) -> list:
    return await booking_rows(
        servers,
        "SELECT id, client_name, slot_start FROM bookings WHERE event_id = $1 AND status = 'confirmed'",
        uuid.UUID(event_id),
    )


async def waitlist_rows(servers, event_id: str, status: str) -> list:
    return await booking_rows(
        servers, "SELECT id, client_name FROM waitlist WHERE event_id = $1 AND status = $2", uuid.UUID(event_id), status
    )


async def offered_at_least(servers, event_id: str, count: int) -> bool:
    return len(await waitlist_rows(servers, event_id, "offered")) >= count
