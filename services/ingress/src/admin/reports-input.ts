import { z } from 'zod';

const id = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'must be 1–64 lower-case letters, digits, ., - or _');
const text = z.string().min(1).max(256);
/**
 * The first instant the usage store cannot hold (2056-02-19T06:28:16Z): the end of ClickHouse's
 * `DateTime` (2^32 s), which the raw tables' retention TTL is, less the largest retention (18,250
 * days). The usage codec refuses events at or after it (`LATEST_TIME_MS` in libs/usage
 * usage-event.codec.ts, which that library does not export; the spec checks the two agree).
 */
export const STORE_END_MS = 2 ** 32 * 1000 - 18_250 * 86_400_000;
const STORE_END = new Date(STORE_END_MS).toISOString();
/** The first year the store holds (ClickHouse's `DateTime` starts in 1970): a year such as 0070 is refused, not read as another. */
const FIRST_YEAR = 1970;
const fromFirstYear = (text: string): boolean => Number(text.slice(0, 4)) >= FIRST_YEAR;
const FIRST_YEAR_MESSAGE = `must not be before ${FIRST_YEAR}`;
/** Whether `YYYY-MM-DD` names a day of the calendar (2025-02-30 does not: `Date.parse` would roll it into March). */
function isCalendarDay(text: string): boolean {
  const [year, month, day] = text.split('-').map(Number) as [number, number, number];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}
/** A month the store holds usage of: one that starts before {@link STORE_END_MS} (2056-02 is the last). */
const month = z
  .string()
  .regex(/^\d{4}-(0[1-9]|1[0-2])$/, { message: 'must be YYYY-MM', abort: true })
  .refine(fromFirstYear, { message: FIRST_YEAR_MESSAGE, abort: true })
  .refine((v) => Date.UTC(Number(v.slice(0, 4)), Number(v.slice(5, 7)) - 1, 1) < STORE_END_MS, `must be ${STORE_END.slice(0, 7)} or earlier: usage at or after ${STORE_END} cannot be stored`);
/** A date (midnight UTC) or an ISO 8601 instant with a zone. */
const instant = z
  .string()
  .refine((v) => /^\d{4}-\d{2}-\d{2}$/.test(v) || /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(v), { message: 'must be a date (2025-06-01) or an ISO 8601 instant with a zone', abort: true })
  .refine((v) => isCalendarDay(v.slice(0, 10)), { message: 'is not a day of the calendar', abort: true })
  .refine(fromFirstYear, { message: FIRST_YEAR_MESSAGE, abort: true })
  .transform((v) => Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v))
  .refine((v) => Number.isFinite(v), { message: 'is not a valid date', abort: true });
/** A range's start: none is stored at or after {@link STORE_END_MS}, so a later one is refused (400) rather than answered empty. */
const rangeStart = instant.refine((v) => v < STORE_END_MS, `must be before ${STORE_END}: usage at or after it cannot be stored`);
/**
 * A range's end (exclusive): a later one is read as {@link STORE_END_MS}, which covers all the store
 * can hold; "everything up to 2100" is answered, with the `to` it covers.
 */
const rangeEnd = instant.transform((v) => Math.min(v, STORE_END_MS));
const format = z.enum(['json', 'csv']).default('json');

export const usageQuery = z.strictObject({
  from: rangeStart.optional(),
  to: rangeEnd.optional(),
  group_by: z
    .string()
    .max(512)
    // Each name once: billing groups by it once, and a CSV with two columns of one name breaks imports.
    .transform((v) => [...new Set(v.split(',').map((g) => g.trim()).filter(Boolean))])
    .pipe(z.array(z.string().max(80)).max(8, 'at most 8 dimensions'))
    .default([]),
  org: id.optional(),
  project: id.optional(),
  team: id.optional(),
  app: text.optional(),
  cost_center: text.optional(),
  key: text.optional(),
  model: text.optional(),
  provider: text.optional(),
  operation: z.enum(['chat', 'completion', 'embedding', 'moderation', 'image', 'transcription', 'translation', 'speech']).optional(),
  status: z.enum(['ok', 'error', 'cancelled']).optional(),
  experiment: text.optional(),
  format,
});

export const invoiceParams = z.strictObject({ org: id, month });
export const invoiceQuery = z.strictObject({ format });
export const chargebackQuery = z.strictObject({ month, org: id.optional(), allocation: z.enum(['proportional', 'fixed']).optional(), format });
export const focusQuery = z.strictObject({ month, org: id.optional(), format });
export const experimentQuery = z.strictObject({ from: rangeStart.optional(), to: rangeEnd.optional(), format });
/** Any experiment name, but no control characters: it is echoed into the CSV's file name. */
// eslint-disable-next-line no-control-regex
export const experimentId = z.string().min(1).max(128).regex(/^[^\u0000-\u001f\u007f-\u009f]+$/, 'must not contain control characters');
