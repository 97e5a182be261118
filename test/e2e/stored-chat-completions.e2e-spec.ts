import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { hashApiKey } from '@openrouter/ingress';
import { apiError } from '../support/api-error';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Stored chat completions kept by the gateway for any provider, through the whole gateway with the
 * official SDK (docs/chat-completions-store.md): created with `store: true`, whole and streamed;
 * listed with filters and pages; retrieved; metadata changed; messages listed; deleted; visible to
 * the project's keys only; never kept without `store: true` or under a policy that says
 * `storeResponses: false`; every way a call is refused. Kept in this process and in Redis.
 */

const SECRET = 'stored-chat-e2e-secret';
const SEARCH_KEY = 'sk-or-v1-chat-e2e-search-000000000000000';
const SEARCH_OTHER_KEY = 'sk-or-v1-chat-e2e-search-111111111111111';
const ADS_KEY = 'sk-or-v1-chat-e2e-ads-0000000000000000000';
const VAULT_KEY = 'sk-or-v1-chat-e2e-vault-00000000000000000';

type Upstream = { store?: unknown; metadata?: unknown; messages: unknown[] };

function configure(redis: { url: string; keyPrefix: string } | undefined, chatCompletions: Record<string, unknown> = {}) {
  return (doc: Record<string, unknown>): void => {
    doc['access'] = {
      ...(doc['access'] as object),
      keyHashSecret: SECRET,
      ...(redis ? { redis } : {}),
      orgs: [
        { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
        { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }, { id: 'vault', policy: { storeResponses: false } }] }] },
      ],
      keys: [
        { id: 'search-1', hash: hashApiKey(SECRET, SEARCH_KEY), prefix: 'sk-or-v1-cha', org: 'acme', project: 'search' },
        { id: 'search-2', hash: hashApiKey(SECRET, SEARCH_OTHER_KEY), prefix: 'sk-or-v1-cha', org: 'acme', project: 'search' },
        { id: 'ads-1', hash: hashApiKey(SECRET, ADS_KEY), prefix: 'sk-or-v1-cha', org: 'acme', project: 'ads' },
        { id: 'vault-1', hash: hashApiKey(SECRET, VAULT_KEY), prefix: 'sk-or-v1-cha', org: 'acme', project: 'vault' },
      ],
    };
    doc['chatCompletions'] = chatCompletions;
  };
}

/** Retrieves a stored completion once its keeping (after the answer was sent) has been written. */
async function storedOf(client: OpenAI, id: string): Promise<OpenAI.Chat.Completions.ChatCompletion & { metadata?: Record<string, string> }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await client.chat.completions.retrieve(id);
    } catch (error) {
      if (!(error instanceof OpenAI.NotFoundError) || Date.now() > deadline) throw error;
      await new Promise((done) => setImmediate(done));
    }
  }
}

