"""The booking page in a real browser (Debian's Chromium driven by Playwright) against the whole system.

Each test leaves screenshots in ``test-output/web/`` for a person to look at.
"""

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from common.roles import Role
from devstack.client import ApiClient
from tests.integration.helpers import add_shift, create_event, create_professional, local, sign_in_admin, wait_for_availability

AXE = Path(__file__).resolve().parents[2] / "tools" / "web-checks" / "node_modules" / "axe-core" / "axe.min.js"  # make web-checks
AXE_RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's, installed by `make test`; Playwright downloads no browser
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "web"
EVENT_ZONE = ZoneInfo("America/New_York")
# As root Chromium needs --no-sandbox; the rest keep it off the (closed) network at start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class Visitor:
    """One person at one browser: their own context, so sessions never mix."""

    def __init__(self, context: BrowserContext, page: Page, base_url: str, name: str) -> None:
        self.context, self.page, self.base_url, self.name = context, page, base_url, name
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    async def open(self, view: str) -> Page:
        await self.page.goto(f"{self.base_url}/#/{view}")
        await expect(self.page.locator("main")).to_have_attribute("data-page", view)
        return self.page

    async def sign_in(self, email: str, password: str) -> None:
        page = await self.open("signin")
        form = page.get_by_role("form", name="Sign in")
        await form.get_by_label("Email").fill(email)
        await form.get_by_label("Password").fill(password)
        await form.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    async def accessibility_violations(self) -> list[dict]:
        """What axe-core finds on the page as it is now (WCAG 2.2 A and AA, and axe's best practices)."""
        return await self.page.evaluate(
            """async (rules) => (await axe.run(document, { runOnly: { type: "tag", values: rules } })).violations
                .map((v) => ({ rule: v.id, help: v.help, where: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }))""",
            AXE_RULES,
        )

    async def screenshot(self, label: str) -> None:
        """Save the page for a person to look at; on the way, check every control is labelled for screen
        readers and axe-core finds nothing."""
        unlabelled = await self.page.evaluate(
            """() => [...document.querySelectorAll("input, select, textarea, button")]
                .filter((e) => !(e.labels?.length || e.getAttribute("aria-label")
                                 || (e.tagName === "BUTTON" && e.textContent.trim())))
                .map((e) => e.outerHTML)"""
        )
        assert not unlabelled, f"controls without a label on {label}: {unlabelled}"
        assert not (found := await self.accessibility_violations()), f"axe-core on {label}: {found}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=SCREENSHOTS / f"{self.name}-{label}.png", full_page=True)


@pytest.fixture
async def visitors(browser, system, request) -> AsyncIterator:
    made: list[Visitor] = []

    async def visitor(role: str, phone: bool = False) -> Visitor:
        viewport = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
        context = await browser.new_context(viewport=viewport, timezone_id="UTC", locale="en-US")
        await context.add_init_script(path=AXE)  # through the debugger, not the page: the page's CSP stays as served
        made.append(Visitor(context, await context.new_page(), system.public_url, f"{request.node.name}-{role}"))
        return made[-1]

    yield visitor
    for v in made:
        await v.context.close()
    assert not [e for v in made for e in v.errors], "the page threw: " + "; ".join(e for v in made for e in v.errors)


async def register_client(api: ApiClient, timezone: str = "UTC") -> tuple[str, str]:
    email, password = f"client-{uuid.uuid4().hex[:10]}@test.example", "client-password-1"
    body = {"email": email, "password": password, "name": f"Client {email[7:12]}", "timezone": timezone}
    await api.call("POST", "/auth/register", expect=201, json=body)
    return email, password


async def event_with_shift(api: ApiClient, system, *, hours: tuple[int, int], capacity: int, name: str = "Dr. Page"):
    """An event in New York from tomorrow, a professional, and one shift on the day after tomorrow."""
    admin = await sign_in_admin(api, system)
    tomorrow = datetime.now(EVENT_ZONE).date() + timedelta(days=1)
    event = await create_event(admin, timezone=EVENT_ZONE.key, start_date=tomorrow, end_date=tomorrow + timedelta(days=5))
    pro, professional = await create_professional(api, admin, name=name)
    day = tomorrow + timedelta(days=1)
    await add_shift(professional, event, local(day, hours[0], 0, EVENT_ZONE), local(day, hours[1], 0, EVENT_ZONE), capacity)
    await wait_for_availability(api, event["id"], day, lambda a: any(s["remaining"] for s in a["slots"]))
    return event, pro, day


