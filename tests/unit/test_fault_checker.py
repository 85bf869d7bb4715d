"""The fault suite's set checker finds what it must: a booking a client was told about and the
record lacks, a booking in the record no attempt made, two bookings for one key, a 500."""

from types import SimpleNamespace

from tests.faults.checker import Verdict, check_set
from tests.faults.load import Attempt


def attempt(key: str, booking: str | None, answers: list[str]) -> Attempt:
    made = Attempt(key, "token", f"client-{key}", {}, answers)
    made.booking = {"id": booking} if booking else None
    return made


def row(booking: str, key: str, status: str = "confirmed") -> dict:
    return {"id": booking, "client_id": f"client-{key}", "idempotency_key": key, "status": status}


async def test_lost_unexplained_duplicated_and_500s_are_counted():
    attempts = [
        attempt("k1", "b1", ["201"]),
        attempt("k2", "b2", ["503", "200"]),  # ambiguous at first, then told: booked
        attempt("k3", None, ["409"]),
        attempt("k4", None, ["500", "409"]),
    ]
    load = SimpleNamespace(attempts=attempts, acknowledged=[a for a in attempts if a.booking])
    verdict = Verdict()
    await check_set(load, [row("b1", "k1"), row("b9", "k9"), row("b3", "k3"), row("b3b", "k3", "cancelled")], verdict)
    assert verdict.lost == ["b2"]  # told "booked", not in the record
    assert verdict.unexplained == ["b9"]  # in the record, from no attempt
    assert verdict.duplicated == 1  # two bookings for k3
    assert verdict.confirmed == 3
    assert verdict.server_errors == 1
    clean = Verdict()
    await check_set(SimpleNamespace(attempts=attempts[:2], acknowledged=attempts[:2]), [row("b1", "k1"), row("b2", "k2")], clean)
    assert (clean.lost, clean.unexplained, clean.duplicated, clean.server_errors) == ([], [], 0, 0)