describe.each([
  ['in this process', false],
  ['in Redis', true],
])('stored chat completions through the gateway, kept %s', (_, withRedis) => {
  let gw: TestGateway;
  let search: OpenAI;
  const keyPrefix = `chat-store-e2e-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    gw = await startTestGateway({ configure: configure(withRedis ? { url: sharedRedisUrl(), keyPrefix } : undefined) });
    search = gw.client({ apiKey: SEARCH_KEY });
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  const upstream = (): Upstream => gw.sim.requests().at(-1)?.body as Upstream;
  const create = (client: OpenAI, content: string, extra: Partial<OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming> = {}) =>
    client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content }], ...extra });

  it('keeps a whole completion created with store true, as answered, for every key of its project, without sending store or metadata to the provider', async () => {
    const answer = await create(search, 'Name a colour.', { store: true, metadata: { topic: 'colours' } });
    expect(answer.id).toMatch(/^chatcmpl-[A-Za-z0-9_-]{32}$/);
    expect(upstream().store).toBeUndefined();
    expect(upstream().metadata).toBeUndefined();
    const stored = await storedOf(search, answer.id);
    expect(stored).toEqual({ ...answer, metadata: { topic: 'colours' } });
    expect((stored.usage as { cost?: number } | undefined)?.cost).toBeGreaterThan(0);
    expect((await gw.client({ apiKey: SEARCH_OTHER_KEY }).chat.completions.retrieve(answer.id)).id).toBe(answer.id);

    const messages = await search.chat.completions.messages.list(answer.id);
    expect(messages.data).toEqual([
      { id: `${answer.id}-0`, role: 'system', content: 'Be brief.', name: null, content_parts: null },
      { id: `${answer.id}-1`, role: 'user', content: 'Name a colour.', name: null, content_parts: null },
    ]);
    const newest = await search.chat.completions.messages.list(answer.id, { order: 'desc', limit: 1 });
    expect(newest.data.map((m) => m.id)).toEqual([`${answer.id}-1`]);
    expect(newest.has_more).toBe(true);
  });

  it('keeps a streamed completion as its chunks add up, once the stream has ended', async () => {
    const stream = await search.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Stream a greeting.' }], stream: true, store: true, metadata: { kind: 'streamed' } });
    let text = '';
    let id = '';
    for await (const chunk of stream) {
      id = chunk.id;
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(upstream().store).toBeUndefined();
    const stored = await storedOf(search, id);
    expect(stored).toMatchObject({ id, object: 'chat.completion', model: 'gpt-4o-mini', metadata: { kind: 'streamed' } });
    expect(stored.choices[0]?.message.content).toBe(text);
    expect(stored.choices[0]?.finish_reason).toBe('stop');
    expect(stored.usage?.total_tokens).toBeGreaterThan(0);
  });

  it('lists by creation with filters on metadata and model and pages with after, limit and order; updates metadata; deletes', async () => {
    const tag = randomBytes(4).toString('hex');
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await create(search, `Item ${i}`, { store: true, metadata: { run: tag, parity: i % 2 === 0 ? 'even' : 'odd' } }));
    for (const answer of made) await storedOf(search, answer.id);
    const ids = made.map((m) => m.id);

    const firstPage = await search.chat.completions.list({ metadata: { run: tag }, limit: 2 });
    expect(firstPage.data.map((c) => c.id)).toEqual(ids.slice(0, 2));
    expect(firstPage.has_more).toBe(true);
    const all: string[] = [];
    for await (const completion of search.chat.completions.list({ metadata: { run: tag }, limit: 2 })) all.push(completion.id);
    expect(all).toEqual(ids);
    expect((await search.chat.completions.list({ metadata: { run: tag, parity: 'odd' }, order: 'desc' })).data.map((c) => c.id)).toEqual([ids[3], ids[1]]);
    expect((await search.chat.completions.list({ metadata: { run: tag }, model: 'gpt-4o-mini', after: ids[2] })).data.map((c) => c.id)).toEqual(ids.slice(3));
    expect((await search.chat.completions.list({ metadata: { run: tag }, model: 'another-model' })).data).toEqual([]);

    const updated = await search.chat.completions.update(ids[0] ?? '', { metadata: { run: tag, parity: 'odd', reviewed: 'yes' } });
    expect((updated as { metadata?: unknown }).metadata).toEqual({ run: tag, parity: 'odd', reviewed: 'yes' });
    expect((await search.chat.completions.list({ metadata: { run: tag, reviewed: 'yes' } })).data.map((c) => c.id)).toEqual([ids[0]]);
    expect((await search.chat.completions.update(ids[0] ?? '', { metadata: null }) as { metadata?: unknown }).metadata).toEqual({});

    expect(await search.chat.completions.delete(ids[1] ?? '')).toEqual({ object: 'chat.completion.deleted', id: ids[1], deleted: true });
    expect((await apiError(() => search.chat.completions.retrieve(ids[1] ?? ''))).status).toBe(404);
    // The first's metadata is gone: it no longer matches.
    expect((await search.chat.completions.list({ metadata: { run: tag } })).data.map((c) => c.id)).toEqual(ids.slice(2));
  });

  it("shows nothing to another project's key: not found, not listed, not changed, not deleted", async () => {
    const answer = await create(search, 'Private.', { store: true, metadata: { owner: 'search' } });
    await storedOf(search, answer.id);
    const ads = gw.client({ apiKey: ADS_KEY });
    for (const call of [() => ads.chat.completions.retrieve(answer.id), () => ads.chat.completions.update(answer.id, { metadata: { x: 'y' } }), () => ads.chat.completions.delete(answer.id), () => ads.chat.completions.messages.list(answer.id)]) {
      const error = await apiError(call);
      expect([error.status, error.code]).toEqual([404, 'chat_completion_not_found']);
    }
    expect((await ads.chat.completions.list({ metadata: { owner: 'search' } })).data).toEqual([]);
    expect((await storedOf(search, answer.id)).metadata).toEqual({ owner: 'search' });
    // A filter on a key no completion can have is refused, not dropped (which would list every one).
    const proto = await fetch(`${gw.url}/v1/chat/completions?metadata[__proto__]=1`, { headers: { authorization: `Bearer ${ADS_KEY}` } });
    expect([proto.status, ((await proto.json()) as { error: { param: string } }).error.param]).toEqual([400, 'metadata[__proto__]']);
  });

  it('keeps nothing without store true, nor under a policy that says storeResponses false, nor for a stream the provider dropped', async () => {
    const tag = randomBytes(4).toString('hex');
    const absent = await create(search, 'Not kept.', { metadata: { run: tag } });
    expect(upstream().metadata).toEqual({ run: tag });
    const unstored = await create(search, 'Not kept either.', { store: false, metadata: { run: tag } });
    expect(upstream().store).toBe(false);
    const vault = gw.client({ apiKey: VAULT_KEY });
    const policed = await create(vault, 'Secret.', { store: true, metadata: { run: tag } });
    // Neither kept by the gateway nor asked of the provider.
    expect(upstream().store).toBeUndefined();
    expect(upstream().metadata).toBeUndefined();
    gw.sim.configure({ completionTokens: 40, faults: [{ kind: 'drop_mid_stream', afterTokens: 3, remaining: 1 }] });
    const dropped = await search.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true, store: true, metadata: { run: tag } });
    let droppedId = '';
    await expect(
      (async () => {
        for await (const chunk of dropped) droppedId = chunk.id;
      })(),
    ).rejects.toBeInstanceOf(OpenAI.APIError);
    // One kept after them all: once it is listed, the writes before it would have been too.
    const kept = await create(search, 'Kept.', { store: true, metadata: { run: tag } });
    await storedOf(search, kept.id);
    expect((await search.chat.completions.list({ metadata: { run: tag } })).data.map((c) => c.id)).toEqual([kept.id]);
    for (const id of [absent.id, unstored.id, droppedId]) expect((await apiError(() => search.chat.completions.retrieve(id))).status).toBe(404);
    expect((await apiError(() => vault.chat.completions.retrieve(policed.id))).status).toBe(404);
    expect((await vault.chat.completions.list()).data).toEqual([]);
  });

  it('keeps what a WebSocket request asks to store as an HTTP one: streamed once ended, not a dropped stream, not under a policy that keeps nothing', async () => {
    const tag = randomBytes(4).toString('hex');
    /** The frames of each request on one socket opened with `key`, once they all ended. */
    const overSocket = async (key: string, requests: Array<{ id: string; body: unknown }>): Promise<Map<string, Array<{ type: string; data?: { id?: string; choices?: Array<{ delta?: { content?: string } }> } }>>> => {
      const socket = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/ws`, ['openrouter.v1'], { headers: { authorization: `Bearer ${key}` } });
      const frames: Array<{ type: string; id: string | null }> = [];
      const ended = new Promise<void>((resolve, reject) => {
        socket.on('message', (data) => {
          frames.push(JSON.parse(data.toString()) as { type: string; id: string | null });
          if (requests.every((r) => frames.some((f) => f.id === r.id && ['completion', 'done', 'error'].includes(f.type)))) resolve();
        });
        socket.once('error', reject);
      });
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      for (const request of requests) socket.send(JSON.stringify({ type: 'chat.completions', ...request }));
      await ended;
      socket.close();
      return new Map(requests.map((r) => [r.id, frames.filter((f) => f.id === r.id)]));
    };
    const streamed = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Stream over a socket.' }], stream: true, store: true, metadata: { run: tag } };
    const [frames] = (await overSocket(SEARCH_KEY, [{ id: 'kept', body: streamed }])).values();
    expect(upstream().store).toBeUndefined();
    expect(upstream().metadata).toBeUndefined();
    const chunks = (frames ?? []).filter((f) => f.type === 'chunk');
    const id = chunks[0]?.data?.id ?? '';
    expect(id).toMatch(/^chatcmpl-[A-Za-z0-9_-]{32}$/);
    expect(new Set(chunks.map((c) => c.data?.id))).toEqual(new Set([id]));
    const stored = await storedOf(search, id);
    expect(stored).toMatchObject({ id, object: 'chat.completion', metadata: { run: tag } });
    expect(stored.choices[0]?.message.content).toBe(chunks.map((c) => c.data?.choices?.[0]?.delta?.content ?? '').join(''));
    expect(stored.usage?.total_tokens).toBeGreaterThan(0);

    gw.sim.configure({ completionTokens: 40, faults: [{ kind: 'drop_mid_stream', afterTokens: 3, remaining: 1 }] });
    const dropped = (await overSocket(SEARCH_KEY, [{ id: 'dropped', body: streamed }])).get('dropped') ?? [];
    expect(dropped.at(-1)?.type).toBe('error');
    const droppedId = dropped.find((f) => f.type === 'chunk')?.data?.id ?? '';
    expect(droppedId).toMatch(/^chatcmpl-/);
    const policed = (await overSocket(VAULT_KEY, [{ id: 'policed', body: { ...streamed, stream: false } }])).get('policed') ?? [];
    expect(policed[0]?.type).toBe('completion');
    expect(upstream().store).toBeUndefined();
    // One kept after them: once it is listed, the writes before it would have been too.
    const last = await create(search, 'Kept after.', { store: true, metadata: { run: tag } });
    await storedOf(search, last.id);
    expect((await search.chat.completions.list({ metadata: { run: tag } })).data.map((c) => c.id).sort()).toEqual([id, last.id].sort());
    expect((await apiError(() => search.chat.completions.retrieve(droppedId))).status).toBe(404);
    expect((await gw.client({ apiKey: VAULT_KEY }).chat.completions.list()).data).toEqual([]);
  });

  it('refuses a bad query or body with 400 naming the parameter, and an unknown id with 404', async () => {
    const answer = await create(search, 'Refusals.', { store: true });
    await storedOf(search, answer.id);
    const bad: Array<[() => Promise<unknown>, string]> = [
      [() => search.chat.completions.list({ limit: 0 }), 'limit'],
      [() => search.chat.completions.list({ limit: 101 }), 'limit'],
      [() => search.chat.completions.list({ order: 'sideways' as 'asc' }), 'order'],
      [() => search.chat.completions.list({ after: 'chatcmpl-unknown' }), 'after'],
      [() => search.chat.completions.list({ metadata: { ['k'.repeat(65)]: 'v' } }), `metadata.${'k'.repeat(65)}`],
      [() => search.chat.completions.update(answer.id, { metadata: { a: 'x'.repeat(513) } }), 'metadata.a'],
      [() => search.chat.completions.update(answer.id, { metadata: { a: 'b' }, model: 'other' } as OpenAI.Chat.Completions.ChatCompletionUpdateParams), 'model'],
      [() => search.chat.completions.messages.list(answer.id, { after: 'nope' }), 'after'],
    ];
    for (const [call, param] of bad) {
      const error = await apiError(call);
      expect([error.status, error.param]).toEqual([400, param]);
    }
    for (const id of ['chatcmpl-unknown', `chatcmpl-${'A'.repeat(32)}`]) {
      const error = await apiError(() => search.chat.completions.retrieve(id));
      expect([error.status, error.code]).toEqual([404, 'chat_completion_not_found']);
    }
  });
});