async def choose_event(page: Page, view: str, event: dict) -> None:
    """With one event the page names it; with more it offers a choice."""
    await expect(page.locator("main")).to_have_attribute("data-page", view)
    events = page.get_by_label("Event", exact=True)
    if await events.count():
        await events.select_option(event["id"])
    else:
        await expect(page.locator("main")).to_contain_text(event["name"])


async def pick_day(page: Page, event: dict, day) -> None:
    await choose_event(page, "book", event)
    await click_day(page, day)
    await expect(page.locator(f'fieldset[data-date="{day.isoformat()}"]')).to_be_visible()
    await expect(page.get_by_role("group", name=re.compile(r"^Timeslots on"))).to_be_visible()


async def click_day(page: Page, day) -> None:
    """Pick ``day`` in the month grid, going month by month from where it opened."""
    month = page.locator(".month")
    await expect(month.locator("button.day").first).to_be_visible()
    button = month.locator(f'button[data-date="{day.isoformat()}"]')
    for _ in range(24):
        if await button.count():
            break
        await month.get_by_role("button", name="Next month").click()
    await button.click()


def slot(page: Page, label: str):
    return page.locator(".slots label").filter(has=page.locator(".slot-time", has_text=re.compile(f"^{re.escape(label)}$")))


async def test_client_registers_books_and_sees_it_in_my_appointments(api, system, visitors):
    event, pro, day = await event_with_shift(api, system, hours=(10, 12), capacity=2, name="Dr. Barbara McClintock")
    client = await visitors("client")
    page = await client.open("signin")
    email = f"new-{uuid.uuid4().hex[:10]}@test.example"
    register = page.get_by_role("form", name="New here? Create an account")
    await register.get_by_label("Name").fill("Nora Newcomer")
    await register.get_by_label("Email").fill(email)
    await register.get_by_label("Password").fill("a-long-password")
    await register.get_by_label("Timezone").fill("America/New_York")
    await client.screenshot("sign-in")
    await register.get_by_role("button", name="Create account").click()

    await expect(page.get_by_role("link", name="Book Appointment")).to_have_attribute("aria-current", "page")
    await pick_day(page, event, day)
    await expect(page.get_by_text("Times are shown in America/New_York")).to_be_visible()
    await expect(slot(page, "9:00 AM – 9:30 AM")).to_contain_text("Fully booked")  # no shift at nine
    await expect(slot(page, "10:30 AM – 11:00 AM")).to_contain_text("Available, 2 left")
    await client.screenshot("book")

    await slot(page, "10:30 AM – 11:00 AM").get_by_role("radio").check()
    review = page.get_by_role("region", name="Review and book")
    await expect(review).to_contain_text("10:30 AM – 11:00 AM (America/New_York)")
    await expect(review.get_by_label("Send the confirmation to")).to_have_value(email)
    await client.screenshot("review")
    await review.get_by_role("button", name="Book").click()

    confirmation = page.locator(".notice.success")
    await expect(confirmation).to_contain_text("with Dr. Barbara McClintock")
    await expect(slot(page, "10:30 AM – 11:00 AM")).to_contain_text("Available, 1 left")
    await client.screenshot("booked")

    await page.get_by_role("link", name="See My Appointments").click()
    upcoming = page.locator("#upcoming li")
    await expect(upcoming).to_have_count(1)
    await expect(upcoming).to_contain_text("10:30 AM – 11:00 AM")
    await expect(upcoming).to_contain_text("with Dr. Barbara McClintock")
    await client.screenshot("my-appointments")

    # Cancel asks once more, then the capacity is free again at once.
    await upcoming.get_by_role("button", name=re.compile("^Cancel appointment")).click()
    await upcoming.get_by_role("button", name="Yes, cancel it").click()
    await expect(page.locator(".notice.success")).to_contain_text("The timeslot is free again")
    await expect(page.locator("#upcoming li")).to_have_count(0)
    await expect(page.locator("#past li")).to_contain_text("cancelled")
    available = await wait_for_availability(api, event["id"], day, lambda a: True, tz=EVENT_ZONE.key)
    assert [s["remaining"] for s in available["slots"] if s["start"].startswith(f"{day}T10:30")] == [2]
    confirmation_mail = (await asyncio.to_thread(system.mail.wait_for, 1, to=email))[0]
    assert "Dr. Barbara McClintock" in confirmation_mail.get_body(("plain",)).get_content()


