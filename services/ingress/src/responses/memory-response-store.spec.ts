import { fileSealKey } from '../batches/file-store';
import { MemoryResponseStore } from './memory-response-store';
import { responseSealKey } from './response-store';
import { describeResponseStore, storedResponse } from './response-store.cases.testing';

describe('MemoryResponseStore', () => {
  describeResponseStore({ store: () => new MemoryResponseStore({ maxResponses: 1_000, maxBytes: 1 << 30 }) });

  describe('on its own clock', () => {
    let now: number;
    let store: MemoryResponseStore;
    beforeEach(() => {
      now = Date.UTC(2025, 5, 1);
      store = new MemoryResponseStore({ maxResponses: 100, maxBytes: 1 << 30 }, () => now);
    });

    it('drops a response once its expiry passes, at the next look, for good', async () => {
      const response = storedResponse('acme/search', 'brief');
      await store.put(response, now + 60_000);
      now += 59_999;
      expect(await store.get('acme/search', response.id)).toEqual(response);
      now += 1;
      expect(await store.get('acme/search', response.id)).toBeUndefined();
      expect(await store.getMany('acme/search', [response.id])).toEqual([undefined]);
      // Gone, not hidden: the clock going back does not bring it back.
      now -= 10_000;
      expect(await store.get('acme/search', response.id)).toBeUndefined();
    });

    it('keeps the earlier turns of a conversation as long as its last: an ancestor outlives its own expiry', async () => {
      const start = now;
      const first = storedResponse('acme/search', 'first');
      const second = storedResponse('acme/search', 'second', { ancestors: [first.id] });
      const third = storedResponse('acme/search', 'third', { ancestors: [first.id, second.id] });
      await store.put(first, start + 1_000);
      await store.put(second, start + 5_000);
      now = start + 2_000;
      expect(await store.get('acme/search', first.id)).toEqual(first);
      await store.put(third, start + 9_000);
      now = start + 8_999;
      expect(await store.getMany('acme/search', [first.id, second.id, third.id])).toEqual([first, second, third]);
      now = start + 9_000;
      expect(await store.getMany('acme/search', [first.id, second.id, third.id])).toEqual([undefined, undefined, undefined]);
    });

    it('never shortens an expiry: a later turn that expires sooner leaves its ancestors as they were', async () => {
      const start = now;
      const first = storedResponse('acme/search', 'first');
      await store.put(first, start + 10_000);
      await store.put(storedResponse('acme/search', 'branch', { ancestors: [first.id] }), start + 2_000);
      now = start + 9_999;
      expect(await store.get('acme/search', first.id)).toEqual(first);
    });

    it('does not bring back an ancestor already expired when a later turn names it', async () => {
      const first = storedResponse('acme/search', 'first');
      await store.put(first, now + 1_000);
      now += 1_000;
      await store.put(storedResponse('acme/search', 'late', { ancestors: [first.id] }), now + 60_000);
      expect(await store.get('acme/search', first.id)).toBeUndefined();
    });

    it('takes an id again once the response that had it has expired (Redis forgets it too)', async () => {
      const first = storedResponse('acme/search', 'first');
      await store.put(first, now + 1_000);
      now += 1_000;
      const again = storedResponse('acme/search', 'again', { id: first.id });
      await store.put(again, now + 1_000);
      expect(await store.get('acme/search', first.id)).toEqual(again);
    });
  });

  describe('full', () => {
    it('drops the oldest response first to keep a new one, never more than its maximum', async () => {
      const store = new MemoryResponseStore({ maxResponses: 3, maxBytes: 1 << 30 });
      const responses = Array.from({ length: 5 }, (_, i) => storedResponse('acme/search', `turn ${i}`));
      for (const r of responses) await store.put(r, Date.now() + 60_000);
      const ids = responses.map((r) => r.id);
      expect(await store.getMany('acme/search', ids)).toEqual([undefined, undefined, ...responses.slice(2)]);
    });

    it('drops the response kept longest without a new turn: a conversation in use keeps its earlier turns', async () => {
      const store = new MemoryResponseStore({ maxResponses: 3, maxBytes: 1 << 30 });
      const expiry = Date.now() + 60_000;
      const root = storedResponse('acme/search', 'root');
      const idle = storedResponse('acme/ads', 'idle');
      const reply = storedResponse('acme/search', 'reply', { ancestors: [root.id] });
      await store.put(root, expiry);
      await store.put(idle, expiry);
      await store.put(reply, expiry);
      // Full: the next turn of root's conversation drops idle (stored after root, but root was in use since).
      const next = storedResponse('acme/search', 'next', { ancestors: [root.id, reply.id] });
      await store.put(next, expiry);
      expect(await store.get('acme/ads', idle.id)).toBeUndefined();
      expect(await store.getMany('acme/search', [root.id, reply.id, next.id])).toEqual([root, reply, next]);
    });

    it('holds at most maxBytes of responses as JSON, the oldest dropped first, and refuses one larger than that alone', async () => {
      const size = (r: ReturnType<typeof storedResponse>): number => Buffer.byteLength(JSON.stringify(r), 'utf8');
      const big = (prompt: string): ReturnType<typeof storedResponse> => storedResponse('acme/search', prompt, { input: [{ id: `msg_${prompt}`, type: 'message', role: 'user', content: 'x'.repeat(10_000) }] });
      const [a, b, c] = [big('a'), big('b'), big('c')];
      // Room for two of them, not three.
      const store = new MemoryResponseStore({ maxResponses: 100, maxBytes: size(a) + size(b) + 100 });
      const expiry = Date.now() + 60_000;
      await store.put(a, expiry);
      await store.put(b, expiry);
      await store.put(c, expiry);
      expect(await store.getMany('acme/search', [a.id, b.id, c.id])).toEqual([undefined, b, c]);
      // Deleting frees its bytes: the next one drops nothing.
      await store.delete('acme/search', b.id);
      const d = big('d');
      await store.put(d, expiry);
      expect(await store.getMany('acme/search', [c.id, d.id])).toEqual([c, d]);

      const huge = storedResponse('acme/search', 'huge', { input: [{ id: 'msg_huge', type: 'message', role: 'user', content: 'x'.repeat(30_000) }] });
      await expect(store.put(huge, expiry)).rejects.toThrow(/larger/);
      // Refused without dropping anything.
      expect(await store.getMany('acme/search', [c.id, d.id, huge.id])).toEqual([c, d, undefined]);
    });

    it('counts a deleted or expired response as no longer held', async () => {
      let now = Date.UTC(2025, 5, 1);
      const store = new MemoryResponseStore({ maxResponses: 2, maxBytes: 1 << 30 }, () => now);
      const deleted = storedResponse('acme/search', 'deleted');
      const kept = storedResponse('acme/search', 'kept');
      await store.put(deleted, now + 60_000);
      await store.put(kept, now + 60_000);
      await store.delete('acme/search', deleted.id);
      const added = storedResponse('acme/search', 'added');
      await store.put(added, now + 60_000);
      expect(await store.getMany('acme/search', [kept.id, added.id])).toEqual([kept, added]);
      // One that expired and was looked at (dropped) frees its place too: the next one drops nothing.
      const brief = storedResponse('acme/search', 'brief');
      await store.delete('acme/search', kept.id);
      await store.put(brief, now + 1_000);
      now += 1_000;
      expect(await store.get('acme/search', brief.id)).toBeUndefined();
      const last = storedResponse('acme/search', 'last');
      await store.put(last, now + 60_000);
      expect(await store.getMany('acme/search', [added.id, last.id])).toEqual([added, last]);
    });
  });
});

describe('responseSealKey', () => {
  it("is 32 bytes derived from the secret, its own for each secret, not the files' key of the same secret", () => {
    expect(responseSealKey('a')).toHaveLength(32);
    expect(responseSealKey('a').equals(responseSealKey('a'))).toBe(true);
    expect(responseSealKey('a').equals(responseSealKey('b'))).toBe(false);
    expect(responseSealKey('a').equals(fileSealKey('a'))).toBe(false);
  });
});
