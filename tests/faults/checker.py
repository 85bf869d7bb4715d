"""What every fault test checks once the system has settled, in the manner of Jepsen's checkers,
each against the system's own records (never against what the test believes it did):

- *set*: every booking a client was told about (201, or 200 for its key) is in the record, and
  every booking in the record came from an attempt (by its Idempotency-Key): lost 0;
  no Idempotency-Key has two bookings: duplicated 0;
- *counter*: the record's audit is clean (no slot or professional beyond capacity): overbooked 0;
  the Redis counters equal what the record gives, slot by slot and professional by professional;
  and what availability shows each slot left is the shifts' capacity less its bookings;
- *total queue*: every ``booking.confirmed`` the record published reached the SMTP server once for
  each of its recipients (the SMTP server's own record): mails missing 0; duplicates counted.

``report`` prints the one line each fault test prints.
"""

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from booking.adapters.capacity import CapacityStore
from devstack.mailsink import REFUSED_PREFIX
from notifier.settings import Settings as NotifierSettings
from tests.faults.load import Scene, SteadyLoad

message_id = NotifierSettings().letterhead.message_id  # as the stack runs the notifier: with its defaults


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)  # in the record, from no attempt
    duplicated: int = 0
    overbooked: dict = field(default_factory=dict)
    counter_drift: dict = field(default_factory=dict)
    mails_missing: list[str] = field(default_factory=list)
    mails_duplicated: int = 0
    confirmed: int = 0
    server_errors: int = 0  # 500s: a fault may give 503s (try again), never a 500


