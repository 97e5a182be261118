import { randomBytes } from 'node:crypto';
import type { ResponseStore, StoredResponse } from './response-store';

/**
 * The cases every {@link ResponseStore} passes, run against each: the memory one (a unit spec) and
 * Redis (an integration spec). `store()` gives a fresh, empty store for each case.
 */
export interface ResponseStoreHarness {
  store(): ResponseStore;
}

const NOW = Date.now();
const DAY_MS = 86_400_000;
/** A day after the start of the run: far enough that no case sees it pass. */
export const TOMORROW_MS = NOW + DAY_MS;

/** A new response id, as the gateway makes them (`resp_` and random characters). */
export function newTestResponseId(): string {
  return `resp_${randomBytes(24).toString('hex')}`;
}

/** A response of `owner` to `prompt`, with `ancestors` before it in its conversation. */
export function storedResponse(owner: string, prompt: string, changes: Partial<StoredResponse> = {}): StoredResponse {
  const id = changes.id ?? newTestResponseId();
  return {
    id,
    owner,
    createdAt: Math.floor(NOW / 1000),
    response: {
      id,
      object: 'response',
      created_at: Math.floor(NOW / 1000),
      status: 'completed',
      model: 'gpt-4o-mini',
      store: true,
      output: [
        { type: 'reasoning', id: `rs_${id}`, summary: [], encrypted_content: 'opaque-thinking' },
        { type: 'message', id: `msg_${id}`, role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: `An answer to ${prompt}`, annotations: [] }] },
      ],
      usage: { input_tokens: 12, output_tokens: 7, total_tokens: 19 },
      metadata: { team: 'search', note: null },
    },
    input: [{ id: `msg_in_${id}`, type: 'message', role: 'user', content: [{ type: 'input_text', text: prompt }] }],
    ancestors: [],
    conversationBytes: 400,
    ...changes,
  };
}

