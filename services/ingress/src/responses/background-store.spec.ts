import { MemoryBackgroundStore } from './background-store';
import { backgroundJob, describeBackgroundStore } from './background-store.cases.testing';

describe('MemoryBackgroundStore', () => {
  describeBackgroundStore('on the system clock', { store: () => new MemoryBackgroundStore() });

  // A clock of its own, far from the system's: the store goes by the clock it was given.
  const fixed = Date.UTC(2025, 5, 1);
  describeBackgroundStore('on a clock of its own', { store: () => new MemoryBackgroundStore(() => fixed), now: () => fixed });

  describe('on a clock that moves', () => {
    let now: number;
    let store: MemoryBackgroundStore;
    beforeEach(() => {
      now = Date.UTC(2025, 5, 1);
      store = new MemoryBackgroundStore(() => now);
    });

    it('drops a job at its expiry, for good: no longer pending, counted, claimed or changed', async () => {
      const job = backgroundJob('acme/search', 'brief');
      const id = job.record.id;
      await store.create(job, now + 60_000, 10);
      now += 59_999;
      expect(await store.byId(id)).toEqual({ job, state: 'queued' });
      now += 1;
      expect(await store.byId(id)).toBeUndefined();
      expect(await store.state(id)).toBeUndefined();
      expect(await store.active(10)).toEqual([]);
      expect(await store.count()).toBe(0);
      expect(await store.claim(id, 'replica-a', 1_000)).toBe(false);
      expect(await store.cancel(id)).toBeUndefined();
      now -= 10_000;
      expect(await store.byId(id)).toBeUndefined();
    });

    it('lets a claim lapse at its last millisecond: then another holder takes it, and the first no longer renews it', async () => {
      const job = backgroundJob('acme/search', 'claimed');
      const id = job.record.id;
      await store.create(job, now + 3_600_000, 10);
      expect(await store.claim(id, 'replica-a', 1_000)).toBe(true);
      now += 999;
      expect(await store.claim(id, 'replica-b', 1_000)).toBe(false);
      expect(await store.renew(id, 'replica-a', 1_000)).toBe(true);
      now += 999;
      expect(await store.claim(id, 'replica-b', 1_000)).toBe(false);
      now += 1;
      expect(await store.renew(id, 'replica-a', 1_000)).toBe(false);
      expect(await store.claim(id, 'replica-b', 1_000)).toBe(true);
    });
  });
});
