import Anthropic, { APIError, AuthenticationError, BadRequestError, NotFoundError, RateLimitError } from '@anthropic-ai/sdk';
import { hashApiKey } from '@openrouter/ingress';
import { ANTHROPIC_REDACTED_THINKING_TRIGGER, anthropicThinkingSignature, OPENAI_REFUSAL_TRIGGER } from '@openrouter/provider-simulator';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { SIMULATED_PROVIDERS } from '../support/simulated-providers';
import { SIM_KEY, TEST_ADMIN_KEY, TEST_DEV_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`) through the
 * whole gateway with the official `@anthropic-ai/sdk`: served by the chat path, to a Claude
 * provider or an OpenAI-family one alike.
 */
const SECRET = 'anthropic-messages-e2e-hash-secret';
const LIMITED_KEY = 'sk-or-v1-anthropic-limited-key-00000000000000';
/** What an image costs on `claude-chat`, as its provider bills it (the gateway's default is less). */
const CLAUDE_IMAGE_TOKENS = 3_000;
/** A 1×1 PNG, as a screenshot tool would return one. */
const PIXEL = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

const weather: Anthropic.Tool = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

/**
 * The test gateway with a Claude model on the simulated Anthropic wire, another on the simulated
 * Bedrock (Converse) wire, and a key limited to 2 requests a minute.
 */
/** `access.requests.maxMessages` of the gateway below: low, to show what it counts. */
const MAX_MESSAGES = 8;

function startWithClaude(): Promise<TestGateway> {
  return startTestGateway({
    configure: (doc) => {
      const url = String((doc['providers'] as { simulated: { baseUrl: string } }).simulated.baseUrl).replace(/\/v1$/, '');
      const profile = SIMULATED_PROVIDERS.anthropic;
      (doc['providers'] as Record<string, unknown>)['sim-anthropic'] = profile.config(url, SIM_KEY);
      (doc['providers'] as Record<string, unknown>)['sim-bedrock'] = SIMULATED_PROVIDERS.bedrock.config(url, SIM_KEY);
      (doc['models'] as Array<Record<string, unknown>>).push(
        {
          id: 'claude-chat',
          capabilities: ['chat', 'tools', 'vision', 'json_object', 'json_schema'],
          imageTokens: { max: CLAUDE_IMAGE_TOKENS },
          pricing: { input: '1', output: '2' },
          deployments: [{ id: 'sim-anthropic-chat', provider: 'sim-anthropic', model: profile.chatModel }],
        },
        {
          // Anthropic's rates relative to input: cache reads 0.1, five-minute writes 1.25, hour-long writes 2.
          id: 'claude-cached',
          capabilities: ['chat', 'tools'],
          pricing: { input: '1', output: '2', cachedInput: '0.1', cacheWrite: '1.25', cacheWrite1h: '2' },
          deployments: [{ id: 'sim-anthropic-cached', provider: 'sim-anthropic', model: profile.chatModel }],
        },
        {
          id: 'bedrock-claude',
          capabilities: ['chat', 'tools'],
          pricing: { input: '1', output: '2' },
          deployments: [{ id: 'sim-bedrock-chat', provider: 'sim-bedrock', model: SIMULATED_PROVIDERS.bedrock.chatModel }],
        },
      );
      doc['access'] = {
        keyHashSecret: SECRET,
        admin: { devKey: TEST_ADMIN_KEY },
        orgs: [{ id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] }],
        keys: [{ id: 'limited', hash: hashApiKey(SECRET, LIMITED_KEY), org: 'default', project: 'default', limits: { rpm: 2 } }],
        requests: { maxMessages: MAX_MESSAGES },
      };
    },
  });
}

/** Anthropic's SDK pointed at the gateway (as `ANTHROPIC_BASE_URL` would), its key sent as it sends it by default. */
const anthropicClient = (gw: TestGateway, apiKey = TEST_DEV_KEY): Anthropic => new Anthropic({ baseURL: gw.url, apiKey, maxRetries: 0, timeout: 20_000 });

/**
 * The SDK as tools pinned to the 2023-06-01 API (Claude Code and older SDKs) call it: the key in
 * `x-api-key`, no Authorization header, and beta flags the gateway ignores.
 */
const pinnedClient = (gw: TestGateway, apiKey = TEST_DEV_KEY): Anthropic =>
  new Anthropic({
    baseURL: gw.url,
    apiKey,
    maxRetries: 0,
    timeout: 20_000,
    defaultHeaders: { authorization: null, 'x-api-key': apiKey, 'anthropic-version': '2023-06-01', 'anthropic-beta': 'interleaved-thinking-2025-05-14' },
  });

type ChatMessage = { role: string; content?: unknown; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>; tool_call_id?: string };
type AnthropicBlock = { type: string; thinking?: string; signature?: string; id?: string; name?: string; input?: unknown; tool_use_id?: string; content?: unknown };

const textOf = (message: Anthropic.Message): string => message.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');

async function rejectionOf(run: () => Promise<unknown>): Promise<APIError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof APIError)) throw new Error(`expected the SDK to raise an APIError, got ${String(error)}`);
  return error;
}

describe('the Messages API through the gateway', () => {
  let gw: TestGateway;
  let client: Anthropic;

  beforeAll(async () => {
    gw = await startWithClaude();
    client = anthropicClient(gw);
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  /** The body the provider was sent for the last request. */
  const upstream = <T>(): T => gw.sim.requests().at(-1)?.body as T;
  const chatUpstream = (): { model?: string; messages: ChatMessage[]; tools?: unknown[]; tool_choice?: unknown; max_completion_tokens?: number; stream?: boolean } => upstream();
  const anthropicUpstream = (): { messages: Array<{ role: string; content: string | AnthropicBlock[] }>; thinking?: unknown; system?: unknown } => upstream();

  it('answers client.messages.create with a message, usage, cost and routing headers, as the chat completion would', async () => {
    // `temperature` as clients of the 2023-06-01 API send it (this SDK's newer API has none).
    const params = { model: 'gpt-4o-mini', max_tokens: 256, system: 'Be brief.', messages: [{ role: 'user', content: 'Hello there' }], temperature: 0.5 } as Anthropic.MessageCreateParamsNonStreaming;
    const { data, response } = await client.messages.create(params).withResponse();
    expect(data).toMatchObject({ type: 'message', role: 'assistant', model: 'gpt-4o-mini', stop_reason: 'end_turn', stop_sequence: null });
    expect(data.id).toMatch(/^msg_/);
    expect(data.content).toEqual([{ type: 'text', text: expect.any(String) as unknown }]);
    expect(textOf(data).length).toBeGreaterThan(0);
    expect(data.usage.input_tokens).toBeGreaterThan(0);
    expect(data.usage.output_tokens).toBeGreaterThan(0);
    // Anthropic's request id header, read by the SDK, is the gateway's request id.
    expect(response.headers.get('request-id')).toBe(response.headers.get('x-request-id'));
    expect(response.headers.get('x-openrouter-provider')).toBe('simulated');
    const cost = Number(response.headers.get('x-openrouter-cost'));
    expect(cost).toBeGreaterThan(0);
    expect((data.usage as unknown as { cost: number }).cost).toBe(cost);
    // The provider was asked an ordinary chat completion.
    expect(chatUpstream()).toMatchObject({
      model: 'sim-mini-upstream',
      max_completion_tokens: 256,
      temperature: 0.5,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello there' },
      ],
    });

    // The same conversation asked as a chat completion gets the same (deterministic) answer.
    const chat = await gw.client().chat.completions.create({ model: 'gpt-4o-mini', max_completion_tokens: 256, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }], temperature: 0.5 });
    expect(textOf(data)).toBe(chat.choices[0]?.message.content);
    expect(data.usage.input_tokens).toBe(chat.usage?.prompt_tokens);
    expect(data.usage.output_tokens).toBe(chat.usage?.completion_tokens);
  });

  it('takes the key as x-api-key (no Authorization header) and ignores anthropic-version and anthropic-beta', async () => {
    const message = await pinnedClient(gw).messages.create({ model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] });
    expect(textOf(message).length).toBeGreaterThan(0);
  });

  it('records a usage row with the chat operation and the cost of the header', async () => {
    const requestId = `messages-usage-${Date.now()}`;
    const { response } = await client.messages.create({ model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: 'Count me' }] }, { headers: { 'x-request-id': requestId } }).withResponse();
    const rows = await waitFor(
      async () => {
        const found = await queryRows<{ operation: string; status: string; served_model: string; prompt_tokens: number; completion_tokens: number; cost: string; stream: boolean }>(
          gw.gateway.billing.usage.store,
          'SELECT operation, status, served_model, prompt_tokens, completion_tokens, toString(cost) AS cost, stream FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}',
          { id: requestId },
        );
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `the usage row of ${requestId}` },
    );
    expect(rows).toEqual([expect.objectContaining({ operation: 'chat', status: 'ok', served_model: 'gpt-4o-mini', stream: false })]);
    expect(rows[0]?.prompt_tokens).toBeGreaterThan(0);
    expect(rows[0]?.completion_tokens).toBeGreaterThan(0);
    expect(Number(rows[0]?.cost)).toBe(Number(response.headers.get('x-openrouter-cost')));
  });

  it('bills prompt-cache writes kept an hour at cacheWrite1h and those kept five minutes at cacheWrite, then reads at cachedInput', async () => {
    const report = 'The quarterly report covers revenue, costs and the outlook for every region. '.repeat(120);
    const ask = (ttl: '5m' | '1h', question: string) =>
      client.messages
        .create({ model: 'claude-cached', max_tokens: 32, system: [{ type: 'text', text: `${ttl} ${report}`, cache_control: { type: 'ephemeral', ttl } }], messages: [{ role: 'user', content: question }] })
        .withResponse();
    // What the usage says, at the model's prices (per 1M tokens: input 1, output 2, read 0.1, writes 1.25 and 2).
    const expected = (u: Anthropic.Usage, writePrice: number) => (u.input_tokens * 1 + (u.cache_read_input_tokens ?? 0) * 0.1 + (u.cache_creation_input_tokens ?? 0) * writePrice + u.output_tokens * 2) / 1e6;
    const hour = await ask('1h', 'Summarise.');
    expect(hour.data.usage.cache_creation_input_tokens).toBeGreaterThanOrEqual(1024);
    expect(Number(hour.response.headers.get('x-openrouter-cost'))).toBeCloseTo(expected(hour.data.usage, 2), 12);
    const five = await ask('5m', 'Summarise.');
    expect(five.data.usage.cache_creation_input_tokens).toBeGreaterThanOrEqual(1024);
    expect(Number(five.response.headers.get('x-openrouter-cost'))).toBeCloseTo(expected(five.data.usage, 1.25), 12);
    const read = await ask('1h', 'List the risks.');
    expect(read.data.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: hour.data.usage.cache_creation_input_tokens });
    expect(Number(read.response.headers.get('x-openrouter-cost'))).toBeCloseTo(expected(read.data.usage, 0), 12);
  });

  it("reports the usage billing records, the gateway's estimate, when the provider reports none", async () => {
    gw.sim.configure({ omitUsage: true });
    const requestId = `messages-estimated-${Date.now()}`;
    const { data, response } = await client.messages.create({ model: 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: 'Count me without usage' }] }, { headers: { 'x-request-id': requestId } }).withResponse();
    expect(textOf(data).length).toBeGreaterThan(0);
    const rows = await waitFor(
      async () => {
        const found = await queryRows<{ prompt_tokens: number; completion_tokens: number; estimated: boolean; cost: string }>(
          gw.gateway.billing.usage.store,
          'SELECT prompt_tokens, completion_tokens, tokens_estimated AS estimated, toString(cost) AS cost FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}',
          { id: requestId },
        );
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `the usage row of ${requestId}` },
    );
    expect(rows[0]).toMatchObject({ estimated: true });
    expect(rows[0]?.prompt_tokens).toBeGreaterThan(0);
    expect(rows[0]?.completion_tokens).toBeGreaterThan(0);
    expect(data.usage).toMatchObject({ input_tokens: rows[0]?.prompt_tokens, output_tokens: rows[0]?.completion_tokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
    expect((data.usage as unknown as { cost: number }).cost).toBe(Number(response.headers.get('x-openrouter-cost')));
    expect(Number(rows[0]?.cost)).toBe(Number(response.headers.get('x-openrouter-cost')));
  });

  it('reports max_tokens when the answer is cut at its length', async () => {
    const message = await client.messages.create({ model: 'gpt-4o-mini', max_tokens: 4, messages: [{ role: 'user', content: 'Tell me a long story' }] });
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage.output_tokens).toBe(4);
    expect(chatUpstream().max_completion_tokens).toBe(4);
  });

  describe('stop sequences', () => {
    /** The answer the model gives with no stop sequence, and a word from its middle to stop at. */
    async function wordOf(model: string, content: string): Promise<{ full: string; word: string }> {
      const full = textOf(await client.messages.create({ model, max_tokens: 64, messages: [{ role: 'user', content }] }));
      const word = full.split(' ')[3];
      if (!word) throw new Error(`the answer is too short to stop in: ${full}`);
      return { full, word };
    }

    it.each([
      ['claude-chat', 'Anthropic'],
      ['bedrock-claude', 'Bedrock'],
    ])('answers %s (%s) that stopped at a stop sequence with stop_reason stop_sequence and the sequence, whole and streamed', async (model) => {
      const { full, word } = await wordOf(model, 'Tell me about the river');
      const stop_sequences = ['NEVER-IN-THE-ANSWER', word];
      const message = await client.messages.create({ model, max_tokens: 64, stop_sequences, messages: [{ role: 'user', content: 'Tell me about the river' }] });
      expect(message).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: word });
      expect(full.startsWith(textOf(message))).toBe(true);
      expect(full.length).toBeGreaterThan(textOf(message).length);

      const stream = client.messages.stream({ model, max_tokens: 64, stop_sequences, messages: [{ role: 'user', content: 'Tell me about the river' }] });
      const deltas: unknown[] = [];
      stream.on('streamEvent', (event) => {
        if (event.type === 'message_delta') deltas.push(event.delta);
      });
      const final = await stream.finalMessage();
      expect(deltas).toEqual([{ stop_reason: 'stop_sequence', stop_sequence: word }]);
      expect(final).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: word });
      expect(textOf(final)).toBe(textOf(message));
    });

    it('asks Claude on Bedrock for the sequence that matched, which Converse does not otherwise name', async () => {
      const { word } = await wordOf('bedrock-claude', 'Weather?');
      await client.messages.create({ model: 'bedrock-claude', max_tokens: 64, stop_sequences: [word], messages: [{ role: 'user', content: 'Weather?' }] });
      expect(upstream<Record<string, unknown>>()).toMatchObject({ inferenceConfig: { stopSequences: [word] }, additionalModelResponseFieldPaths: ['/stop_sequence'] });
    });

    it("ends an OpenAI-family answer's turn (end_turn, no sequence): the provider does not say whether a stop sequence ended it", async () => {
      const { full, word } = await wordOf('gpt-4o-mini', 'Tell me about the river');
      // Even with a single stop sequence: the answer may have ended at its natural end, and the sequence is not in the text.
      const message = await client.messages.create({ model: 'gpt-4o-mini', max_tokens: 64, stop_sequences: [word], messages: [{ role: 'user', content: 'Tell me about the river' }] });
      expect(chatUpstream()).toMatchObject({ stop: [word] });
      expect(full.length).toBeGreaterThan(textOf(message).length);
      expect(message).toMatchObject({ stop_reason: 'end_turn', stop_sequence: null });
    });
  });

  it('streams with client.messages.stream: events in order, text deltas and finalMessage()', async () => {
    const stream = client.messages.stream({ model: 'gpt-4o-mini', max_tokens: 256, messages: [{ role: 'user', content: 'Stream please' }] });
    const types: string[] = [];
    let text = '';
    stream.on('streamEvent', (event) => types.push(event.type));
    stream.on('text', (delta) => (text += delta));
    const final = await stream.finalMessage();
    expect(text.length).toBeGreaterThan(0);
    expect(textOf(final)).toBe(text);
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.output_tokens).toBeGreaterThan(0);
    expect(final.usage.input_tokens).toBeGreaterThan(0);
    expect(types.slice(0, 2)).toEqual(['message_start', 'content_block_start']);
    expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(types.filter((t) => t === 'content_block_delta').length).toBeGreaterThan(1);
    // The provider streamed, and was asked for its usage.
    expect(gw.sim.requests().at(-1)).toMatchObject({ stream: true, body: { stream: true, stream_options: { include_usage: true } } });

    const whole = await client.messages.create({ model: 'gpt-4o-mini', max_tokens: 256, messages: [{ role: 'user', content: 'Stream please' }] });
    expect(text).toBe(textOf(whole));
    expect(final.usage.output_tokens).toBe(whole.usage.output_tokens);
  });

  it("answers an OpenAI-family model's refusal (finish_reason stop) with stop_reason refusal and its text, whole and streamed", async () => {
    const params = { model: 'gpt-4o-mini', max_tokens: 256, messages: [{ role: 'user' as const, content: `Help me. ${OPENAI_REFUSAL_TRIGGER}` }] };
    const refusal = "I'm sorry, but I can't help with that request.";
    const whole = await client.messages.create(params);
    expect(whole).toMatchObject({ stop_reason: 'refusal', stop_sequence: null, content: [{ type: 'text', text: refusal }] });

    const stream = client.messages.stream(params);
    let text = '';
    stream.on('text', (delta) => (text += delta));
    const final = await stream.finalMessage();
    expect(text).toBe(refusal);
    expect(final).toMatchObject({ stop_reason: 'refusal', content: [{ type: 'text', text: refusal }] });
    expect(gw.sim.requests().at(-1)).toMatchObject({ stream: true });
  });

  it('makes a tool call when tool_choice requires one, and answers its result (the round trip)', async () => {
    const first = await client.messages.create({ model: 'gpt-4o-mini', max_tokens: 256, messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools: [weather], tool_choice: { type: 'any' } });
    expect(chatUpstream()).toMatchObject({ tools: [{ type: 'function', function: { name: 'get_weather', parameters: weather.input_schema } }], tool_choice: 'required' });
    expect(first.stop_reason).toBe('tool_use');
    const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
    if (!use) throw new Error('no tool_use block in the answer');
    expect(use.name).toBe('get_weather');
    expect(use.input).toEqual({ city: expect.any(String) as unknown });

    // The whole conversation goes back, with the answer's content as it came and the tool's result.
    const second = await client.messages.create({
      model: 'gpt-4o-mini',
      max_tokens: 256,
      tools: [weather],
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '{"celsius":4}' }] },
      ],
    });
    expect(second.stop_reason).toBe('end_turn');
    expect(textOf(second).length).toBeGreaterThan(0);
    const messages = chatUpstream().messages;
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(messages[1]?.tool_calls).toEqual([{ id: use.id, type: 'function', function: { name: 'get_weather', arguments: JSON.stringify(use.input) } }]);
    expect(messages[2]).toMatchObject({ tool_call_id: use.id, content: '{"celsius":4}' });
  });

  it('streams a forced tool call, its input_json deltas adding up to the input', async () => {
    const stream = client.messages.stream({ model: 'gpt-4o-mini', max_tokens: 256, messages: [{ role: 'user', content: 'Weather in Bergen?' }], tools: [weather], tool_choice: { type: 'tool', name: 'get_weather' } });
    let json = '';
    stream.on('inputJson', (partial) => (json += partial));
    const final = await stream.finalMessage();
    const use = final.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
    expect(use?.name).toBe('get_weather');
    expect(use?.input).toEqual(JSON.parse(json));
    expect(final.stop_reason).toBe('tool_use');
    expect(chatUpstream().tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });
  });

  it('serves the same request from a Claude provider and an OpenAI-family one', async () => {
    const request: Anthropic.MessageCreateParamsNonStreaming = { model: 'claude-chat', max_tokens: 200, system: 'Be brief.', messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools: [weather], tool_choice: { type: 'tool', name: 'get_weather' } };
    for (const [model, provider] of [
      ['claude-chat', 'sim-anthropic'],
      ['gpt-4o-mini', 'simulated'],
    ] as const) {
      const { data, response } = await client.messages.create({ ...request, model }).withResponse();
      expect(response.headers.get('x-openrouter-provider')).toBe(provider);
      expect(data).toMatchObject({ model, stop_reason: 'tool_use' });
      const use = data.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
      expect(use?.input).toEqual({ city: expect.any(String) as unknown });
      expect(data.usage.input_tokens).toBeGreaterThan(0);
      const seen = gw.sim.requests().at(-1);
      // Each provider on its own wire: Anthropic's Messages API, or a chat completion.
      expect(seen?.path).toBe(model === 'claude-chat' ? '/v1/messages' : '/v1/chat/completions');
      expect(seen?.body).toMatchObject(model === 'claude-chat' ? { system: 'Be brief.', tool_choice: { type: 'tool', name: 'get_weather' } } : { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user' }] });
    }
  });

  it("serves Claude Code's turns: context_management and the other platform fields it may send are accepted, the conversation sent whole", async () => {
    // As Claude Code asks: the beta route (`?beta=true`), its context editing, beta flags in the body.
    const message = await client.beta.messages.create({
      model: 'claude-chat',
      max_tokens: 128,
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '4 °C' }] },
      ],
      tools: [weather],
      context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }, { type: 'clear_tool_uses_20250919' }] },
      diagnostics: { previous_message_id: null },
      betas: ['context-management-2025-06-27'],
    });
    expect(message).toMatchObject({ type: 'message', role: 'assistant', model: 'claude-chat' });
    const sent = anthropicUpstream();
    expect(sent.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(sent).not.toHaveProperty('context_management');
  });

  it('carries cache_control to a Claude provider on the blocks the client marked', async () => {
    const ephemeral = { type: 'ephemeral' } as const;
    const rules = 'You answer questions about the weather in Norway, briefly and in metric units.';
    const message = await client.messages.create({
      model: 'claude-chat',
      max_tokens: 64,
      system: [{ type: 'text', text: rules, cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Oslo today?', cache_control: ephemeral }, { type: 'text', text: 'And tomorrow?' }] }],
    });
    const sent = anthropicUpstream();
    expect(sent.system).toEqual([{ type: 'text', text: rules, cache_control: { type: 'ephemeral', ttl: '1h' } }]);
    expect(sent.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'Oslo today?', cache_control: ephemeral }, { type: 'text', text: 'And tomorrow?' }] }]);
    // The simulator reports no cache reads or writes: the usage says so in Anthropic's fields.
    expect(message.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
    expect(message.usage.input_tokens).toBeGreaterThan(0);
  });

  it('carries cache_control on a tool definition, a tool_result block and a PDF document to a Claude provider', async () => {
    const ephemeral = { type: 'ephemeral' } as const;
    const hour = { type: 'ephemeral', ttl: '1h' } as const;
    const pdf = Buffer.from('%PDF-1.4 simulated').toString('base64');
    const message = await client.messages.create({
      model: 'claude-chat',
      max_tokens: 64,
      tools: [{ ...weather, cache_control: hour }],
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: '4 °C', cache_control: ephemeral },
            { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: pdf }, title: 'forecast.pdf', cache_control: ephemeral },
            { type: 'text', text: 'And the forecast?' },
          ],
        },
      ],
    });
    expect(textOf(message).length).toBeGreaterThan(0);
    const sent = upstream<{ tools: unknown[]; messages: Array<{ role: string; content: unknown }> }>();
    expect(sent.tools).toEqual([{ name: 'get_weather', description: weather.description, input_schema: weather.input_schema, cache_control: hour }]);
    expect(sent.messages[2]).toEqual({
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'toolu_1', content: '4 °C', cache_control: ephemeral },
        { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: pdf }, title: 'forecast.pdf', cache_control: ephemeral },
        { type: 'text', text: 'And the forecast?' },
      ],
    });

    // The request's own cache_control lands on a last tool_result block, as Anthropic puts it.
    await client.messages.create({
      model: 'claude-chat',
      max_tokens: 64,
      tools: [weather],
      cache_control: ephemeral,
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '4 °C' }] },
      ],
    } as Anthropic.MessageCreateParamsNonStreaming);
    expect(anthropicUpstream().messages.at(-1)?.content).toEqual([{ type: 'tool_result', tool_use_id: 'toolu_1', content: '4 °C', cache_control: ephemeral }]);
  });

  it("takes a screenshot in a tool result: an OpenAI-family model gets it in a user message after the tool's, a Claude provider in the tool_result", async () => {
    const screen: Anthropic.Tool = { name: 'screenshot', description: 'A screenshot of the screen', input_schema: { type: 'object', properties: {} } };
    const shot: Anthropic.ImageBlockParam = { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PIXEL } };
    const messages: Anthropic.MessageParam[] = [
      { role: 'user', content: 'What is on the screen?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'screenshot', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [shot] }] },
    ];

    const openai = await client.messages.create({ model: 'gpt-4o-mini', max_tokens: 64, tools: [screen], messages });
    expect(openai.stop_reason).toBe('end_turn');
    expect(textOf(openai).length).toBeGreaterThan(0);
    expect(chatUpstream().messages.slice(2)).toEqual([
      { role: 'tool', tool_call_id: 'toolu_1', content: 'The result is 1 image, in the user message that follows.' },
      { role: 'user', content: [{ type: 'text', text: 'The result of tool call toolu_1 (1 image):' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PIXEL}` } }] },
    ]);

    const claude = await client.messages.create({ model: 'claude-chat', max_tokens: 64, tools: [screen], messages });
    expect(textOf(claude).length).toBeGreaterThan(0);
    expect(anthropicUpstream().messages.at(-1)).toEqual({ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [shot] }] });
  });

  it("refuses a malformed block in a tool result's content with BadRequestError naming its path, calling no provider", async () => {
    const before = gw.sim.requests().length;
    const bad = await rejectionOf(() =>
      client.messages.create({
        model: 'claude-chat',
        max_tokens: 8,
        messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'image' } as unknown as Anthropic.ImageBlockParam] }] }],
      }),
    );
    expect(bad).toBeInstanceOf(BadRequestError);
    expect(bad.message).toContain('messages[0].content[0].content[0].source');
    expect(gw.sim.requests().length).toBe(before);
  });

  describe("Claude's extended thinking", () => {
    const thinking = { type: 'enabled', budget_tokens: 2048 } as const;

    it('reaches Claude on Bedrock too, in additionalModelRequestFields', async () => {
      const answer = await client.messages.create({ model: 'bedrock-claude', max_tokens: 4096, thinking, messages: [{ role: 'user', content: 'Weather in Oslo?' }] });
      expect(upstream<{ additionalModelRequestFields?: unknown; inferenceConfig?: unknown }>()).toMatchObject({ additionalModelRequestFields: { thinking }, inferenceConfig: { maxTokens: 4096 } });
      expect(answer.content[0]?.type).toBe('thinking');
    });

    it('returns signed thinking first, and hands it back first in the tool turn', async () => {
      const first = await client.messages.create({ model: 'claude-chat', max_tokens: 4096, thinking, tools: [weather], messages: [{ role: 'user', content: 'Weather in Oslo?' }] });
      // The client's own thinking object reached the provider as it was sent.
      expect(anthropicUpstream().thinking).toEqual(thinking);
      const block = first.content[0];
      if (block?.type !== 'thinking') throw new Error('the answer does not start with thinking');
      expect(block.thinking.length).toBeGreaterThan(0);
      expect(block.signature).toBe(anthropicThinkingSignature(block.thinking));

      // The tool turn, as a Claude client sends it: the answer's blocks unchanged, then the result.
      const call: Anthropic.ToolUseBlockParam = { type: 'tool_use', id: 'toolu_oslo', name: 'get_weather', input: { city: 'Oslo' } };
      const second = await client.messages.create({
        model: 'claude-chat',
        max_tokens: 4096,
        thinking,
        tools: [weather],
        messages: [
          { role: 'user', content: 'Weather in Oslo?' },
          { role: 'assistant', content: [{ type: 'thinking', thinking: block.thinking, signature: block.signature }, call] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_oslo', content: '{"celsius":4}' }] },
        ],
      });
      expect(textOf(second).length).toBeGreaterThan(0);
      const messages = anthropicUpstream().messages;
      expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
      expect(messages[1]?.content).toEqual([
        { type: 'thinking', thinking: block.thinking, signature: block.signature },
        expect.objectContaining({ type: 'tool_use', id: 'toolu_oslo', name: 'get_weather', input: { city: 'Oslo' } }),
      ]);
      expect(messages[2]?.content).toEqual([expect.objectContaining({ type: 'tool_result', tool_use_id: 'toolu_oslo', content: '{"celsius":4}' })]);
    });

    it('streams thinking deltas and the signature, and the provider refuses edited thinking', async () => {
      const stream = client.messages.stream({ model: 'claude-chat', max_tokens: 4096, thinking, messages: [{ role: 'user', content: 'Plan a trip.' }] });
      let streamed = '';
      stream.on('thinking', (delta) => (streamed += delta));
      const final = await stream.finalMessage();
      expect(final.content.map((b) => b.type)).toEqual(['thinking', 'text']);
      expect(final.content[0]).toEqual({ type: 'thinking', thinking: streamed, signature: anthropicThinkingSignature(streamed) });
      expect(textOf(final).length).toBeGreaterThan(0);

      const edited = client.messages.create({
        model: 'claude-chat',
        max_tokens: 4096,
        thinking,
        tools: [weather],
        messages: [
          { role: 'user', content: 'Weather in Oslo?' },
          { role: 'assistant', content: [{ type: 'thinking', thinking: 'Edited thinking.', signature: anthropicThinkingSignature('Original thinking.') }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '4' }] },
        ],
      });
      const error = await rejectionOf(() => edited);
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error.message).toContain('signature');
    });

    it('passes redacted thinking on as its own block', async () => {
      const message = await client.messages.create({ model: 'claude-chat', max_tokens: 4096, thinking, messages: [{ role: 'user', content: `Tell me ${ANTHROPIC_REDACTED_THINKING_TRIGGER}` }] });
      expect(message.content[0]).toEqual({ type: 'redacted_thinking', data: expect.any(String) as unknown });
    });
  });

  it('ends a stream the provider drops with an error event, which the SDK raises', async () => {
    gw.sim.configure({ completionTokens: 40, faults: [{ kind: 'drop_mid_stream', afterTokens: 3, remaining: 1 }] });
    const stream = client.messages.stream({ model: 'gpt-4o-mini', max_tokens: 256, messages: [{ role: 'user', content: 'x' }] });
    let text = '';
    stream.on('text', (delta) => (text += delta));
    const error = await rejectionOf(() => stream.finalMessage());
    expect(text.length).toBeGreaterThan(0);
    expect(error.error).toMatchObject({ type: 'error', error: { type: 'api_error' } });
    expect(error.message.length).toBeGreaterThan(0);
  });

  describe('errors in Anthropic shape', () => {
    it('refuses a wrong or missing key with AuthenticationError, whichever header carries it', async () => {
      for (const wrong of [anthropicClient(gw, 'sk-wrong'), pinnedClient(gw, 'sk-wrong')]) {
        const error = await rejectionOf(() => wrong.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
        expect(error).toBeInstanceOf(AuthenticationError);
        expect(error.error).toMatchObject({ type: 'error', error: { type: 'authentication_error', message: 'Incorrect API key provided.' } });
      }
      const response = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }) });
      expect(response.status).toBe(401);
      const requestId = response.headers.get('request-id');
      expect(requestId).toBeTruthy();
      expect(await response.json()).toEqual({ type: 'error', error: { type: 'authentication_error', message: expect.stringContaining('x-api-key') as unknown }, request_id: requestId });
    });

    it('refuses bad input with BadRequestError naming the parameter, calling no provider', async () => {
      const before = gw.sim.requests().length;
      const missing = await rejectionOf(() => client.messages.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } as unknown as Anthropic.MessageCreateParamsNonStreaming));
      expect(missing).toBeInstanceOf(BadRequestError);
      expect(missing.message).toContain("Missing required parameter: 'max_tokens'");
      expect(missing.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });

      const server = await rejectionOf(() => client.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'web_search_20250305', name: 'web_search' }] }));
      expect(server).toBeInstanceOf(BadRequestError);
      expect(server.message).toContain("'tools[0]' is not supported by this gateway");

      const unknown = await rejectionOf(() => client.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }], frequency_penalty: 1 } as Anthropic.MessageCreateParamsNonStreaming));
      expect(unknown.message).toContain("Unknown parameter: 'frequency_penalty'");

      // Anthropic's request to fill the prompt cache without an answer: refused by name, with what to send instead.
      const prewarm = await rejectionOf(() => client.messages.create({ model: 'claude-chat', max_tokens: 0, messages: [{ role: 'user', content: 'hi' }] }));
      expect(prewarm).toBeInstanceOf(BadRequestError);
      expect(prewarm.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('max_tokens: 0') as unknown } });
      expect(prewarm.message).toContain('max_tokens: 1');

      const tooMany = await rejectionOf(() => client.messages.create({ model: 'gpt-4o-mini', max_tokens: 10_000_000, messages: [{ role: 'user', content: 'hi' }] }));
      expect(tooMany).toBeInstanceOf(BadRequestError);
      expect(tooMany.message).toMatch(/max_tokens may be at most \d+; got 10000000\./);

      const json = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': TEST_DEV_KEY }, body: '{"model":' });
      expect(json.status).toBe(400);
      expect(await json.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('JSON') as unknown } });
      expect(gw.sim.requests().length).toBe(before);
    });

    it('answers an unknown model and an unknown path under /v1/messages with not_found_error', async () => {
      const model = await rejectionOf(() => client.messages.create({ model: 'no-such-model', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
      expect(model).toBeInstanceOf(NotFoundError);
      expect(model.error).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
      const batches = await rejectionOf(() => client.messages.batches.retrieve('msgbatch_1'));
      expect(batches).toBeInstanceOf(NotFoundError);
    });

    it('refuses a key over its rate limit with RateLimitError and retry-after', async () => {
      const limited = anthropicClient(gw, LIMITED_KEY);
      const ask = (): Promise<Anthropic.Message> => limited.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
      const error = await waitFor(
        async () =>
          ask().then(
            () => undefined,
            (e: unknown) => e,
          ),
        { timeoutMs: 30_000, intervalMs: 0, what: 'the limited key to be refused' },
      );
      expect(error).toBeInstanceOf(RateLimitError);
      const refused = error as RateLimitError;
      expect(refused.error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
      expect(Number(refused.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(refused.headers?.get('request-id')).toBeTruthy();

      // Counting tokens calls no provider but costs the gateway work: it is charged to the key's request limits too.
      const counted = await rejectionOf(() => limited.messages.countTokens({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }));
      expect(counted).toBeInstanceOf(RateLimitError);
    });
  });

  it('counts the messages a client sent against maxMessages, not the chat messages they become (a system prompt, each tool result)', async () => {
    const call = (i: number): Anthropic.ToolUseBlockParam => ({ type: 'tool_use', id: `toolu_${i}`, name: 'get_weather', input: { city: `City ${i}` } });
    const result = (i: number): Anthropic.ToolResultBlockParam => ({ type: 'tool_result', tool_use_id: `toolu_${i}`, content: 'mild' });
    // Eight messages, one of them three tool results: thirteen chat messages once translated.
    const messages: Anthropic.MessageParam[] = [
      { role: 'user', content: 'Weather in three cities?' },
      { role: 'assistant', content: [call(1), call(2), call(3)] },
      { role: 'user', content: [result(1), result(2), result(3)] },
      { role: 'assistant', content: 'Mild everywhere.' },
      { role: 'user', content: 'And tomorrow?' },
      { role: 'assistant', content: 'Also mild.' },
      { role: 'user', content: 'Thanks.' },
      { role: 'user', content: 'One more question: the day after?' },
    ];
    expect(messages).toHaveLength(MAX_MESSAGES);
    const answered = await client.messages.create({ model: 'gpt-4o-mini', max_tokens: 16, system: 'Be brief.', tools: [weather], messages });
    expect(answered.type).toBe('message');
    expect(chatUpstream().messages.length).toBeGreaterThan(MAX_MESSAGES);
    const over = await rejectionOf(() => client.messages.create({ model: 'gpt-4o-mini', max_tokens: 16, messages: [...messages, { role: 'user', content: 'One more.' }] }));
    expect(over).toBeInstanceOf(BadRequestError);
    expect(over.message).toContain(`At most ${MAX_MESSAGES} messages are accepted; the request has ${MAX_MESSAGES + 1}.`);
  });

  describe('count_tokens', () => {
    it("answers the gateway's estimate of the prompt's tokens, calling no provider", async () => {
      const before = gw.sim.requests().length;
      const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'How warm is it in Oslo today?' }];
      const plain = await client.messages.countTokens({ model: 'claude-chat', messages });
      const more = await pinnedClient(gw).messages.countTokens({ model: 'claude-chat', system: 'You are a weather assistant who answers in detail.', messages, tools: [weather] });
      expect(plain.input_tokens).toBeGreaterThan(0);
      expect(more.input_tokens).toBeGreaterThan(plain.input_tokens);
      expect(gw.sim.requests().length).toBe(before);

      // The estimate is the one rate limits and reservations use, close to what the provider then reports.
      const answered = await client.messages.create({ model: 'gpt-4o-mini', max_tokens: 16, messages });
      expect(Math.abs(answered.usage.input_tokens - plain.input_tokens)).toBeLessThanOrEqual(8);
    });

    it('counts an image at what the model declares it costs, as its rate limits and budget reservation count it', async () => {
      const text: Anthropic.TextBlockParam = { type: 'text', text: 'What is in this picture?' };
      const image: Anthropic.ImageBlockParam = { type: 'image', source: { type: 'url', url: 'https://example.com/oslo.png' } };
      const count = async (content: Anthropic.ContentBlockParam[]): Promise<number> => (await client.messages.countTokens({ model: 'claude-chat', messages: [{ role: 'user', content }] })).input_tokens;
      expect((await count([text, image])) - (await count([text, { ...text, text: '' }]))).toBe(CLAUDE_IMAGE_TOKENS);
    });

    it('authenticates, knows the models and validates like messages.create', async () => {
      await expect(rejectionOf(() => anthropicClient(gw, 'sk-wrong').messages.countTokens({ model: 'claude-chat', messages: [{ role: 'user', content: 'x' }] }))).resolves.toBeInstanceOf(AuthenticationError);
      await expect(rejectionOf(() => client.messages.countTokens({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }))).resolves.toBeInstanceOf(NotFoundError);
      const bad = await rejectionOf(() => client.messages.countTokens({ model: 'claude-chat', messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url: '' } }] }] }));
      expect(bad).toBeInstanceOf(BadRequestError);
      expect(bad.message).toContain('messages[0].content[0].source.url');
    });
  });
});