async def test_two_clients_race_for_the_last_unit_and_the_loser_is_told(api, system, visitors):
    event, _, day = await event_with_shift(api, system, hours=(14, 15), capacity=1)
    pages = []
    for name in ("first", "second"):
        visitor = await visitors(name)
        await visitor.sign_in(*await register_client(api, timezone=EVENT_ZONE.key))
        page = await visitor.open("book")
        await pick_day(page, event, day)
        await slot(page, "2:00 PM – 2:30 PM").get_by_role("radio").check()
        pages.append((visitor, page))

    book_buttons = [page.get_by_role("region", name="Review and book").get_by_role("button", name="Book") for _, page in pages]
    # Both click at once. The loser learns it from the 409, or, when the winner's booking reaches
    # its open page first, from the page itself (the review closes): its click then finds no button.
    clicked = await asyncio.gather(*(button.click(timeout=5000) for button in book_buttons), return_exceptions=True)
    assert sum(outcome is None for outcome in clicked) >= 1, clicked

    outcomes = []
    for visitor, page in pages:
        message = page.locator(".notice.success, .notice.error")
        await expect(message).to_be_visible()
        outcomes.append(await message.get_attribute("class"))
        await visitor.screenshot("after-race")
    assert sorted(outcomes) == ["notice error", "notice success"]
    loser = next(page for (_, page), outcome in zip(pages, outcomes, strict=True) if "error" in outcome)
    await expect(loser.get_by_role("alert")).to_contain_text("just booked by someone else")
    # The loser's slots were refreshed: the slot shows as taken and no review is left open.
    await expect(slot(loser, "2:00 PM – 2:30 PM")).to_contain_text("Fully booked")
    await expect(slot(loser, "2:00 PM – 2:30 PM").get_by_role("radio")).to_be_disabled()
    await expect(loser.get_by_role("region", name="Review and book")).to_be_hidden()


async def test_a_client_waits_for_a_full_slot_and_books_the_place_offered_and_a_mailed_link_books_without_signing_in(
    api, system, visitors
):
    event, _, day = await event_with_shift(api, system, hours=(14, 15), capacity=1)
    first = api.as_user(system.token_for(Role.CLIENT, name="First"))
    two = local(day, 14, 0, EVENT_ZONE)
    taken = await first.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": two.isoformat()})

    waiter = await visitors("waiter")
    await waiter.sign_in(*await register_client(api, timezone=EVENT_ZONE.key))
    page = await waiter.open("book")
    await pick_day(page, event, day)
    await expect(slot(page, "2:00 PM – 2:30 PM")).to_contain_text("Fully booked")
    await page.get_by_label("Fully booked at the time you want? Wait for a place").select_option(label="2:00 PM – 2:30 PM")
    await page.get_by_role("button", name="Join the waitlist").click()
    await expect(page.locator(".notice.success")).to_contain_text("You are number 1 on the waitlist")
    await waiter.screenshot("joined-waitlist")
    await page.get_by_role("link", name="See My Appointments").click()
    await expect(page.locator("#waitlist li")).to_contain_text("number 1 in line")

    await first.call("POST", f"/bookings/{taken['id']}/cancel")  # the place frees: held for the waiter
    await expect(page.locator("main")).to_have_attribute("data-page", "appointments")
    for _ in range(100):
        await page.reload()
        if await page.locator("#waitlist li", has_text="a place is held for you").count():
            break
        await asyncio.sleep(0.1)
    await waiter.screenshot("offered")
    await page.locator("#waitlist li").get_by_role("button", name="Book it").click()
    await expect(page.locator(".notice.success")).to_contain_text("Booked")
    await expect(page.locator("#upcoming li")).to_contain_text("2:00 PM – 2:30 PM")

    # Another full slot, a place offered by mail: the link books it in a browser nobody signed in on.
    half_past = local(day, 14, 30, EVENT_ZONE)
    held = await first.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": half_past.isoformat()})
    mailed = api.as_user(system.token_for(Role.CLIENT, name="Mailed"))
    body = {"event_id": event["id"], "start": half_past.isoformat(), "email": "mailed@test.example"}
    await mailed.call("POST", "/waitlist", expect=201, json=body)
    await first.call("POST", f"/bookings/{held['id']}/cancel")
    (offer,) = await asyncio.to_thread(system.mail.wait_for, 1, 10, "mailed@test.example", "A place is free for you")
    link = re.search(r"https?://\S+\?claim=\S+", offer.get_body(("plain",)).get_content()).group(0)
    stranger = await visitors("link")
    await stranger.page.goto(link)
    await expect(stranger.page.locator(".notice.success")).to_contain_text("Booked")
    await stranger.screenshot("claimed-by-link")
    assert "claim=" not in stranger.page.url  # the token does not stay in the address bar


