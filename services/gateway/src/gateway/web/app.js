// The booking page: one small module per concern, no build step. Every action is a call to /api/v1.
import { all, call, explain, session } from "./api.js";
import { fill, h } from "./dom.js";
import { monthPicker } from "./month.js";
import * as time from "./time.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");

const PAGES = {
  client: [["book", "Book Appointment"], ["appointments", "My Appointments"], ["settings", "Settings"]],
  professional: [["shifts", "My Shifts"], ["appointments", "My Appointments"], ["settings", "Settings"]],
  admin: [["events", "Events"], ["professionals", "Professionals"], ["shifts", "Shifts"], ["appointments", "Appointments"],
    ["settings", "Settings"]],
};

const REASONS = {
  no_event: (event) => `There is no event on this date. ${event.name} runs from ${time.formatDate(event.start_date)} to ${time.formatDate(event.end_date)}.`,
  no_shifts: () => "No professional has a shift on this date yet. Please check back later or pick another date.",
  fully_booked: () => "Every timeslot on this date is booked. Please pick another date.",
  blackout: () => "This date is blacked out: no appointments can be booked on it.",
  started: () => "Every timeslot left on this date has already started. Please pick a later date.",
  too_soon: () => "The timeslots left on this date start too soon to be booked. Please pick a later date.",
  too_far: () => "This date is too far ahead to be booked yet. Please pick an earlier date.",
};

const TAKEN = "Sorry, that timeslot was just booked by someone else. Please pick another one: the list is up to date.";

const SLOT_STATUS = {
  available: (s) => `Available, ${s.remaining} left`, full: () => "Fully booked", blocked: () => "Not bookable", started: () => "Already started",
};

// ---- small DOM helpers -------------------------------------------------------------------------

let fieldCount = 0;

/** A labelled control, with an optional hint that screen readers read with it. */
function field(label, control, hint) {
  control.id ||= `field-${++fieldCount}`;
  const hintEl = hint && h("p", { class: "hint", id: `${control.id}-hint` }, hint);
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", {}, h("label", { for: control.id }, label), control, hintEl);
}

const options = (pairs, selected) => pairs.map(([value, text]) => h("option", { value, selected: value === selected }, text));

function zoneInput(value) {
  const list = h("datalist", { id: `zones-${++fieldCount}` }, options(["UTC", ...time.zoneNames()].map((z) => [z, z])));
  return [h("input", { list: list.id, value, required: true, autocomplete: "off", spellcheck: "false" }), list];
}

// A message area; a message kept for the next page survives one render (after a save that redraws).
let flash = null;

function notice() {
  const box = h("div", { class: "notice", "aria-live": "polite" });
  if (flash) show(box, flash.kind, flash.text);
  flash = null;
  return box;
}

function show(box, kind, ...content) {
  box.className = `notice ${kind}`;
  box.replaceChildren(h("p", { role: kind === "error" ? "alert" : null, style: "margin:0" }, ...content));
}

function fail(box, error) {
  if (error.status === 401 && session.token) return signOut("Your session has ended. Please sign in again.");
  show(box, "error", explain(error));
}

