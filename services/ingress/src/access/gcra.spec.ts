import { adjustTat, gcra } from './gcra';

const perMinute = (limit: number) => ({ limit, windowMs: 60_000 });

describe('gcra', () => {
  it('admits a burst of the limit, then denies with the time until one unit refills', () => {
    let tat = 0;
    const now = 1_000_000;
    for (let i = 0; i < 3; i++) {
      const outcome = gcra(tat, now, 1, perMinute(3));
      expect(outcome).toMatchObject({ allowed: true, remaining: 2 - i });
      tat = outcome.nextTat;
    }
    const denied = gcra(tat, now, 1, perMinute(3));
    expect(denied).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 20_000, resetMs: 60_000 });
    expect(denied.nextTat).toBe(tat);
    expect(gcra(tat, now + 20_000, 1, perMinute(3))).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('charges a cost of several units at once and denies a cost larger than what is left', () => {
    const first = gcra(0, 0, 700, perMinute(1000));
    expect(first).toMatchObject({ allowed: true, remaining: 300, resetMs: 42_000 });
    const second = gcra(first.nextTat, 0, 301, perMinute(1000));
    expect(second).toMatchObject({ allowed: false, remaining: 300 });
    expect(second.retryAfterMs).toBe(60);
  });

  it('is full again after the window', () => {
    const spent = gcra(0, 0, 10, perMinute(10));
    expect(gcra(spent.nextTat, 60_000, 10, perMinute(10)).allowed).toBe(true);
  });

  it('corrects by real usage: a refund gives units back, an overrun takes more', () => {
    const limit = perMinute(1000);
    const reserved = gcra(0, 0, 500, limit).nextTat;
    expect(gcra(adjustTat(reserved, 0, -400, limit), 0, 900, limit).allowed).toBe(true);
    expect(gcra(adjustTat(reserved, 0, 400, limit), 0, 200, limit).allowed).toBe(false);
    expect(adjustTat(reserved, 0, -10_000, limit)).toBe(0);
  });
});

describe('gcra at the clock of today', () => {
  // An epoch timestamp: a double exact to about 0.24 µs at this size, not the exact 0 of the cases above.
  const now = 1_764_000_000_123;
  const limits = Array.from({ length: 300 }, (_, i) => i + 1);

  it('admits a burst of exactly the limit, whatever the limit, and refuses the next', () => {
    const short = limits.filter((limit) => {
      let tat = 0;
      for (let i = 0; i < limit; i++) {
        const outcome = gcra(tat, now, 1, perMinute(limit));
        if (!outcome.allowed) return true;
        tat = outcome.nextTat;
      }
      return gcra(tat, now, 1, perMinute(limit)).allowed;
    });
    expect(short).toEqual([]);
  });

  it('reports what is left and when the limit is full again exactly', () => {
    expect(limits.filter((limit) => gcra(0, now, 1, perMinute(limit)).remaining !== limit - 1)).toEqual([]);
    const whole = limits.filter((limit) => Number.isInteger(60_000 / limit));
    expect(whole.filter((limit) => gcra(0, now, 1, perMinute(limit)).resetMs !== 60_000 / limit)).toEqual([]);
    const spent = gcra(0, now, 6, perMinute(6));
    expect(gcra(spent.nextTat, now, 1, perMinute(6))).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 10_000, resetMs: 60_000 });
  });
});