async def test_a_client_moves_an_appointment_to_another_time_from_my_appointments(api, system, visitors):
    event, _, day = await event_with_shift(api, system, hours=(11, 13), capacity=1, name="Dr. Move")
    email, password = await register_client(api, timezone=EVENT_ZONE.key)
    me = await api.sign_in(email, password)
    eleven = local(day, 11, 0, EVENT_ZONE).isoformat()
    booking = await me.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": eleven})
    client = await visitors("mover")
    await client.sign_in(email, password)
    page = await client.open("appointments")
    upcoming = page.locator("#upcoming li")
    await expect(upcoming).to_contain_text("11:00 AM – 11:30 AM")
    await upcoming.get_by_role("button", name=re.compile("^Move appointment")).click()
    await upcoming.get_by_label("New time").select_option(label="12:30 PM – 1:00 PM")
    await client.screenshot("moving")
    await upcoming.get_by_role("button", name="Move here").click()
    await expect(page.locator(".notice.success")).to_contain_text("Moved your appointment")
    await expect(page.locator("#upcoming li")).to_contain_text("12:30 PM – 1:00 PM")
    assert (await me.call("GET", f"/bookings/{booking['id']}"))["start"] == local(day, 12, 30, EVENT_ZONE).isoformat()


async def test_the_month_grid_marks_the_days_with_room_and_opens_on_the_first_one(api, system, visitors):
    event, _, day = await event_with_shift(api, system, hours=(10, 12), capacity=1, name="Dr. Grid")
    client = await visitors("client", phone=True)
    await client.sign_in(*await register_client(api, timezone=EVENT_ZONE.key))
    page = await client.open("book")
    await choose_event(page, "book", event)
    # Nothing picked by hand: the page opens on the one day with room.
    await expect(page.locator(f'fieldset[data-date="{day.isoformat()}"]')).to_be_visible()
    chosen = page.locator(f'.month button[data-date="{day.isoformat()}"]')
    await expect(chosen).to_have_attribute("aria-pressed", "true")
    await expect(chosen).to_have_attribute("aria-label", re.compile(r", 4 free$"))
    assert await page.locator(".month button.day.free").evaluate_all("bs => bs.map(b => b.dataset.date)") == [day.isoformat()]
    await client.screenshot("month-grid")

    # The keyboard: Tab reaches the chosen day, the arrows move, Enter picks.
    await chosen.focus()
    following = day + timedelta(days=1)
    await page.keyboard.press("ArrowRight")
    assert await page.evaluate("() => document.activeElement.dataset.date") == following.isoformat()
    await page.keyboard.press("Enter")
    await expect(page.locator(f'fieldset[data-date="{following.isoformat()}"]')).to_be_visible()
    await expect(page.locator("#no-slots-reason")).to_contain_text("No professional has a shift on this date yet")
    await page.keyboard.press("ArrowLeft")
    await page.keyboard.press("Space")
    await expect(page.locator(f'fieldset[data-date="{day.isoformat()}"]')).to_be_visible()


async def test_a_slot_another_client_takes_turns_fully_booked_on_an_open_page(api, system, visitors):
    event, _, day = await event_with_shift(api, system, hours=(16, 17), capacity=1, name="Dr. Live")
    client = await visitors("client")
    await client.sign_in(*await register_client(api, timezone=EVENT_ZONE.key))
    page = await client.open("book")
    await pick_day(page, event, day)
    await expect(slot(page, "4:00 PM – 4:30 PM")).to_contain_text("Available, 1 left")
    await slot(page, "4:30 PM – 5:00 PM").get_by_role("radio").check()  # about to book this one
    await expect(page.get_by_role("region", name="Review and book")).to_be_visible()

    other = api.as_user(system.token_for(Role.CLIENT, name="Quicker"))
    for start in (local(day, 16, 0, EVENT_ZONE), local(day, 16, 30, EVENT_ZONE)):
        await other.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": start.isoformat()})
    # No reload, no click: the open page follows the day.
    await expect(slot(page, "4:00 PM – 4:30 PM")).to_contain_text("Fully booked", timeout=1000)
    await expect(slot(page, "4:30 PM – 5:00 PM")).to_contain_text("Fully booked", timeout=1000)
    await expect(page.get_by_role("region", name="Review and book")).to_be_hidden()
    await expect(page.get_by_role("alert")).to_contain_text("just booked by someone else")
    await client.screenshot("taken-while-open")


