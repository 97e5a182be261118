import { describeFileStore, storedFile } from './file-store.cases.testing';
import { ownerOf } from '../access/owner';
import { fileSealKey, newFileId, TOMBSTONE_MS } from './file-store';
import { MemoryFileStore } from './memory-file-store';

describe('MemoryFileStore', () => {
  describeFileStore({ store: () => new MemoryFileStore() });

  it('drops a file once its expiry passes on its clock, at the next look', async () => {
    let now = Date.UTC(2025, 5, 1);
    const store = new MemoryFileStore(() => now);
    const file = storedFile('acme/search', 0, { createdAt: now / 1000, expiresAt: now / 1000 + 60 });
    await store.put(file, Buffer.from('x'));
    now += 59_999;
    expect(await store.get('acme/search', file.id)).toEqual(file);
    now += 1;
    expect(await store.get('acme/search', file.id)).toBeUndefined();
    // Gone for good, not hidden: the clock going back does not bring it back.
    now -= 10_000;
    expect(await store.get('acme/search', file.id)).toBeUndefined();
  });

  it("keeps a deleted file's place for an hour on its clock, then drops it: its id then ends the list as any unknown one", async () => {
    let now = Date.UTC(2025, 5, 1);
    const store = new MemoryFileStore(() => now);
    const at = (i: number) => storedFile('acme/search', 0, { createdAt: now / 1000 + i, expiresAt: now / 1000 + 86_400 });
    const [older, deleted, newer] = [at(0), at(1), at(2)];
    for (const f of [older, deleted, newer]) await store.put(f, Buffer.from('x'));
    await store.delete('acme/search', deleted.id);
    now += TOMBSTONE_MS - 1;
    expect((await store.list('acme/search', { limit: 10, order: 'desc', after: deleted.id })).data).toEqual([older]);
    now += 1;
    expect(await store.list('acme/search', { limit: 10, order: 'desc', after: deleted.id })).toEqual({ data: [], hasMore: false });
    expect((await store.list('acme/search', { limit: 10, order: 'desc' })).data).toEqual([newer, older]);
  });

  it('keeps its own copy: neither the buffer stored nor one read back changes what it holds', async () => {
    const store = new MemoryFileStore();
    const file = storedFile('acme/search', 0);
    const content = Buffer.from('abc');
    await store.put(file, content);
    content.fill(0);
    (await store.content('acme/search', file.id))?.fill(0);
    expect((await store.content('acme/search', file.id))?.toString()).toBe('abc');
  });
});

describe('newFileId', () => {
  it("is 'file-' and 24 base62 characters, never the same twice", () => {
    const ids = Array.from({ length: 2_000 }, newFileId);
    for (const id of ids) expect(id).toMatch(/^file-[0-9A-Za-z]{24}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('ownerOf', () => {
  it("is the key's project, or the key itself when it has none", () => {
    expect(ownerOf({ orgId: 'acme', projectId: 'search', keyId: 'k1' })).toBe('acme/search');
    expect(ownerOf({ orgId: 'acme', projectId: '', keyId: 'k1' })).toBe('acme/key:k1');
  });
});

describe('fileSealKey', () => {
  it('is 32 bytes derived from the secret, its own for each secret', () => {
    expect(fileSealKey('a')).toHaveLength(32);
    expect(fileSealKey('a').equals(fileSealKey('a'))).toBe(true);
    expect(fileSealKey('a').equals(fileSealKey('b'))).toBe(false);
  });
});
