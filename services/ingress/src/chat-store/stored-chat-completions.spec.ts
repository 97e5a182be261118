import { Registry } from 'prom-client';
import { chatCompletionsSchema } from '@openrouter/config';
import type { chatv1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import { parseChatRequest, toOpenAIChatBody } from '@openrouter/openai-wire';
import type { ApiKeyRecord } from '../access/key-record';
import { failureOf } from '../gateway-error.testing';
import type { ChatCompletionStore, IndexEntry, StoredChatCompletion } from './chat-completion-store';
import { storedCompletion, TOMORROW_MS } from './chat-completion-store.cases.testing';
import { MemoryChatCompletionStore } from './memory-chat-completion-store';
import { CHAT_COMPLETION_ID, messageView, SCAN_BATCH, StoredChatCompletions, type ChatCompletionKeeping } from './stored-chat-completions';

const OWNER = 'acme/search';
const CONTEXT = { orgId: 'acme', projectId: 'search', keyId: 'search-1' };
const KEY = { id: 'search-1', orgId: 'acme', projectId: 'search' } as ApiKeyRecord;
const logger = createLogger('ingress', 'silent');

/** What the usage track of a request gives a stream's end. */
const usage = {
  tokens: (): chatv1.Usage => ({ promptTokens: 10, completionTokens: 4, totalTokens: 14, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false }),
  decorate<T>(body: T): T {
    const u = (body as { usage?: Record<string, unknown> }).usage;
    if (u) u['cost'] = 0.5;
    return body;
  },
};

/** A store whose every call fails, as Redis away. */
class FailingStore extends MemoryChatCompletionStore {
  constructor() {
    super({ maxCompletions: 10, maxBytes: 1 << 20 });
  }
  override put(): Promise<void> {
    return Promise.reject(new Error('connection refused'));
  }
  override get(): Promise<StoredChatCompletion | undefined> {
    return Promise.reject(new Error('connection refused'));
  }
  override ids(): Promise<IndexEntry[] | undefined> {
    return Promise.reject(new Error('connection refused'));
  }
}

describe('StoredChatCompletions', () => {
  let store: MemoryChatCompletionStore;
  let registry: Registry;
  let unstoredBy: 'org' | 'project' | 'key' | undefined;
  let now: number;

  const make = (on: ChatCompletionStore = store, listScanLimit = 1_000, metrics: Registry = registry): StoredChatCompletions =>
    new StoredChatCompletions(on, chatCompletionsSchema.parse({ listScanLimit }), { responsesUnstoredBy: async () => unstoredBy }, logger, metrics, () => now);

  const counted = async (outcome: string): Promise<number> => (await registry.getSingleMetric('openrouter_chat_completions_stored_total')?.get())?.values.find((v) => v.labels['outcome'] === outcome)?.value ?? 0;

  /** A request asking for `store: true`, and the keeping the service gives it. */
  const keep = async (service: StoredChatCompletions, body: Record<string, unknown> = {}): Promise<{ request: chatv1.ChatRequest; keeping: ChatCompletionKeeping | undefined }> => {
    const sent = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Name a colour.' }], store: true, metadata: { topic: 'colours' }, ...body };
    const request = parseChatRequest(sent);
    return { request, keeping: await service.keeping(KEY, CONTEXT, request, sent) };
  };

  beforeEach(() => {
    store = new MemoryChatCompletionStore({ maxCompletions: 1_000, maxBytes: 1 << 30 });
    registry = new Registry();
    unstoredBy = undefined;
    now = Date.now();
  });

  describe('keeping an answer', () => {
    it('takes store and metadata off what the provider is sent, gives the answer an id of its own, and keeps it once sent', async () => {
      const service = make();
      const { request, keeping } = await keep(service);
      expect(toOpenAIChatBody(request, 'gpt-4o-mini')).toEqual({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Name a colour.' }] });
      if (!keeping) throw new Error('expected the completion to be kept');
      expect(keeping.id).toMatch(CHAT_COMPLETION_ID);
      const body = keeping.stamp({ id: 'chatcmpl-provider', object: 'chat.completion', model: 'gpt-4o-mini', choices: [], usage: { total_tokens: 3 } });
      expect(body.id).toBe(keeping.id);
      keeping.whole(body);
      // Told twice, kept once.
      keeping.whole(body);
      await service.drain();
      const stored = await service.get(OWNER, keeping.id);
      expect(stored).toMatchObject({ id: keeping.id, owner: OWNER, requestedModel: 'gpt-4o-mini', metadata: { topic: 'colours' }, completion: body, messages: [{ role: 'user', content: 'Name a colour.' }] });
      expect(stored.createdAtMs).toBe(now);
      expect(await counted('stored')).toBe(1);
      // Another project sees nothing.
      expect((await failureOf(() => service.get('acme/ads', keeping.id))).code).toBe('chat_completion_not_found');
    });

    it("keeps nothing when the key's or a tenant's policy says storeResponses false, and still sends the provider no store", async () => {
      unstoredBy = 'project';
      const { request, keeping } = await keep(make());
      expect(keeping).toBeUndefined();
      expect(request.store).toBeUndefined();
      expect(toOpenAIChatBody(request, 'm')['metadata']).toBeUndefined();
    });

    it("holds the metadata it keeps to OpenAI's limits, refusing a request past them with 400 naming the pair, before the provider is called", async () => {
      const service = make();
      const pairs = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
      const refused: Array<[Record<string, string>, string]> = [
        [pairs, 'metadata'],
        [{ ['k'.repeat(65)]: 'v' }, `metadata.${'k'.repeat(65)}`],
        [{ note: 'x'.repeat(513) }, 'metadata.note'],
      ];
      for (const [metadata, param] of refused) {
        const error = await failureOf(() => keep(service, { metadata }));
        expect([error.kind, error.code, error.param]).toEqual(['bad_request', 'invalid_value', param]);
      }
      const sixteen = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, 'v'.repeat(512)]));
      expect((await keep(service, { metadata: sixteen })).keeping).toBeDefined();
    });

    it('keeps a stream put together from the chunks its client was sent, with the usage and cost, once it completed', async () => {
      const service = make();
      const { keeping } = await keep(service);
      if (!keeping) throw new Error('expected the completion to be kept');
      const chunks = [
        { id: 'x', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', system_fingerprint: 'fp_1', choices: [{ index: 0, delta: { role: 'assistant', content: 'Bl' }, logprobs: null, finish_reason: null }] },
        { id: 'x', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: 'ue', reasoning_content: 'think' }, logprobs: null, finish_reason: null }] },
        { id: 'x', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"ci' } }] }, logprobs: null, finish_reason: null }] },
        { id: 'x', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'get_weather', arguments: 'ty":"Oslo"}' } }] }, logprobs: null, finish_reason: 'tool_calls' }] },
      ];
      for (const chunk of chunks) expect(keeping.chunk(chunk).id).toBe(keeping.id);
      keeping.streamEnded(true, usage);
      await service.drain();
      expect((await service.get(OWNER, keeping.id)).completion).toEqual({
        id: keeping.id,
        object: 'chat.completion',
        created: 1_700_000_000,
        model: 'gpt-4o-mini',
        system_fingerprint: 'fp_1',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: 'Blue', refusal: null, reasoning_content: 'think', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
            logprobs: null,
            finish_reason: 'tool_calls',
          },
        ],
        usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 }, cost: 0.5 },
      });
    });

    it('keeps no stream that failed, was cut, or has a choice that never finished, and counts it', async () => {
      const service = make();
      for (const [completed, finish] of [
        [false, 'stop'],
        [true, null],
      ] as const) {
        const { keeping } = await keep(service);
        keeping?.chunk({ id: 'x', created: 1, model: 'm', choices: [{ index: 0, delta: { content: 'Hi' }, finish_reason: finish }] });
        keeping?.streamEnded(completed, usage);
      }
      const { keeping: empty } = await keep(service);
      empty?.streamEnded(true, usage);
      await service.drain();
      expect(await store.ids(OWNER, { order: 'asc', count: 10 })).toEqual([]);
      expect(await counted('incomplete')).toBe(3);
    });

    it('never fails the request when the store does: the failure is counted and logged without the prompt', async () => {
      const lines: string[] = [];
      const capturing = createLogger('ingress', 'warn', { write: (line: string) => void lines.push(line) });
      const service = new StoredChatCompletions(new FailingStore(), chatCompletionsSchema.parse({}), { responsesUnstoredBy: async () => undefined }, capturing, registry);
      const sent = { model: 'm', messages: [{ role: 'user', content: 'the-secret-prompt-41' }], store: true };
      const keeping = await service.keeping(KEY, CONTEXT, parseChatRequest(sent), sent);
      keeping?.whole(keeping.stamp({ id: 'x', choices: [{ message: { content: 'the-secret-answer-42' } }] }));
      await service.drain();
      expect(await counted('failed')).toBe(1);
      expect(lines.join('')).toContain(keeping?.id);
      expect(lines.join('')).not.toMatch(/the-secret-(prompt|answer)/);
    });
  });

  describe('reading back', () => {
    it('answers 404 chat_completion_not_found for an unknown id, one that is not the gateway’s, and another project’s; 503 when the store fails', async () => {
      const service = make();
      const record = storedCompletion(OWNER, 'mine');
      await store.put(record, TOMORROW_MS);
      for (const [owner, id] of [
        ['acme/ads', record.id],
        [OWNER, 'chatcmpl-unknown'],
        [OWNER, '../../etc'],
      ] as const) {
        for (const run of [() => service.get(owner, id), () => service.update(owner, id, { a: 'b' }), () => service.delete(owner, id), () => service.messages(owner, id, { limit: 20, order: 'asc' })]) {
          const error = await failureOf(run);
          expect([error.kind, error.code]).toEqual(['not_found', 'chat_completion_not_found']);
        }
      }
      const failing = make(new FailingStore(), 1_000, new Registry());
      for (const run of [() => failing.get(OWNER, record.id), () => failing.list(OWNER, { limit: 5, order: 'asc', metadata: {} })]) {
        const error = await failureOf(run);
        expect([error.kind, error.code]).toEqual(['unavailable', 'chat_completion_store_unavailable']);
      }
    });

    it('replaces metadata (null: none) and deletes', async () => {
      const service = make();
      const record = storedCompletion(OWNER, 'mine');
      await store.put(record, TOMORROW_MS);
      expect((await service.update(OWNER, record.id, { topic: 'x' })).metadata).toEqual({ topic: 'x' });
      expect((await service.update(OWNER, record.id, null)).metadata).toEqual({});
      await service.delete(OWNER, record.id);
      expect((await failureOf(() => service.delete(OWNER, record.id))).code).toBe('chat_completion_not_found');
    });

    it('lists the messages of the request with ids, paged either way; an unknown after is 400 naming it', async () => {
      const service = make();
      const parts = [
        { type: 'text', text: 'What is this?' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
      ];
      const record = storedCompletion(OWNER, 'q', { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: parts }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: 'ok' }] });
      await store.put(record, TOMORROW_MS);
      const all = await service.messages(OWNER, record.id, { limit: 20, order: 'asc' });
      expect(all.data.map((m) => m['id'])).toEqual([0, 1, 2, 3].map((i) => `${record.id}-${i}`));
      expect(all.data[1]).toEqual({ id: `${record.id}-1`, role: 'user', content: 'What is this?', name: null, content_parts: parts });
      expect(all.data[2]).toMatchObject({ role: 'assistant', content: null, content_parts: null, tool_calls: [{ id: 'c1' }] });
      expect(all).toMatchObject({ object: 'list', first_id: `${record.id}-0`, last_id: `${record.id}-3`, has_more: false });
      const page = await service.messages(OWNER, record.id, { limit: 2, order: 'desc', after: `${record.id}-3` });
      expect(page).toMatchObject({ first_id: `${record.id}-2`, last_id: `${record.id}-1`, has_more: true });
      const error = await failureOf(() => service.messages(OWNER, record.id, { limit: 2, order: 'asc', after: 'msg_x' }));
      expect([error.kind, error.param]).toEqual(['bad_request', 'after']);
      expect(messageView({ role: 'user', content: 'hi', name: 'ann' }, 'a-0')).toEqual({ id: 'a-0', role: 'user', content: 'hi', name: 'ann', content_parts: null });
      // A message's own `id` (sent among its other fields) does not replace the listed one.
      expect(messageView({ id: 'msg_mine', role: 'user', content: 'hi' }, 'a-1')).toEqual({ id: 'a-1', role: 'user', content: 'hi', name: null, content_parts: null });
    });
  });

  describe('listing', () => {
    const base = Date.UTC(2025, 0, 1);
    /** `n` completions of the owner, one a second, every third with `metadata.kind` 'rare' and model 'other'. */
    const fill = async (n: number, owner = OWNER): Promise<StoredChatCompletion[]> => {
      const made: StoredChatCompletion[] = [];
      for (let i = 0; i < n; i++) {
        const rare = i % 3 === 2;
        const record = storedCompletion(owner, `n${i}`, { createdAtMs: base + i * 1000, metadata: { kind: rare ? 'rare' : 'common', n: String(i) }, requestedModel: rare ? 'other' : 'gpt-4o-mini' });
        await store.put(record, TOMORROW_MS);
        made.push(record);
      }
      return made;
    };

    it('pages oldest first by default, newest first on asking, with first_id, last_id and has_more', async () => {
      const made = await fill(5);
      const service = make();
      const first = await service.list(OWNER, { limit: 2, order: 'asc', metadata: {} });
      expect(first.data.map((c) => c['id'])).toEqual([made[0]?.id, made[1]?.id]);
      expect(first).toMatchObject({ object: 'list', first_id: made[0]?.id, last_id: made[1]?.id, has_more: true });
      expect(first.data[0]).toMatchObject({ object: 'chat.completion', metadata: { kind: 'common', n: '0' } });
      const rest = await service.list(OWNER, { limit: 5, order: 'asc', after: first.last_id ?? '', metadata: {} });
      expect(rest.data.map((c) => c['id'])).toEqual(made.slice(2).map((c) => c.id));
      expect(rest.has_more).toBe(false);
      const newest = await service.list(OWNER, { limit: 5, order: 'desc', metadata: {} });
      expect(newest.data.map((c) => c['id'])).toEqual(made.map((c) => c.id).reverse());
      expect(await service.list('acme/ads', { limit: 5, order: 'asc', metadata: {} })).toEqual({ object: 'list', data: [], first_id: null, last_id: null, has_more: false });
      const error = await failureOf(() => service.list(OWNER, { limit: 5, order: 'asc', after: 'chatcmpl-gone', metadata: {} }));
      expect([error.kind, error.param, error.code]).toEqual(['bad_request', 'after', 'invalid_value']);
    });

    it('filters by every metadata pair and by the model asked for or answered with', async () => {
      const made = await fill(9);
      const service = make();
      const rare = made.filter((_, i) => i % 3 === 2).map((c) => c.id);
      expect((await service.list(OWNER, { limit: 20, order: 'asc', metadata: { kind: 'rare' } })).data.map((c) => c['id'])).toEqual(rare);
      expect((await service.list(OWNER, { limit: 20, order: 'asc', metadata: { kind: 'rare', n: '5' } })).data.map((c) => c['id'])).toEqual([made[5]?.id]);
      expect((await service.list(OWNER, { limit: 20, order: 'asc', metadata: { kind: 'rare', n: '4' } })).data).toEqual([]);
      expect((await service.list(OWNER, { limit: 20, order: 'asc', model: 'other', metadata: {} })).data.map((c) => c['id'])).toEqual(rare);
      // Every completion here answered as gpt-4o-mini.
      expect((await service.list(OWNER, { limit: 20, order: 'asc', model: 'gpt-4o-mini', metadata: {} })).data).toHaveLength(9);
      const paged = await service.list(OWNER, { limit: 2, order: 'desc', metadata: { kind: 'rare' } });
      expect(paged).toMatchObject({ first_id: rare[2], last_id: rare[1], has_more: true });
    });

    it('reads at most listScanLimit completions for one page: past it, the matches so far, has_more, and a last_id to go on from', async () => {
      const made = await fill(450);
      // The one rare-and-n=440 completion lies past the first page's scan.
      const service = make(store, 100);
      const reads = jest.spyOn(store, 'getMany');
      const first = await service.list(OWNER, { limit: 10, order: 'asc', metadata: { n: '440' } });
      const read = reads.mock.calls.reduce((sum, [, ids]) => sum + ids.length, 0);
      expect(read).toBe(100);
      expect(first).toEqual({ object: 'list', data: [], first_id: null, last_id: made[99]?.id, has_more: true });
      let page = first;
      let pages = 1;
      while (page.data.length === 0 && page.has_more) {
        page = await service.list(OWNER, { limit: 10, order: 'asc', after: page.last_id ?? '', metadata: { n: '440' } });
        pages += 1;
      }
      expect(pages).toBe(5);
      expect(page.data.map((c) => c['id'])).toEqual([made[440]?.id]);
      expect(page.has_more).toBe(false);
    });

    it('pages on when another request deletes the completion a page has read up to, between two reads of the index', async () => {
      // Filtered, one page reads the index in batches of SCAN_BATCH: this one, several.
      const made = await fill(3 * SCAN_BATCH + 5);
      const wanted = made.at(-1);
      const service = make();
      // Another request deletes the last completion of each batch the list reads, before the next batch.
      const read = store.getMany.bind(store);
      const deleted: string[] = [];
      jest.spyOn(store, 'getMany').mockImplementation(async (owner, ids) => {
        const records = await read(owner, ids);
        const last = ids.at(-1);
        if (last !== undefined && (await store.delete(owner, last))) deleted.push(last);
        return records;
      });
      const page = await service.list(OWNER, { limit: 5, order: 'asc', metadata: { n: String(made.length - 1) } });
      expect(page.data.map((c) => c['id'])).toEqual([wanted?.id]);
      expect(page.has_more).toBe(false);
      expect(deleted).toHaveLength(4);
      // Newest first alike.
      const newest = await service.list(OWNER, { limit: 5, order: 'desc', metadata: { n: '0' } });
      expect(newest.data.map((c) => c['id'])).toEqual([made[0]?.id]);
    });

    it('skips completions that expired meanwhile, and pages on past them', async () => {
      now = base;
      const clocked = new MemoryChatCompletionStore({ maxCompletions: 100, maxBytes: 1 << 30 }, () => now);
      const made = Array.from({ length: 6 }, (_, i) => storedCompletion(OWNER, `e${i}`, { createdAtMs: base + i }));
      for (const [i, record] of made.entries()) await clocked.put(record, i % 2 === 0 ? base + 1_000 : base + 10_000);
      now = base + 5_000;
      const service = make(clocked);
      const first = await service.list(OWNER, { limit: 2, order: 'asc', metadata: {} });
      expect(first.data.map((c) => c['id'])).toEqual([made[1]?.id, made[3]?.id]);
      const rest = await service.list(OWNER, { limit: 2, order: 'asc', after: first.last_id ?? '', metadata: {} });
      expect(rest.data.map((c) => c['id'])).toEqual([made[5]?.id]);
      expect(rest.has_more).toBe(false);
    });
  });
});
