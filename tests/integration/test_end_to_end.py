"""The whole booking flow through the gateway, on real PostgreSQL, Redis, RabbitMQ and SMTP."""

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from common.roles import Role
from devstack.client import ApiClient
from tests.integration.helpers import add_shift, slot_at, wait_for_availability

EVENT_ZONE = ZoneInfo("America/New_York")


async def test_admin_professional_and_clients_book_through_the_gateway(api: ApiClient, system):
    unique = uuid.uuid4().hex[:8]
    admin = await api.sign_in(system.settings.admin_email, system.settings.admin_password.get_secret_value())

    day = datetime.now(EVENT_ZONE).date() + timedelta(days=1)
    event = await admin.call(
        "POST",
        "/events",
        expect=201,
        json={
            "name": f"Clinic {unique}",
            "timezone": EVENT_ZONE.key,
            "start_date": day.isoformat(),
            "end_date": (day + timedelta(days=2)).isoformat(),
            "opens_at": "09:00",
            "closes_at": "17:00",
            "slot_minutes": 30,
        },
    )
    assert event["opens_at"] == "09:00" and event["slot_minutes"] == 30

    pro_email = f"pro-{unique}@test.example"
    pro = await admin.call(
        "POST",
        "/professionals",
        expect=201,
        json={
            "email": pro_email,
            "password": "pro-password-1",
            "name": "Dr. Rosalind Franklin",
            "timezone": "Europe/London",
        },
    )
    professional = await api.sign_in(pro_email, "pro-password-1")
    ten = datetime.combine(day, datetime.min.time().replace(hour=10), EVENT_ZONE)
    shift = await add_shift(professional, event, ten, ten + timedelta(hours=1), capacity=1)
    assert shift["professional_id"] == pro["id"] and shift["status"] == "active"

    # Within a moment the slots that the shift covers are available; the others are not.
    availability = await wait_for_availability(api, event["id"], day, lambda body: slot_at(body, ten)["status"] == "available")
    assert availability["timezone"] == EVENT_ZONE.key and availability["reason"] is None
    assert len(availability["slots"]) == 16
    assert slot_at(availability, ten) == {
        "start": ten.isoformat(),
        "end": (ten + timedelta(minutes=30)).isoformat(),
        "status": "available",
        "remaining": 1,
    }
    assert slot_at(availability, ten + timedelta(minutes=30))["remaining"] == 1
    assert [s["status"] for s in availability["slots"]].count("available") == 2

    first_email = f"first-{unique}@test.example"
    await api.call(
        "POST",
        "/auth/register",
        expect=201,
        json={
            "email": first_email,
            "password": "first-password",
            "name": "First Client",
            "timezone": "Europe/Paris",
        },
    )
    first = await api.sign_in(first_email, "first-password")
    booking = await first.call(
        "POST",
        "/bookings",
        expect=201,
        headers={"Idempotency-Key": unique, "X-Correlation-ID": f"trace-{unique}"},
        json={"event_id": event["id"], "start": ten.isoformat(), "email": first_email},
    )
    assert booking["professional"] == {"id": pro["id"], "name": "Dr. Rosalind Franklin"}
    assert booking["status"] == "confirmed"
    assert datetime.fromisoformat(booking["start"]) == ten
    assert booking["start"].endswith("+01:00")  # shown in the client's own timezone (Paris, winter)

    await api.call(
        "POST",
        "/auth/register",
        expect=201,
        json={
            "email": f"second-{unique}@test.example",
            "password": "second-password",
            "name": "Second Client",
        },
    )
    second = await api.sign_in(f"second-{unique}@test.example", "second-password")
    status, problem = await second.request("POST", "/bookings", json={"event_id": event["id"], "start": ten.isoformat()})
    assert status == 409
    assert problem["code"] == "slot_unavailable" and problem["status"] == 409 and problem["type"].endswith("/slot_unavailable")

    mine = await first.call("GET", "/bookings")
    assert [b["id"] for b in mine["items"]] == [booking["id"]]
    assert (await second.call("GET", "/bookings"))["items"] == []
    status, _ = await second.request("GET", f"/bookings/{booking['id']}")
    assert status == 404  # someone else's booking is not there for them

    after = await wait_for_availability(api, event["id"], day, lambda body: slot_at(body, ten)["status"] == "full")
    assert slot_at(after, ten)["remaining"] == 0

    to_client = system.mail.wait_for(1, to=first_email)
    to_pro = system.mail.wait_for(1, to=pro_email)
    # The request's correlation id travelled gateway -> booking -> outbox -> RabbitMQ -> notifier.
    assert to_client[0]["X-Correlation-ID"] == to_pro[0]["X-Correlation-ID"] == f"trace-{unique}"
    client_text = to_client[0].get_body(("plain",)).get_content()
    assert "Dr. Rosalind Franklin" in client_text
    assert "16:00" in client_text and "Europe/Paris" in client_text  # 10:00 New York is 16:00 Paris
    pro_text = to_pro[0].get_body(("plain",)).get_content()
    assert "First Client" in pro_text and "15:00" in pro_text and "Europe/London" in pro_text


async def test_bad_input_answers_problem_documents(api: ApiClient, system):
    status, problem = await api.request("GET", "/availability", params={"event_id": str(uuid.uuid4()), "date": "2026-02-30"})
    assert status == 422 and problem["code"] == "validation_failed"
    status, problem = await api.request(
        "GET", "/availability", params={"event_id": str(uuid.uuid4()), "date": "2026-03-01", "tz": "Mars/Olympus"}
    )
    assert status == 422 and "Mars/Olympus" in str(problem["errors"])
    status, problem = await api.request("POST", "/bookings", json={"event_id": str(uuid.uuid4())})
    assert status == 401 and problem["code"] == "unauthorized"
    client = api.as_user(system.token_for(Role.CLIENT))
    status, problem = await client.request("POST", "/bookings", json={"event_id": "nope", "start": "soon", "extra": 1})
    assert status == 422 and {tuple(e["location"]) for e in problem["errors"]} >= {("body", "event_id"), ("body", "extra")}
