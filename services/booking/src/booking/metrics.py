"""The booking service's own figures (``common.metrics`` has what every service measures)."""

from prometheus_client import Counter, Gauge

from common.errors import Problem

BOOKINGS_CONFIRMED = Counter("bookings_confirmed_total", "Bookings made (a retry answered with its booking counts once)")
BOOKINGS_REFUSED = Counter("bookings_refused_total", "Booking requests refused, by reason", ["reason"])
HOLDS_IN_FLIGHT = Gauge("booking_holds_in_flight", "Units taken for bookings not yet committed or given back (this process)")
HOLDS_EXPIRED = Counter("booking_holds_expired_total", "Units of bookings never committed, given back as their hold expired")
EVENT_REBUILDS = Counter("capacity_event_rebuilds_total", "Events whose counters were rebuilt from the record")
AUDIT_FINDINGS = Counter(
    "capacity_audit_findings_total",
    "What keeping the counters equal to the record found: drift (counters repaired), moved (a booking "
    "the record gave no unit for, given another), flagged (one nobody could take: needs a reschedule)",
    ["kind"],
)

# Refusals by what the client is told (the problem's code), in a few words of our own; anything
# else (a malformed slot, an unknown event) is "invalid".
REFUSAL_REASONS = {
    "slot_unavailable": "full",
    "slot_blocked": "blocked",
    "slot_in_past": "past",
    "too_soon": "rules",
    "too_far": "rules",
    "rate_limited": "attempt_limit",
    "idempotency_key_reused": "key_reused",
    "try_again": "try_again",
}


def count_refusal(refusal: Problem) -> None:
    BOOKINGS_REFUSED.labels(REFUSAL_REASONS.get(refusal.code, "invalid")).inc()
