import { z } from 'zod';

const id = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'must be 1–64 lower-case letters, digits, ., - or _');
const text = z.string().min(1).max(256);
/** Years the usage store can hold (ClickHouse's DateTime64 runs from 1970 to 2299). */
const YEARS = { first: 1970, last: 2299 } as const;
const inYears = (text: string): boolean => {
  const year = Number(text.slice(0, 4));
  return year >= YEARS.first && year <= YEARS.last;
};
/** Whether `YYYY-MM-DD` names a day of the calendar (2025-02-30 does not: `Date.parse` would roll it into March). */
function isCalendarDay(text: string): boolean {
  const [year, month, day] = text.split('-').map(Number) as [number, number, number];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}
const YEAR_RANGE = `must fall between ${YEARS.first} and ${YEARS.last}`;
const month = z
  .string()
  .regex(/^\d{4}-(0[1-9]|1[0-2])$/, { message: 'must be YYYY-MM', abort: true })
  .refine(inYears, YEAR_RANGE);
/** A date (midnight UTC) or an ISO 8601 instant with a zone. */
const instant = z
  .string()
  .refine((v) => /^\d{4}-\d{2}-\d{2}$/.test(v) || /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(v), { message: 'must be a date (2025-06-01) or an ISO 8601 instant with a zone', abort: true })
  .refine((v) => isCalendarDay(v.slice(0, 10)), { message: 'is not a day of the calendar', abort: true })
  .refine(inYears, { message: YEAR_RANGE, abort: true })
  .transform((v) => Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v))
  .refine((v) => Number.isFinite(v), 'is not a valid date');
const format = z.enum(['json', 'csv']).default('json');

export const usageQuery = z.strictObject({
  from: instant.optional(),
  to: instant.optional(),
  group_by: z
    .string()
    .max(512)
    .transform((v) => v.split(',').map((g) => g.trim()).filter(Boolean))
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
  operation: z.enum(['chat', 'completion', 'embedding']).optional(),
  status: z.enum(['ok', 'error', 'cancelled']).optional(),
  experiment: text.optional(),
  format,
});

export const invoiceParams = z.strictObject({ org: id, month });
export const invoiceQuery = z.strictObject({ format });
export const chargebackQuery = z.strictObject({ month, org: id.optional(), allocation: z.enum(['proportional', 'fixed']).optional(), format });
export const focusQuery = z.strictObject({ month, org: id.optional(), format });
export const experimentQuery = z.strictObject({ from: instant.optional(), to: instant.optional(), format });
/** Any experiment name, but no control characters: it is echoed into the CSV's file name. */
// eslint-disable-next-line no-control-regex
export const experimentId = z.string().min(1).max(128).regex(/^[^\u0000-\u001f\u007f-\u009f]+$/, 'must not contain control characters');
