import { describeChatCompletionStore, storedCompletion } from './chat-completion-store.cases.testing';
import { MemoryChatCompletionStore } from './memory-chat-completion-store';

describe('MemoryChatCompletionStore', () => {
  describeChatCompletionStore({ store: () => new MemoryChatCompletionStore({ maxCompletions: 1_000, maxBytes: 1 << 30 }) });

  describe('on its own clock', () => {
    let now: number;
    beforeEach(() => {
      now = Date.UTC(2025, 5, 1);
    });

    it('drops a completion once its expiry passes, from reads and from its owner’s index', async () => {
      const store = new MemoryChatCompletionStore({ maxCompletions: 100, maxBytes: 1 << 30 }, () => now);
      const record = storedCompletion('acme/search', 'brief', { createdAtMs: now });
      await store.put(record, now + 60_000);
      now += 59_999;
      expect(await store.get('acme/search', record.id)).toEqual(record);
      now += 1;
      expect(await store.getMany('acme/search', [record.id])).toEqual([undefined]);
      expect(await store.ids('acme/search', { order: 'asc', count: 10 })).toEqual([]);
      expect(await store.delete('acme/search', record.id)).toBe(false);
      // Its id is free again.
      await store.put(record, now + 60_000);
      expect(await store.get('acme/search', record.id)).toEqual(record);
    });

    it('keeps at most maxCompletions, and at most maxBytes, dropping the oldest first; refuses one larger than the whole', async () => {
      const store = new MemoryChatCompletionStore({ maxCompletions: 2, maxBytes: 4_000 }, () => now);
      const [a, b, c] = ['a', 'b', 'c'].map((p) => storedCompletion('acme/search', p));
      for (const record of [a, b, c]) if (record) await store.put(record, now + 60_000);
      expect(await store.getMany('acme/search', [a?.id ?? '', b?.id ?? '', c?.id ?? ''])).toEqual([undefined, b, c]);
      const large = storedCompletion('acme/search', 'x'.repeat(1_200));
      await store.put(large, now + 60_000);
      // b, c and the large one do not fit in 4000 bytes together: the oldest goes.
      expect(await store.get('acme/search', b?.id ?? '')).toBeUndefined();
      expect(await store.get('acme/search', large.id)).toEqual(large);
      expect(await store.get('acme/search', c?.id ?? '')).toEqual(c);
      await expect(store.put(storedCompletion('acme/search', 'y'.repeat(5_000)), now + 60_000)).rejects.toThrow(/larger/);
    });

    it('holds maxBytes when a metadata change makes a completion larger: the oldest others go', async () => {
      const store = new MemoryChatCompletionStore({ maxCompletions: 10, maxBytes: 4_000 }, () => now);
      const [a, b, c] = ['a', 'b', 'c'].map((p) => storedCompletion('acme/search', p));
      for (const record of [a, b, c]) if (record) await store.put(record, now + 60_000);
      const metadata = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'v'.repeat(300)]));
      expect((await store.setMetadata('acme/search', c?.id ?? '', metadata))?.metadata).toEqual(metadata);
      expect(await store.get('acme/search', a?.id ?? '')).toBeUndefined();
      expect((await store.get('acme/search', c?.id ?? ''))?.metadata).toEqual(metadata);
      const kept = (await store.getMany('acme/search', [a?.id ?? '', b?.id ?? '', c?.id ?? ''])).filter((record) => record !== undefined);
      expect(JSON.stringify(kept).length).toBeLessThanOrEqual(4_000);
    });
  });
});