async def record_rows(system, event_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(system.settings.database_for("booking").replace("+asyncpg", ""))
    try:
        return await conn.fetch(
            "SELECT id, client_id, idempotency_key, status, slot_start, professional_id, client_email, professional_email "
            "FROM bookings WHERE event_id = $1",
            uuid.UUID(event_id),
        )
    finally:
        await conn.close()


async def published_confirmations(system, event_id: str) -> list[dict]:
    conn = await asyncpg.connect(system.settings.database_for("booking").replace("+asyncpg", ""))
    try:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        rows = await conn.fetch(
            "SELECT event_id, envelope FROM outbox WHERE envelope->>'type' = 'booking.confirmed'"
            " AND envelope->'data'->>'event_id' = $1",
            event_id,
        )
    finally:
        await conn.close()
    return [{"event_id": r["envelope"]["event_id"], "envelope": r["envelope"]} for r in rows]


async def check_set(load: SteadyLoad, rows: list, verdict: Verdict) -> None:
    in_record = {str(r["id"]) for r in rows}
    verdict.lost = [a.booking["id"] for a in load.acknowledged if a.booking["id"] not in in_record]
    attempted = {(a.client_id, a.key) for a in load.attempts}
    verdict.unexplained = [str(r["id"]) for r in rows if (str(r["client_id"]), r["idempotency_key"]) not in attempted]
    per_key = Counter((str(r["client_id"]), r["idempotency_key"]) for r in rows)
    verdict.duplicated = sum(n - 1 for n in per_key.values() if n > 1)
    verdict.confirmed = sum(1 for r in rows if r["status"] == "confirmed")
    verdict.server_errors = sum(a.answers.count("500") for a in load.attempts)


async def check_counters(system, redis, event_id: str, rows: list, verdict: Verdict) -> None:
    _, audit = await system.command("booking", "audit", event_id)  # the record's own audit, as an operator runs it
    if not audit.get("clean", False):
        verdict.overbooked = audit
    store = CapacityStore(redis, system.settings.redis_key_prefix)
    known = await store.event(uuid.UUID(event_id))
    if known is None:  # no counters for the event (Redis lost them, and they are not rebuilt yet)
        verdict.counter_drift["the event's counters"] = {"redis": None}
        return
    confirmed = [r for r in rows if r["status"] == "confirmed"]
    for start in sorted({r["slot_start"] for r in confirmed}):
        in_record = Counter(str(r["professional_id"]) for r in confirmed if r["slot_start"] == start)
        in_redis = await store.professional_usage(known.data.id, known.schedule.slot_starting_at(start))
        if in_redis != dict(in_record):
            verdict.counter_drift[start.isoformat()] = {"redis": in_redis, "record": dict(in_record)}


async def check_what_clients_see(scene: Scene, rows: list, verdict: Verdict) -> None:
    """Each slot's remaining, as availability answers it, is the active shifts' capacity (as the
    shifts service holds them now, every change applied) less the slot's confirmed bookings."""
    shifts = [await scene.admin.call("GET", f"/shifts/{shift['id']}") for shift in scene.shifts]
    query = {"event_id": scene.event["id"], "date": scene.day.isoformat()}
    availability = await scene.admin.call("GET", "/availability", params=query)
    for slot in availability["slots"]:
        start = datetime.fromisoformat(slot["start"])
        capacity = sum(
            s["capacity"]
            for s in shifts
            if s["status"] == "active" and datetime.fromisoformat(s["start"]) <= start < datetime.fromisoformat(s["end"])
        )
        booked = sum(1 for r in rows if r["status"] == "confirmed" and r["slot_start"] == start)
        if slot["remaining"] != max(0, capacity - booked):
            verdict.counter_drift[f"remaining {start.isoformat()}"] = {
                "shown": slot["remaining"],
                "capacity": capacity,
                "booked": booked,
            }


def expected_mails(confirmations: list[dict]) -> dict[str, str]:
    """Message-ID -> recipient, for every recipient of every booking.confirmed."""
    expected = {}
    for c in confirmations:
        data = c["envelope"]["data"]
        for recipient in filter(None, (data.get("client", {}).get("email"), data.get("professional", {}).get("email"))):
            if recipient.startswith(REFUSED_PREFIX):
                continue  # the SMTP server refuses this address (550): nothing can arrive for it
            expected[message_id(c["event_id"], recipient)] = recipient
    return expected


async def notifier_rows(system, query: str) -> list:
    """What the notifier's own record answers ``query`` with."""
    conn = await asyncpg.connect(system.settings.database_for("notifier").replace("+asyncpg", ""))
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def mails_being_sent(system) -> set[str]:
    """The mails (Message-IDs) the notifier's record holds claimed and not yet sent."""
    claimed = await notifier_rows(system, "SELECT event_id, recipient FROM sent_mail WHERE status = 'sending'")
    return {message_id(row["event_id"], row["recipient"]) for row in claimed}


async def mails_accepted_but_not_recorded(system) -> set[str]:
    """Right after the notifier died: the mails the SMTP server had accepted, by its own record,
    that the notifier had not yet recorded as sent. Each is sent again once its claim's lease runs
    out: the duplicate window, counted."""
    await asyncio.sleep(0.5)  # a mail already in the server's socket buffer is still accepted
    received = {str(m["Message-ID"]).strip() for m in system.mail.messages}
    return await mails_being_sent(system) & received


async def confirmation_mails(system, event_id: str) -> set[str]:
    """The mails (Message-IDs) of the event's ``booking.confirmed``s: those the checker counts."""
    return set(expected_mails(await published_confirmations(system, event_id)))


async def duplicate_window(system, event_id: str) -> list[float]:
    """For every mail of the event's confirmations sent once: seconds from the SMTP server accepting
    it (its own clock, this machine's) to the notifier's "sent" record. A crash inside it sends the
    mail again."""
    ours = await confirmation_mails(system, event_id)
    conn = await asyncpg.connect(system.settings.database_for("notifier").replace("+asyncpg", ""))
    try:
        rows = await conn.fetch("SELECT event_id, recipient, sent_at FROM sent_mail WHERE status = 'sent'")
    finally:
        await conn.close()
    accepted: dict[str, list[float]] = {}
    for at, message in system.mail.arrivals():
        accepted.setdefault(str(message["Message-ID"]).strip(), []).append(at)
    windows = []
    for row in rows:
        mail = message_id(row["event_id"], row["recipient"])
        if mail in ours and len(accepted.get(mail, [])) == 1:
            windows.append(row["sent_at"].timestamp() - accepted[mail][0])
    return sorted(windows)


async def check_mails(system, event_id: str, verdict: Verdict, wait_seconds: float) -> None:
    """Once every mail arrived and none is still being sent (a copy still to come is counted too)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        expected = expected_mails(await published_confirmations(system, event_id))
        received = Counter(str(m["Message-ID"]).strip() for m in system.mail.messages)
        verdict.mails_missing = [mid for mid in expected if received[mid] == 0]
        verdict.mails_duplicated = sum(received[mid] - 1 for mid in expected if received[mid] > 1)
        in_flight = await mails_being_sent(system) & set(expected)
        if not verdict.mails_missing and not in_flight or time.monotonic() > deadline:
            return
        await asyncio.sleep(1.0)


async def verdict_after(load: SteadyLoad, system, redis, settle_started: float, mail_wait: float = 60.0) -> tuple[Verdict, float]:
    await load.settle()
    event_id = load.scene.event["id"]
    verdict = Verdict()
    rows = await record_rows(system, event_id)
    await check_set(load, rows, verdict)
    await check_counters_settled(system, redis, load.scene, verdict)
    await check_mails(system, event_id, verdict, mail_wait)
    return verdict, time.monotonic() - settle_started


async def check_counters_settled(system, redis, scene: Scene, verdict: Verdict, wait_seconds: float = 30.0) -> None:
    """Counters may lag the record for a moment after a fault (holds expire, reconcile repairs),
    and the record may still be changing (the capacity owner applying a change it could not while
    the fault lasted): both are read afresh each time, and must agree within ``wait_seconds``."""
    deadline = time.monotonic() + wait_seconds
    while True:
        verdict.counter_drift, verdict.overbooked = {}, {}
        rows = await record_rows(system, scene.event["id"])
        await check_counters(system, redis, scene.event["id"], rows, verdict)
        await check_what_clients_see(scene, rows, verdict)
        if not verdict.counter_drift and not verdict.overbooked or time.monotonic() > deadline:
            return
        await asyncio.sleep(1.0)


def report(name: str, load: SteadyLoad, verdict: Verdict, faults: int, settled: float) -> str:
    line = (
        f"FAULT {name}: attempts {len(load.attempts)}, confirmed {verdict.confirmed}, faults injected {faults}, "
        f"lost {len(verdict.lost)}, duplicated {verdict.duplicated}, overbooked {1 if verdict.overbooked else 0}, "
        f"mails missing {len(verdict.mails_missing)}, mails duplicated {verdict.mails_duplicated}, settled in {settled:.1f} s"
    )
    print("\n" + line)
    return line


def assert_nothing_lost(verdict: Verdict, mails_duplicated_at_most: int = 0) -> None:
    assert verdict.lost == [], f"acknowledged bookings missing from the record: {verdict.lost[:5]}"
    assert verdict.unexplained == [], f"bookings in the record from no attempt: {verdict.unexplained[:5]}"
    assert verdict.duplicated == 0
    assert verdict.server_errors == 0, f"{verdict.server_errors} answers were 500s"
    assert verdict.overbooked == {}, verdict.overbooked
    assert verdict.counter_drift == {}, verdict.counter_drift
    assert verdict.mails_missing == [], f"{len(verdict.mails_missing)} mails never reached the SMTP server"
    assert verdict.mails_duplicated <= mails_duplicated_at_most, (
        f"{verdict.mails_duplicated} mails sent twice, at most {mails_duplicated_at_most} explained by the faults"
    )