async def test_a_client_subscribes_their_calendar_to_their_appointments(api, system, visitors):
    event, _, day = await event_with_shift(api, system, hours=(9, 10), capacity=1, name="Dr. Calendar")
    email, password = await register_client(api, timezone=EVENT_ZONE.key)
    me = await api.sign_in(email, password)
    nine = local(day, 9, 0, EVENT_ZONE)
    booking = await me.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": nine.isoformat()})
    client = await visitors("subscriber", phone=True)
    await client.sign_in(email, password)
    page = await client.open("settings")
    await page.get_by_role("button", name="Make a calendar link").click()
    link = page.get_by_label("Your private calendar link")
    await expect(link).to_be_focused()
    url = await link.input_value()
    await client.screenshot("calendar-link")
    async with api.http.get(url) as response:  # as a calendar application fetches it: no sign-in
        assert response.status == 200 and response.content_type == "text/calendar"
        (entry,) = Calendar.from_ical(await response.read()).walk("VEVENT")
    assert str(entry["uid"]).startswith(booking["id"]) and entry.decoded("dtstart") == nine
    assert str(entry["summary"]).endswith("appointment with Dr. Calendar")

    await page.get_by_role("button", name="Stop my calendar link").click()
    await expect(page.locator(".notice.success")).to_contain_text("no longer works")
    async with api.http.get(url) as response:
        assert response.status == 404


@pytest.mark.parametrize("phone", [True, False], ids=["390px", "1280px"])
async def test_every_page_passes_axe_core_at_phone_and_desktop_width(api, system, visitors, phone):
    event, pro, day = await event_with_shift(api, system, hours=(10, 11), capacity=1, name="Dr. Axe")
    email, password = await register_client(api, timezone=EVENT_ZONE.key)
    me = await api.sign_in(email, password)
    await me.call(
        "POST", "/bookings", expect=201, json={"event_id": event["id"], "start": local(day, 10, 0, EVENT_ZONE).isoformat()}
    )
    pro_email, pro_password = f"pro-{uuid.uuid4().hex[:10]}@test.example", "pro-password-1"
    admin_api = await sign_in_admin(api, system)
    await admin_api.call(
        "POST", "/professionals", expect=201,
        json={"email": pro_email, "password": pro_password, "name": "Dr. Axe Two", "timezone": EVENT_ZONE.key},
    )  # fmt: skip
    people = {
        "visitor": (None, ["signin"]),
        "client": ((email, password), ["book", "appointments", "settings"]),
        "professional": ((pro_email, pro_password), ["shifts", "appointments", "settings"]),
        "admin": (
            (system.settings.admin_email, system.settings.admin_password.get_secret_value()),
            ["events", "professionals", "shifts", "appointments", "settings"],
        ),
    }
    found = {}
    for role, (credentials, views) in people.items():
        visitor = await visitors(role, phone=phone)
        if credentials:
            await visitor.sign_in(*credentials)
        for view in views:
            page = await visitor.open(view)
            await expect(page.locator("main h1")).to_be_visible()
            await page.wait_for_load_state("networkidle")
            if view == "book":
                await expect(page.locator("fieldset[data-date]")).to_be_visible()
            if violations := await visitor.accessibility_violations():
                found[f"{role}/{view}"] = violations
    assert not found, found


