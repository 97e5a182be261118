import { AdaptiveLimit } from './adaptive-limit';

describe('AdaptiveLimit', () => {
  it('starts at its maximum, halves on a refusal, once per cooldown, and never goes below one', () => {
    let now = 0;
    const limit = new AdaptiveLimit(16, 1_000, () => now);
    expect(limit.current).toBe(16);
    limit.refused();
    expect(limit.current).toBe(8);
    // The other lines refused by the same burst do not count again.
    limit.refused();
    limit.refused();
    expect(limit.current).toBe(8);
    for (const expected of [4, 2, 1, 1]) {
      now += 1_000;
      limit.refused();
      expect(limit.current).toBe(expected);
    }
  });

  it('grows back by one line per current limit of answered lines, up to its maximum', () => {
    let now = 0;
    const limit = new AdaptiveLimit(4, 1_000, () => now);
    for (let i = 0; i < 3; i++) {
      now += 1_000;
      limit.refused();
    }
    expect(limit.current).toBe(1);
    limit.succeeded();
    expect(limit.current).toBe(2);
    limit.succeeded();
    expect(limit.current).toBe(2);
    limit.succeeded();
    expect(limit.current).toBe(3);
    for (let i = 0; i < 3; i++) limit.succeeded();
    expect(limit.current).toBe(4);
    for (let i = 0; i < 100; i++) limit.succeeded();
    expect(limit.current).toBe(4);
  });
});
