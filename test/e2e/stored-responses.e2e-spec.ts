import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import type { ProviderType } from '@openrouter/config';
import { hashApiKey } from '@openrouter/ingress';
import { anthropicThinkingSignature } from '@openrouter/provider-simulator';
import { apiError } from '../support/api-error';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { SIMULATED_PROVIDERS } from '../support/simulated-providers';
import { SIM_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Stored responses of the Responses API through the whole gateway with the official SDK
 * (docs/responses-api.md#stored-responses): a response kept for its project, retrieved, listed as
 * input items, continued with `previous_response_id` (whole, streamed, a tool loop, Claude's
 * thinking handed back), deleted; every way a stored response is refused; kept in this process
 * and in the access store's Redis.
 */

const SECRET = 'stored-responses-e2e-secret';
const SEARCH_KEY = 'sk-or-v1-resp-e2e-search-000000000000000';
const SEARCH_OTHER_KEY = 'sk-or-v1-resp-e2e-search-111111111111111';
const ADS_KEY = 'sk-or-v1-resp-e2e-ads-0000000000000000000';
/** A key of a project whose policy keeps its responses from being stored, and one that tries to turn storing back on. */
const VAULT_KEY = 'sk-or-v1-resp-e2e-vault-00000000000000000';
const VAULT_ON_KEY = 'sk-or-v1-resp-e2e-vault-11111111111111111';
/** A key of the search project whose own policy keeps its responses from being stored. */
const SEARCH_UNSTORED_KEY = 'sk-or-v1-resp-e2e-search-222222222222222';

const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

type Message = { role: string; content?: unknown; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>; tool_call_id?: string };

function configure(redis: { url: string; keyPrefix: string } | undefined) {
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
        { id: 'search-1', hash: hashApiKey(SECRET, SEARCH_KEY), prefix: 'sk-or-v1-res', org: 'acme', project: 'search' },
        { id: 'search-2', hash: hashApiKey(SECRET, SEARCH_OTHER_KEY), prefix: 'sk-or-v1-res', org: 'acme', project: 'search' },
        { id: 'search-3', hash: hashApiKey(SECRET, SEARCH_UNSTORED_KEY), prefix: 'sk-or-v1-res', org: 'acme', project: 'search', policy: { storeResponses: false } },
        { id: 'ads-1', hash: hashApiKey(SECRET, ADS_KEY), prefix: 'sk-or-v1-res', org: 'acme', project: 'ads' },
        { id: 'vault-1', hash: hashApiKey(SECRET, VAULT_KEY), prefix: 'sk-or-v1-res', org: 'acme', project: 'vault' },
        { id: 'vault-2', hash: hashApiKey(SECRET, VAULT_ON_KEY), prefix: 'sk-or-v1-res', org: 'acme', project: 'vault', policy: { storeResponses: true } },
      ],
    };
    doc['responses'] = { maxConversationResponses: 4, maxConversationBytes: 20_000 };
    // Claude on its own wire, for the thinking handed back between stored turns.
    const url = String((doc['providers'] as { simulated: { baseUrl: string } }).simulated.baseUrl).replace(/\/v1$/, '');
    const type: ProviderType = 'anthropic';
    (doc['providers'] as Record<string, unknown>)['sim-anthropic'] = SIMULATED_PROVIDERS[type].config(url, SIM_KEY);
    (doc['models'] as Array<Record<string, unknown>>).push({
      id: 'anthropic-chat',
      capabilities: ['chat', 'tools'],
      pricing: { input: '1', output: '2' },
      deployments: [{ id: 'sim-anthropic-chat', provider: 'sim-anthropic', model: SIMULATED_PROVIDERS[type].chatModel }],
    });
  };
}