describe('stored chat completions off (chatCompletions.store false)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ configure: configure(undefined, { store: false }) });
  });
  afterAll(async () => gw?.close());

  it('passes store and metadata to the provider as sent, and answers the stored routes 404 chat_completion_store_disabled', async () => {
    const search = gw.client({ apiKey: SEARCH_KEY });
    const answer = await search.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], store: true, metadata: { a: 'b' } });
    const sent = gw.sim.requests().at(-1)?.body as Upstream;
    expect([sent.store, sent.metadata]).toEqual([true, { a: 'b' }]);
    for (const call of [() => search.chat.completions.list(), () => search.chat.completions.retrieve(answer.id), () => search.chat.completions.delete(answer.id)]) {
      const error = await apiError(call);
      expect([error.status, error.code]).toEqual([404, 'chat_completion_store_disabled']);
    }
  });
});

describe('stored chat completions when the store refuses one', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    // In this process, with room for less than one completion: every write fails.
    gw = await startTestGateway({ configure: configure(undefined, { memoryMaxBytes: 100 }) });
  });
  afterAll(async () => gw?.close());

  it('still answers the request, whole and streamed, and counts the failure', async () => {
    const search = gw.client({ apiKey: SEARCH_KEY, maxRetries: 0 });
    const failed = async (): Promise<number> => {
      const ingress = gw.gateway.services.find((service) => service.name === 'ingress');
      const text = await (await fetch(`http://127.0.0.1:${ingress?.httpPort ?? 0}/metrics`)).text();
      return Number(/^openrouter_chat_completions_stored_total\{outcome="failed"[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const answer = await search.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], store: true });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    let streamed = '';
    for await (const chunk of await search.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'y' }], store: true, stream: true })) streamed += chunk.choices[0]?.delta.content ?? '';
    expect(streamed.length).toBeGreaterThan(0);
    const deadline = Date.now() + 10_000;
    while ((await failed()) < 2 && Date.now() < deadline) await new Promise((done) => setImmediate(done));
    expect(await failed()).toBe(2);
    expect((await apiError(() => search.chat.completions.retrieve(answer.id))).status).toBe(404);
  });
});
