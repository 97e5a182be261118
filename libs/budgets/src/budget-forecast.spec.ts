import { budgetSchema } from '@openrouter/config';
import { accountAt, type Budget } from './budget-book';
import { forecastOf } from './budget-forecast';
import { toMicros } from './micro-units';

const DAY = 86_400_000;
// June 2025 in UTC: 30 days, from 2025-06-01 to 2025-07-01.
const JUNE = Date.parse('2025-06-01T00:00:00Z');
const JULY = Date.parse('2025-07-01T00:00:00Z');

describe('forecastOf', () => {
  const monthly = budgetSchema.parse({ id: 'acme-monthly', scope: { org: 'acme' }, period: 'monthly', amount: '2500' });
  const at = (ms: number, budget: Budget = monthly) => accountAt(budget, ms);
  const forecast = (spent: string, atMs: number, budget: Budget = monthly, fraction = 0.1) => forecastOf(at(atMs, budget), toMicros(spent), atMs, fraction);

  it('projects the run rate so far to the period end: spent + spent / elapsed × (end − now)', () => {
    // Ten days of thirty: the spend is a third of the projection; 100 a day reaches 2500 on day 25.
    const f = forecast('1000', JUNE + 10 * DAY);
    expect([f?.projected, f?.exceeds, f?.exceedsAtMs]).toEqual(['3000', true, JUNE + 25 * DAY]);
    // Under the amount: no date.
    const under = forecast('500', JUNE + 10 * DAY);
    expect([under?.projected, under?.exceeds, under?.exceedsAtMs]).toEqual(['1500', false, undefined]);
  });

  it('computes in decimal, exactly: 0.3 × 3 is 0.9, and a ratio that does not end is rounded up to millionths', () => {
    // In binary floating point 0.3 * 3 is 0.8999999999999999.
    expect(forecast('0.3', JUNE + 10 * DAY)?.projected).toBe('0.9');
    // 1 × 30 / 7 = 4.285714285714…: rounded up, as the ledger rounds, never down.
    expect(forecast('1', JUNE + 7 * DAY)?.projected).toBe('4.285715');
    // One micro-unit over three days of thirty: 0.00001 exactly.
    expect(forecast('0.000001', JUNE + 3 * DAY)?.projected).toBe('0.00001');
  });

  it('says the amount is reached when the projection lands on it exactly, at the period end, and not a micro-unit short of it', () => {
    const exact = forecast('833.333333', JUNE + 10 * DAY, { ...monthly, amount: '2499.999999' });
    expect([exact?.projected, exact?.exceeds, exact?.exceedsAtMs]).toEqual(['2499.999999', true, JULY]);
    const short = forecast('833.333333', JUNE + 10 * DAY);
    expect([short?.projected, short?.exceeds, short?.exceedsAtMs]).toEqual(['2499.999999', false, undefined]);
  });

  it('compares a projection with a percentage exactly, at the largest amount a budget may have', () => {
    const largest = { ...monthly, amount: '9007199254.740991' };
    // Half the period gone: 80 % projected takes 40 % spent, 3602879701896396.4 micro-units. Times
    // the period and 100, both sides are past what a double holds exactly.
    const half = JUNE + 15 * DAY;
    expect(forecastOf(at(half, largest), 3_602_879_701_896_397, half, 0.1)?.reaches(80)).toBe(true);
    expect(forecastOf(at(half, largest), 3_602_879_701_896_396, half, 0.1)?.reaches(80)).toBe(false);
  });

  it('projects nothing, and no date, from no spend', () => {
    const f = forecast('0', JUNE + 10 * DAY);
    expect([f?.projected, f?.exceeds, f?.exceedsAtMs, f?.reaches(1)]).toEqual(['0', false, undefined, false]);
  });

  it('gives the time of the projection as the date when the spend is past the amount already', () => {
    const now = JUNE + 10 * DAY + 1_234;
    const f = forecast('2600', now);
    expect([f?.exceeds, f?.exceedsAtMs]).toEqual([true, now]);
  });

  it('projects nothing before the minimum share of the period has passed, and from exactly that share on', () => {
    // 10 % of thirty days is three days.
    expect(forecast('1', JUNE + 3 * DAY - 1)).toBeUndefined();
    expect(forecast('1', JUNE + 3 * DAY)?.projected).toBe('10');
    expect(forecast('1', JUNE + DAY, monthly, 0.02)?.projected).toBe('30');
  });

  it('counts a budget created during its period from its creation, as its ledger does', () => {
    const created = { ...monthly, creation: { atMs: JUNE + 20 * DAY, id: 'c0ffee' } };
    // Half a day after creation is 5 % of the ten days left: too early, though 2/3 of the month has passed.
    expect(forecast('10', JUNE + 20 * DAY + DAY / 2, created)).toBeUndefined();
    // A day after: 10 % of its ten days, so ten times its spend.
    const f = forecast('10', JUNE + 21 * DAY, created);
    expect([f?.projected, f?.fromMs]).toEqual(['100', JUNE + 20 * DAY]);
    // Created before the period began: counted from the period start.
    expect(forecast('10', JUNE + 10 * DAY, { ...monthly, creation: { atMs: JUNE - 40 * DAY } })?.projected).toBe('30');
  });

  it('projects against the amount as it is now: a lowered amount is exceeded sooner', () => {
    expect(forecast('700', JUNE + 10 * DAY)?.exceeds).toBe(false);
    const lowered = forecast('700', JUNE + 10 * DAY, { ...monthly, amount: '2000' });
    expect([lowered?.exceeds, lowered?.exceedsAtMs]).toEqual([true, JUNE + Math.ceil((2000 / 70) * DAY)]);
  });

  it('projects nothing for a period that has ended (a settle after its period rolled over)', () => {
    const june = at(JUNE + 29 * DAY);
    expect(forecastOf(june, toMicros('2000'), JULY, 0.1)).toBeUndefined();
    expect(forecastOf(june, toMicros('2000'), JULY + DAY, 0.1)).toBeUndefined();
  });
});
