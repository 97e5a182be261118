import { randomBytes } from 'node:crypto';
import type { ChatCompletionStore, IndexPage, StoredChatCompletion } from './chat-completion-store';

/**
 * The cases every {@link ChatCompletionStore} passes, run against each: the memory one (a unit spec)
 * and Redis (an integration spec). `store()` gives a fresh, empty store for each case.
 */
export interface ChatCompletionStoreHarness {
  store(): ChatCompletionStore;
}

const NOW = Date.now();
/** A day after the start of the run: far enough that no case sees it pass. */
export const TOMORROW_MS = NOW + 86_400_000;

/** A new completion id, as the gateway makes them. */
export function newTestCompletionId(): string {
  return `chatcmpl-${randomBytes(24).toString('base64url')}`;
}

/** A completion of `owner` answering `prompt`, created `atMs` (Unix ms). */
export function storedCompletion(owner: string, prompt: string, changes: Partial<StoredChatCompletion> = {}): StoredChatCompletion {
  const id = changes.id ?? newTestCompletionId();
  return {
    id,
    owner,
    createdAtMs: NOW,
    requestedModel: 'gpt-4o-mini',
    metadata: { team: 'search' },
    completion: {
      id,
      object: 'chat.completion',
      created: Math.floor(NOW / 1000),
      model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: `An answer to ${prompt}`, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19, cost: 0.000123 },
    },
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: prompt },
    ],
    ...changes,
  };
}

/** The ids of a page of the owner's index (undefined: `after` is an id not in it). */
async function idsOf(store: ChatCompletionStore, owner: string, page: IndexPage): Promise<string[] | undefined> {
  return (await store.ids(owner, page))?.map((entry) => entry.id);
}

/** The ids of every page of the owner's index, `count` at a time, following each page's last id. */
async function allIds(store: ChatCompletionStore, owner: string, order: 'asc' | 'desc', count: number): Promise<string[]> {
  const ids: string[] = [];
  for (;;) {
    const page = await idsOf(store, owner, { after: ids.at(-1), order, count });
    if (!page) throw new Error('the last id of a page was not in the index');
    ids.push(...page);
    if (page.length < count) return ids;
  }
}