describe('the Messages API under a hard budget', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['budgets'] = { list: [{ id: 'tiny', scope: { org: 'default' }, period: 'monthly', amount: '0.00002', enforcement: 'hard' }] };
      },
    });
  });
  afterAll(async () => gw?.close());

  it('ends a stream with stop_reason max_tokens where the budget runs out, then refuses with billing_error', async () => {
    gw.sim.configure({ completionTokens: 400 });
    const client = anthropicClient(gw);
    const stream = client.messages.stream({ model: 'gpt-4o-mini', max_tokens: 1000, messages: [{ role: 'user', content: 'Tell me a long story' }] });
    let text = '';
    stream.on('text', (delta) => (text += delta));
    const final = await stream.finalMessage();
    expect(final.stop_reason).toBe('max_tokens');
    expect(textOf(final)).toBe(text);
    // 0.00002 = 20 micro-units: at 0.6 per output token, far fewer than the 400 the provider would write.
    expect(text.length).toBeGreaterThan(0);
    expect(text.split(' ').length).toBeLessThan(60);
    expect(final.usage.output_tokens).toBeGreaterThan(0);
    await waitFor(async () => ((await gw.gateway.ingress.budgets.status())[0]?.reserved === '0' ? true : undefined), { what: 'the reservation settled' });

    const error = await rejectionOf(() => client.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
    expect(error.status).toBe(402);
    expect(error.error).toMatchObject({ type: 'error', error: { type: 'billing_error' } });
  });
});