async def test_a_slow_answer_for_an_earlier_day_does_not_replace_the_day_picked_since(api, system, visitors):
    """A client picks a day, then another before the first day's slots arrive: the page shows the
    second day's, whichever answer comes last."""
    event, _, day = await event_with_shift(api, system, hours=(10, 11), capacity=1, name="Dr. Slow")
    first_pick = day - timedelta(days=1)
    client = await visitors("client")
    await client.sign_in(*await register_client(api, timezone=EVENT_ZONE.key))
    page = await client.open("book")
    await choose_event(page, "book", event)
    held_back: list[str] = []

    async def first_pick_late(route) -> None:
        if f"date={first_pick.isoformat()}" in route.request.url:
            held_back.append(route.request.url)
            await asyncio.sleep(1.5)
        await route.continue_()

    await page.route(re.compile(r"/api/v1/availability\?"), first_pick_late)
    await click_day(page, first_pick)
    await click_day(page, day)
    await expect(page.locator(f'fieldset[data-date="{day.isoformat()}"]')).to_be_visible()
    await asyncio.sleep(2)  # the first pick's answer has arrived
    assert held_back, "the first pick's answer was not held back"
    await expect(page.locator("fieldset[data-date]")).to_have_attribute("data-date", day.isoformat())
    await expect(slot(page, "10:00 AM – 10:30 AM").get_by_role("radio")).to_be_enabled()


async def test_a_client_books_with_the_keyboard_alone(api, system, visitors):
    event, _, day = await event_with_shift(api, system, hours=(15, 16), capacity=1, name="Dr. Keys")
    client = await visitors("client")
    await client.sign_in(*await register_client(api, timezone=EVENT_ZONE.key))
    page = await client.open("book")
    await pick_day(page, event, day)

    async def tab_to(test: str) -> None:
        for _ in range(8):
            await page.keyboard.press("Tab")
            if await page.evaluate(f"() => {{ const e = document.activeElement; return {test}; }}"):
                return
        raise AssertionError(f"Tab never reached {test}")

    await tab_to("e.type === 'radio'")  # the first bookable slot
    await page.keyboard.press("Space")
    await expect(page.get_by_role("region", name="Review and book")).to_contain_text("3:00 PM – 3:30 PM")
    await tab_to("e.tagName === 'BUTTON' && e.textContent === 'Book'")
    await page.keyboard.press("Enter")
    await expect(page.locator(".notice.success")).to_contain_text("with Dr. Keys")
    assert await page.evaluate("() => document.activeElement.textContent") == "See My Appointments"
    await page.keyboard.press("Enter")
    await expect(page.locator("#upcoming li")).to_contain_text("3:00 PM – 3:30 PM")


async def test_changing_the_timezone_moves_the_slot_times(api, system, visitors):
    event, _, day = await event_with_shift(api, system, hours=(9, 10), capacity=1)
    client = await visitors("client")
    await client.sign_in(*await register_client(api, timezone="UTC"))
    page = await client.open("book")
    await pick_day(page, event, day)
    offset = local(day, 9, 0, EVENT_ZONE).utcoffset()
    utc_nine = (datetime(2000, 1, 1, 9) - offset).strftime("%-I:%M %p")  # 9:00 in New York, on a UTC clock
    await expect(page.get_by_text("Times are shown in UTC")).to_be_visible()
    utc_range = f"{utc_nine} – {utc_nine.replace(':00', ':30')}"
    await expect(slot(page, utc_range)).to_contain_text("Available, 1 left")
    await expect(page.locator(".slot-time").first).to_have_text(utc_range)  # the day opens at nine, New York time
    await client.screenshot("book-utc")

    await page.get_by_role("link", name="Change timezone").click()
    await page.get_by_label("Timezone").fill("America/New_York")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".notice.success")).to_contain_text("Times are now shown in America/New_York")
    await client.screenshot("settings")

    await page.get_by_role("link", name="Book Appointment").click()
    await pick_day(page, event, day)
    await expect(page.get_by_text("Times are shown in America/New_York")).to_be_visible()
    await expect(slot(page, "9:00 AM – 9:30 AM")).to_contain_text("Available, 1 left")
    await expect(page.locator(".slot-time").first).to_have_text("9:00 AM – 9:30 AM")
    await expect(slot(page, utc_range)).to_contain_text("Fully booked")  # now that is 2 PM in New York: no shift
    await client.screenshot("book-new-york")


