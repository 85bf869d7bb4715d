// Instants and wall-clock times in a named IANA zone, with nothing but Intl.

const parts = (instant, zone) =>
  Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(instant).map((p) => [p.type, p.value]),
  );

function offsetMinutes(epochMs, zone) {
  const p = parts(new Date(epochMs), zone);
  return Math.round((Date.UTC(+p.year, p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second) - epochMs) / 60000);
}

/** The instant (ISO 8601, UTC) at which the wall clock in `zone` shows `date` `time`. */
export function instantAt(date, time, zone) {
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  // Two passes settle the offset, also next to a DST change.
  const first = offsetMinutes(wall, zone);
  const offset = offsetMinutes(wall - first * 60000, zone);
  return new Date(wall - offset * 60000).toISOString();
}

/** {date: "YYYY-MM-DD", time: "HH:MM"} of an instant on the wall clock in `zone`. */
export function wallClock(iso, zone) {
  const p = parts(new Date(iso), zone);
  return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour % 24}`.padStart(2, "0") + `:${p.minute}` };
}

export const today = (zone) => wallClock(new Date().toISOString(), zone).date;

// Shown to people: in the browser's own language and conventions (parts() above is for arithmetic).
export const formatTime = (iso, zone) =>
  new Intl.DateTimeFormat(undefined, { timeZone: zone, hour: "numeric", minute: "2-digit" }).format(new Date(iso));

export const formatRange = (start, end, zone) => `${formatTime(start, zone)} – ${formatTime(end, zone)}`;

export const formatDay = (iso, zone) =>
  new Intl.DateTimeFormat(undefined, { timeZone: zone, weekday: "short", month: "short", day: "numeric", year: "numeric" })
    .format(new Date(iso));

/** A calendar date (YYYY-MM-DD) as words; the date has no zone of its own. */
export const formatDate = (date) => formatDay(`${date}T12:00:00Z`, "UTC");

export const zoneNames = () => (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : []);

export const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** The calendar date `days` after `date` (YYYY-MM-DD; negative: before). */
export function addDays(date, days) {
  const d = new Date(`${date}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** The month (YYYY-MM) `months` after `month`. */
export function addMonths(month, months) {
  const [y, m] = month.split("-").map(Number);
  const d = new Date(Date.UTC(y, m - 1 + months, 1));
  return d.toISOString().slice(0, 7);
}

/** A month (YYYY-MM) as words, e.g. "December 2026", in the browser's language. */
export const formatMonth = (month) =>
  new Intl.DateTimeFormat(undefined, { timeZone: "UTC", month: "long", year: "numeric" }).format(new Date(`${month}-15T12:00:00Z`));

/** The weekday of a date, 0 for Monday. */
export const weekday = (date) => (new Date(`${date}T12:00:00Z`).getUTCDay() + 6) % 7;

/** Monday to Sunday, short and long, in the browser's language. */
export const weekdayNames = () => [...Array(7).keys()].map((n) => {
  const d = new Date(Date.UTC(2024, 0, 1 + n, 12)); // 2024-01-01 was a Monday
  const name = (weekday) => new Intl.DateTimeFormat(undefined, { timeZone: "UTC", weekday }).format(d);
  return { short: name("short"), long: name("long") };
});
