"""The public entry as a front door: bad tokens, other people's things, oversized bodies, limits."""

import asyncio
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import yarl

from common.roles import Role
from common.settings import ServiceSettings
from devstack.client import ApiClient
from tests.conftest import SIGNING_KEY, client_session
from tests.forged_tokens import forged_tokens
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability


async def test_every_forged_token_is_a_401_at_the_entry_and_at_each_service(api, system):
    """The JWT attack matrix (issue 14), through the public entry and straight to each service."""
    defaults = ServiceSettings()
    admin = await sign_in_admin(api, system)
    me = await admin.call("GET", "/me")
    forged = forged_tokens(SIGNING_KEY, defaults.jwt_issuer, defaults.jwt_audience, me["id"])
    soon = date.today() + timedelta(days=3)
    event = await create_event(admin, timezone="UTC", start_date=soon, end_date=soon)
    day = {"event_id": event["id"], "date": event["start_date"]}
    settings = system.settings
    targets = {
        "entry: /me": (f"{system.public_url}/api/v1/me", {}),
        "entry: /bookings": (f"{system.public_url}/api/v1/bookings", {}),
        "entry: /shifts": (f"{system.public_url}/api/v1/shifts", {}),
        "gateway: /me": (f"{settings.url_of('gateway')}/api/v1/me", {}),
        "shifts: /shifts": (f"{settings.url_of('shifts')}/shifts", {}),
        "booking: /bookings": (f"{settings.url_of('booking')}/bookings", {}),
        "availability: /availability": (f"{settings.url_of('availability')}/availability", day),
    }
    for target, (url, params) in targets.items():
        for case, token in forged.items():
            async with api.http.get(url, params=params, headers={"Authorization": f"Bearer {token}"}) as response:
                problem = await response.json(content_type=None)
                assert (response.status, problem.get("code")) == (401, "unauthorized"), (target, case, response.status)
    # The real admin token works everywhere it should.
    good = {"Authorization": f"Bearer {admin.token}"}
    async with api.http.get(f"{settings.url_of('booking')}/bookings", headers=good) as response:
        assert response.status == 200
    async with api.http.get(f"{system.public_url}/.well-known/jwks.json") as response:
        published = await response.json()
    assert [key["kty"] for key in published["keys"]] == ["OKP"] and "d" not in published["keys"][0]  # public halves only


async def test_no_one_sees_or_changes_anothers_bookings_or_shifts(api, system):
    admin = await sign_in_admin(api, system)
    zone = ZoneInfo("UTC")
    day = datetime.now(zone).date() + timedelta(days=6)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="10:00", closes_at="11:00")
    pro, as_pro = await create_professional(api, admin)
    _, other_pro = await create_professional(api, admin, name="Dr. Other")
    shift = await add_shift(admin, event, local(day, 10, 0, zone), local(day, 11, 0, zone), 2, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is None)
    owner, other_client = api.as_user(system.token_for(Role.CLIENT)), api.as_user(system.token_for(Role.CLIENT))
    booking = await owner.call(
        "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": local(day, 10, 0, zone).isoformat()}
    )
    attempts = [
        (other_client, "GET", f"/bookings/{booking['id']}", None),
        (other_client, "POST", f"/bookings/{booking['id']}/cancel", None),
        (other_pro, "GET", f"/bookings/{booking['id']}", None),
        (other_pro, "GET", f"/shifts/{shift['id']}", None),
        (other_pro, "PATCH", f"/shifts/{shift['id']}", {"capacity": 1}),
        (other_pro, "DELETE", f"/shifts/{shift['id']}", None),
        (owner, "GET", f"/bookings/{uuid.uuid4()}", None),
        (owner, "GET", "/bookings/not-a-uuid", None),
    ]
    for caller, method, path, body in attempts:
        status, problem = await caller.request(method, path, json=body)
        assert (status, problem["code"]) == (404, "not_found"), (method, path)
    assert (await owner.call("GET", f"/bookings/{booking['id']}"))["status"] == "confirmed"  # untouched
    assert (await as_pro.call("GET", f"/shifts/{shift['id']}"))["capacity"] == 2
    assert (await as_pro.call("GET", f"/bookings/{booking['id']}"))["id"] == booking["id"]  # assigned: visible


async def test_an_oversized_body_is_a_413_and_writes_nothing(api, system):
    email = f"{uuid.uuid4().hex[:8]}@test.example"
    status, problem = await api.request(
        "POST", "/auth/register", json={"email": email, "password": "password-123", "name": "x" * 70_000}
    )
    assert (status, problem["code"]) == (413, "payload_too_large")
    status, _ = await api.request("POST", "/auth/login", json={"email": email, "password": "password-123"})
    assert status == 401  # no account was made
    client = api.as_user(system.token_for(Role.CLIENT))
    status, problem = await client.request("POST", "/bookings", json={"event_id": str(uuid.uuid4()), "start": "x" * 70_000})
    assert (status, problem["code"]) == (413, "payload_too_large")


