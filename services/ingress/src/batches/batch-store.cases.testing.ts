import { randomBytes } from 'node:crypto';
import { randomId, type BatchRecord } from './batch-record';
import type { BatchStore } from './batch-store';
import { until } from '../redis.testing';

/**
 * The cases every {@link BatchStore} passes, run against each: the memory one (a unit spec) and
 * Redis (an integration spec). `stores()` gives, for each case, two stores over the same fresh,
 * empty data, as two replicas see it (for Redis each on its own connection; in memory, where there
 * is one replica, the same store twice).
 */
export interface BatchStoreHarness {
  stores(): [BatchStore, BatchStore];
}

const NOW = Math.floor(Date.now() / 1000);
const DAY = 86_400;

/** A batch of `owner` created `i` seconds after the start of the case, still to run. */
export function batchRecord(owner: string, i: number, changes: Partial<BatchRecord> = {}): BatchRecord {
  const createdAt = NOW + i;
  return {
    id: randomId('batch_'),
    owner,
    keyId: 'search-1',
    endpoint: '/v1/chat/completions',
    inputFileId: 'file-input',
    completionWindow: '24h',
    status: 'validating',
    createdAt,
    expiresAt: createdAt + DAY,
    requestCounts: { total: 3, completed: 0, failed: 0 },
    metadata: { job: `job-${i}` },
    app: 'nightly-eval',
    tags: { team: 'search' },
    ...changes,
  };
}

export { until };

const INPUT = Buffer.from('{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}\n');