describe.each([
  ['in this process', false],
  ['in Redis', true],
])('stored responses through the gateway, kept %s', (_, withRedis) => {
  let gw: TestGateway;
  let search: OpenAI;
  const keyPrefix = `responses-e2e-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    gw = await startTestGateway({ configure: configure(withRedis ? { url: sharedRedisUrl(), keyPrefix } : undefined) });
    search = gw.client({ apiKey: SEARCH_KEY });
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  /** The chat body the provider was sent for the last request. */
  const upstreamMessages = (): Message[] => (gw.sim.requests().at(-1)?.body as { messages: Message[] }).messages;

  it('stores a response by default, retrieves it, and continues it with previous_response_id, sending the provider the whole conversation', async () => {
    const first = await search.responses.create({ model: 'gpt-4o-mini', instructions: 'Be brief.', input: 'Name a colour.' });
    expect(first).toMatchObject({ store: true, previous_response_id: null, status: 'completed' });
    const answer = first.output_text;
    expect(answer.length).toBeGreaterThan(0);

    const retrieved = await search.responses.retrieve(first.id);
    expect(retrieved).toMatchObject({ id: first.id, object: 'response', status: 'completed', store: true, instructions: 'Be brief.', model: 'gpt-4o-mini' });
    expect(retrieved.output_text).toBe(answer);
    expect(retrieved.output).toEqual(first.output);
    // With the usage and the cost the client was answered with.
    expect(retrieved.usage).toEqual(first.usage);
    // Another key of the same project reads it too.
    expect((await gw.client({ apiKey: SEARCH_OTHER_KEY }).responses.retrieve(first.id)).id).toBe(first.id);

    const second = await search.responses.create({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'And another?' });
    expect(second).toMatchObject({ store: true, previous_response_id: first.id, instructions: null });
    // The earlier turn's instructions are not carried over, as OpenAI does not carry them.
    expect(upstreamMessages()).toEqual([
      { role: 'user', content: 'Name a colour.' },
      { role: 'assistant', content: answer },
      { role: 'user', content: 'And another?' },
    ]);
    // Billed for the whole conversation it sent.
    expect(second.usage?.input_tokens).toBeGreaterThan(first.usage?.input_tokens ?? Infinity);
  });

  it('continues a streamed response, and streams the continuation', async () => {
    const first = await search.responses.stream({ model: 'gpt-4o-mini', input: 'Stream a greeting.' }).finalResponse();
    expect(first).toMatchObject({ store: true });
    const stream = search.responses.stream({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'Once more.' });
    let created: OpenAI.Responses.Response | undefined;
    stream.on('response.created', (event) => (created = event.response));
    const second = await stream.finalResponse();
    expect(created).toMatchObject({ store: true, previous_response_id: first.id });
    expect(second).toMatchObject({ store: true, previous_response_id: first.id, status: 'completed' });
    expect(upstreamMessages()).toEqual([
      { role: 'user', content: 'Stream a greeting.' },
      { role: 'assistant', content: first.output_text },
      { role: 'user', content: 'Once more.' },
    ]);
    expect((await search.responses.retrieve(second.id)).output_text).toBe(second.output_text);
  });

  it('runs a tool loop on previous_response_id: the function call output answers the stored call', async () => {
    const first = await search.responses.create({ model: 'gpt-4o-mini', input: 'Weather in Oslo?', tools: [weather], tool_choice: 'required' });
    const call = first.output.find((item) => item.type === 'function_call');
    if (call?.type !== 'function_call') throw new Error('no function call in the output');
    const second = await search.responses.create({
      model: 'gpt-4o-mini',
      previous_response_id: first.id,
      tools: [weather],
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"celsius":4}' }],
    });
    expect(second.output_text).toMatch(/^Tool result received\./);
    const sent = upstreamMessages();
    expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(sent[1]?.tool_calls).toEqual([expect.objectContaining({ id: call.call_id, function: { name: 'get_weather', arguments: call.arguments } })]);
    expect(sent[2]).toEqual({ role: 'tool', tool_call_id: call.call_id, content: '{"celsius":4}' });
  });

  it("hands Claude's signed thinking back in the next stored turn, and shows it only to a retrieval that includes it", async () => {
    const first = await search.responses.create({ model: 'anthropic-chat', input: 'Plan a trip to Oslo.', reasoning: { effort: 'high' } });
    const reasoning = first.output.find((item) => item.type === 'reasoning');
    if (reasoning?.type !== 'reasoning') throw new Error('no reasoning item in the output');
    // Not included: the client does not see it, the stored response keeps it.
    expect(reasoning).not.toHaveProperty('encrypted_content');
    expect((await search.responses.retrieve(first.id)).output.find((item) => item.type === 'reasoning')).not.toHaveProperty('encrypted_content');
    const included = (await search.responses.retrieve(first.id, { include: ['reasoning.encrypted_content'] })).output.find((item) => item.type === 'reasoning');
    expect(included?.type === 'reasoning' ? included.encrypted_content : undefined).toEqual(expect.any(String));

    await search.responses.create({ model: 'anthropic-chat', previous_response_id: first.id, reasoning: { effort: 'high' }, input: 'And Bergen?' });
    const thinking = reasoning.summary[0]?.text ?? '';
    expect(thinking.length).toBeGreaterThan(0);
    const sent = (gw.sim.requests().at(-1)?.body as { messages: Array<{ role: string; content: string | Array<{ type: string; thinking?: string; signature?: string; text?: string }> }> }).messages;
    expect(sent.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    const assistant = sent[1]?.content;
    if (!Array.isArray(assistant)) throw new Error('the assistant turn went without its blocks');
    expect(assistant[0]).toEqual({ type: 'thinking', thinking, signature: anthropicThinkingSignature(thinking) });
    expect(assistant.at(-1)).toMatchObject({ type: 'text', text: first.output_text });
  });

  it('lists the input items of the whole conversation, newest first, a page at a time', async () => {
    const first = await search.responses.create({ model: 'gpt-4o-mini', input: [{ role: 'developer', content: 'Answer in French.' }, { role: 'user', content: 'Hello' }] });
    const second = await search.responses.create({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'Goodbye' });
    const page = await search.responses.inputItems.list(second.id);
    const texts = page.data.map((item) => (item.type === 'message' ? [item.role, item.content.map((c) => ('text' in c ? c.text : '')).join('')] : [item.type]));
    expect(texts).toEqual([
      ['user', 'Goodbye'],
      ['assistant', first.output_text],
      ['user', 'Hello'],
      ['developer', 'Answer in French.'],
    ]);
    expect(page.data.every((item) => typeof item.id === 'string' && item.id.length > 0)).toBe(true);
    expect(page.data[1]?.id).toBe(first.output[0]?.id);

    const ascending: string[] = [];
    for await (const item of search.responses.inputItems.list(second.id, { order: 'asc', limit: 1 })) ascending.push(item.id ?? '');
    expect(ascending).toEqual(page.data.map((item) => item.id).reverse());
    const firstPage = await search.responses.inputItems.list(second.id, { limit: 3 });
    expect([firstPage.data.length, firstPage.has_more]).toEqual([3, true]);

    const bad = await apiError(() => search.responses.inputItems.list(second.id, { limit: 500 }));
    expect([bad.status, bad.param]).toEqual([400, 'limit']);
  });

  it('deletes a response: it is not found, and neither a continuation of it nor of a later turn can be made', async () => {
    const first = await search.responses.create({ model: 'gpt-4o-mini', input: 'One' });
    const second = await search.responses.create({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'Two' });
    await search.responses.delete(first.id);
    const gone = await apiError(() => search.responses.retrieve(first.id));
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
    expect([gone.code, gone.type]).toEqual(['response_not_found', 'invalid_request_error']);
    expect(await apiError(() => search.responses.delete(first.id))).toBeInstanceOf(OpenAI.NotFoundError);

    const before = gw.sim.requests().length;
    const direct = await apiError(() => search.responses.create({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'Three' }));
    expect([direct.status, direct.code, direct.param]).toEqual([404, 'previous_response_not_found', 'previous_response_id']);
    const later = await apiError(() => search.responses.create({ model: 'gpt-4o-mini', previous_response_id: second.id, input: 'Three' }));
    expect([later.status, later.code, later.param]).toEqual([404, 'previous_response_not_found', 'previous_response_id']);
    expect(later.message).toContain(first.id);
    expect(gw.sim.requests().length).toBe(before);
  });

  it("keeps a project's responses from every other project's key", async () => {
    const mine = await search.responses.create({ model: 'gpt-4o-mini', input: 'Private' });
    for (const other of [gw.client({ apiKey: ADS_KEY }), gw.client()]) {
      expect(await apiError(() => other.responses.retrieve(mine.id))).toBeInstanceOf(OpenAI.NotFoundError);
      expect(await apiError(() => other.responses.inputItems.list(mine.id))).toBeInstanceOf(OpenAI.NotFoundError);
      expect(await apiError(() => other.responses.delete(mine.id))).toBeInstanceOf(OpenAI.NotFoundError);
      const continued = await apiError(() => other.responses.create({ model: 'gpt-4o-mini', previous_response_id: mine.id, input: 'Mine now?' }));
      expect([continued.status, continued.code]).toEqual([404, 'previous_response_not_found']);
    }
    expect((await search.responses.retrieve(mine.id)).id).toBe(mine.id);
  });

  it("counts a request's input tokens as its limits and budget count them, the stored conversation included, calling no provider", async () => {
    const first = await search.responses.create({ model: 'gpt-4o-mini', input: 'How warm is it in Oslo today?' });
    const before = gw.sim.requests().length;
    const alone = await search.responses.inputTokens.count({ model: 'gpt-4o-mini', input: 'And in Bergen?' });
    const continued = await search.responses.inputTokens.count({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'And in Bergen?' });
    expect(alone).toMatchObject({ object: 'response.input_tokens' });
    expect(alone.input_tokens).toBeGreaterThan(0);
    expect(continued.input_tokens).toBeGreaterThan(alone.input_tokens + (first.usage?.output_tokens ?? 0));
    expect(gw.sim.requests().length).toBe(before);
    // Close to what the provider then reports for the same request.
    const answered = await search.responses.create({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'And in Bergen?' });
    expect(Math.abs((answered.usage?.input_tokens ?? 0) - continued.input_tokens)).toBeLessThanOrEqual(16);

    const unknown = await apiError(() => search.responses.inputTokens.count({ model: 'no-such-model', input: 'x' }));
    expect([unknown.status, unknown.code, unknown.param]).toEqual([404, 'model_not_found', 'model']);
    const gone = await apiError(() => search.responses.inputTokens.count({ model: 'gpt-4o-mini', previous_response_id: 'resp_missing', input: 'x' }));
    expect([gone.status, gone.code]).toEqual([404, 'previous_response_not_found']);
    const bad = await apiError(() => search.responses.inputTokens.count({ model: 'gpt-4o-mini', input: [{ type: 'function_call_output', output: 'x' } as never] }));
    expect([bad.status, bad.param]).toEqual([400, 'input[0].call_id']);
    expect(await apiError(() => gw.client({ apiKey: 'sk-wrong' }).responses.inputTokens.count({ model: 'gpt-4o-mini', input: 'x' }))).toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('answers odd ids and queries with a 4xx in OpenAI error shape, never a 5xx', async () => {
    const { id } = await search.responses.create({ model: 'gpt-4o-mini', input: 'Odd ones' });
    const paths = [
      ...['x', 'resp_', `resp_${'a'.repeat(5_000)}`, '%00', '%E2%9C%93', '..%2F..%2Fadmin', 'constructor', '__proto__'].flatMap((odd) => [`/v1/responses/${odd}`, `/v1/responses/${odd}/input_items`]),
      ...['limit=0', 'limit=abc', 'limit=1.5', 'order=sideways', 'after=', 'after=msg_unknown', 'include=nope', 'include[]=reasoning.encrypted_content&include[]=x'].map((query) => `/v1/responses/${id}/input_items?${query}`),
      ...['stream=maybe', 'include=', 'include[]=__proto__'].map((query) => `/v1/responses/${id}?${query}`),
    ];
    for (const path of paths) {
      const answer = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${SEARCH_KEY}` } });
      const body = (await answer.json()) as { error?: { message?: unknown; type?: unknown } };
      expect([path, answer.status >= 400 && answer.status < 500]).toEqual([path, true]);
      expect(typeof body.error?.message).toBe('string');
      expect(body.error?.type).toBe('invalid_request_error');
    }
    for (const method of ['DELETE', 'POST']) {
      const answer = await fetch(`${gw.url}/v1/responses/${'%00'}${method === 'POST' ? '/cancel' : ''}`, { method, headers: { authorization: `Bearer ${SEARCH_KEY}` } });
      expect(answer.status).toBe(404);
    }
  });

  it('keeps nothing of the requests of a tenant or key whose policy says storeResponses: false, and says so in GET /v1/key', async () => {
    const stored = await search.responses.create({ model: 'gpt-4o-mini', input: 'Kept' });
    for (const [apiKey, level] of [
      [VAULT_KEY, 'project'],
      [VAULT_ON_KEY, 'project'],
      [SEARCH_UNSTORED_KEY, 'key'],
    ] as const) {
      const client = gw.client({ apiKey });
      const response = await client.responses.create({ model: 'gpt-4o-mini', input: 'Keep nothing' });
      expect(response).toMatchObject({ status: 'completed', store: false });
      expect(await apiError(() => client.responses.retrieve(response.id))).toBeInstanceOf(OpenAI.NotFoundError);
      const streamed = await client.responses.stream({ model: 'gpt-4o-mini', input: 'Keep nothing either' }).finalResponse();
      expect(streamed).toMatchObject({ store: false });
      const before = gw.sim.requests().length;
      const continued = await apiError(() => client.responses.create({ model: 'gpt-4o-mini', previous_response_id: stored.id, input: 'Go on' }));
      expect([continued.status, continued.code, continued.param]).toEqual([400, 'unsupported_parameter', 'previous_response_id']);
      expect(continued.message).toContain(`the policy of its ${level}`);
      // Nor run in the background, which stores the response.
      const queued = await apiError(() => client.responses.create({ model: 'gpt-4o-mini', input: 'Later', background: true }));
      expect([queued.status, queued.code, queued.param]).toEqual([400, 'unsupported_parameter', 'background']);
      expect(queued.message).toContain(`the policy of its ${level}`);
      // A body that is no object is refused as such, under this policy as under any.
      for (const path of ['/v1/responses', '/v1/responses/input_tokens']) {
        const refused = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: 'null' });
        expect(refused.status).toBe(400);
        expect(((await refused.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
      }
      expect(gw.sim.requests().length).toBe(before);
      const self = (await (await fetch(`${gw.url}/v1/key`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { store_responses: unknown; policy: Record<string, unknown> | null };
      expect(self.store_responses).toEqual({ allowed: false, off_at: level });
    }
    // The search project's own requests are stored as before.
    const self = (await (await fetch(`${gw.url}/v1/key`, { headers: { authorization: `Bearer ${SEARCH_KEY}` } })).json()) as { store_responses: unknown };
    expect(self.store_responses).toEqual({ allowed: true, off_at: null });
    expect((await search.responses.retrieve(stored.id)).id).toBe(stored.id);
  });

  it('keeps no stream that failed or whose client left: it cannot be retrieved or continued', async () => {
    gw.sim.configure({ completionTokens: 40, faults: [{ kind: 'drop_mid_stream', afterTokens: 3, remaining: 1 }] });
    let failedId: string | undefined;
    for await (const event of await search.responses.create({ model: 'gpt-4o-mini', input: 'Dropped', stream: true })) {
      if (event.type === 'response.failed') failedId = event.response.id;
    }
    expect(failedId).toEqual(expect.stringMatching(/^resp_/));

    gw.sim.configure({ completionTokens: 500, tokensPerSecond: 50 });
    const abort = new AbortController();
    let leftId: string | undefined;
    try {
      for await (const event of await search.responses.create({ model: 'gpt-4o-mini', input: 'Left', stream: true }, { signal: abort.signal })) {
        if (event.type === 'response.created') leftId = event.response.id;
        if (event.type === 'response.output_text.delta') {
          abort.abort();
          break;
        }
      }
    } catch {
      // the SDK may end the iteration or raise an abort error; either way the client is gone
    }
    await gw.sim.waitForRequest((r) => r.outcome === 'aborted', 10_000);
    expect(leftId).toEqual(expect.stringMatching(/^resp_/));

    for (const id of [failedId ?? '', leftId ?? '']) {
      expect(await apiError(() => search.responses.retrieve(id))).toBeInstanceOf(OpenAI.NotFoundError);
      const continued = await apiError(() => search.responses.create({ model: 'gpt-4o-mini', previous_response_id: id, input: 'Go on' }));
      expect([continued.status, continued.code]).toEqual([404, 'previous_response_not_found']);
    }
  });

  it('keeps nothing for store: false', async () => {
    const unstored = await search.responses.create({ model: 'gpt-4o-mini', input: 'Forget me', store: false });
    expect(unstored).toMatchObject({ store: false });
    expect(await apiError(() => search.responses.retrieve(unstored.id))).toBeInstanceOf(OpenAI.NotFoundError);
    const continued = await apiError(() => search.responses.create({ model: 'gpt-4o-mini', previous_response_id: unstored.id, input: 'Remember?' }));
    expect([continued.status, continued.code]).toEqual([404, 'previous_response_not_found']);
  });

  it('refuses a conversation longer than responses.maxConversationResponses, a cancel, and a stream to resume', async () => {
    let previous = (await search.responses.create({ model: 'gpt-4o-mini', input: 'Turn 1' })).id;
    for (let turn = 2; turn <= 4; turn++) previous = (await search.responses.create({ model: 'gpt-4o-mini', previous_response_id: previous, input: `Turn ${turn}` })).id;
    const long = await apiError(() => search.responses.create({ model: 'gpt-4o-mini', previous_response_id: previous, input: 'Turn 5' }));
    expect([long.status, long.code, long.param]).toEqual([400, 'conversation_too_long', 'previous_response_id']);
    expect(long.message).toContain('responses.maxConversationResponses');
    // Larger than responses.maxConversationBytes in one turn: stored, but not continued.
    const large = await search.responses.create({ model: 'gpt-4o-mini', input: `${'word '.repeat(5_000)}` });
    expect(large).toMatchObject({ store: true });
    const before = gw.sim.requests().length;
    const heavy = await apiError(() => search.responses.create({ model: 'gpt-4o-mini', previous_response_id: large.id, input: 'And?' }));
    expect([heavy.status, heavy.code, heavy.param]).toEqual([400, 'conversation_too_long', 'previous_response_id']);
    expect(heavy.message).toContain('responses.maxConversationBytes');
    expect(gw.sim.requests().length).toBe(before);

    const cancel = await apiError(() => search.responses.cancel(previous));
    expect([cancel.status, cancel.code]).toEqual([400, 'response_not_cancellable']);
    expect(await apiError(() => search.responses.cancel('resp_missing'))).toBeInstanceOf(OpenAI.NotFoundError);
    const resume = await apiError(() => search.responses.retrieve(previous, { stream: true }).then(async (events) => { for await (const _ of events); }));
    expect([resume.status, resume.param]).toEqual([400, 'stream']);
    const include = await apiError(() => search.responses.retrieve(previous, { include: ['file_search_call.results'] }));
    expect([include.status, include.param]).toEqual([400, 'include']);
  });
});

describe('stored responses kept in Redis', () => {
  let gw: TestGateway;
  let replica: TestGateway;
  let redis: Redis;
  const keyPrefix = `responses-redis-e2e-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    gw = await startTestGateway({ configure: configure({ url: sharedRedisUrl(), keyPrefix }) });
    // A second replica on the same Redis.
    replica = await startTestGateway({ configure: configure({ url: sharedRedisUrl(), keyPrefix }) });
    redis = new Redis(sharedRedisUrl());
  });
  afterAll(async () => {
    await redis?.quit();
    await replica?.close();
    await gw?.close();
  });

  it('continues on one replica a conversation another replica answered, as soon as it was answered', async () => {
    const first = await gw.client({ apiKey: SEARCH_KEY }).responses.create({ model: 'gpt-4o-mini', input: 'Asked of the first replica' });
    const second = await replica.client({ apiKey: SEARCH_KEY }).responses.create({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'Asked of the second' });
    expect(second).toMatchObject({ store: true, previous_response_id: first.id });
    expect((replica.sim.requests().at(-1)?.body as { messages: Message[] }).messages.map((m) => m.content)).toEqual(['Asked of the first replica', first.output_text, 'Asked of the second']);
    const items = await gw.client({ apiKey: SEARCH_OTHER_KEY }).responses.inputItems.list(second.id, { order: 'asc' });
    expect(items.data.map((item) => item.type)).toEqual(['message', 'message', 'message']);
  });

  it('keeps each response sealed, for responses.retentionDays, and a conversation as long as its last turn', async () => {
    const client = gw.client({ apiKey: SEARCH_KEY });
    const marker = `secret-marker-${randomBytes(6).toString('hex')}`;
    const first = await client.responses.create({ model: 'gpt-4o-mini', input: `Remember ${marker}` });
    const raw = await redis.getBuffer(`${keyPrefix}response:${first.id}`);
    expect(raw?.length).toBeGreaterThan(28);
    expect(raw?.toString('latin1')).not.toContain(marker);
    const month = 30 * 86_400_000;
    expect(await redis.pttl(`${keyPrefix}response:${first.id}`)).toBeGreaterThan(month - 60_000);

    // The first turn's expiry moves with the last one's.
    await redis.pexpire(`${keyPrefix}response:${first.id}`, 60_000);
    await client.responses.create({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'And now?' });
    expect(await redis.pttl(`${keyPrefix}response:${first.id}`)).toBeGreaterThan(month - 60_000);
  });
});

describe('a gateway that stores no responses (responses.store: false)', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({ configure: (doc) => (doc['responses'] = { store: false }) });
  });
  afterAll(async () => gw?.close());

  it('answers store: false, refuses previous_response_id and answers 404 on every stored-response route', async () => {
    const client = gw.client();
    const response = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi' });
    expect(response).toMatchObject({ store: false });
    const continued = await apiError(() => client.responses.create({ model: 'gpt-4o-mini', previous_response_id: response.id, input: 'again' }));
    expect([continued.status, continued.code, continued.param]).toEqual([400, 'unsupported_parameter', 'previous_response_id']);
    expect(continued.message).toContain('responses.store is false');
    for (const call of [() => client.responses.retrieve(response.id), () => client.responses.delete(response.id), () => client.responses.inputItems.list(response.id), () => client.responses.cancel(response.id)]) {
      const error = await apiError(call);
      expect([error.status, error.code]).toEqual([404, 'response_store_disabled']);
    }
  });
});