async def test_a_professional_adds_a_shift_and_a_client_sees_the_slots(api, system, visitors):
    admin = await sign_in_admin(api, system)
    tomorrow = datetime.now(EVENT_ZONE).date() + timedelta(days=1)
    event = await create_event(admin, timezone=EVENT_ZONE.key, start_date=tomorrow, end_date=tomorrow + timedelta(days=3))
    email, password = f"pro-{uuid.uuid4().hex[:10]}@test.example", "pro-password-1"
    body = {"email": email, "password": password, "name": "Dr. Chien-Shiung Wu", "timezone": EVENT_ZONE.key}
    await admin.call("POST", "/professionals", expect=201, json=body)
    day = tomorrow + timedelta(days=1)

    client = await visitors("client", phone=True)
    await client.sign_in(*await register_client(api, timezone=EVENT_ZONE.key))
    client_page = await client.open("book")
    await pick_day(client_page, event, day)
    await expect(client_page.locator("#no-slots-reason")).to_contain_text("No professional has a shift on this date yet")
    await client.screenshot("no-shifts")
    before = client_page.locator(f'.month button[data-date="{(tomorrow - timedelta(days=1)).isoformat()}"]')
    if await before.count():  # the day before the event, when it is in the month shown: not to be picked
        await expect(before).to_be_disabled()
        await expect(before).to_have_attribute("aria-label", re.compile("not part of the event$"))

    professional = await visitors("professional")
    await professional.sign_in(email, password)
    page = await professional.open("shifts")
    await choose_event(page, "shifts", event)
    form = page.get_by_role("form", name="Add a shift")
    await form.get_by_label("Date", exact=True).fill(day.isoformat())
    await form.get_by_label("From", exact=True).fill("13:00")
    await form.get_by_label("To", exact=True).fill("15:00")
    await form.get_by_label("Clients per slot").fill("2")
    await form.get_by_role("button", name="Add shift").click()
    await expect(page.locator(".notice.success")).to_contain_text("Added the shift")
    await expect(page.locator("#shifts li")).to_contain_text("1:00 PM – 3:00 PM")
    await professional.screenshot("shifts")

    # The shift travels through RabbitMQ to availability; the client's refresh shows it.
    await wait_for_availability(api, event["id"], day, lambda a: any(s["remaining"] for s in a["slots"]))
    await client_page.reload()
    await pick_day(client_page, event, day)
    await expect(slot(client_page, "1:00 PM – 1:30 PM")).to_contain_text("Available, 2 left")
    await expect(slot(client_page, "2:30 PM – 3:00 PM")).to_contain_text("Available, 2 left")
    await expect(client_page.locator("#no-slots-reason")).to_have_count(0)
    await client.screenshot("slots-after-shift")

    # Changing and cancelling the shift are on the same page.
    shift = page.locator("#shifts li").first
    await shift.get_by_role("button", name=re.compile("^Change shift")).click()
    change = page.get_by_role("form", name="Change shift")
    await change.get_by_label("To", exact=True).fill("14:00")
    await change.get_by_role("button", name="Save shift").click()
    await expect(page.locator("#shifts li").first).to_contain_text("1:00 PM – 2:00 PM")
    await page.locator("#shifts li").first.get_by_role("button", name=re.compile("^Cancel shift")).click()
    await page.get_by_role("button", name="Yes, cancel the shift").click()
    await expect(page.locator("#shifts li").first).to_contain_text("cancelled")
    await professional.screenshot("shift-cancelled")


async def test_an_admin_sees_how_evenly_bookings_went_to_each_professional_and_day(api, system, visitors):
    event, first_pro, day = await event_with_shift(api, system, hours=(10, 11), capacity=1, name="Dr. Even")
    api_admin = await sign_in_admin(api, system)
    second_pro, _ = await create_professional(api, api_admin, name="Dr. Odd")
    await add_shift(api_admin, event, local(day, 10, 0, EVENT_ZONE), local(day, 11, 0, EVENT_ZONE), 1, professional=second_pro)
    await wait_for_availability(api, event["id"], day, lambda a: a["slots"][2]["remaining"] == 2, tz=EVENT_ZONE.key)
    for start in (local(day, 10, 0, EVENT_ZONE), local(day, 10, 0, EVENT_ZONE), local(day, 10, 30, EVENT_ZONE)):
        client = api.as_user(system.token_for(Role.CLIENT))
        await client.call("POST", "/bookings", expect=201, json={"event_id": event["id"], "start": start.isoformat()})
    admin = await visitors("admin")
    await admin.sign_in(system.settings.admin_email, system.settings.admin_password.get_secret_value())
    page = await admin.open("appointments")
    fairness = page.get_by_role("region", name="Fairness")
    await fairness.get_by_label("Event", exact=True).select_option(event["id"])
    table = fairness.locator("table.fairness")
    await expect(table.locator("caption")).to_contain_text("1.5 per professional on average")
    rows = {
        (await row.locator("th").inner_text()): [await cell.inner_text() for cell in await row.locator("td").all()]
        for row in await table.locator("tbody tr").all()
    }
    assert sorted(rows.values()) == [["1", "1"], ["2", "2"]] and set(rows) == {"Dr. Even", "Dr. Odd"}
    await admin.screenshot("fairness")


