import { randomBytes } from 'node:crypto';
import type { ResponseJson } from '../responses/response-store';
import { itemBytes, type ConversationLimits, type ConversationRecord, type ConversationStore } from './conversation-store';
import { until } from '../redis.testing';

/**
 * The cases every {@link ConversationStore} passes, run against each: the memory one (a unit spec)
 * and Redis (an integration spec). `store()` gives a fresh, empty store for each case; `now()` is
 * the store's clock and `reach(ms)` lets it get to `ms`: the memory store's clock is moved there,
 * Redis's own is waited for.
 */
export interface ConversationStoreHarness {
  store(): ConversationStore;
  now(): number;
  reach(atMs: number): Promise<void>;
}

const NOW = Date.now();
const DAY_MS = 86_400_000;
/** A day after the start of the run: far enough that no case sees it pass. */
export const TOMORROW_MS = NOW + DAY_MS;
/** Limits no case reaches unless it means to. */
export const ROOMY: ConversationLimits = { maxItems: 1_000, maxBytes: 1 << 24 };

/** A new conversation id, as the gateway makes them (`conv_` and random characters). */
export function newTestConversationId(): string {
  return `conv_${randomBytes(24).toString('hex')}`;
}

/** A new conversation of `owner`. */
export function conversationRecord(owner: string, changes: Partial<ConversationRecord> = {}): ConversationRecord {
  return { id: newTestConversationId(), owner, createdAt: Math.floor(NOW / 1000), metadata: { topic: 'trains' }, ...changes };
}

/** A message item with a fresh id. */
export function message(text: string, role: 'user' | 'assistant' = 'user'): ResponseJson {
  const id = `msg_${randomBytes(12).toString('hex')}`;
  return role === 'user'
    ? { id, type: 'message', role, status: 'completed', content: [{ type: 'input_text', text }] }
    : { id, type: 'message', role, status: 'completed', content: [{ type: 'output_text', text, annotations: [] }] };
}

/** A turn's items of every kind a conversation holds: reasoning, a function call and its output, the answer. */
export function turnItems(prompt: string): ResponseJson[] {
  const call = randomBytes(6).toString('hex');
  return [
    message(prompt),
    { id: `rs_${call}`, type: 'reasoning', summary: [], encrypted_content: 'opaque-thinking' },
    { id: `fc_${call}`, type: 'function_call', call_id: `call_${call}`, name: 'lookup', arguments: '{"q":"gare"}', status: 'completed' },
    { id: `fco_${call}`, type: 'function_call_output', call_id: `call_${call}`, output: '{"found":null,"nested":{"list":[1,2.5,"ü"]}}' },
    message(`An answer to ${prompt}`, 'assistant'),
  ];
}

/** The bytes `items` count for. */
export const bytesOf = (items: ResponseJson[]): number => items.reduce((sum, item) => sum + itemBytes(item), 0);

export { until };

const idOf = (item: ResponseJson): string => String(item['id']);