export function describeBatchStore(harness: BatchStoreHarness): void {
  let store: BatchStore;
  let peer: BatchStore;
  beforeEach(() => {
    [store, peer] = harness.stores();
  });
  afterEach(async () => {
    await Promise.all([store.close(), peer.close()]);
  });

  it('keeps a batch and shows it to its owner only, on every replica', async () => {
    const batch = batchRecord('acme/search', 0);
    await store.create(batch, INPUT);
    expect(await store.get('acme/search', batch.id)).toEqual(batch);
    expect(await peer.get('acme/search', batch.id)).toEqual(batch);
    expect(await peer.get('acme/ads', batch.id)).toBeUndefined();
    expect(await peer.list('acme/ads', { limit: 10 })).toEqual({ data: [], hasMore: false });
    expect(await store.get('acme/search', 'batch_unknown')).toBeUndefined();
  });

  it("finds no batch under an id that is not a batch's, such as another key of a running batch (its claim, input or results)", async () => {
    const batch = batchRecord('acme/search', 0);
    await store.create(batch, INPUT);
    expect(await store.claim(batch.id, 'replica-a', 60_000)).toBe(true);
    await store.saveResult(batch.id, 0, '{"ok":true,"line":"a"}');
    const change = jest.fn((b: BatchRecord) => b);
    for (const id of [`${batch.id}:claim`, `${batch.id}:input`, `${batch.id}:results`, `${batch.id}:x`, 'batch_', '']) {
      expect(await peer.get('acme/search', id)).toBeUndefined();
      expect(await peer.byId(id)).toBeUndefined();
      expect(await peer.update(id, change)).toBeUndefined();
    }
    expect(change).not.toHaveBeenCalled();
    expect(await peer.get('acme/search', batch.id)).toEqual(batch);
  });

  it('keeps its own copy: changing the record it was given or one it gave back changes nothing stored', async () => {
    const batch = batchRecord('acme/search', 0);
    await store.create(batch, INPUT);
    const stored = structuredClone(batch);
    batch.requestCounts.completed = 99;
    const read = await store.get('acme/search', batch.id);
    if (read) read.status = 'cancelled';
    expect(await store.get('acme/search', batch.id)).toEqual(stored);
  });

  it("lists an owner's batches newest first, a page at a time after a cursor", async () => {
    const batches = Array.from({ length: 5 }, (_, i) => batchRecord('acme/search', i));
    // Running or not (no input), every batch is listed.
    for (const [n, b] of batches.entries()) await store.create(b, n % 2 === 0 ? INPUT : undefined);
    await store.create(batchRecord('acme/ads', 10), INPUT);
    const ids = (page: { data: BatchRecord[] }): string[] => page.data.map((b) => b.id);
    const id = (n: number): string => (batches[n] as BatchRecord).id;

    const all = await peer.list('acme/search', { limit: 100 });
    expect([ids(all), all.hasMore]).toEqual([[4, 3, 2, 1, 0].map(id), false]);
    expect(all.data[0]).toEqual(batches[4]);
    const first = await peer.list('acme/search', { limit: 2 });
    expect([ids(first), first.hasMore]).toEqual([[4, 3].map(id), true]);
    const second = await peer.list('acme/search', { limit: 2, after: id(3) });
    expect([ids(second), second.hasMore]).toEqual([[2, 1].map(id), true]);
    const last = await peer.list('acme/search', { limit: 2, after: id(1) });
    expect([ids(last), last.hasMore]).toEqual([[0].map(id), false]);
    // A page that ends exactly at the last batch has no more; one after the last is empty.
    expect((await peer.list('acme/search', { limit: 5 })).hasMore).toBe(false);
    expect(await peer.list('acme/search', { limit: 2, after: id(0) })).toEqual({ data: [], hasMore: false });
    // A cursor that is not there (or another owner's) ends the list.
    expect(await peer.list('acme/search', { limit: 2, after: 'batch_gone' })).toEqual({ data: [], hasMore: false });
  });

  it('changes a batch by a function of what is stored, and gives back the batch as stored after', async () => {
    const batch = batchRecord('acme/search', 0);
    await store.create(batch, INPUT);
    const started = await peer.update(batch.id, (b) => ({ ...b, status: 'in_progress', inProgressAt: NOW + 5 }));
    expect(started).toEqual({ ...batch, status: 'in_progress', inProgressAt: NOW + 5 });
    expect(await store.get('acme/search', batch.id)).toEqual(started);
    // A change that returns undefined leaves it, and gives back what is stored.
    let seen: BatchRecord | undefined;
    const left = await store.update(batch.id, (b) => {
      seen = b;
      return undefined;
    });
    expect(seen).toEqual(started);
    expect(left).toEqual(started);
    expect(await store.get('acme/search', batch.id)).toEqual(started);
    // A batch that is not there is not changed, nor made.
    const change = jest.fn((b: BatchRecord) => b);
    expect(await store.update('batch_unknown', change)).toBeUndefined();
    expect(change).not.toHaveBeenCalled();
    expect(await store.get('acme/search', 'batch_unknown')).toBeUndefined();
  });

  it('applies every one of many concurrent changes from two replicas: none is lost', async () => {
    const batch = batchRecord('acme/search', 0, { status: 'in_progress', requestCounts: { total: 40, completed: 0, failed: 0 } });
    await store.create(batch, INPUT);
    const count = (b: BatchRecord): BatchRecord => ({ ...b, requestCounts: { ...b.requestCounts, completed: b.requestCounts.completed + 1 } });
    await Promise.all([
      ...Array.from({ length: 20 }, (_, n) => (n % 2 === 0 ? store : peer).update(batch.id, count)),
      // A cancel while the runner counts: both stand.
      peer.update(batch.id, (b) => ({ ...b, status: 'cancelling', cancellingAt: NOW + 1 })),
    ]);
    expect(await store.get('acme/search', batch.id)).toMatchObject({ status: 'cancelling', cancellingAt: NOW + 1, requestCounts: { total: 40, completed: 20, failed: 0 } });
  });

  it('lets one holder at a time claim an active batch: another claims it once it is released, and only the holder renews or releases it', async () => {
    const running = batchRecord('acme/search', 0);
    const failed = batchRecord('acme/search', 1, { status: 'failed' });
    await store.create(running, INPUT);
    // A batch that failed validation has no input and never runs.
    await store.create(failed, undefined);
    expect(await peer.active()).toEqual([running.id]);

    expect(await store.claim(running.id, 'replica-a', 60_000)).toBe(true);
    expect(await peer.claim(running.id, 'replica-b', 60_000)).toBe(false);
    expect(await peer.renew(running.id, 'replica-b', 60_000)).toBe(false);
    expect(await store.renew(running.id, 'replica-a', 60_000)).toBe(true);
    // Released by another holder: still replica-a's.
    await peer.release(running.id, 'replica-b');
    expect(await peer.claim(running.id, 'replica-b', 60_000)).toBe(false);
    await store.release(running.id, 'replica-a');
    expect(await peer.claim(running.id, 'replica-b', 60_000)).toBe(true);
    expect(await store.claim(running.id, 'replica-a', 60_000)).toBe(false);
    expect(await store.renew(running.id, 'replica-a', 60_000)).toBe(false);
    // Claiming changes neither the batch nor whether it is active.
    expect(await store.get('acme/search', running.id)).toEqual(running);
    expect(await store.active()).toEqual([running.id]);
  });

  it('lets a claim lapse after its time: then another holder takes it, and the first can no longer renew it', async () => {
    const batch = batchRecord('acme/search', 0);
    await store.create(batch, INPUT);
    const claimedAt = Date.now();
    expect(await store.claim(batch.id, 'replica-a', 300)).toBe(true);
    expect(await peer.claim(batch.id, 'replica-b', 300)).toBe(false);
    await until(() => peer.claim(batch.id, 'replica-b', 60_000), 'the claim to lapse');
    // Not before its time (a few ms of clock granularity aside).
    expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(290);
    expect(await store.renew(batch.id, 'replica-a', 60_000)).toBe(false);
    expect(await store.claim(batch.id, 'replica-a', 60_000)).toBe(false);
  });

  it('keeps the input byte for byte (not UTF-8 text: any bytes), and none for a batch that will not run', async () => {
    const bytes = Buffer.concat([randomBytes(64 * 1024), Buffer.from([0xff, 0xfe, 0x00, 0xc3]), Buffer.from('héllo ✓')]);
    const batch = batchRecord('acme/search', 0);
    const failed = batchRecord('acme/search', 1, { status: 'failed' });
    await store.create(batch, bytes);
    await store.create(failed, undefined);
    const read = await peer.input(batch.id);
    expect(read && Buffer.compare(read, bytes)).toBe(0);
    expect(await peer.input(failed.id)).toBeUndefined();
    expect(await peer.input('batch_unknown')).toBeUndefined();
  });

  it("keeps each line's result by its index, the last one written for an index, each batch's apart", async () => {
    const batch = batchRecord('acme/search', 0);
    const other = batchRecord('acme/search', 1);
    await store.create(batch, INPUT);
    await store.create(other, INPUT);
    expect(await store.results(batch.id)).toEqual(new Map());
    await store.saveResult(batch.id, 2, '{"ok":true,"line":"two"}');
    await peer.saveResult(batch.id, 0, '{"ok":false,"line":"zéro ✓"}');
    await store.saveResult(batch.id, 2, '{"ok":true,"line":"two again"}');
    await peer.saveResult(other.id, 0, '{"ok":true,"line":"other"}');
    expect(await peer.results(batch.id)).toEqual(
      new Map([
        [0, '{"ok":false,"line":"zéro ✓"}'],
        [2, '{"ok":true,"line":"two again"}'],
      ]),
    );
    expect(await store.results(other.id)).toEqual(new Map([[0, '{"ok":true,"line":"other"}']]));
  });

  it('keeps no result of a batch once it is finished: one written after (by a replica whose claim lapsed) is dropped', async () => {
    const batch = batchRecord('acme/search', 0);
    await store.create(batch, INPUT);
    await store.saveResult(batch.id, 0, '{"ok":true,"line":"a"}');
    await store.finish(batch.id);
    await peer.saveResult(batch.id, 1, '{"ok":true,"line":"late"}');
    expect(await store.results(batch.id)).toEqual(new Map());
    expect(await peer.results(batch.id)).toEqual(new Map());
  });

  it('finishes a batch: no longer active, its input and results gone, the batch itself kept', async () => {
    const batch = batchRecord('acme/search', 0);
    const other = batchRecord('acme/search', 1);
    await store.create(batch, INPUT);
    await store.create(other, INPUT);
    await store.saveResult(batch.id, 0, '{"ok":true,"line":"a"}');
    await store.saveResult(other.id, 0, '{"ok":true,"line":"b"}');
    expect(await store.claim(batch.id, 'replica-a', 60_000)).toBe(true);
    await store.update(batch.id, (b) => ({ ...b, status: 'completed', completedAt: NOW + 9 }));
    await peer.finish(batch.id);
    expect(await store.active()).toEqual([other.id]);
    expect(await store.input(batch.id)).toBeUndefined();
    expect(await store.results(batch.id)).toEqual(new Map());
    expect(await store.get('acme/search', batch.id)).toMatchObject({ id: batch.id, status: 'completed', completedAt: NOW + 9 });
    expect((await store.list('acme/search', { limit: 10 })).data.map((b) => b.id)).toEqual([other.id, batch.id]);
    // The other batch is untouched.
    expect(await store.results(other.id)).toEqual(new Map([[0, '{"ok":true,"line":"b"}']]));
    expect((await store.input(other.id))?.equals(INPUT)).toBe(true);
  });
}
