"""The demo: an event from today for 15 days, a lunch break, three professionals with shifts, a client."""

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from devstack.client import ApiClient, ApiError

log = logging.getLogger(__name__)

DEMO_EVENT = "Demo clinic"
DEMO_CLIENT = ("client@example.com", "client-password", "Casey Client")
DEMO_PROFESSIONALS = [
    # email, password, name, daily shift (local), capacity
    ("ada@example.com", "ada-password", "Dr. Ada Lovelace", (time(9), time(17)), 1),
    ("grace@example.com", "grace-password", "Dr. Grace Hopper", (time(9), time(12)), 2),
    ("alan@example.com", "alan-password", "Dr. Alan Turing", (time(13), time(17)), 1),
]


async def seed_demo(api: ApiClient, admin_email: str, admin_password: str, timezone: str) -> bool:
    """Create the demo through the public API; returns False when it was there already."""
    admin = await api.sign_in(admin_email, admin_password)
    events = await admin.call("GET", "/events", params={"limit": "200"})
    if any(e["name"] == DEMO_EVENT for e in events["items"]):
        return False
    zone = ZoneInfo(timezone)
    today = datetime.now(zone).date()
    last = today + timedelta(days=14)
    event = await admin.call(
        "POST",
        "/events",
        expect=201,
        json={
            "name": DEMO_EVENT,
            "timezone": timezone,
            "start_date": today.isoformat(),
            "end_date": last.isoformat(),
            "opens_at": "09:00",
            "closes_at": "17:00",
            "slot_minutes": 30,
        },
    )
    await admin.call(
        "POST",
        f"/events/{event['id']}/blackouts",
        expect=201,
        json={"start_time": "12:00", "end_time": "13:00", "reason": "Lunch break"},
    )
    for email, password, name, (start, end), capacity in DEMO_PROFESSIONALS:
        pro = await _professional(admin, email, password, name, timezone)
        day: date = today
        while day <= last:
            await admin.call(
                "POST",
                "/shifts",
                expect=201,
                json={
                    "event_id": event["id"],
                    "professional_id": pro["id"],
                    "capacity": capacity,
                    "start": datetime.combine(day, start, zone).isoformat(),
                    "end": datetime.combine(day, end, zone).isoformat(),
                },
            )
            day += timedelta(days=1)
    email, password, name = DEMO_CLIENT
    try:
        await api.call(
            "POST", "/auth/register", expect=201, json={"email": email, "password": password, "name": name, "timezone": timezone}
        )
    except ApiError as exc:
        if exc.status != 409:
            raise
    return True


async def _professional(admin: ApiClient, email: str, password: str, name: str, timezone: str) -> dict:
    status, body = await admin.request(
        "POST", "/professionals", json={"email": email, "password": password, "name": name, "timezone": timezone}
    )
    if status == 201:
        return body
    listing = await admin.call("GET", "/professionals", params={"limit": "200"})
    return next(p for p in listing["items"] if p["email"] == email)
