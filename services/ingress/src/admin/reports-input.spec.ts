import { chargebackQuery, usageQuery } from './reports-input';

describe('report inputs', () => {
  it('reads dates and instants with a zone', () => {
    expect(usageQuery.parse({ from: '2025-06-01', to: '2025-06-30T10:00+02:00' })).toMatchObject({ from: Date.parse('2025-06-01T00:00:00Z'), to: Date.parse('2025-06-30T08:00:00Z') });
    expect(usageQuery.parse({ from: '2024-02-29' }).from).toBe(Date.parse('2024-02-29T00:00:00Z'));
  });

  it.each([
    ['2025-02-30', 'is not a day of the calendar'],
    ['2025-02-29T12:00Z', 'is not a day of the calendar'],
    ['2025-04-31', 'is not a day of the calendar'],
    ['0070-01-01', 'must fall between 1970 and 2299'],
    ['1969-12-31', 'must fall between 1970 and 2299'],
    ['2025-6-1', 'must be a date (2025-06-01) or an ISO 8601 instant with a zone'],
  ])('refuses %s: %s', (from, message) => {
    const result = usageQuery.safeParse({ from });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.message)).toEqual([message]);
  });

  it('refuses a month the store cannot hold, rather than reading it as the 1900s', () => {
    expect(chargebackQuery.parse({ month: '2025-06' }).month).toBe('2025-06');
    expect(chargebackQuery.safeParse({ month: '0070-01' }).error?.issues.map((i) => i.message)).toEqual(['must fall between 1970 and 2299']);
    expect(chargebackQuery.safeParse({ month: '2025-13' }).error?.issues.map((i) => i.message)).toEqual(['must be YYYY-MM']);
  });
});