/** Run a form's action with its buttons disabled; failures go to `box`. */
function onSubmit(form, box, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = [...form.querySelectorAll("button")];
    buttons.forEach((b) => (b.disabled = true));
    box.replaceChildren();
    try {
      await action();
    } catch (error) {
      fail(box, error);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
}

/** A button that asks once more before doing something that cannot be undone. */
function confirmButton(label, question, accessibleName, action) {
  const wrap = h("div", { class: "actions" });
  const ask = h("button", { type: "button", class: "danger", "aria-label": accessibleName }, label);
  ask.onclick = () => {
    const yes = h("button", { type: "button", class: "danger" }, question);
    const no = h("button", { type: "button" }, "Keep it");
    yes.onclick = async () => {
      yes.disabled = no.disabled = true;
      await action();
    };
    no.onclick = () => {
      wrap.replaceChildren(ask);
      ask.focus();
    };
    wrap.replaceChildren(yes, no);
    yes.focus();
  };
  wrap.append(ask);
  return wrap;
}

function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function eventPicker(events) {
  const select = h("select", {}, options(events.map((e) => [e.id, `${e.name} (${time.formatDate(e.start_date)} – ${time.formatDate(e.end_date)})`])));
  return { select, current: () => events.find((e) => e.id === select.value) };
}

const zoneHint = (zone) => h("p", { class: "hint" }, "Times are shown in ", h("strong", {}, zone), ". ", h("a", { href: "#/settings" }, "Change timezone"));

// ---- pages ---------------------------------------------------------------------------------------

async function signIn(root) {
  root.append(h("h1", { tabindex: -1 }, "Sign in"));
  const box = notice();
  const email = h("input", { type: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "card", "aria-label": "Sign in" }, field("Email", email), field("Password", password),
    h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, "Sign in")));
  onSubmit(form, box, async () => {
    const token = await call("POST", "/auth/login", { body: { email: email.value, password: password.value } });
    session.token = token.access_token;
    session.profile = null;
    go("");
  });

  const name = h("input", { autocomplete: "name", required: true, maxlength: 200 });
  const newEmail = h("input", { type: "email", autocomplete: "email", required: true });
  const newPassword = h("input", { type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const [zone, zones] = zoneInput(time.browserZone());
  const register = h("form", { class: "card", "aria-labelledby": "register-title" },
    h("h2", { id: "register-title" }, "New here? Create an account"),
    field("Name", name), field("Email", newEmail), field("Password", newPassword, "At least 8 characters."),
    field("Timezone", zone, "Appointment times are shown in this zone."), zones,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create account")));
  onSubmit(register, box, async () => {
    const body = { name: name.value, email: newEmail.value, password: newPassword.value, timezone: zone.value };
    await call("POST", "/auth/register", { body });
    const token = await call("POST", "/auth/login", { body: { email: body.email, password: body.password } });
    session.token = token.access_token;
    session.profile = null;
    go("");
  });
  root.append(box, form, register);
}

async function book(root) {
  const zone = session.profile.timezone;
  root.append(h("h1", { tabindex: -1 }, "Book Appointment"));
  const box = notice();
  root.append(box);
  const events = await all("/events");
  if (!events.length) return root.append(h("p", {}, "No events are open for booking yet. Please check back later."));

  const picker = eventPicker(events);
  const calendarArea = h("div", {});
  const slotsArea = h("div", {});
  const summary = h("p", { class: "hint", role: "status" });
  const review = h("section", { hidden: true, "aria-labelledby": "review-title" });
  let key = null;
  let day = null; // the day picked
  let chosen = null; // the slot picked, while its review is open
  let drawn = null; // the answer on screen, as JSON (the stream's first event repeats what was just fetched)
  let submitting = false; // a booking of the chosen slot is on its way: the stream may show it taken before it answers
  let latest = 0; // the last load asked for: an answer to an earlier pick that arrives after it is dropped

  let calendars = 0; // the grid on screen: a grid replaced since (another event, the same one again) is ignored
  async function openCalendar() {
    const event = picker.current();
    const mine = ++calendars;
    const calendar = monthPicker({
      event, zone,
      onPick: (date) => { if (mine === calendars) { day = date; box.replaceChildren(); loadSlots(); } },
      onError: (error) => { if (mine === calendars) fail(box, error); },
      load: (month) => call("GET", "/availability/month", { query: { event_id: event.id, month, tz: zone } }),
    });
    calendarArea.replaceChildren(calendar.element);
    await calendar.open();
  }

  async function loadSlots() {
    const load = ++latest;
    review.hidden = true;
    chosen = null;
    closeStream();
    if (!day) return;
    summary.textContent = "Loading timeslots…";
    try {
      const query = { event_id: picker.select.value, date: day, tz: zone };
      const availability = await call("GET", "/availability", { query });
      if (load !== latest) return;
      drawSlots(availability);
      follow(query, load);
    } catch (error) {
      if (load !== latest) return;
      slotsArea.replaceChildren();
      summary.textContent = "";
      fail(box, error);
    }
  }

  // The open day follows its stream: a slot another client takes turns "Fully booked" on its own.
  let stream = null;
  function closeStream() {
    stream?.close();
    stream = null;
  }
  leaving.push(closeStream);
  function follow(query, load) {
    stream = new EventSource(`/api/v1/availability/stream?${new URLSearchParams(query)}`);
    stream.addEventListener("availability", (message) => {
      if (load !== latest || message.data === drawn) return;
      drawSlots(JSON.parse(message.data));
    });
  }

  function drawSlots(availability) {
    drawn = JSON.stringify(availability);
    const now = Date.now(); // a slot that has begun can no longer be booked
    const slots = availability.slots.map((s) => (s.status === "available" && Date.parse(s.start) <= now ? { ...s, status: "started" } : s));
    const open = slots.filter((s) => s.status === "available").length;
    const reason = availability.reason ?? (slots.length && !open ? "started" : null);
    summary.textContent = slots.length ? `${open} of ${slots.length} timeslots available on ${time.formatDate(availability.date)}.` : "";
    if (chosen && !submitting && !slots.some((s) => s.start === chosen && s.status === "available")) {
      review.hidden = true;
      chosen = null;
      show(box, "error", TAKEN);
    }
    const list = h("ul", { class: "slots" }, slots.map((slot) => {
      const radio = h("input", { type: "radio", name: "slot", value: slot.start, disabled: slot.status !== "available",
        checked: slot.start === chosen });
      radio.onchange = () => choose(slot);
      return h("li", {}, h("label", { class: slot.status, "data-start": slot.start },
        radio, h("span", { class: "slot-time" }, time.formatRange(slot.start, slot.end, zone)),
        h("span", { class: "slot-status" }, SLOT_STATUS[slot.status](slot))));
    }));
    // One control for every full slot, after the list: the slots stay one stop for the keyboard.
    const full = slots.filter((s) => s.status === "full");
    let waitlist = null;
    if (full.length && session.profile.role === "client") {
      const which = h("select", {}, full.map((s) => h("option", { value: s.start }, time.formatRange(s.start, s.end, zone))));
      const join = h("button", { type: "button" }, "Join the waitlist");
      join.onclick = () => joinWaitlist(full.find((s) => s.start === which.value));
      waitlist = h("div", { class: "waitlist" }, field("Fully booked at the time you want? Wait for a place", which), join);
    }
    const focused = slotsArea.contains(document.activeElement) ? document.activeElement.value : null;
    slotsArea.replaceChildren(h("fieldset", { "data-date": availability.date },
      h("legend", {}, `Timeslots on ${time.formatDate(availability.date)}`),
      reason && h("p", { class: "notice info", id: "no-slots-reason", "data-reason": reason }, REASONS[reason](picker.current())),
      slots.length ? list : null, waitlist));
    if (focused) slotsArea.querySelector(`input[value="${focused}"]:not(:disabled)`)?.focus(); // a redraw keeps the keyboard's place
  }

  async function joinWaitlist(slot) {
    const when = `${time.formatDay(slot.start, zone)}, ${time.formatRange(slot.start, slot.end, zone)}`;
    try {
      const entry = await call("POST", "/waitlist", {
        body: { event_id: picker.select.value, start: slot.start, email: session.profile.email || undefined },
      });
      show(box, "success", `You are number ${entry.position} on the waitlist for ${when}. When a place frees, it is held for `
        + "you and we mail you a link to book it. ", h("a", { href: "#/appointments" }, "See My Appointments"));
    } catch (error) {
      if (error.code !== "slot_available") return fail(box, error);
      show(box, "info", "A place just freed up at that time: you can book it now.");
      await loadSlots();
    }
  }

  function choose(slot) {
    const event = picker.current();
    chosen = slot.start;
    key = idempotencyKey(); // one key per choice: a double click or a retry books once
    const email = h("input", { type: "email", autocomplete: "email", value: session.profile.email });
    const bookButton = h("button", { type: "submit", class: "primary" }, "Book");
    const form = h("form", {}, h("dl", { class: "details" },
      h("dt", {}, "Event"), h("dd", {}, event.name),
      h("dt", {}, "Date"), h("dd", {}, time.formatDay(slot.start, zone)),
      h("dt", {}, "Time"), h("dd", {}, `${time.formatRange(slot.start, slot.end, zone)} (${zone})`)),
      field("Send the confirmation to", email, "Optional: leave it empty for no email."),
      h("div", { class: "actions" }, bookButton));
    onSubmit(form, box, async () => {
      submitting = true;
      try {
        const booking = await call("POST", "/bookings", {
          body: { event_id: event.id, start: slot.start, email: email.value || undefined },
          headers: { "Idempotency-Key": key },
        });
        show(box, "success", `Booked: ${time.formatDay(booking.start, zone)}, ${time.formatRange(booking.start, booking.end, zone)} `
          + `(${zone}) with ${booking.professional.name}. `, h("a", { href: "#/appointments" }, "See My Appointments"));
        box.querySelector("a").focus();
      } catch (error) {
        if (error.code !== "slot_unavailable") throw error;
        show(box, "error", TAKEN);
      } finally {
        submitting = false;
      }
      await loadSlots();
    });
    review.replaceChildren(h("h2", { id: "review-title" }, "Review and book"), form);
    review.hidden = false;
  }

  picker.select.onchange = () => { box.replaceChildren(); openCalendar(); };
  root.append(h("section", { "aria-label": "Choose a date" },
    events.length > 1 ? field("Event", picker.select) : h("p", {}, h("strong", {}, picker.current().name)),
    calendarArea, zoneHint(zone)), h("section", { "aria-label": "Timeslots" }, summary, slotsArea), review);
  await openCalendar();
}

async function appointments(root) {
  const { role, timezone: zone } = session.profile;
  root.append(h("h1", { tabindex: -1 }, role === "admin" ? "Appointments" : "My Appointments"));
  const box = notice();
  root.append(box, zoneHint(zone));
  const bookings = await all("/bookings");
  const now = Date.now();
  const upcoming = bookings.filter((b) => b.status !== "cancelled" && Date.parse(b.end) > now);
  const past = bookings.filter((b) => !upcoming.includes(b)).reverse();

  // Move an appointment: a date, that day's open times, one click; the old time is given up only
  // when the new one is had (one atomic step on the server).
  const moveControl = (b, when) => {
    const wrap = h("div", { class: "actions" });
    const start = h("button", { type: "button", "aria-label": `Move appointment on ${when}` }, "Move");
    start.onclick = () => {
      const day = h("input", { type: "date", value: time.wallClock(b.start, zone).date });
      const times = h("select", {});
      const move = h("button", { type: "button", class: "primary" }, "Move here");
      const key = idempotencyKey(); // a retried move moves once
      const load = async () => {
        try {
          const answer = await call("GET", "/availability", { query: { event_id: b.event_id, date: day.value, tz: zone } });
          const open = answer.slots.filter((s) => s.status === "available" && s.start !== b.start);
          times.replaceChildren(...open.map((s) => h("option", { value: s.start }, time.formatRange(s.start, s.end, zone))));
          move.disabled = !open.length;
        } catch (error) {
          fail(box, error);
        }
      };
      day.onchange = load;
      move.onclick = async () => {
        move.disabled = true;
        try {
          const moved = await call("POST", `/bookings/${b.id}/reschedule`, {
            body: { start: times.value }, headers: { "Idempotency-Key": key },
          });
          flash = { kind: "success",
            text: `Moved your appointment to ${time.formatDay(moved.start, zone)}, ${time.formatRange(moved.start, moved.end, zone)}.` };
          render();
        } catch (error) {
          if (error.code !== "slot_unavailable") return fail(box, error);
          show(box, "error", "That time was just taken. Please pick another one: the list is up to date.");
          await load();
        }
      };
      wrap.replaceChildren(field("New date", day), field("New time", times), move);
      load();
      day.focus();
    };
    wrap.append(start);
    return wrap;
  };

  const item = (b, canCancel) => {
    const when = `${time.formatDay(b.start, zone)}, ${time.formatRange(b.start, b.end, zone)}`;
    const who = role === "client" ? `with ${b.professional.name}`
      : role === "professional" ? `client: ${b.client?.name ?? "—"}`
      : `client: ${b.client?.name ?? "—"}, professional: ${b.professional.name}`;
    return h("li", { "data-booking": b.id },
      h("div", { class: "what" }, h("strong", {}, when), h("br"), `${b.event_name}, ${who} `,
        h("span", { class: `badge ${b.status}` }, b.status.replace("_", " "))),
      canCancel && moveControl(b, when),
      canCancel && confirmButton("Cancel appointment", "Yes, cancel it", `Cancel appointment on ${when}`, async () => {
        try {
          await call("POST", `/bookings/${b.id}/cancel`);
          flash = { kind: "success", text: `Cancelled your appointment on ${when}. The timeslot is free again.` };
          render();
        } catch (error) {
          fail(box, error);
        }
      }));
  };
  const mayCancel = role !== "professional";
  const waiting = role === "client" ? await call("GET", "/waitlist") : { items: [] };
  const place = (entry) => {
    const when = `${time.formatDay(entry.start, zone)}, ${time.formatRange(entry.start, entry.end, zone)}`;
    const state = entry.status === "waiting" ? `number ${entry.position ?? "?"} in line`
      : entry.status === "offered" ? `a place is held for you until ${time.formatTime(entry.offer_expires_at, zone)}`
      : entry.status;
    const claim = entry.status === "offered" ? h("button", { type: "button", class: "primary" }, "Book it") : null;
    if (claim) claim.onclick = async () => {
      try {
        await call("POST", `/waitlist/${entry.id}/claim`, { body: {} });
        flash = { kind: "success", text: `Booked: ${when}.` };
        render();
      } catch (error) {
        fail(box, error);
      }
    };
    const active = entry.status === "waiting" || entry.status === "offered";
    return h("li", { "data-waitlist": entry.id },
      h("div", { class: "what" }, h("strong", {}, when), h("br"), `${entry.event_name}: ${state} `,
        h("span", { class: `badge ${entry.status}` }, entry.status)),
      claim,
      active && confirmButton("Leave the waitlist", "Yes, leave it", `Leave the waitlist for ${when}`, async () => {
        try {
          await call("DELETE", `/waitlist/${entry.id}`);
          flash = { kind: "success", text: `You left the waitlist for ${when}.` };
          render();
        } catch (error) {
          fail(box, error);
        }
      }));
  };
  const places = waiting.items.filter((e) => ["waiting", "offered"].includes(e.status));
  root.append(
    h("section", { "aria-labelledby": "upcoming-title" }, h("h2", { id: "upcoming-title" }, "Upcoming"),
      upcoming.length ? h("ul", { class: "items", id: "upcoming" }, upcoming.map((b) => item(b, mayCancel)))
        : h("p", {}, "No upcoming appointments. ", role === "client" ? h("a", { href: "#/book" }, "Book one") : null)),
    places.length ? h("section", { "aria-labelledby": "waitlist-title" }, h("h2", { id: "waitlist-title" }, "Waitlist"),
      h("ul", { class: "items", id: "waitlist" }, places.map(place))) : null,
    h("section", { "aria-labelledby": "past-title" }, h("h2", { id: "past-title" }, "Past and cancelled"),
      past.length ? h("ul", { class: "items", id: "past" }, past.map((b) => item(b, false))) : h("p", {}, "None yet.")));
  if (role === "admin") root.append(await fairness());
}

/** Admins: how evenly an event's bookings went to its professionals, per professional and day. */
async function fairness() {
  const events = await all("/events");
  const box = notice();
  const area = h("div", {});
  const picker = eventPicker(events);
  async function load() {
    try {
      const share = await call("GET", "/bookings/distribution", { query: { event_id: picker.select.value } });
      const days = [...new Set(share.professionals.flatMap((p) => Object.keys(p.by_day)))].sort();
      area.replaceChildren(share.professionals.length ? h("div", { class: "table-scroll" }, h("table", { class: "fairness" },
        h("caption", {}, `Confirmed bookings of ${picker.current().name}: ${share.mean.toFixed(1)} per professional on average, `
          + `the furthest from it ${share.largest_deviation_from_mean.toFixed(1)} away.`),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Professional"),
          days.map((d) => h("th", { scope: "col" }, time.formatDate(d))), h("th", { scope: "col" }, "In all"))),
        h("tbody", {}, share.professionals.map((p) => h("tr", {}, h("th", { scope: "row" }, p.name),
          days.map((d) => h("td", {}, String(p.by_day[d] ?? 0))), h("td", {}, String(p.bookings)))))))
        : h("p", {}, "No confirmed bookings for this event yet."));
    } catch (error) {
      fail(box, error);
    }
  }
  picker.select.onchange = load;
  if (events.length) await load();
  return h("section", { "aria-labelledby": "fairness-title" }, h("h2", { id: "fairness-title" }, "Fairness"),
    events.length ? field("Event", picker.select) : h("p", {}, "No events yet."), box, area);
}