export function describeChatCompletionStore(harness: ChatCompletionStoreHarness): void {
  let store: ChatCompletionStore;
  beforeEach(() => {
    store = harness.store();
  });
  afterEach(async () => store.close());

  it('keeps a completion for its owner only, as it was put', async () => {
    const record = storedCompletion('acme/search', 'Name a colour.');
    await store.put(record, TOMORROW_MS);
    expect(await store.get('acme/search', record.id)).toEqual(record);
    expect(await store.get('acme/ads', record.id)).toBeUndefined();
    expect(await store.get('acme/search', newTestCompletionId())).toBeUndefined();
    expect(await store.getMany('acme/search', [record.id, newTestCompletionId()])).toEqual([record, undefined]);
    expect(await store.getMany('acme/ads', [record.id])).toEqual([undefined]);
  });

  it('never takes an id twice, whoever asks', async () => {
    const record = storedCompletion('acme/search', 'first');
    await store.put(record, TOMORROW_MS);
    await expect(store.put(storedCompletion('acme/ads', 'second', { id: record.id }), TOMORROW_MS)).rejects.toThrow(/exists already/);
    expect((await store.get('acme/search', record.id))?.messages).toEqual(record.messages);
  });

  it('keeps no link to what it was given: a later change by the caller, or to what it read, is not kept', async () => {
    const record = storedCompletion('acme/search', 'unchanged');
    await store.put(record, TOMORROW_MS);
    record.metadata['team'] = 'changed';
    const read = await store.get('acme/search', record.id);
    if (read) read.metadata['team'] = 'changed again';
    expect((await store.get('acme/search', record.id))?.metadata).toEqual({ team: 'search' });
  });

  it("lists an owner's ids by creation, then id, either way, a page after another; an unknown `after` is undefined", async () => {
    const base = Date.now();
    const made = [2, 0, 1, 1].map((offset, i) => storedCompletion('acme/search', `n${i}`, { createdAtMs: base + offset * 1000 }));
    for (const record of made) await store.put(record, TOMORROW_MS);
    await store.put(storedCompletion('acme/ads', 'elsewhere'), TOMORROW_MS);
    const ties = [made[2], made[3]].map((r) => r?.id ?? '').sort();
    const ascending = [made[1]?.id, ...ties, made[0]?.id];
    expect(await allIds(store, 'acme/search', 'asc', 2)).toEqual(ascending);
    expect(await allIds(store, 'acme/search', 'asc', 10)).toEqual(ascending);
    expect(await allIds(store, 'acme/search', 'desc', 3)).toEqual([...ascending].reverse());
    expect(await store.ids('acme/search', { after: ascending[1], order: 'asc', count: 1 })).toEqual([{ id: ascending[2], createdAtMs: base + 1000 }]);
    expect(await idsOf(store, 'acme/search', { after: newTestCompletionId(), order: 'asc', count: 5 })).toBeUndefined();
    // Another owner's id is not in this owner's index.
    const [theirs] = (await idsOf(store, 'acme/ads', { order: 'asc', count: 5 })) ?? [];
    expect(await idsOf(store, 'acme/search', { after: theirs, order: 'asc', count: 5 })).toBeUndefined();
    expect(await idsOf(store, 'acme/nobody', { order: 'desc', count: 5 })).toEqual([]);
  });

  it('pages on from an entry read before, after its completion has gone, either way, ties by id included', async () => {
    const base = Date.now();
    const made = [0, 1, 1, 1, 2].map((offset, i) => storedCompletion('acme/search', `g${i}`, { createdAtMs: base + offset * 1000 }));
    for (const record of made) await store.put(record, TOMORROW_MS);
    const ascending = (await store.ids('acme/search', { order: 'asc', count: 10 })) ?? [];
    expect(ascending.map((entry) => entry.createdAtMs)).toEqual([0, 1, 1, 1, 2].map((offset) => base + offset * 1000));
    for (const at of [0, 1, 2, 3, 4]) {
      const entry = ascending[at];
      if (!entry) throw new Error('no entry');
      await store.delete('acme/search', entry.id);
      const ids = ascending.filter((_, i) => i !== at).map((e) => e.id);
      // Gone: as an id, it is unknown; as the entry read, it still marks where the page starts.
      expect(await store.ids('acme/search', { after: entry.id, order: 'asc', count: 10 })).toBeUndefined();
      expect(await idsOf(store, 'acme/search', { after: entry, order: 'asc', count: 10 })).toEqual(ids.slice(at));
      expect(await idsOf(store, 'acme/search', { after: entry, order: 'asc', count: 1 })).toEqual(ids.slice(at, at + 1));
      expect(await idsOf(store, 'acme/search', { after: entry, order: 'desc', count: 10 })).toEqual(ids.slice(0, at).reverse());
      expect(await idsOf(store, 'acme/search', { after: entry, order: 'desc', count: 1 })).toEqual(ids.slice(Math.max(0, at - 1), at));
      await store.put(made.find((record) => record.id === entry.id) ?? made[0]!, TOMORROW_MS);
    }
    // An entry still there is a start like its id.
    expect(await store.ids('acme/search', { after: ascending[1], order: 'asc', count: 2 })).toEqual(ascending.slice(2, 4));
  });

  it('replaces the metadata of the owner’s completion only, keeping the rest', async () => {
    const record = storedCompletion('acme/search', 'label me');
    await store.put(record, TOMORROW_MS);
    expect(await store.setMetadata('acme/ads', record.id, { stolen: 'yes' })).toBeUndefined();
    expect(await store.setMetadata('acme/search', newTestCompletionId(), { a: 'b' })).toBeUndefined();
    const changed = await store.setMetadata('acme/search', record.id, { topic: 'colours' });
    expect(changed).toEqual({ ...record, metadata: { topic: 'colours' } });
    expect(await store.get('acme/search', record.id)).toEqual({ ...record, metadata: { topic: 'colours' } });
    expect((await store.setMetadata('acme/search', record.id, {}))?.metadata).toEqual({});
  });

  it("deletes the owner's completion once, never another owner's, and takes it out of the index", async () => {
    const record = storedCompletion('acme/search', 'delete me');
    const kept = storedCompletion('acme/search', 'keep me');
    await store.put(record, TOMORROW_MS);
    await store.put(kept, TOMORROW_MS);
    expect(await store.delete('acme/ads', record.id)).toBe(false);
    expect(await store.delete('acme/search', record.id)).toBe(true);
    expect(await store.delete('acme/search', record.id)).toBe(false);
    expect(await store.get('acme/search', record.id)).toBeUndefined();
    expect(await idsOf(store, 'acme/search', { order: 'asc', count: 10 })).toEqual([kept.id]);
    expect(await store.setMetadata('acme/search', record.id, { a: 'b' })).toBeUndefined();
  });

  it("purges every completion of an owner, and no other owner's", async () => {
    const mine = Array.from({ length: 7 }, (_, i) => storedCompletion('acme/search', `p${i}`));
    const theirs = storedCompletion('acme/ads', 'stays');
    for (const record of [...mine, theirs]) await store.put(record, TOMORROW_MS);
    expect(await store.purgeOwner('acme/search')).toBe(7);
    expect(await store.getMany('acme/search', mine.map((r) => r.id))).toEqual(mine.map(() => undefined));
    expect(await idsOf(store, 'acme/search', { order: 'asc', count: 10 })).toEqual([]);
    expect(await store.get('acme/ads', theirs.id)).toEqual(theirs);
    expect(await store.purgeOwner('acme/search')).toBe(0);
    // The owner stores again afterwards, as new.
    const again = storedCompletion('acme/search', 'after the purge');
    await store.put(again, TOMORROW_MS);
    expect(await idsOf(store, 'acme/search', { order: 'asc', count: 10 })).toEqual([again.id]);
  });
}