export function describeResponseStore(harness: ResponseStoreHarness): void {
  let store: ResponseStore;
  beforeEach(() => {
    store = harness.store();
  });
  afterEach(async () => {
    await store.close();
  });

  it('keeps a response as it was stored: its answer, its input items and its ancestors (text beyond ASCII, nulls, nesting)', async () => {
    const first = storedResponse('acme/search', 'Où est la gare ? 🚉');
    const second = storedResponse('acme/search', 'And the café?', { ancestors: [first.id] });
    await store.put(first, TOMORROW_MS);
    await store.put(second, TOMORROW_MS);
    expect(await store.get('acme/search', first.id)).toEqual(first);
    expect(await store.get('acme/search', second.id)).toEqual(second);
  });

  it('finds nothing under an id it never stored', async () => {
    expect(await store.get('acme/search', 'resp_unknown')).toBeUndefined();
    expect(await store.getMany('acme/search', ['resp_unknown'])).toEqual([undefined]);
    expect(await store.delete('acme/search', 'resp_unknown')).toBe(false);
  });

  it("shows a response to its owner only: another owner's get, getMany and delete find nothing, and leave it be", async () => {
    const response = storedResponse('acme/search', 'mine');
    await store.put(response, TOMORROW_MS);
    expect(await store.get('acme/ads', response.id)).toBeUndefined();
    expect(await store.getMany('acme/ads', [response.id])).toEqual([undefined]);
    expect(await store.delete('acme/ads', response.id)).toBe(false);
    expect(await store.get('acme/search', response.id)).toEqual(response);
  });

  it("gives several responses in the order asked, a gap where one is unknown or not the owner's, the same one twice when asked twice", async () => {
    const a = storedResponse('acme/search', 'a');
    const b = storedResponse('acme/search', 'b', { ancestors: [a.id] });
    const theirs = storedResponse('acme/ads', 'theirs');
    for (const r of [a, b, theirs]) await store.put(r, TOMORROW_MS);
    expect(await store.getMany('acme/search', [b.id, 'resp_unknown', a.id, theirs.id, b.id])).toEqual([b, undefined, a, undefined, b]);
    expect(await store.getMany('acme/search', [])).toEqual([]);
  });

  it('deletes a response once: gone from get and getMany, the rest of its conversation kept', async () => {
    const kept = storedResponse('acme/search', 'kept');
    const deleted = storedResponse('acme/search', 'deleted', { ancestors: [kept.id] });
    await store.put(kept, TOMORROW_MS);
    await store.put(deleted, TOMORROW_MS);
    expect(await store.delete('acme/search', deleted.id)).toBe(true);
    expect(await store.delete('acme/search', deleted.id)).toBe(false);
    expect(await store.get('acme/search', deleted.id)).toBeUndefined();
    expect(await store.getMany('acme/search', [kept.id, deleted.id])).toEqual([kept, undefined]);
  });

  it("purges every response of one owner, counting them, and leaves another owner's be", async () => {
    const first = storedResponse('acme/search', 'first');
    const second = storedResponse('acme/search', 'second', { ancestors: [first.id] });
    const gone = storedResponse('acme/search', 'deleted before');
    const other = storedResponse('acme/ads', 'another project');
    for (const response of [first, second, gone, other]) await store.put(response, TOMORROW_MS);
    await store.delete('acme/search', gone.id);
    expect(await store.purgeOwner('acme/search')).toBe(2);
    expect(await store.getMany('acme/search', [first.id, second.id, gone.id])).toEqual([undefined, undefined, undefined]);
    expect(await store.get('acme/ads', other.id)).toEqual(other);
    // Nothing left: a second purge finds nothing, and the owner stores anew afterwards.
    expect(await store.purgeOwner('acme/search')).toBe(0);
    expect(await store.purgeOwner('nobody/never')).toBe(0);
    const later = storedResponse('acme/search', 'later');
    await store.put(later, TOMORROW_MS);
    expect(await store.get('acme/search', later.id)).toEqual(later);
    expect(await store.purgeOwner('acme/search')).toBe(1);
  });

  it('does not count a response that expired before the purge', async () => {
    const expired = storedResponse('acme/search', 'expired');
    const live = storedResponse('acme/search', 'live');
    await store.put(expired, Date.now() - 1);
    await store.put(live, TOMORROW_MS);
    expect(await store.purgeOwner('acme/search')).toBe(1);
    expect(await store.get('acme/search', live.id)).toBeUndefined();
  });

  it('never takes an id twice, whoever asks: the first response stays as it was', async () => {
    const response = storedResponse('acme/search', 'one');
    await store.put(response, TOMORROW_MS);
    await expect(store.put(storedResponse('initech/ops', 'two', { id: response.id }), TOMORROW_MS)).rejects.toThrow(/exists/);
    await expect(store.put(response, TOMORROW_MS)).rejects.toThrow(/exists/);
    expect(await store.get('acme/search', response.id)).toEqual(response);
    expect(await store.get('initech/ops', response.id)).toBeUndefined();
  });

  it('stores a turn whose ancestors are gone, without bringing them back', async () => {
    const deleted = storedResponse('acme/search', 'deleted');
    await store.put(deleted, TOMORROW_MS);
    await store.delete('acme/search', deleted.id);
    const next = storedResponse('acme/search', 'next', { ancestors: ['resp_never_stored', deleted.id] });
    await store.put(next, TOMORROW_MS);
    expect(await store.getMany('acme/search', [...next.ancestors, next.id])).toEqual([undefined, undefined, next]);
  });

  it('finds nothing of a response stored with an expiry already past', async () => {
    const expired = storedResponse('acme/search', 'expired');
    await store.put(expired, Date.now() - 1);
    expect(await store.get('acme/search', expired.id)).toBeUndefined();
    expect(await store.delete('acme/search', expired.id)).toBe(false);
  });

  it('hands out copies: changing a response stored or read back changes nothing kept', async () => {
    const response = storedResponse('acme/search', 'original');
    const expected = structuredClone(response);
    await store.put(response, TOMORROW_MS);
    response.input.push({ type: 'message', role: 'user', content: 'added after' });
    response.ancestors.push('resp_added');
    const read = await store.get('acme/search', response.id);
    if (read) read.response['status'] = 'failed';
    expect(await store.get('acme/search', response.id)).toEqual(expected);
  });
}