async function settings(root) {
  const profile = session.profile;
  root.append(h("h1", { tabindex: -1 }, "Settings"));
  const box = notice();
  const name = h("input", { value: profile.name, autocomplete: "name", required: true, maxlength: 200 });
  const [zone, zones] = zoneInput(profile.timezone);
  const form = h("form", { class: "card", "aria-label": "Your profile" },
    h("p", {}, "Signed in as ", h("strong", {}, profile.email), ` (${profile.role}).`),
    field("Name", name), field("Timezone", zone, "Appointment and shift times are shown in this zone, e.g. Europe/Berlin."), zones,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save")));
  onSubmit(form, box, async () => {
    const { access_token, token_type, expires_in, ...updated } = await call("PATCH", "/me", { body: { name: name.value, timezone: zone.value } });
    session.token = access_token; // the new token carries the new timezone
    session.profile = updated;
    show(box, "success", `Saved. Times are now shown in ${updated.timezone}.`);
  });
  root.append(box, form);
  if (profile.role !== "admin") root.append(calendarFeed());
}

/** A private link to one's appointments for a calendar application: made, shown once, revoked. */
function calendarFeed() {
  const box = notice();
  const area = h("div", {});
  const make = h("button", { type: "button", class: "primary" }, "Make a calendar link");
  const stop = h("button", { type: "button", class: "danger" }, "Stop my calendar link");
  make.onclick = async () => {
    try {
      const { url } = await call("POST", "/me/calendar-feed");
      const link = h("input", { value: url, readonly: true, spellcheck: "false" });
      area.replaceChildren(field("Your private calendar link", link,
        "Add it to your calendar application as a subscription (\"From URL\"). Anyone with it sees your appointments: keep it to yourself."));
      link.focus();
      link.select();
      make.textContent = "Make a new link (the one above stops working)";
    } catch (error) {
      fail(box, error);
    }
  };
  stop.onclick = async () => {
    try {
      await call("DELETE", "/me/calendar-feed");
      area.replaceChildren();
      make.textContent = "Make a calendar link";
      show(box, "success", "Your calendar link no longer works.");
    } catch (error) {
      if (error.status === 404) return show(box, "info", "You have no calendar link.");
      fail(box, error);
    }
  };
  return h("section", { "aria-labelledby": "feed-title" }, h("h2", { id: "feed-title" }, "Your appointments in your calendar"),
    h("p", { class: "hint" }, "A private link your calendar application (Google Calendar, Outlook, Apple Calendar) "
      + "subscribes to: your appointments appear there and follow every change."),
    box, area, h("div", { class: "actions" }, make, stop));
}

async function shifts(root) {
  const { role, timezone: zone } = session.profile;
  const admin = role === "admin";
  root.append(h("h1", { tabindex: -1 }, admin ? "Shifts" : "My Shifts"));
  const box = notice();
  root.append(box);
  const events = await all("/events");
  if (!events.length) return root.append(h("p", {}, "There are no events yet, so there is nothing to work a shift on."));
  const professionals = admin ? await all("/professionals") : [];
  if (admin && !professionals.length) root.append(h("p", {}, "Add a professional first, on the Professionals page."));

  const picker = eventPicker(events);
  const listArea = h("section", { "aria-labelledby": "shift-list-title" });
  const form = h("form", { class: "card", "aria-labelledby": "shift-form-title" });
  let editing = null;
  let read = null; // the form's fields as a request body

  async function loadShifts() {
    const event = picker.current();
    const items = (await all("/shifts", { event_id: event.id })).sort((a, b) => a.start.localeCompare(b.start));
    const row = (s) => {
      const when = `${time.formatDay(s.start, zone)}, ${time.formatRange(s.start, s.end, zone)}`;
      const change = h("button", { type: "button", "aria-label": `Change shift on ${when}` }, "Change");
      change.onclick = () => drawForm(s);
      return h("li", { "data-shift": s.id },
        h("div", { class: "what" }, h("strong", {}, when), h("br"),
          `${admin ? `${s.professional.name}, ` : ""}up to ${s.capacity} client${s.capacity > 1 ? "s" : ""} per slot `,
          h("span", { class: `badge ${s.status}` }, s.status)),
        s.status === "active" && h("div", { class: "actions" }, change,
          confirmButton("Cancel shift", "Yes, cancel the shift", `Cancel shift on ${when}`, async () => {
            try {
              await call("DELETE", `/shifts/${s.id}`);
              show(box, "success", `Cancelled the shift on ${when}.`);
              await loadShifts();
            } catch (error) {
              fail(box, error);
            }
          })));
    };
    listArea.replaceChildren(h("h2", { id: "shift-list-title" }, `Shifts on ${event.name}`),
      items.length ? h("ul", { class: "items", id: "shifts" }, items.map(row)) : h("p", {}, "No shifts on this event yet."));
  }

  function drawForm(shift = null) {
    editing = shift;
    const event = picker.current();
    const start = shift ? time.wallClock(shift.start, zone) : null;
    const end = shift ? time.wallClock(shift.end, zone) : null;
    const step = event.slot_minutes * 60;
    const day = h("input", { type: "date", required: true, min: event.start_date, max: event.end_date, value: start?.date ?? event.start_date });
    const from = h("input", { type: "time", required: true, step, value: start?.time ?? event.opens_at });
    const to = h("input", { type: "time", required: true, step, value: end?.time ?? event.closes_at });
    const capacity = h("input", { type: "number", required: true, min: 1, max: 1000, value: shift?.capacity ?? 1 });
    const who = admin && !shift && h("select", { required: true }, options(professionals.map((p) => [p.id, p.name])));
    fill(form,
      h("h2", { id: "shift-form-title" }, shift ? "Change shift" : "Add a shift"),
      h("p", { class: "hint" }, `${event.name} is open ${event.opens_at}–${event.closes_at} (${event.timezone}) in ${event.slot_minutes}-minute slots. `
        + `Enter times in your timezone, ${zone}.`),
      who && field("Professional", who),
      h("div", { class: "row" }, field("Date", day), field("From", from), field("To", to),
        field("Clients per slot", capacity)),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, shift ? "Save shift" : "Add shift"),
        shift && h("button", { type: "button", onclick: () => drawForm() }, "Stop changing")));
    read = () => {
      const toDay = to.value <= from.value ? time.addDays(day.value, 1) : day.value; // a shift may run past midnight
      const body = { start: time.instantAt(day.value, from.value, zone), end: time.instantAt(toDay, to.value, zone), capacity: +capacity.value };
      return shift ? body : { ...body, event_id: event.id, ...(who ? { professional_id: who.value } : {}) };
    };
  }

  onSubmit(form, box, async () => {
    const body = read();
    const saved = editing
      ? await call("PATCH", `/shifts/${editing.id}`, { body })
      : await call("POST", "/shifts", { body });
    show(box, "success", `${editing ? "Saved" : "Added"} the shift on ${time.formatDay(saved.start, zone)}, `
      + `${time.formatRange(saved.start, saved.end, zone)}.`);
    drawForm();
    await loadShifts();
  });

  picker.select.onchange = async () => { drawForm(); await loadShifts(); };
  root.append(events.length > 1 ? field("Event", picker.select) : h("p", {}, h("strong", {}, picker.current().name)),
    zoneHint(zone), form, listArea);
  drawForm();
  await loadShifts();
}

