import { RecentEventIds } from './recent-event-ids';

describe('RecentEventIds', () => {
  it('tells a copy from a new id', () => {
    const ids = new RecentEventIds(10, 60_000);
    expect(ids.seen('a', 0)).toBe(false);
    expect(ids.seen('b', 1)).toBe(false);
    expect(ids.seen('a', 2)).toBe(true);
    expect(ids.seen('a', 3)).toBe(true);
    expect(ids.size).toBe(2);
  });

  it('keeps at most its bound of ids, forgetting the oldest first', () => {
    const ids = new RecentEventIds(2, 60_000);
    for (const id of ['a', 'b', 'c']) ids.seen(id, 0);
    expect(ids.size).toBe(2);
    expect(ids.seen('c', 0)).toBe(true);
    expect(ids.seen('b', 0)).toBe(true);
    expect(ids.seen('a', 0)).toBe(false);
  });

  it('forgets ids first seen longer ago than it retains', () => {
    const ids = new RecentEventIds(10, 60_000);
    ids.seen('old', 0);
    ids.seen('newer', 30_000);
    expect(ids.seen('old', 60_000)).toBe(true);
    expect(ids.seen('old', 60_001)).toBe(false);
    // 'newer' is still within its span; the first sighting of 'old' went, the second is kept.
    expect(ids.seen('newer', 60_001)).toBe(true);
    expect(ids.size).toBe(2);
    expect(ids.seen('newer', 90_001)).toBe(false);
  });

  it('evicts by count through many rounds of its queue, each id exactly when it is the oldest', () => {
    const cap = 3_000;
    const ids = new RecentEventIds(cap, 60_000);
    const wrong: string[] = [];
    // Far more ids than the cap, so the queue's spent slots are dropped many times over.
    for (let i = 0; i < 20_000; i++) {
      if (ids.seen(`e-${i}`, 0)) wrong.push(`e-${i} taken for a copy`);
      // A copy of the newest and of the oldest still remembered is caught.
      if (!ids.seen(`e-${i}`, 0)) wrong.push(`copy of e-${i} missed`);
      if (!ids.seen(`e-${Math.max(0, i - cap + 1)}`, 0)) wrong.push(`oldest kept at e-${i} missed`);
    }
    expect(wrong).toEqual([]);
    expect(ids.size).toBe(cap);
    // The id just before the oldest one kept was forgotten (and is remembered again as new).
    expect(ids.seen(`e-${20_000 - cap - 1}`, 0)).toBe(false);
    expect(ids.size).toBe(cap);
  });

  it('evicts by age in the order ids were first seen, also after evictions by count', () => {
    const ids = new RecentEventIds(1_500, 10_000);
    // 5 000 ids, one a millisecond: the count bound keeps e-3500 … e-4999.
    for (let i = 0; i < 5_000; i++) ids.seen(`e-${i}`, i);
    expect(ids.size).toBe(1_500);
    // e-3500 is kept for exactly 10 s after it was first seen, then is new again.
    expect(ids.seen('e-3500', 13_500)).toBe(true);
    expect(ids.seen('e-3500', 13_501)).toBe(false);
    // e-3501 … e-3999 are forgotten by 14 000 ms; e-4000 on and the new sightings are kept.
    expect(ids.seen('e-4000', 14_000)).toBe(true);
    expect(ids.size).toBe(1_001);
    // e-3500 is queued after e-4999 now: its second sighting is what counts.
    expect(ids.seen('fresh', 15_000)).toBe(false);
    expect(ids.seen('e-3500', 23_501)).toBe(true);
    expect(ids.size).toBe(2);
    expect(ids.seen('e-3500', 23_502)).toBe(false);
    expect(ids.seen('e-4999', 23_502)).toBe(false);
    expect(ids.size).toBe(3);
  });

  it('never iterates a Map or a Set: each call does a bounded amount of work', () => {
    // V8 keeps deleted entries as holes that each new iterator walks, so taking the oldest id
    // through an iterator costs as much as every id forgotten before it.
    const ids = new RecentEventIds(1_000, 1_000);
    const iterators = [
      jest.spyOn(Map.prototype, 'keys'),
      jest.spyOn(Map.prototype, 'entries'),
      jest.spyOn(Map.prototype, 'values'),
      jest.spyOn(Map.prototype, Symbol.iterator),
      jest.spyOn(Map.prototype, 'forEach'),
      jest.spyOn(Set.prototype, 'values'),
      jest.spyOn(Set.prototype, 'entries'),
      jest.spyOn(Set.prototype, Symbol.iterator),
      jest.spyOn(Set.prototype, 'forEach'),
    ];
    let calls: number;
    try {
      // Full, and forgetting by count and by age.
      for (let i = 0; i < 5_000; i++) ids.seen(`e-${i}`, i);
      calls = iterators.reduce((n, spy) => n + spy.mock.calls.length, 0);
    } finally {
      for (const spy of iterators) spy.mockRestore();
    }
    expect(calls).toBe(0);
    expect(ids.size).toBe(1_000);
  });
});