export function describeConversationStore(name: string, harness: ConversationStoreHarness): void {
  describe(name, () => {
    const owner = 'acme/search';
    let store: ConversationStore;
    beforeEach(() => {
      store = harness.store();
    });
    afterEach(async () => {
      await store.close();
    });

    /** A conversation of `owner` created with `items`. */
    async function created(items: ResponseJson[], expiresAtMs = TOMORROW_MS, changes: Partial<ConversationRecord> = {}): Promise<ConversationRecord> {
      const record = conversationRecord(owner, changes);
      await store.create(record, items, expiresAtMs);
      return record;
    }

    it('keeps a conversation as created: its record, its items in order (text beyond ASCII, nulls, nesting), their count and bytes', async () => {
      const items = [...turnItems('Où est la gare ? 🚉'), message('and the café?')];
      const record = await created(items);
      expect(await store.get(owner, record.id)).toEqual({ record, items: items.length, bytes: bytesOf(items) });
      expect(await store.items(owner, record.id)).toEqual(items);
    });

    it('keeps a conversation created without items: none held, no bytes, an empty page', async () => {
      const record = await created([]);
      expect(await store.get(owner, record.id)).toEqual({ record, items: 0, bytes: 0 });
      expect(await store.items(owner, record.id)).toEqual([]);
      expect(await store.page(owner, record.id, { limit: 20, order: 'desc' })).toEqual({ data: [], hasMore: false });
    });

    it('finds nothing under an id it never stored, and writes nothing there', async () => {
      const id = newTestConversationId();
      expect(await store.get(owner, id)).toBeUndefined();
      expect(await store.items(owner, id)).toBeUndefined();
      expect(await store.page(owner, id, { limit: 20, order: 'asc' })).toBeUndefined();
      expect(await store.item(owner, id, 'msg_unknown')).toBeUndefined();
      expect(await store.append(owner, id, [message('into nothing')], ROOMY, TOMORROW_MS)).toBe('not_found');
      expect(await store.deleteItem(owner, id, 'msg_unknown', TOMORROW_MS)).toBe(false);
      expect(await store.setMetadata(owner, id, { a: 'b' }, TOMORROW_MS)).toBeUndefined();
      expect(await store.delete(owner, id)).toBe(false);
      expect(await store.get(owner, id)).toBeUndefined();
    });

    it("shows a conversation to its owner only: another owner's every read and write finds nothing, and changes nothing", async () => {
      const items = turnItems('mine');
      const record = await created(items);
      const other = 'acme/ads';
      const first = idOf(items[0] ?? {});
      expect(await store.get(other, record.id)).toBeUndefined();
      expect(await store.items(other, record.id)).toBeUndefined();
      expect(await store.page(other, record.id, { limit: 20, order: 'asc' })).toBeUndefined();
      expect(await store.page(other, record.id, { limit: 20, order: 'asc', after: 'msg_unknown' })).toBeUndefined();
      expect(await store.item(other, record.id, first)).toBeUndefined();
      expect(await store.append(other, record.id, [message('theirs')], ROOMY, TOMORROW_MS)).toBe('not_found');
      expect(await store.deleteItem(other, record.id, first, TOMORROW_MS)).toBe(false);
      expect(await store.setMetadata(other, record.id, { taken: 'yes' }, TOMORROW_MS)).toBeUndefined();
      expect(await store.delete(other, record.id)).toBe(false);
      expect(await store.get(owner, record.id)).toEqual({ record, items: items.length, bytes: bytesOf(items) });
      expect(await store.items(owner, record.id)).toEqual(items);
    });

    it('never takes an id twice, whoever asks: the first conversation stays as it was', async () => {
      const items = [message('first')];
      const record = await created(items);
      await expect(store.create(conversationRecord('initech/ops', { id: record.id }), [message('second')], TOMORROW_MS)).rejects.toThrow(`conversation ${record.id} exists already`);
      await expect(store.create(record, [], TOMORROW_MS)).rejects.toThrow(/exists already/);
      expect(await store.get(owner, record.id)).toEqual({ record, items: 1, bytes: bytesOf(items) });
      expect(await store.items(owner, record.id)).toEqual(items);
      expect(await store.get('initech/ops', record.id)).toBeUndefined();
    });

    it('appends at the end, in order, counting items and bytes, oldest first', async () => {
      const first = turnItems('first');
      const record = await created(first);
      const second = turnItems('second');
      const third = [message('third')];
      expect(await store.append(owner, record.id, second, ROOMY, TOMORROW_MS)).toBe('added');
      expect(await store.append(owner, record.id, third, ROOMY, TOMORROW_MS)).toBe('added');
      expect(await store.append(owner, record.id, [], ROOMY, TOMORROW_MS)).toBe('added');
      const all = [...first, ...second, ...third];
      expect(await store.items(owner, record.id)).toEqual(all);
      expect(await store.get(owner, record.id)).toEqual({ record, items: all.length, bytes: bytesOf(all) });
    });

    it('refuses an append with an item id the conversation holds, or one id twice, adding nothing of it', async () => {
      const items = turnItems('first');
      const record = await created(items);
      const fresh = message('fresh');
      const again = { ...message('again'), id: idOf(items[0] as ResponseJson) };
      expect(await store.append(owner, record.id, [fresh, again], ROOMY, TOMORROW_MS)).toEqual({ duplicate: idOf(again) });
      expect(await store.append(owner, record.id, [fresh, { ...message('twice'), id: idOf(fresh) }], ROOMY, TOMORROW_MS)).toEqual({ duplicate: idOf(fresh) });
      expect(await store.items(owner, record.id)).toEqual(items);
      expect(await store.get(owner, record.id)).toEqual({ record, items: items.length, bytes: bytesOf(items) });
      // Once an item is deleted, its id may be added again.
      expect(await store.deleteItem(owner, record.id, idOf(items[0] as ResponseJson), TOMORROW_MS)).toBe(true);
      expect(await store.append(owner, record.id, [again], ROOMY, TOMORROW_MS)).toBe('added');
      expect(await store.item(owner, record.id, idOf(again))).toEqual(again);
    });

    it('refuses to create a conversation whose items have one id twice, storing nothing', async () => {
      const item = message('one');
      const record = conversationRecord(owner);
      await expect(store.create(record, [item, { ...message('two'), id: idOf(item) }], TOMORROW_MS)).rejects.toThrow(/two items/);
      expect(await store.get(owner, record.id)).toBeUndefined();
    });

    it("purges every conversation of one owner with its items, counting them, and leaves another owner's be", async () => {
      const first = await created(turnItems('first'));
      const second = await created([]);
      const gone = await created([message('deleted before')]);
      await store.delete(owner, gone.id);
      const other = conversationRecord('acme/ads');
      const otherItems = turnItems('other');
      await store.create(other, otherItems, TOMORROW_MS);
      expect(await store.purgeOwner(owner)).toBe(2);
      for (const id of [first.id, second.id]) {
        expect(await store.get(owner, id)).toBeUndefined();
        expect(await store.items(owner, id)).toBeUndefined();
        expect(await store.append(owner, id, [message('late')], ROOMY, TOMORROW_MS)).toBe('not_found');
      }
      expect(await store.items('acme/ads', other.id)).toEqual(otherItems);
      expect(await store.purgeOwner(owner)).toBe(0);
      expect(await store.purgeOwner('nobody/never')).toBe(0);
      // Created afterwards: kept, and purged by the next purge.
      const later = await created([message('later')]);
      expect(await store.get(owner, later.id)).toMatchObject({ items: 1 });
      expect(await store.purgeOwner(owner)).toBe(1);
    });

    it('appends up to maxItems and no further: past it nothing of the append is added', async () => {
      const record = await created([message('one'), message('two')]);
      const limits = { maxItems: 4, maxBytes: 1 << 24 };
      expect(await store.append(owner, record.id, [message('three'), message('four'), message('five')], limits, TOMORROW_MS)).toBe('too_long');
      expect((await store.get(owner, record.id))?.items).toBe(2);
      expect(await store.append(owner, record.id, [message('three'), message('four')], limits, TOMORROW_MS)).toBe('added');
      expect(await store.append(owner, record.id, [message('five')], limits, TOMORROW_MS)).toBe('too_long');
      expect((await store.items(owner, record.id))?.length).toBe(4);
    });

    it('appends up to maxBytes and no further: past it nothing of the append is added', async () => {
      const start = [message('x'.repeat(100))];
      const record = await created(start);
      const next = [message('y'.repeat(100)), message('z'.repeat(100))];
      // Room for exactly the next two, not a byte more.
      const limits = { maxItems: 1_000, maxBytes: bytesOf([...start, ...next]) };
      const over = [next[0] ?? {}, message('z'.repeat(101))];
      expect(await store.append(owner, record.id, over, limits, TOMORROW_MS)).toBe('too_long');
      expect(await store.get(owner, record.id)).toEqual({ record, items: 1, bytes: bytesOf(start) });
      expect(await store.append(owner, record.id, next, limits, TOMORROW_MS)).toBe('added');
      expect(await store.get(owner, record.id)).toEqual({ record, items: 3, bytes: limits.maxBytes });
      expect(await store.append(owner, record.id, [{ id: 'msg_tiny' }], limits, TOMORROW_MS)).toBe('too_long');
      expect(await store.items(owner, record.id)).toEqual([...start, ...next]);
    });

    it('pages oldest or newest first, by limit and after, saying whether more follow', async () => {
      const items = Array.from({ length: 5 }, (_, i) => message(`item ${i}`));
      const ids = items.map(idOf);
      const record = await created(items.slice(0, 2));
      await store.append(owner, record.id, items.slice(2), ROOMY, TOMORROW_MS);
      const page = async (query: { limit: number; order: 'asc' | 'desc'; after?: string }): Promise<unknown> => {
        const got = await store.page(owner, record.id, query);
        return typeof got === 'object' ? { ids: got.data.map(idOf), hasMore: got.hasMore } : got;
      };
      expect(await page({ limit: 2, order: 'asc' })).toEqual({ ids: ids.slice(0, 2), hasMore: true });
      expect(await page({ limit: 2, order: 'asc', after: ids[1] ?? '' })).toEqual({ ids: ids.slice(2, 4), hasMore: true });
      expect(await page({ limit: 2, order: 'asc', after: ids[3] ?? '' })).toEqual({ ids: [ids[4]], hasMore: false });
      expect(await page({ limit: 2, order: 'asc', after: ids[4] ?? '' })).toEqual({ ids: [], hasMore: false });
      expect(await page({ limit: 3, order: 'desc' })).toEqual({ ids: [ids[4], ids[3], ids[2]], hasMore: true });
      expect(await page({ limit: 3, order: 'desc', after: ids[2] ?? '' })).toEqual({ ids: [ids[1], ids[0]], hasMore: false });
      expect(await page({ limit: 2, order: 'desc', after: ids[2] ?? '' })).toEqual({ ids: [ids[1], ids[0]], hasMore: false });
      expect(await page({ limit: 100, order: 'asc' })).toEqual({ ids, hasMore: false });
      expect(await page({ limit: 5, order: 'desc' })).toEqual({ ids: [...ids].reverse(), hasMore: false });
      // The items themselves, as added.
      expect(await store.page(owner, record.id, { limit: 1, order: 'desc', after: ids[1] })).toEqual({ data: [items[0]], hasMore: false });
      expect(await page({ limit: 2, order: 'asc', after: 'msg_unknown' })).toBe('after_not_found');
      expect(await page({ limit: 2, order: 'desc', after: 'msg_unknown' })).toBe('after_not_found');
    });

    it("finds one item by its id, none under an unknown id or another conversation's", async () => {
      const items = turnItems('find me');
      const record = await created(items);
      const elsewhere = await created([message('elsewhere')]);
      for (const item of items) expect(await store.item(owner, record.id, idOf(item))).toEqual(item);
      expect(await store.item(owner, record.id, 'msg_unknown')).toBeUndefined();
      expect(await store.item(owner, elsewhere.id, idOf(items[0] ?? {}))).toBeUndefined();
    });

    it('deletes exactly the one item asked, and its bytes, once', async () => {
      const items = [message('keep 1'), message('drop'), message('keep 2')];
      const [keep1 = {}, drop = {}, keep2 = {}] = items;
      const record = await created(items);
      expect(await store.deleteItem(owner, record.id, idOf(drop), TOMORROW_MS)).toBe(true);
      expect(await store.deleteItem(owner, record.id, idOf(drop), TOMORROW_MS)).toBe(false);
      expect(await store.deleteItem(owner, record.id, 'msg_unknown', TOMORROW_MS)).toBe(false);
      expect(await store.items(owner, record.id)).toEqual([keep1, keep2]);
      expect(await store.get(owner, record.id)).toEqual({ record, items: 2, bytes: bytesOf([keep1, keep2]) });
      expect(await store.item(owner, record.id, idOf(drop))).toBeUndefined();
      expect(await store.page(owner, record.id, { limit: 10, order: 'asc', after: idOf(drop) })).toBe('after_not_found');
      // What it freed counts for the limits again.
      const added = message('added');
      const limits = { maxItems: 3, maxBytes: bytesOf([keep1, keep2, added]) };
      expect(await store.append(owner, record.id, [added], limits, TOMORROW_MS)).toBe('added');
      expect(await store.get(owner, record.id)).toEqual({ record, items: 3, bytes: limits.maxBytes });
      // Down to none, then added to again.
      for (const item of [keep1, keep2, added]) expect(await store.deleteItem(owner, record.id, idOf(item), TOMORROW_MS)).toBe(true);
      expect(await store.get(owner, record.id)).toEqual({ record, items: 0, bytes: 0 });
      expect(await store.items(owner, record.id)).toEqual([]);
      expect(await store.append(owner, record.id, [drop], ROOMY, TOMORROW_MS)).toBe('added');
      expect(await store.items(owner, record.id)).toEqual([drop]);
    });

    it('replaces the metadata whole, keeping the rest of the record and the items', async () => {
      const items = [message('meta')];
      const record = await created(items, TOMORROW_MS, { metadata: { topic: 'trains', team: 'search' } });
      const after = { ...record, metadata: { topic: 'cafés ☕' } };
      expect(await store.setMetadata(owner, record.id, { topic: 'cafés ☕' }, TOMORROW_MS)).toEqual(after);
      expect(await store.get(owner, record.id)).toEqual({ record: after, items: 1, bytes: bytesOf(items) });
      expect(await store.setMetadata(owner, record.id, {}, TOMORROW_MS)).toEqual({ ...record, metadata: {} });
      expect((await store.get(owner, record.id))?.record.metadata).toEqual({});
      expect(await store.items(owner, record.id)).toEqual(items);
    });

    it('deletes a conversation with all its items, once; its id can then be created anew, with none of the old items', async () => {
      const record = await created(turnItems('old'));
      const other = await created([message('other')]);
      expect(await store.delete(owner, record.id)).toBe(true);
      expect(await store.delete(owner, record.id)).toBe(false);
      expect(await store.get(owner, record.id)).toBeUndefined();
      expect(await store.items(owner, record.id)).toBeUndefined();
      expect(await store.append(owner, record.id, [message('late')], ROOMY, TOMORROW_MS)).toBe('not_found');
      const fresh = [message('new')];
      const again = { ...record, metadata: {} };
      await store.create(again, fresh, TOMORROW_MS);
      expect(await store.get(owner, record.id)).toEqual({ record: again, items: 1, bytes: bytesOf(fresh) });
      expect(await store.items(owner, record.id)).toEqual(fresh);
      expect(await store.get(owner, other.id)).toMatchObject({ items: 1 });
    });

    it('hands out copies: changing items or metadata handed in or read back changes nothing kept', async () => {
      const items = [message('original')];
      const expected = structuredClone(items);
      const metadata = { topic: 'trains' };
      const record = await created(items, TOMORROW_MS, { metadata });
      items.push(message('pushed after'));
      (items[0] ?? {})['status'] = 'changed';
      metadata.topic = 'changed';
      const appended = message('appended');
      await store.append(owner, record.id, [appended], ROOMY, TOMORROW_MS);
      appended['status'] = 'changed';
      const read = await store.items(owner, record.id);
      if (read?.[0]) read[0]['status'] = 'changed';
      const state = await store.get(owner, record.id);
      if (state) state.record.metadata['topic'] = 'changed';
      const one = await store.item(owner, record.id, idOf(expected[0] ?? {}));
      if (one) one['status'] = 'changed';
      const newMetadata = { topic: 'set' };
      await store.setMetadata(owner, record.id, newMetadata, TOMORROW_MS);
      newMetadata.topic = 'changed';
      expect(await store.items(owner, record.id)).toEqual([...expected, { ...appended, status: 'completed' }]);
      expect((await store.get(owner, record.id))?.record.metadata).toEqual({ topic: 'set' });
    });

    it('finds nothing of a conversation created with an expiry already past', async () => {
      const record = await created([message('expired')], harness.now() - 1);
      expect(await store.get(owner, record.id)).toBeUndefined();
      expect(await store.items(owner, record.id)).toBeUndefined();
      expect(await store.append(owner, record.id, [message('late')], ROOMY, TOMORROW_MS)).toBe('not_found');
      expect(await store.delete(owner, record.id)).toBe(false);
      // Its id is free again.
      await store.create(record, [], TOMORROW_MS);
      expect(await store.get(owner, record.id)).toEqual({ record, items: 0, bytes: 0 });
    });

    it('expires a conversation at its expiry unless a later write lengthened it; a write never shortens it', async () => {
      const start = harness.now();
      // Long enough that a loaded machine still reads every conversation before it; Redis is waited for in real time.
      const soon = start + 1_500;
      const later = start + 60_000;
      const brief = await created([message('brief')], soon);
      const appended = await created([message('appended')], soon);
      const relabelled = await created([message('relabelled')], soon);
      const trimmed = await created([message('trimmed'), message('trimmed away')], soon);
      const long = await created([message('long')], later);
      expect(await store.append(owner, appended.id, [message('more')], ROOMY, later)).toBe('added');
      expect(await store.setMetadata(owner, relabelled.id, { topic: 'relabelled' }, later)).toBeDefined();
      const trimmedItems = (await store.items(owner, trimmed.id)) ?? [];
      expect(await store.deleteItem(owner, trimmed.id, idOf(trimmedItems[1] ?? {}), later)).toBe(true);
      // A write given a sooner expiry leaves the later one.
      expect(await store.append(owner, long.id, [message('short-lived write')], ROOMY, soon)).toBe('added');
      // A write given 0 (a change by a key that may keep nothing) leaves the expiry it has, the sooner one or the later.
      const unlengthened = await created([message('unlengthened'), message('unlengthened away')], soon);
      expect(await store.setMetadata(owner, unlengthened.id, { topic: 'unlengthened' }, 0)).toBeDefined();
      expect(await store.deleteItem(owner, unlengthened.id, idOf((await store.items(owner, unlengthened.id))?.[1] ?? {}), 0)).toBe(true);
      expect(await store.setMetadata(owner, long.id, { topic: 'long' }, 0)).toBeDefined();
      for (const record of [brief, appended, relabelled, trimmed, long, unlengthened]) expect(await store.get(owner, record.id)).toBeDefined();

      await harness.reach(soon);
      await until(async () => (await store.get(owner, brief.id)) === undefined, 'the brief conversation to expire');
      await until(async () => (await store.get(owner, unlengthened.id)) === undefined, 'the conversation changed without lengthening to expire');
      expect(await store.items(owner, brief.id)).toBeUndefined();
      expect(await store.append(owner, brief.id, [message('late')], ROOMY, later)).toBe('not_found');
      expect(await store.get(owner, appended.id)).toMatchObject({ items: 2 });
      expect(await store.items(owner, appended.id)).toHaveLength(2);
      expect((await store.get(owner, relabelled.id))?.record.metadata).toEqual({ topic: 'relabelled' });
      expect(await store.items(owner, trimmed.id)).toEqual(trimmedItems.slice(0, 1));
      expect(await store.get(owner, long.id)).toMatchObject({ items: 2, record: { metadata: { topic: 'long' } } });
    });
  });
}