async function events(root) {
  root.append(h("h1", { tabindex: -1 }, "Events"));
  const box = notice();
  root.append(box);
  const name = h("input", { required: true, maxlength: 200 });
  const [zone, zones] = zoneInput(time.browserZone());
  const first = h("input", { type: "date", required: true, value: time.today(time.browserZone()) });
  const last = h("input", { type: "date", required: true, value: time.today(time.browserZone()) });
  const opens = h("input", { type: "time", required: true, value: "09:00" });
  const closes = h("input", { type: "time", required: true, value: "17:00" });
  const slot = h("input", { type: "number", required: true, min: 5, max: 1440, value: 30 });
  const create = h("form", { class: "card", "aria-labelledby": "new-event-title" },
    h("h2", { id: "new-event-title" }, "Create an event"), field("Name", name), field("Timezone", zone), zones,
    h("div", { class: "row" }, field("First day", first), field("Last day", last)),
    h("div", { class: "row" }, field("Opens at", opens), field("Closes at", closes), field("Slot length (minutes)", slot)),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create event")));
  onSubmit(create, box, async () => {
    const event = await call("POST", "/events", { body: {
      name: name.value, timezone: zone.value, start_date: first.value, end_date: last.value,
      opens_at: opens.value, closes_at: closes.value, slot_minutes: +slot.value,
    } });
    flash = { kind: "success", text: `Created ${event.name}.` };
    render();
  });
  root.append(create);
  for (const event of await all("/events")) root.append(eventCard(event, box));
}

function eventCard(event, box) {
  const blackout = (b) => {
    const when = b.kind === "daily" ? `Every day ${b.start_time}–${b.end_time}`
      : `${time.formatDay(b.start, event.timezone)} ${time.formatTime(b.start, event.timezone)} – ${time.formatDay(b.end, event.timezone)} ${time.formatTime(b.end, event.timezone)}`;
    return h("li", {}, h("div", { class: "what" }, when, b.reason ? ` (${b.reason})` : ""),
      confirmButton("Delete", "Yes, delete it", `Delete blackout ${when}`, async () => {
        try {
          await call("DELETE", `/events/${event.id}/blackouts/${b.id}`);
          flash = { kind: "success", text: `Deleted the blackout ${when} on ${event.name}.` };
          render();
        } catch (error) {
          fail(box, error);
        }
      }));
  };
  const kind = h("select", {}, options([["daily", "Every day"], ["one_off", "Once"]]));
  const fromDay = h("input", { type: "date", value: event.start_date });
  const toDay = h("input", { type: "date", value: event.start_date });
  const from = h("input", { type: "time", required: true, value: "12:00" });
  const to = h("input", { type: "time", required: true, value: "13:00" });
  const reason = h("input", { maxlength: 200, placeholder: "e.g. lunch break" });
  const days = h("div", { class: "row", hidden: true }, field("From day", fromDay), field("To day", toDay));
  kind.onchange = () => (days.hidden = kind.value === "daily");
  const add = h("form", { "aria-label": `Add a blackout to ${event.name}` },
    h("h3", {}, "Add a blackout"), field("Repeats", kind), days,
    h("div", { class: "row" }, field("From", from), field("To", to), field("Reason", reason)),
    h("p", { class: "hint" }, `Times are in the event's timezone, ${event.timezone}.`),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Add blackout")));
  onSubmit(add, box, async () => {
    const body = kind.value === "daily"
      ? { start_time: from.value, end_time: to.value }
      : { start: time.instantAt(fromDay.value, from.value, event.timezone), end: time.instantAt(toDay.value, to.value, event.timezone) };
    await call("POST", `/events/${event.id}/blackouts`, { body: { ...body, reason: reason.value || undefined } });
    flash = { kind: "success", text: `Added a blackout to ${event.name}.` };
    render();
  });
  return h("section", { "aria-labelledby": `event-${event.id}` },
    h("h2", { id: `event-${event.id}` }, event.name),
    h("dl", { class: "details" },
      h("dt", {}, "Days"), h("dd", {}, `${time.formatDate(event.start_date)} – ${time.formatDate(event.end_date)}`),
      h("dt", {}, "Hours"), h("dd", {}, `${event.opens_at}–${event.closes_at}, ${event.slot_minutes}-minute slots`),
      h("dt", {}, "Timezone"), h("dd", {}, event.timezone)),
    h("h3", {}, "Blackouts"),
    event.blackouts.length ? h("ul", { class: "items" }, event.blackouts.map(blackout)) : h("p", {}, "None."),
    add);
}

async function professionals(root) {
  root.append(h("h1", { tabindex: -1 }, "Professionals"));
  const box = notice();
  const name = h("input", { required: true, maxlength: 200 });
  const email = h("input", { type: "email", required: true });
  const password = h("input", { type: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const [zone, zones] = zoneInput(time.browserZone());
  const create = h("form", { class: "card", "aria-labelledby": "new-pro-title" },
    h("h2", { id: "new-pro-title" }, "Add a professional"), field("Name", name), field("Email", email),
    field("First password", password, "At least 8 characters; tell it to them in person."), field("Timezone", zone), zones,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Add professional")));
  onSubmit(create, box, async () => {
    const pro = await call("POST", "/professionals", { body: { name: name.value, email: email.value, password: password.value, timezone: zone.value } });
    flash = { kind: "success", text: `Added ${pro.name}. They can sign in with ${pro.email}.` };
    render();
  });
  const list = await all("/professionals");
  root.append(box, create, h("section", { "aria-labelledby": "pro-list-title" }, h("h2", { id: "pro-list-title" }, "All professionals"),
    list.length ? h("ul", { class: "items" }, list.map((p) => h("li", {}, h("div", { class: "what" }, h("strong", {}, p.name), h("br"), `${p.email}, ${p.timezone}`))))
      : h("p", {}, "None yet.")));
}

// ---- navigation ----------------------------------------------------------------------------------

const VIEWS = { signin: signIn, book, appointments, settings, shifts, events, professionals };

function go(page) {
  if (location.hash === `#/${page}`) render();
  else location.hash = `#/${page}`;
}

function signOut(message) {
  session.token = null;
  session.profile = null;
  if (message) flash = { kind: "info", text: message };
  go("signin");
}

function drawNav(role, page) {
  const links = (PAGES[role] ?? [["signin", "Sign in"]]).map(([name, text]) =>
    h("li", {}, h("a", { href: `#/${name}`, "aria-current": name === page ? "page" : null }, text)));
  if (role) links.push(h("li", {}, h("button", { type: "button", onclick: () => signOut("You are signed out.") }, "Sign out")));
  nav.replaceChildren(...links);
}

let rendering = 0;
const leaving = []; // what a page leaves open (its streams), closed when another is drawn

// A waitlist offer's link from its mail (/?claim=<place>&token=<token>): it books without signing in.
async function claimFromLink() {
  const query = new URLSearchParams(location.search);
  const [place, token] = [query.get("claim"), query.get("token")];
  if (!place || !token) return false;
  history.replaceState(null, "", location.pathname + location.hash);
  const box = h("div");
  try {
    const booking = await call("POST", `/waitlist/${encodeURIComponent(place)}/claim`, { body: { token } });
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    show(box, "success", `Booked: ${time.formatDay(booking.start, zone)}, ${time.formatRange(booking.start, booking.end, zone)} `
      + `(${zone}) with ${booking.professional.name}. A confirmation is on its way.`);
  } catch (error) {
    show(box, "error", error.code === "no_offer" ? "This offer has expired or was already used." : explain(error));
  }
  main.replaceChildren(h("h1", { tabindex: -1 }, "Your place from the waitlist"), box);
  main.focus();
  return true;
}

async function render() {
  const mine = ++rendering; // a newer navigation wins over a slower one still loading
  leaving.splice(0).forEach((close) => close());
  if (mine === 1 && (await claimFromLink())) return;
  const wanted = location.hash.replace(/^#\/?/, "");
  if (session.token && !session.profile) {
    try {
      session.profile = await call("GET", "/me");
    } catch (error) {
      if (error.status !== 401) return showFatal(error);
      signOut("Your session has ended. Please sign in again.");
      return;
    }
  }
  const role = session.profile?.role;
  const allowed = (PAGES[role] ?? [["signin"]]).map(([name]) => name);
  const page = allowed.includes(wanted) ? wanted : allowed[0];
  if (page !== wanted) history.replaceState(null, "", `#/${page}`);
  document.title = `${(PAGES[role] ?? [["signin", "Sign in"]]).find(([n]) => n === page)[1]} · Appointments`;
  drawNav(role, page);
  const root = h("div", {});
  try {
    await VIEWS[page](root);
  } catch (error) {
    if (error.status === 401) return signOut("Your session has ended. Please sign in again.");
    const box = h("div");
    show(box, "error", explain(error));
    root.append(box);
  }
  if (mine !== rendering) return;
  main.replaceChildren(root);
  main.dataset.page = page;
  (root.querySelector("h1") ?? main).focus();
}

function showFatal(error) {
  const box = h("div");
  show(box, "error", explain(error), " ", h("button", { type: "button", onclick: render }, "Try again"));
  main.replaceChildren(h("h1", { tabindex: -1 }, "Appointments"), box);
}

window.addEventListener("hashchange", render);
render();