async def test_an_admin_sets_up_an_event_with_a_blackout_and_a_professional(api, system, visitors):
    admin = await visitors("admin")
    await admin.sign_in(system.settings.admin_email, system.settings.admin_password.get_secret_value())
    page = await admin.open("events")
    name = f"Page clinic {uuid.uuid4().hex[:6]}"
    first = datetime.now(EVENT_ZONE).date() + timedelta(days=1)
    create = page.get_by_role("form", name="Create an event")
    await create.get_by_label("Name").fill(name)
    await create.get_by_label("Timezone").fill(EVENT_ZONE.key)
    await create.get_by_label("First day").fill(first.isoformat())
    await create.get_by_label("Last day").fill((first + timedelta(days=2)).isoformat())
    await create.get_by_role("button", name="Create event").click()
    await expect(page.locator(".notice.success")).to_contain_text(f"Created {name}")

    card = page.get_by_role("region", name=name)
    blackout = card.get_by_role("form", name=f"Add a blackout to {name}")
    await blackout.get_by_label("Reason").fill("Lunch break")
    await blackout.get_by_role("button", name="Add blackout").click()
    await expect(page.get_by_role("region", name=name)).to_contain_text("Every day 12:00–13:00 (Lunch break)")
    await admin.screenshot("events")

    page = await admin.open("professionals")
    create = page.get_by_role("form", name="Add a professional")
    pro_email = f"pro-{uuid.uuid4().hex[:10]}@test.example"
    await create.get_by_label("Name").fill("Dr. Lise Meitner")
    await create.get_by_label("Email").fill(pro_email)
    await create.get_by_label("First password").fill("pro-password-1")
    await create.get_by_label("Timezone").fill("Europe/Vienna")
    await create.get_by_role("button", name="Add professional").click()
    await expect(page.locator(".notice.success")).to_contain_text("Added Dr. Lise Meitner")
    await expect(page.get_by_role("region", name="All professionals")).to_contain_text(pro_email)
    await admin.screenshot("professionals")

    # What the page made is what the API serves.
    api_admin = await sign_in_admin(api, system)
    events = (await api_admin.call("GET", "/events", params={"limit": "200"}))["items"]
    made = next(e for e in events if e["name"] == name)
    assert (made["timezone"], made["opens_at"], made["slot_minutes"]) == (EVENT_ZONE.key, "09:00", 30)
    assert [(b["start_time"], b["end_time"], b["reason"]) for b in made["blackouts"]] == [("12:00", "13:00", "Lunch break")]
    await api.sign_in(pro_email, "pro-password-1")


@pytest.mark.fault
async def test_a_service_that_is_down_is_explained_on_the_page(api, system, visitors):
    """The gateway's 503 reaches the person as words, not as a hung or blank page; the page recovers after."""
    event, _, day = await event_with_shift(api, system, hours=(11, 12), capacity=1)
    client = await visitors("client")
    await client.sign_in(*await register_client(api, timezone=EVENT_ZONE.key))
    page = await client.open("book")
    await pick_day(page, event, day)
    await system.stack.kill("availability")
    try:
        await click_day(page, day + timedelta(days=1))
        await expect(page.get_by_role("alert")).to_contain_text("The availability service is not answering")
        await client.screenshot("service-unavailable")
    finally:
        await system.stack.restart("availability")
    await click_day(page, day)
    await expect(slot(page, "11:00 AM – 11:30 AM")).to_contain_text("Available, 1 left")


async def test_the_page_is_served_with_a_strict_content_security_policy(api, system):
    async with api.http.get(f"{system.public_url}/") as response:
        assert response.status == 200 and response.content_type == "text/html"
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert '<script type="module" src="/static/app.js">' in await response.text()
    async with api.http.get(f"{system.public_url}/static/app.js") as response:
        assert response.status == 200 and response.content_type in ("application/javascript", "text/javascript")
