import { UnsharedCounts, type ArmCounts } from './fleet-counts';

const REQUESTS = 0;
const ERRORS = 1;

const plain = (counts: ArmCounts): Record<string, Array<[number, Array<[number, number]>]>> => ({
  baseline: [...counts.baseline].map(([bucket, fields]) => [bucket, [...fields]]),
  canary: [...counts.canary].map(([bucket, fields]) => [bucket, [...fields]]),
});

describe('UnsharedCounts', () => {
  it('batches the deltas recorded since the last batch, and nothing when there are none', () => {
    const counts = new UnsharedCounts(REQUESTS);
    expect(counts.batch(0)).toMatchObject({ seq: 0 });
    counts.add('canary', 10, REQUESTS, 1);
    counts.add('canary', 10, ERRORS, 1);
    counts.add('baseline', 11, REQUESTS, 1);
    const first = counts.batch(0);
    expect(first.seq).toBe(1);
    expect(plain(first.deltas)).toEqual({ baseline: [[11, [[REQUESTS, 1]]]], canary: [[10, [[REQUESTS, 1], [ERRORS, 1]]]] });
    expect(plain(counts.unbatched())).toEqual({ baseline: [], canary: [] });
    counts.acknowledge(first);
    expect(counts.batch(0)).toMatchObject({ seq: 0 });
  });

  it('sends a batch not acknowledged again as it was, same seq, and keeps the deltas recorded since for the next', () => {
    const counts = new UnsharedCounts(REQUESTS);
    counts.add('canary', 10, REQUESTS, 1);
    const first = counts.batch(0);
    counts.add('canary', 10, REQUESTS, 1);
    counts.add('canary', 12, ERRORS, 1);
    expect(counts.batch(0)).toBe(first);
    expect(plain(first.deltas).canary).toEqual([[10, [[REQUESTS, 1]]]]);
    expect(plain(counts.unbatched()).canary).toEqual([
      [10, [[REQUESTS, 1]]],
      [12, [[ERRORS, 1]]],
    ]);
    counts.acknowledge(first);
    const second = counts.batch(0);
    expect(second.seq).toBe(2);
    expect(plain(second.deltas).canary).toEqual([
      [10, [[REQUESTS, 1]]],
      [12, [[ERRORS, 1]]],
    ]);
  });

  it('drops the buckets that left the window from what it keeps, and counts the calls dropped', () => {
    const counts = new UnsharedCounts(REQUESTS);
    counts.add('canary', 10, REQUESTS, 3);
    counts.add('canary', 10, ERRORS, 1);
    counts.add('baseline', 14, REQUESTS, 2);
    const first = counts.batch(0);
    counts.add('canary', 15, REQUESTS, 4);
    counts.add('canary', 20, REQUESTS, 1);
    // Never acknowledged (the store is down) while the window moves on past bucket 12.
    expect(counts.batch(12)).toBe(first);
    expect(plain(first.deltas)).toEqual({ baseline: [[14, [[REQUESTS, 2]]]], canary: [] });
    expect(counts.takeDropped()).toBe(3);
    // Past bucket 15: nothing is left of the first batch, so the next is made of what came since.
    const second = counts.batch(16);
    expect(second.seq).toBe(2);
    expect(plain(second.deltas)).toEqual({ baseline: [], canary: [[20, [[REQUESTS, 1]]]] });
    expect(counts.takeDropped()).toBe(2 + 4);
    expect(counts.takeDropped()).toBe(0);
  });

  it('cancels a delta taken back before it was sent', () => {
    const counts = new UnsharedCounts(REQUESTS);
    counts.add('canary', 10, 7, 1);
    counts.add('canary', 10, 7, -1);
    counts.add('canary', 10, ERRORS, 1);
    expect(plain(counts.batch(0).deltas).canary).toEqual([[10, [[ERRORS, 1]]]]);
  });
});

describe('UnsharedCounts totals and pruning', () => {
  it('sums the batch not acknowledged and the deltas since over the buckets asked for', () => {
    const counts = new UnsharedCounts(REQUESTS);
    counts.add('canary', 10, REQUESTS, 2);
    counts.add('canary', 10, ERRORS, 1);
    counts.batch(0);
    counts.add('canary', 12, REQUESTS, 3);
    counts.add('canary', 30, REQUESTS, 5);
    counts.add('baseline', 12, REQUESTS, 7);
    expect([...counts.totals('canary', { oldest: 10, newest: 29 }, 3)]).toEqual([5, 1, 0]);
    expect([...counts.totals('baseline', { oldest: 11, newest: 30 }, 3)]).toEqual([7, 0, 0]);
  });

  it('once sealed, sends what was counted until then, in at most two batches, then nothing; what comes after is dropped without a word', () => {
    const counts = new UnsharedCounts(REQUESTS);
    counts.add('canary', 10, REQUESTS, 2);
    const sent = counts.batch(0);
    counts.add('canary', 11, REQUESTS, 3);
    counts.seal();
    counts.add('canary', 12, REQUESTS, 4);
    // The batch not acknowledged first, as it was; then the deltas counted before the seal.
    expect(counts.batch(0)).toBe(sent);
    counts.acknowledge(sent);
    const last = counts.batch(0);
    expect(plain(last.deltas).canary).toEqual([[11, [[REQUESTS, 3]]]]);
    expect(counts.done()).toBe(false);
    counts.acknowledge(last);
    expect(counts.batch(0)).toMatchObject({ seq: 0 });
    expect(counts.done()).toBe(true);
    // Counted after the seal: reported, never sent, dropped as it leaves the window, not counted as dropped.
    expect([...counts.totals('canary', { oldest: 0, newest: 100 }, 1)]).toEqual([4]);
    expect(counts.batch(13)).toMatchObject({ seq: 0 });
    expect([...counts.totals('canary', { oldest: 0, newest: 100 }, 1)]).toEqual([0]);
    expect(counts.takeDropped()).toBe(0);
  });
});
