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
});
