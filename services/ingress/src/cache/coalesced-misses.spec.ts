import { CoalescedMisses } from './coalesced-misses';

describe('CoalescedMisses (single flight of cache misses)', () => {
  it('makes the first request of a key its leader and gives every waiter the stored value', async () => {
    const misses = new CoalescedMisses<string>(60_000);
    const first = misses.join('k');
    expect(first.lead).toBeDefined();
    const waiters = [misses.join('k'), misses.join('k')];
    expect(waiters.every((w) => w.wait !== undefined)).toBe(true);
    // Another key is led on its own.
    expect(misses.join('other').lead).toBeDefined();
    expect(misses.waiting).toBe(2);

    first.lead?.stored('sealed entry');
    await expect(Promise.all(waiters.map((w) => w.wait))).resolves.toEqual([
      { outcome: 'stored', value: 'sealed entry' },
      { outcome: 'stored', value: 'sealed entry' },
    ]);
    expect(misses.waiting).toBe(0);
    // Settled and forgotten: the next request leads a flight of its own.
    expect(misses.join('k').lead).toBeDefined();
  });

  it('lets the waiters go when the leader abandons, and only the first settlement counts', async () => {
    const misses = new CoalescedMisses<string>(60_000);
    const { lead } = misses.join('k');
    const waiter = misses.join('k').wait;
    lead?.abandon();
    lead?.stored('too late');
    await expect(waiter).resolves.toEqual({ outcome: 'abandoned' });
    expect(misses.inFlight).toBe(0);
  });

  it('does not let a settled leader end the flight a later leader of the same key leads', async () => {
    const misses = new CoalescedMisses<string>(60_000);
    const old = misses.join('k').lead;
    old?.abandon();
    const current = misses.join('k').lead;
    const waiter = misses.join('k').wait;
    old?.stored('stale');
    expect(misses.inFlight).toBe(1);
    current?.stored('fresh');
    await expect(waiter).resolves.toEqual({ outcome: 'stored', value: 'fresh' });
  });

  it('stops waiting after waitMs: the waiter goes on, the leader keeps its flight', async () => {
    const misses = new CoalescedMisses<string>(5);
    const { lead } = misses.join('k');
    await expect(misses.join('k').wait).resolves.toEqual({ outcome: 'timed_out' });
    expect(misses.waiting).toBe(0);
    expect(misses.inFlight).toBe(1);
    // A request arriving now still waits for the leader, which settles it.
    const later = misses.join('k').wait;
    lead?.stored('v');
    await expect(later).resolves.toEqual({ outcome: 'stored', value: 'v' });
  });

  it('stops waiting when the waiter is aborted (its client left), without settling the flight', async () => {
    const misses = new CoalescedMisses<string>(60_000);
    const { lead } = misses.join('k');
    const abort = new AbortController();
    const leaving = misses.join('k', abort.signal).wait;
    const staying = misses.join('k').wait;
    abort.abort();
    await expect(leaving).resolves.toEqual({ outcome: 'cancelled' });
    expect(misses.waiting).toBe(1);
    lead?.stored('v');
    await expect(staying).resolves.toEqual({ outcome: 'stored', value: 'v' });
    // A signal aborted already: no wait at all.
    const { lead: next } = misses.join('k2');
    await expect(misses.join('k2', AbortSignal.abort()).wait).resolves.toEqual({ outcome: 'cancelled' });
    next?.abandon();
  });

  it('lets a leader wait on its own flight as its waiters do, settled by what it follows', async () => {
    const misses = new CoalescedMisses<string>(60_000);
    const { lead } = misses.join('k');
    const following = lead?.follow();
    const waiter = misses.join('k').wait;
    expect(misses.waiting).toBe(2);
    const gone = new AbortController();
    const leaving = lead?.follow(gone.signal);
    gone.abort();
    await expect(leaving).resolves.toEqual({ outcome: 'cancelled' });
    lead?.stored('from elsewhere');
    await expect(Promise.all([following, waiter])).resolves.toEqual([
      { outcome: 'stored', value: 'from elsewhere' },
      { outcome: 'stored', value: 'from elsewhere' },
    ]);
    expect(misses.waiting).toBe(0);
  });
});
