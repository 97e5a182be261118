import { periodAt, startOfLocalDay } from './budget-period';

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number): string => new Date(ms).toISOString();

describe('budget periods', () => {
  it('computes UTC days, ISO weeks and months', () => {
    const t = at('2025-06-14T13:00:00Z'); // a Saturday
    expect(periodAt('daily', 'UTC', t)).toEqual({ key: '2025-06-14', startMs: at('2025-06-14T00:00:00Z'), endMs: at('2025-06-15T00:00:00Z') });
    expect(periodAt('weekly', 'UTC', t)).toEqual({ key: '2025-06-09', startMs: at('2025-06-09T00:00:00Z'), endMs: at('2025-06-16T00:00:00Z') });
    expect(periodAt('monthly', 'UTC', t)).toEqual({ key: '2025-06', startMs: at('2025-06-01T00:00:00Z'), endMs: at('2025-07-01T00:00:00Z') });
    expect(periodAt('monthly', 'UTC', at('2025-12-31T23:59:59.999Z')).endMs).toBe(at('2026-01-01T00:00:00Z'));
    expect(periodAt('weekly', 'UTC', at('2025-06-09T00:00:00Z')).key).toBe('2025-06-09');
  });

  it('starts periods at local midnight in the budget time zone', () => {
    // 23:30 UTC on 31 May is already 1 June in Berlin (UTC+2 in summer).
    const p = periodAt('monthly', 'Europe/Berlin', at('2025-05-31T23:30:00Z'));
    expect(p.key).toBe('2025-06');
    expect(iso(p.startMs)).toBe('2025-05-31T22:00:00.000Z');
    expect(iso(p.endMs)).toBe('2025-06-30T22:00:00.000Z');
    const ny = periodAt('daily', 'America/New_York', at('2025-01-15T03:00:00Z'));
    expect(ny.key).toBe('2025-01-14');
    expect(iso(ny.startMs)).toBe('2025-01-14T05:00:00.000Z');
    expect(periodAt('daily', 'Asia/Kolkata', at('2025-01-15T20:00:00Z')).key).toBe('2025-01-16');
  });

  it('handles days that DST makes 23 or 25 hours long', () => {
    const spring = periodAt('daily', 'Europe/Berlin', at('2025-03-30T12:00:00Z'));
    expect(spring.endMs - spring.startMs).toBe(23 * 3_600_000);
    const autumn = periodAt('daily', 'Europe/Berlin', at('2025-10-26T12:00:00Z'));
    expect(autumn.endMs - autumn.startMs).toBe(25 * 3_600_000);
    // Midnight is skipped in Santiago on the day DST starts: the day starts at 01:00 local.
    const skipped = startOfLocalDay({ year: 2024, month: 9, day: 8 }, 'America/Santiago');
    expect(iso(skipped)).toBe('2024-09-08T04:00:00.000Z');
  });

  it('gives a day the zone skipped whole no length, and the day before it its own 24 hours', () => {
    // Samoa moved across the date line: 2011-12-29 was followed by 2011-12-31.
    expect(iso(startOfLocalDay({ year: 2011, month: 12, day: 30 }, 'Pacific/Apia'))).toBe('2011-12-30T10:00:00.000Z');
    const before = periodAt('daily', 'Pacific/Apia', at('2011-12-29T12:00:00Z'));
    expect(before).toMatchObject({ key: '2011-12-29', startMs: at('2011-12-29T10:00:00Z'), endMs: at('2011-12-30T10:00:00Z') });
    expect(periodAt('daily', 'Pacific/Apia', at('2011-12-30T10:00:00Z')).key).toBe('2011-12-31');
  });

  it('gives consecutive periods that tile time with no gap', () => {
    let t = at('2025-01-01T00:00:00Z');
    for (let i = 0; i < 60; i++) {
      const p = periodAt('daily', 'Australia/Lord_Howe', t);
      expect(p.startMs).toBeLessThanOrEqual(t);
      expect(p.endMs).toBeGreaterThan(t);
      t = p.endMs;
    }
  });
});
