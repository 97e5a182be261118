import { randomBytes } from 'node:crypto';
import { newFileId, type FilePurpose, type FileStore, type StoredFile } from './file-store';

/**
 * The cases every {@link FileStore} passes, run against each: the memory one (a unit spec) and
 * Redis (an integration spec). `store()` gives a fresh, empty store for each case.
 */
export interface FileStoreHarness {
  store(): FileStore;
}

const NOW = Math.floor(Date.now() / 1000);
const DAY = 86_400;

/** A file of `owner` created `i` seconds after the start of the case, kept a day. */
export function storedFile(owner: string, i: number, changes: Partial<StoredFile> = {}): StoredFile {
  return { id: newFileId(), owner, bytes: 3, createdAt: NOW + i, filename: `in-${i}.jsonl`, purpose: 'batch', expiresAt: NOW + i + DAY, ...changes };
}

export function describeFileStore(harness: FileStoreHarness): void {
  let store: FileStore;
  beforeEach(() => {
    store = harness.store();
  });
  afterEach(async () => {
    await store.close();
  });

  it('keeps a file and its content byte for byte (1 MiB of random bytes)', async () => {
    const content = randomBytes(1024 * 1024);
    const file = storedFile('acme/search', 0, { bytes: content.length, filename: 'données.jsonl' });
    await store.put(file, content);
    expect(await store.get('acme/search', file.id)).toEqual(file);
    const read = await store.content('acme/search', file.id);
    expect(read && Buffer.compare(read, content)).toBe(0);
  });

  it('never takes an id twice', async () => {
    const file = storedFile('acme/search', 0);
    await store.put(file, Buffer.from('one'));
    await expect(store.put({ ...file, owner: 'initech/ops' }, Buffer.from('two'))).rejects.toThrow(/exists/);
    expect((await store.content('acme/search', file.id))?.toString()).toBe('one');
  });

  it("shows a file to its owner only: another owner's get, content, list and delete find nothing", async () => {
    const file = storedFile('acme/search', 0);
    await store.put(file, Buffer.from('{"a":1}\n'));
    expect(await store.get('acme/ads', file.id)).toBeUndefined();
    expect(await store.content('acme/ads', file.id)).toBeUndefined();
    expect(await store.list('acme/ads', { limit: 10, order: 'desc' })).toEqual({ data: [], hasMore: false });
    expect(await store.delete('acme/ads', file.id)).toBe(false);
    expect(await store.get('acme/search', file.id)).toEqual(file);
  });

  it('finds nothing under an id it never stored', async () => {
    expect(await store.get('acme/search', 'file-unknown')).toBeUndefined();
    expect(await store.content('acme/search', 'file-unknown')).toBeUndefined();
    expect(await store.delete('acme/search', 'file-unknown')).toBe(false);
  });

  it('lists by creation time, newest first unless asked, a page at a time after a cursor, of one purpose when asked', async () => {
    const purposes: FilePurpose[] = ['batch', 'batch_output', 'batch', 'batch_output', 'batch'];
    const files = purposes.map((purpose, i) => storedFile('acme/search', i, { purpose }));
    // Stored out of order: the list is by creation time, not by when it was stored.
    for (const i of [3, 0, 4, 1, 2]) await store.put(files[i] as StoredFile, Buffer.from(`file ${i}`));
    await store.put(storedFile('acme/ads', 10), Buffer.from('not theirs'));
    const ids = (list: { data: StoredFile[] }): string[] => list.data.map((f) => f.id);
    const id = (i: number): string => (files[i] as StoredFile).id;

    expect(ids(await store.list('acme/search', { limit: 100, order: 'desc' }))).toEqual([4, 3, 2, 1, 0].map(id));
    expect(ids(await store.list('acme/search', { limit: 100, order: 'asc' }))).toEqual([0, 1, 2, 3, 4].map(id));

    const first = await store.list('acme/search', { limit: 2, order: 'desc' });
    expect([ids(first), first.hasMore]).toEqual([[4, 3].map(id), true]);
    const second = await store.list('acme/search', { limit: 2, order: 'desc', after: id(3) });
    expect([ids(second), second.hasMore]).toEqual([[2, 1].map(id), true]);
    const last = await store.list('acme/search', { limit: 2, order: 'desc', after: id(1) });
    expect([ids(last), last.hasMore]).toEqual([[0].map(id), false]);
    // A page that ends exactly at the last file has no more.
    expect((await store.list('acme/search', { limit: 5, order: 'asc' })).hasMore).toBe(false);
    expect(ids(await store.list('acme/search', { limit: 2, order: 'asc', after: id(2) }))).toEqual([3, 4].map(id));

    expect(ids(await store.list('acme/search', { limit: 100, order: 'asc', purpose: 'batch' }))).toEqual([0, 2, 4].map(id));
    const outputs = await store.list('acme/search', { limit: 1, order: 'desc', purpose: 'batch_output' });
    expect([ids(outputs), outputs.hasMore]).toEqual([[3].map(id), true]);
    // The cursor may be a file of another purpose: the page goes on after it.
    expect(ids(await store.list('acme/search', { limit: 100, order: 'asc', purpose: 'batch_output', after: id(2) }))).toEqual([3].map(id));
    // A cursor that is not there ends the list.
    expect(await store.list('acme/search', { limit: 100, order: 'asc', after: 'file-gone' })).toEqual({ data: [], hasMore: false });
  });

  it('deletes a file once: gone from get, content and the list', async () => {
    const kept = storedFile('acme/search', 0);
    const deleted = storedFile('acme/search', 1);
    await store.put(kept, Buffer.from('kept'));
    await store.put(deleted, Buffer.from('deleted'));
    expect(await store.delete('acme/search', deleted.id)).toBe(true);
    expect(await store.delete('acme/search', deleted.id)).toBe(false);
    expect(await store.get('acme/search', deleted.id)).toBeUndefined();
    expect(await store.content('acme/search', deleted.id)).toBeUndefined();
    expect((await store.list('acme/search', { limit: 10, order: 'desc' })).data).toEqual([kept]);
  });

  it('pages on after a deleted file: a client deleting each page it lists reaches every file, both ways, of a purpose too', async () => {
    const purposes: FilePurpose[] = ['batch', 'batch_output', 'batch', 'batch_output', 'batch', 'batch'];
    const files = purposes.map((purpose, i) => storedFile('acme/search', i, { purpose }));
    for (const f of files) await store.put(f, Buffer.from(f.id));
    const id = (i: number): string => (files[i] as StoredFile).id;
    const ids = (list: { data: StoredFile[] }): string[] => list.data.map((f) => f.id);

    // Deleted mid-listing: the cursor still says where the list goes on.
    expect(await store.delete('acme/search', id(4))).toBe(true);
    expect(ids(await store.list('acme/search', { limit: 2, order: 'desc', after: id(4) }))).toEqual([3, 2].map(id));
    expect(ids(await store.list('acme/search', { limit: 2, order: 'asc', after: id(4) }))).toEqual([5].map(id));
    expect(ids(await store.list('acme/search', { limit: 10, order: 'asc', purpose: 'batch_output', after: id(2) }))).toEqual([3].map(id));
    // Not listed itself, not found, and not deleted twice.
    expect(ids(await store.list('acme/search', { limit: 10, order: 'desc' }))).toEqual([5, 3, 2, 1, 0].map(id));
    expect(await store.get('acme/search', id(4))).toBeUndefined();
    expect(await store.content('acme/search', id(4))).toBeUndefined();
    expect(await store.delete('acme/search', id(4))).toBe(false);

    // "for each file in the list: delete it", a page of 2 at a time, newest first: every file goes.
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.list('acme/search', { limit: 2, order: 'desc', after });
      for (const f of page.data) {
        seen.push(f.id);
        expect(await store.delete('acme/search', f.id)).toBe(true);
      }
      if (!page.hasMore) break;
      after = page.data.at(-1)?.id;
    }
    expect(seen).toEqual([5, 3, 2, 1, 0].map(id));
    expect(await store.list('acme/search', { limit: 10, order: 'asc' })).toEqual({ data: [], hasMore: false });
    // Another owner's deleted file is no cursor of this one.
    const theirs = storedFile('acme/ads', 0);
    await store.put(theirs, Buffer.from('theirs'));
    await store.put(storedFile('acme/search', 9), Buffer.from('mine'));
    await store.delete('acme/ads', theirs.id);
    expect(await store.list('acme/search', { limit: 10, order: 'asc', after: theirs.id })).toEqual({ data: [], hasMore: false });
  });

  it('drops a file past its expiry: not found, not listed, not deletable', async () => {
    const live = storedFile('acme/search', 0);
    const expired = storedFile('acme/search', 1, { expiresAt: NOW - 1 });
    await store.put(live, Buffer.from('live'));
    await store.put(expired, Buffer.from('expired'));
    expect(await store.get('acme/search', expired.id)).toBeUndefined();
    expect(await store.content('acme/search', expired.id)).toBeUndefined();
    expect((await store.list('acme/search', { limit: 10, order: 'desc' })).data).toEqual([live]);
    expect(await store.delete('acme/search', expired.id)).toBe(false);
  });
}