async def test_a_burst_of_wrong_passwords_is_held_to_the_limit_and_the_owner_still_gets_in_from_elsewhere(api, system):
    """Counted and checked in one step: 200 wrong passwords at once for one account from one
    address get at most the limit of 401s, the rest 429 with Retry-After; the owner, from another
    address, signs in all the same (a stranger cannot lock an account out from everywhere)."""
    email = f"{uuid.uuid4().hex[:8]}@test.example"
    await api.call("POST", "/auth/register", expect=201, json={"email": email, "password": "right-password", "name": "Owner"})
    limit = 10  # FAILED_SIGN_INS_PER_MINUTE

    async def wrong() -> tuple[int, str | None]:
        async with api.http.post(f"{api.base_url}/auth/login", json={"email": email, "password": "wrong"}) as response:
            return response.status, response.headers.get("Retry-After")

    answers = await asyncio.gather(*(wrong() for _ in range(200)))
    refused = [after for status, after in answers if status == 429]
    assert sorted({status for status, _ in answers}) == [401, 429]
    assert len(answers) - len(refused) <= limit, f"{len(answers) - len(refused)} attempts got past the limit"
    assert all(after and 1 <= int(after) <= 60 for after in refused)
    status, _ = await api.request("POST", "/auth/login", json={"email": email, "password": "right-password"})
    assert status == 429  # from this address, even the right password waits out the minute
    async with client_session() as elsewhere:
        await ApiClient(elsewhere, system.public_url).sign_in(email, "right-password")


async def test_one_address_cannot_try_many_accounts_or_open_many(api, system):
    emails = [f"{uuid.uuid4().hex[:8]}@test.example" for _ in range(31)]
    answers = [(await api.request("POST", "/auth/login", json={"email": email, "password": "guess"}))[0] for email in emails]
    assert answers == [401] * 30 + [429]  # FAILED_SIGN_INS_PER_ADDRESS_PER_MINUTE, whatever the account
    async with client_session() as one_address:
        registrar = ApiClient(one_address, system.public_url)
        for i in range(20):  # REGISTRATIONS_PER_ADDRESS_PER_HOUR
            body = {"email": f"many-{i}-{uuid.uuid4().hex[:6]}@test.example", "password": "password-123", "name": "Many"}
            await registrar.call("POST", "/auth/register", expect=201, json=body)
        body = {"email": f"one-more-{uuid.uuid4().hex[:6]}@test.example", "password": "password-123", "name": "More"}
        status, problem = await registrar.request("POST", "/auth/register", json=body)
        assert (status, problem["code"]) == (429, "rate_limited")
        status, _ = await registrar.request("POST", "/auth/login", json={"email": body["email"], "password": "password-123"})
        assert status == 401  # the refused registration made no account


async def test_failed_sign_ins_are_rate_limited_with_retry_after(api, system):
    email = f"{uuid.uuid4().hex[:8]}@test.example"
    await api.call("POST", "/auth/register", expect=201, json={"email": email, "password": "right-password", "name": "Limited"})
    for _ in range(10):
        status, _ = await api.request("POST", "/auth/login", json={"email": email, "password": "wrong-password"})
        assert status == 401
    async with api.http.post(f"{api.base_url}/auth/login", json={"email": email, "password": "right-password"}) as response:
        problem = await response.json(content_type=None)
        assert (response.status, problem["code"]) == (429, "rate_limited")  # even the right password, for a minute
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    other = f"{uuid.uuid4().hex[:8]}@test.example"
    await api.call("POST", "/auth/register", expect=201, json={"email": other, "password": "right-password", "name": "Other"})
    await api.sign_in(other, "right-password")  # another account is not held back


async def test_booking_attempts_are_limited_where_bookings_are_taken_whichever_way_they_come_in(api, system):
    admin = await sign_in_admin(api, system)
    zone = ZoneInfo("UTC")
    day = datetime.now(zone).date() + timedelta(days=5)
    event = await create_event(admin, timezone="UTC", start_date=day, end_date=day, opens_at="10:00", closes_at="10:30")
    pro, _ = await create_professional(api, admin)
    await add_shift(admin, event, local(day, 10, 0, zone), local(day, 10, 30, zone), 1, professional=pro)
    await wait_for_availability(api, event["id"], day, lambda b: b["reason"] is None)
    body = {"event_id": event["id"], "start": local(day, 10, 0, zone).isoformat()}
    await api.as_user(system.token_for(Role.CLIENT)).call("POST", "/bookings", expect=201, json=body)

    token = system.token_for(Role.CLIENT)
    me = api.as_user(token)
    answers = [(await me.request("POST", "/bookings", json=body))[0] for _ in range(30)]
    assert answers == [409] * 30
    status, problem = await me.request("POST", "/bookings", json=body)
    assert (status, problem["code"]) == (429, "rate_limited")
    # Straight to the booking service, past the public entry: the same count, the same answer.
    direct = f"{system.settings.url_of('booking')}/bookings"
    async with api.http.post(direct, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 429 and 1 <= int(response.headers["Retry-After"]) <= 60
    assert (await api.as_user(system.token_for(Role.CLIENT)).request("POST", "/bookings", json=body))[0] == 409


async def test_only_published_routes_are_reachable_whatever_bytes_the_path_is_sent_as(api, system):
    """A service's own routes (its readiness, which names what it depends on) answer on its port,
    never through the public entry, however the path is spelled."""
    admin = await sign_in_admin(api, system)
    for raw in (
        "/readyz",
        "/api/v1/events/%2e%2e/%2e%2e/readyz",
        "/api/v1/events/../../readyz",
        "/api/v1/bookings/..%2f..%2freadyz",
        "/api/v1/bookings/%2E%2E/%2E%2E/readyz",
        "//readyz",
        "/api/v1/availability/../../readyz",
    ):
        async with api.http.get(yarl.URL(system.public_url + raw, encoded=True)) as response:
            problem = await response.json(content_type=None)
            assert (response.status, problem["code"]) == (404, "not_found"), raw
    # The services behind it do have the route: only the entry keeps it out.
    for service in ("gateway", "booking"):
        async with api.http.get(f"{system.settings.url_of(service)}/readyz") as response:
            assert response.status == 200
    assert (await admin.request("GET", "/events"))[0] == 200
