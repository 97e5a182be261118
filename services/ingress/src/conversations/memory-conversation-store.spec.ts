import { conversationSealKey } from './conversation-store';
import { bytesOf, conversationRecord, describeConversationStore, message, ROOMY, TOMORROW_MS } from './conversation-store.cases.testing';
import { MemoryConversationStore } from './memory-conversation-store';
import { responseSealKey } from '../responses/response-store';

describe('MemoryConversationStore', () => {
  /** The clock of the store the case made last: moved, never waited for. */
  let clock = Date.now();
  describeConversationStore('the cases of every store', {
    store: () => {
      clock = Date.now();
      return new MemoryConversationStore({ maxConversations: 1_000, maxBytes: 1 << 30 }, () => clock);
    },
    now: () => clock,
    reach: async (atMs) => {
      clock = Math.max(clock, atMs);
    },
  });

  const owner = 'acme/search';

  describe('on its own clock', () => {
    let now: number;
    let store: MemoryConversationStore;
    beforeEach(() => {
      now = Date.UTC(2025, 5, 1);
      store = new MemoryConversationStore({ maxConversations: 100, maxBytes: 1 << 30 }, () => now);
    });

    it('drops a conversation once its expiry passes, at the next look, for good', async () => {
      const record = conversationRecord(owner);
      await store.create(record, [message('brief')], now + 60_000);
      now += 59_999;
      expect(await store.get(owner, record.id)).toMatchObject({ items: 1 });
      now += 1;
      expect(await store.get(owner, record.id)).toBeUndefined();
      expect(await store.items(owner, record.id)).toBeUndefined();
      expect(await store.page(owner, record.id, { limit: 10, order: 'asc' })).toBeUndefined();
      // Gone, not hidden: the clock going back does not bring it back.
      now -= 10_000;
      expect(await store.get(owner, record.id)).toBeUndefined();
    });

    it('lengthens the expiry with each write to the one it is given, to the millisecond, never shortening it', async () => {
      const start = now;
      const record = conversationRecord(owner);
      await store.create(record, [message('first')], start + 1_000);
      now = start + 999;
      expect(await store.append(owner, record.id, [message('second')], ROOMY, start + 5_000)).toBe('added');
      expect(await store.setMetadata(owner, record.id, { a: 'b' }, start + 2_000)).toBeDefined();
      now = start + 4_999;
      expect(await store.get(owner, record.id)).toMatchObject({ items: 2 });
      expect(await store.deleteItem(owner, record.id, 'msg_unknown', start + 9_000)).toBe(false);
      now = start + 5_000;
      // A write that found no item is no write: it lengthened nothing.
      expect(await store.get(owner, record.id)).toBeUndefined();
    });

    it('takes an id again once the conversation that had it has expired', async () => {
      const record = conversationRecord(owner);
      await store.create(record, [message('old')], now + 1_000);
      now += 1_000;
      const again = conversationRecord('initech/ops', { id: record.id });
      const fresh = [message('new')];
      await store.create(again, fresh, now + 1_000);
      expect(await store.items('initech/ops', record.id)).toEqual(fresh);
      expect(await store.get(owner, record.id)).toBeUndefined();
    });
  });

  describe('full', () => {
    const expiry = (): number => Date.now() + 60_000;

    it('keeps at most maxConversations, dropping the one written least recently first (a read is no write)', async () => {
      const store = new MemoryConversationStore({ maxConversations: 3, maxBytes: 1 << 30 });
      const [a, b, c, d, e] = Array.from({ length: 5 }, () => conversationRecord(owner));
      if (!a || !b || !c || !d || !e) throw new Error('five records');
      for (const r of [a, b, c]) await store.create(r, [message(r.id)], expiry());
      // a is written again (now the most recent), b only read.
      expect(await store.append(owner, a.id, [message('again')], ROOMY, expiry())).toBe('added');
      expect(await store.items(owner, b.id)).toHaveLength(1);
      await store.create(d, [], expiry());
      expect(await store.get(owner, b.id)).toBeUndefined();
      expect(await store.get(owner, a.id)).toMatchObject({ items: 2 });
      // setMetadata is a write too: c, written before a, now goes after it.
      expect(await store.setMetadata(owner, c.id, { kept: 'yes' }, expiry())).toBeDefined();
      await store.create(e, [], expiry());
      expect(await store.get(owner, a.id)).toBeUndefined();
      expect((await Promise.all([c, d, e].map((r) => store.get(owner, r.id)))).every(Boolean)).toBe(true);
    });

    it('holds at most maxBytes of items in all, dropping the conversations written least recently first', async () => {
      const big = (text: string): ReturnType<typeof message> => message(text.repeat(10_000));
      const [one, two, three] = [[big('a')], [big('b')], [big('c')]];
      const store = new MemoryConversationStore({ maxConversations: 100, maxBytes: bytesOf([...one, ...two]) + 100 });
      const [a, b, c, d] = Array.from({ length: 4 }, () => conversationRecord(owner));
      if (!a || !b || !c || !d) throw new Error('four records');
      await store.create(a, one, expiry());
      await store.create(b, two, expiry());
      await store.create(c, three, expiry());
      expect(await store.get(owner, a.id)).toBeUndefined();
      expect(await store.get(owner, b.id)).toMatchObject({ items: 1 });
      expect(await store.get(owner, c.id)).toMatchObject({ items: 1 });
      // An append that takes the store past maxBytes drops the oldest other conversation (b), not itself.
      expect(await store.append(owner, c.id, [message('small')], ROOMY, expiry())).toBe('added');
      expect(await store.get(owner, b.id)).toBeUndefined();
      expect(await store.get(owner, c.id)).toMatchObject({ items: 2 });
      // Deleting items frees their bytes: the next conversation drops nothing.
      const [cBig] = three;
      expect(await store.deleteItem(owner, c.id, String(cBig?.['id']), expiry())).toBe(true);
      await store.create(d, [big('d')], expiry());
      expect(await store.get(owner, c.id)).toMatchObject({ items: 1 });
      expect(await store.get(owner, d.id)).toMatchObject({ items: 1 });
    });

    it('keeps a conversation larger than maxBytes alone, as the only one: the others are dropped, and it is still added to', async () => {
      const store = new MemoryConversationStore({ maxConversations: 100, maxBytes: 1_000 });
      const small = conversationRecord(owner);
      const huge = conversationRecord(owner);
      await store.create(small, [message('small')], expiry());
      const hugeItems = [message('x'.repeat(5_000))];
      await store.create(huge, hugeItems, expiry());
      expect(await store.get(owner, small.id)).toBeUndefined();
      expect(await store.get(owner, huge.id)).toEqual({ record: huge, items: 1, bytes: bytesOf(hugeItems) });
      expect(await store.append(owner, huge.id, [message('more')], ROOMY, expiry())).toBe('added');
      expect(await store.get(owner, huge.id)).toMatchObject({ items: 2 });
      // The next conversation written drops it in turn.
      const next = conversationRecord(owner);
      await store.create(next, [message('next')], expiry());
      expect(await store.get(owner, huge.id)).toBeUndefined();
      expect(await store.get(owner, next.id)).toMatchObject({ items: 1 });
    });

    it('counts a deleted or expired conversation as no longer held', async () => {
      let now = Date.UTC(2025, 5, 1);
      const store = new MemoryConversationStore({ maxConversations: 2, maxBytes: 1 << 30 }, () => now);
      const [deleted, kept, brief, added] = Array.from({ length: 4 }, () => conversationRecord(owner));
      if (!deleted || !kept || !brief || !added) throw new Error('four records');
      await store.create(deleted, [], now + 60_000);
      await store.create(kept, [], now + 60_000);
      expect(await store.delete(owner, deleted.id)).toBe(true);
      await store.create(brief, [], now + 1_000);
      now += 1_000;
      expect(await store.get(owner, brief.id)).toBeUndefined();
      await store.create(added, [], now + 60_000);
      expect(await store.get(owner, kept.id)).toBeDefined();
      expect(await store.get(owner, added.id)).toBeDefined();
    });

    it('refuses an item without an id before keeping anything of it', async () => {
      const store = new MemoryConversationStore({ maxConversations: 10, maxBytes: 1 << 30 });
      const record = conversationRecord(owner);
      await expect(store.create(record, [message('fine'), { type: 'message' }], TOMORROW_MS)).rejects.toThrow(/no id/);
      expect(await store.get(owner, record.id)).toBeUndefined();
      await store.create(record, [], TOMORROW_MS);
      await expect(store.append(owner, record.id, [message('fine'), { type: 'message', id: 7 }], ROOMY, TOMORROW_MS)).rejects.toThrow(/no id/);
      expect(await store.get(owner, record.id)).toEqual({ record, items: 0, bytes: 0 });
    });
  });
});

describe('conversationSealKey', () => {
  it("is 32 bytes derived from the secret, its own for each secret, not the stored responses' key of the same secret", () => {
    expect(conversationSealKey('a')).toHaveLength(32);
    expect(conversationSealKey('a').equals(conversationSealKey('a'))).toBe(true);
    expect(conversationSealKey('a').equals(conversationSealKey('b'))).toBe(false);
    expect(conversationSealKey('a').equals(responseSealKey('a'))).toBe(false);
  });
});
