import type { BudgetPeriod } from '@openrouter/config';

/** One period of a budget: its key (in the budget's zone) and its bounds as UTC instants. */
export interface PeriodWindow {
  /** `2025-06` (monthly), `2025-06-14` (daily), `2025-06-09` (weekly: the Monday it starts). */
  key: string;
  startMs: number;
  endMs: number;
}

interface LocalDate {
  year: number;
  month: number;
  day: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock fields of `atMs` in `timeZone`. */
function wallClock(atMs: number, timeZone: string): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  const out = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const part of formatter(timeZone).formatToParts(new Date(atMs))) {
    if (part.type in out) out[part.type as keyof typeof out] = Number(part.value);
  }
  return out;
}

/** Offset of `timeZone` from UTC at `atMs`, in ms (positive east of Greenwich). */
function offsetMs(atMs: number, timeZone: string): number {
  const w = wallClock(atMs, timeZone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(atMs / 1000) * 1000;
}

/**
 * The UTC instant of local midnight starting `date` in `timeZone`. Where a DST change skips
 * midnight, the first instant of the day is taken.
 */
export function startOfLocalDay(date: LocalDate, timeZone: string): number {
  const guess = Date.UTC(date.year, date.month - 1, date.day);
  let instant = guess - offsetMs(guess, timeZone);
  // The offset at the first estimate may differ from the one at the real instant (a DST edge).
  const second = guess - offsetMs(instant, timeZone);
  if (second !== instant) instant = Math.min(instant, second);
  const wanted = ordinal(date);
  // Midnight does not exist that day: move forward to the first instant of it, or of the day after
  // when the zone skipped the whole day (Pacific/Apia's 2011-12-30).
  while (ordinal(wallClock(instant, timeZone)) < wanted) instant += 15 * 60_000;
  return instant;
}

/** A local date as one comparable number: 20261207. */
const ordinal = (d: LocalDate): number => d.year * 10_000 + d.month * 100 + d.day;

function addDays(date: LocalDate, days: number): LocalDate {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
const dayKey = (d: LocalDate): string => `${pad(d.year, 4)}-${pad(d.month)}-${pad(d.day)}`;

/** The last window computed per period and zone: every request in it resolves without time-zone arithmetic. */
const lastWindows = new Map<string, PeriodWindow>();

/** The period of a budget that contains `atMs`, computed in the budget's IANA time zone. */
export function periodAt(period: BudgetPeriod, timeZone: string, atMs: number): PeriodWindow {
  const cacheKey = `${period} ${timeZone}`;
  const last = lastWindows.get(cacheKey);
  if (last && atMs >= last.startMs && atMs < last.endMs) return last;
  const window = computePeriodAt(period, timeZone, atMs);
  lastWindows.set(cacheKey, Object.freeze(window));
  return window;
}

function computePeriodAt(period: BudgetPeriod, timeZone: string, atMs: number): PeriodWindow {
  const w = wallClock(atMs, timeZone);
  const today: LocalDate = { year: w.year, month: w.month, day: w.day };
  switch (period) {
    case 'daily': {
      return { key: dayKey(today), startMs: startOfLocalDay(today, timeZone), endMs: startOfLocalDay(addDays(today, 1), timeZone) };
    }
    case 'weekly': {
      const weekday = new Date(Date.UTC(today.year, today.month - 1, today.day)).getUTCDay();
      const monday = addDays(today, -((weekday + 6) % 7));
      return { key: dayKey(monday), startMs: startOfLocalDay(monday, timeZone), endMs: startOfLocalDay(addDays(monday, 7), timeZone) };
    }
    case 'monthly': {
      const first: LocalDate = { year: today.year, month: today.month, day: 1 };
      const next: LocalDate = today.month === 12 ? { year: today.year + 1, month: 1, day: 1 } : { year: today.year, month: today.month + 1, day: 1 };
      return { key: `${pad(today.year, 4)}-${pad(today.month)}`, startMs: startOfLocalDay(first, timeZone), endMs: startOfLocalDay(next, timeZone) };
    }
  }
}
