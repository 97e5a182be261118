import { batchRecord, describeBatchStore } from './batch-store.cases.testing';
import { MemoryBatchStore } from './batch-store';

describe('MemoryBatchStore', () => {
  describeBatchStore({
    stores: () => {
      const store = new MemoryBatchStore();
      return [store, store];
    },
  });

  it('lets a claim lapse on its own clock: held until its last millisecond, free at it', async () => {
    let now = Date.UTC(2025, 5, 1);
    const store = new MemoryBatchStore(() => now);
    const batch = batchRecord('acme/search', 0);
    await store.create(batch, Buffer.from('x'));
    expect(await store.claim(batch.id, 'replica-a', 1_000)).toBe(true);
    now += 999;
    expect(await store.claim(batch.id, 'replica-b', 1_000)).toBe(false);
    // Renewed: a second again from now.
    expect(await store.renew(batch.id, 'replica-a', 1_000)).toBe(true);
    now += 999;
    expect(await store.claim(batch.id, 'replica-b', 1_000)).toBe(false);
    now += 1;
    expect(await store.renew(batch.id, 'replica-a', 1_000)).toBe(false);
    expect(await store.claim(batch.id, 'replica-b', 1_000)).toBe(true);
  });
});
