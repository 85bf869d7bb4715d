// Picking a day of an event from a month grid: days with a free slot are marked (one request a
// month, GET /availability/month), and the grid opens on the first such day. Keyboard: Tab reaches
// the chosen day; the arrows move a day or a week, Home and End to the week's ends, Page Up and
// Page Down a month; Enter or Space picks.
import { h } from "./dom.js";
import * as time from "./time.js";

const MONTHS_LOOKED_AHEAD = 12; // for the first free day, at most this many requests

/**
 * `load(month)` answers a month (YYYY-MM) as GET /availability/month does; `onPick(date)` is told
 * the day picked, `onError(error)` a month that could not be loaded. Returns the grid's element and
 * `open()`, which finds the first free day and picks it.
 */
export function monthPicker({ event, zone, load, onPick, onError }) {
  const firstMonth = event.start_date.slice(0, 7);
  const lastMonth = event.end_date.slice(0, 7);
  const title = h("h2", { id: `month-title-${event.id}`, "aria-live": "polite" });
  const previous = h("button", { type: "button", class: "month-step", "aria-label": "Previous month" }, "‹");
  const next = h("button", { type: "button", class: "month-step", "aria-label": "Next month" }, "›");
  const table = h("table", { class: "month-grid", "aria-labelledby": title.id });
  const element = h("div", { class: "month" }, h("div", { class: "month-head" }, previous, title, next), table,
    h("p", { class: "hint" }, h("span", { class: "free-mark", "aria-hidden": "true" }), " a day with free times"));
  let shown = null; // the month on screen
  let chosen = null; // the day picked
  let answers = new Map(); // month -> its answer, for this event and zone
  let latest = 0;

  const inEvent = (date) => date >= event.start_date && date <= event.end_date;

  async function show(month) {
    const mine = ++latest;
    try {
      if (!answers.has(month)) answers.set(month, await load(month));
    } catch (error) {
      return onError(error);
    }
    if (mine !== latest) return;
    shown = month;
    draw();
  }

  function draw() {
    title.textContent = time.formatMonth(shown);
    previous.disabled = shown <= firstMonth;
    next.disabled = shown >= lastMonth;
    const days = answers.get(shown).days;
    const focusable = days.some((d) => d.date === chosen) ? chosen : days.find((d) => inEvent(d.date))?.date;
    const cells = [...Array(time.weekday(days[0].date)).fill(null), ...days];
    const weeks = [];
    for (let i = 0; i < cells.length; i += 7) weeks.push(cells.slice(i, i + 7));
    const focused = table.contains(document.activeElement) ? document.activeElement.dataset.date : null;
    table.replaceChildren(
      h("thead", {}, h("tr", {}, time.weekdayNames().map((n) => h("th", { scope: "col", abbr: n.long }, n.short)))),
      h("tbody", {}, weeks.map((week) => h("tr", {}, week.map((day) => h("td", {}, day && dayButton(day, focusable)))))));
    if (focused) table.querySelector(`button[data-date="${focused}"]`)?.focus(); // a redraw keeps the keyboard's place
  }

  function dayButton(day, focusable) {
    const open = inEvent(day.date);
    const what = !open ? "not part of the event" : day.available ? `${day.remaining} free` : "nothing free";
    return h("button", {
      type: "button", class: day.available ? "day free" : "day", "data-date": day.date, disabled: !open,
      "aria-pressed": day.date === chosen ? "true" : "false", tabindex: day.date === focusable ? 0 : -1,
      "aria-label": `${time.formatDate(day.date)}, ${what}`, onclick: () => pick(day.date),
    }, String(Number(day.date.slice(8))));
  }

  function pick(date) {
    chosen = date;
    draw();
    onPick(date);
  }

  async function focusDay(date) {
    const target = date < event.start_date ? event.start_date : date > event.end_date ? event.end_date : date;
    if (target.slice(0, 7) !== shown) await show(target.slice(0, 7));
    const button = table.querySelector(`button[data-date="${target}"]`);
    if (!button) return; // its month could not be loaded
    table.querySelectorAll("button[tabindex='0']").forEach((b) => b.setAttribute("tabindex", -1));
    button.setAttribute("tabindex", 0);
    button.focus();
  }

  const MOVES = {
    ArrowLeft: (d) => time.addDays(d, -1), ArrowRight: (d) => time.addDays(d, 1),
    ArrowUp: (d) => time.addDays(d, -7), ArrowDown: (d) => time.addDays(d, 7),
    Home: (d) => time.addDays(d, -time.weekday(d)), End: (d) => time.addDays(d, 6 - time.weekday(d)),
    PageUp: (d) => `${time.addMonths(d.slice(0, 7), -1)}-01`, PageDown: (d) => `${time.addMonths(d.slice(0, 7), 1)}-01`,
  };
  table.addEventListener("keydown", (e) => {
    const from = e.target.dataset?.date;
    if (!from || !MOVES[e.key]) return;
    e.preventDefault();
    focusDay(MOVES[e.key](from));
  });
  previous.onclick = () => show(time.addMonths(shown, -1));
  next.onclick = () => show(time.addMonths(shown, 1));

  async function open() {
    try {
      await findFirstFree();
    } catch (error) {
      onError(error);
    }
  }

  async function findFirstFree() {
    answers = new Map();
    const today = time.today(zone);
    const start = today > event.start_date ? (today > event.end_date ? event.end_date : today) : event.start_date;
    let month = start.slice(0, 7);
    for (let n = 0; n < MONTHS_LOOKED_AHEAD && month <= lastMonth; n++, month = time.addMonths(month, 1)) {
      answers.set(month, await load(month));
      const free = answers.get(month).days.find((d) => d.available && d.date >= start);
      if (free) {
        await show(month);
        return pick(free.date);
      }
    }
    await show(start.slice(0, 7));
    pick(start);
  }

  return { element, open };
}
