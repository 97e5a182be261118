import { generateKeyPairSync } from 'node:crypto';
import { encode } from 'gpt-tokenizer';
import OpenAI from 'openai';
import { PROVIDER_TYPES, type ProviderType } from '@openrouter/config';
import { anthropicThinkingSignature } from '@openrouter/provider-simulator';
import { estimatedTokenWeight } from '@openrouter/usage';
import { SIMULATED_PROVIDERS } from '../support/simulated-providers';
import { SIM_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Every provider family through the whole gateway with the official SDK: the application
 * changes only the `model` string.
 */
const PIXEL = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const weather = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

const chatModel = (type: ProviderType): string => `${type}-chat`;
/**
 * Claude's reasoning tokens as the gateway estimates them for an answer with thinking: the larger of
 * the thinking text and the output tokens beyond the answer's text, by its tokenizer (o200k), at most the output tokens.
 */
const thinkingEstimate = (thinking: string, answer: string, completionTokens: number): number => {
  const tokens = (text: string): number => encode(text, { disallowedSpecial: new Set() }).length;
  return Math.min(completionTokens, Math.max(tokens(thinking), completionTokens - tokens(answer)));
};
/** The cost the gateway bills at `pricing: {input: '1', output: '2'}` (per million tokens): output tokens, thinking included, and nothing more for reasoning. */
const billedAt1And2 = (u: OpenAI.CompletionUsage): number => (u.prompt_tokens + 2 * u.completion_tokens) / 1_000_000;
const embeddingModel = (type: ProviderType): string => `${type}-embed`;

/** A gateway with one chat model (and one embeddings model, where the family has one) per provider family. */
function startWithEveryFamily(more: (doc: Record<string, unknown>) => void = () => undefined): Promise<TestGateway> {
  return startTestGateway({
    configure: (doc) => {
      more(doc);
      const url = String((doc['providers'] as { simulated: { baseUrl: string } }).simulated.baseUrl).replace(/\/v1$/, '');
        const providers = doc['providers'] as Record<string, unknown>;
        const models = doc['models'] as Array<Record<string, unknown>>;
        for (const type of PROVIDER_TYPES) {
          const profile = SIMULATED_PROVIDERS[type];
          providers[`sim-${type}`] = profile.config(url, SIM_KEY);
          models.push({
            id: chatModel(type),
            capabilities: ['chat', 'tools', 'vision', 'json_object', 'json_schema'],
            pricing: { input: '1', output: '2' },
            deployments: [{ id: `sim-${type}-chat`, provider: `sim-${type}`, model: profile.chatModel }],
          });
          if (profile.embeddingModel) {
            models.push({ id: embeddingModel(type), capabilities: ['embeddings'], deployments: [{ id: `sim-${type}-embed`, provider: `sim-${type}`, model: profile.embeddingModel }] });
          }
        }
    },
  });
}

describe('every provider family through the gateway', () => {
  let gw: TestGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gw = await startWithEveryFamily();
    client = gw.client();
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  describe.each(PROVIDER_TYPES.map((type) => [type] as const))('%s', (type: ProviderType) => {
    const model = chatModel(type);
    const upstream = SIMULATED_PROVIDERS[type].chatModel;

    it('answers a chat with usage, served by that family', async () => {
      const { data, response } = await client.chat.completions
        .create({ model, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello ✨ there' }], max_tokens: 16 })
        .withResponse();
      expect(response.headers.get('x-openrouter-provider')).toBe(`sim-${type}`);
      expect(data.model).toBe(model);
      expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);
      expect(data.usage?.prompt_tokens).toBeGreaterThan(0);
      expect(data.usage?.total_tokens).toBe((data.usage?.prompt_tokens ?? 0) + (data.usage?.completion_tokens ?? 0));
    });

    it('streams, with the usage chunk last, and a choice in every other chunk', async () => {
      const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Tell me something' }], stream: true, stream_options: { include_usage: true }, max_tokens: 16 });
      let text = '';
      let finish: string | null | undefined;
      const chunks: OpenAI.ChatCompletionChunk[] = [];
      for await (const chunk of stream) {
        chunks.push(chunk);
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(text.length).toBeGreaterThan(0);
      expect(['stop', 'length']).toContain(finish);
      // OpenAI's contract, which `chunk.choices[0].delta` relies on: only the usage chunk has no choices.
      const usageChunk = chunks.pop();
      expect(usageChunk?.choices).toEqual([]);
      expect(usageChunk?.usage?.completion_tokens).toBeGreaterThan(0);
      expect(chunks.filter((c) => c.choices.length === 0 || c.usage)).toEqual([]);

      const plain = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Tell me something' }], stream: true, max_tokens: 16 });
      const unasked: OpenAI.ChatCompletionChunk[] = [];
      for await (const chunk of plain) unasked.push(chunk);
      expect(unasked.length).toBeGreaterThan(0);
      expect(unasked.filter((c) => c.choices.length === 0 || c.usage)).toEqual([]);
    });

    if (type === 'openai' || type === 'azure') {
      it('ends a stream with the estimated usage chunk a client asked for when the server ignores stream_options', async () => {
        gw.sim.configure({ ignoreStreamOptions: true });
        const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Tell me something' }], stream: true, stream_options: { include_usage: true }, max_tokens: 16 });
        let streamed = 0;
        const chunks: OpenAI.ChatCompletionChunk[] = [];
        for await (const chunk of stream) {
          chunks.push(chunk);
          streamed += estimatedTokenWeight(chunk.choices[0]?.delta.content ?? '');
        }
        expect(gw.sim.requests().at(-1)?.body).toMatchObject({ stream_options: { include_usage: true } });
        const last = chunks.pop();
        expect(last?.choices).toEqual([]);
        expect(last?.usage?.prompt_tokens).toBeGreaterThan(0);
        expect(last?.usage?.completion_tokens).toBe(Math.ceil(streamed));
        expect(last?.usage?.total_tokens).toBe((last?.usage?.prompt_tokens ?? 0) + (last?.usage?.completion_tokens ?? 0));
        expect(chunks.filter((c) => c.choices.length === 0 || c.usage)).toEqual([]);
      });

      it('ends a legacy completions stream with the estimated usage when the server ignores stream_options', async () => {
        gw.sim.configure({ ignoreStreamOptions: true });
        const stream = await client.completions.create({ model, prompt: 'Tell me something', stream: true, stream_options: { include_usage: true }, max_tokens: 16 });
        let streamed = 0;
        const chunks: OpenAI.Completion[] = [];
        for await (const chunk of stream) {
          chunks.push(chunk);
          streamed += estimatedTokenWeight(chunk.choices[0]?.text ?? '');
        }
        const last = chunks.pop();
        expect(last?.choices).toEqual([]);
        expect(last?.usage?.prompt_tokens).toBeGreaterThan(0);
        expect(last?.usage?.completion_tokens).toBe(Math.ceil(streamed));
      });
    }

    it('makes a forced tool call, streamed and not', async () => {
      const forced = { type: 'function' as const, function: { name: 'get_weather' } };
      const whole = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools: [weather], tool_choice: forced });
      const call = whole.choices[0]?.message.tool_calls?.[0];
      expect(whole.choices[0]?.finish_reason).toBe('tool_calls');
      expect(call?.type === 'function' ? call.function.name : '').toBe('get_weather');
      expect(JSON.parse(call?.type === 'function' ? call.function.arguments : '{}')).toHaveProperty('city');

      const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools: [weather], tool_choice: forced, stream: true });
      let name = '';
      let args = '';
      for await (const chunk of stream) {
        for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
          name += delta.function?.name ?? '';
          args += delta.function?.arguments ?? '';
        }
      }
      expect(name).toBe('get_weather');
      expect(JSON.parse(args)).toHaveProperty('city');
    });

    it('takes a tool result back', async () => {
      const answer = await client.chat.completions.create({
        model,
        tools: [weather],
        messages: [
          { role: 'user', content: 'Weather in Oslo?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_oslo', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
          { role: 'tool', tool_call_id: 'call_oslo', content: '{"celsius":4}' },
        ],
      });
      expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
    });

    it('takes a tool result with an image back (OpenAI takes images only in user messages)', async () => {
      const image = { type: 'image_url', image_url: { url: PIXEL } } as const;
      // The SDK types a tool message as text; clients send a screenshot this way all the same.
      const result = { role: 'tool', tool_call_id: 'call_chart', content: [{ type: 'text', text: 'The chart:' }, image] } as unknown as OpenAI.ChatCompletionToolMessageParam;
      const answer = await client.chat.completions.create({
        model,
        tools: [weather],
        messages: [
          { role: 'user', content: 'Weather in Oslo?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_chart', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
          result,
        ],
      });
      expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
      const sent = JSON.stringify(gw.sim.requests().at(-1)?.body);
      expect(sent).toContain(PIXEL.slice('data:image/png;base64,'.length));
      if (type === 'openai' || type === 'azure') {
        expect((gw.sim.requests().at(-1)?.body as { messages: unknown[] }).messages.slice(2)).toEqual([
          { role: 'tool', tool_call_id: 'call_chart', content: [{ type: 'text', text: 'The chart:' }] },
          { role: 'user', content: [{ type: 'text', text: 'The result of tool call call_chart (1 image):' }, image] },
        ]);
      }
    });

    it('reads an image and answers JSON mode', async () => {
      const image = await client.chat.completions.create({ model, messages: [{ role: 'user', content: [{ type: 'text', text: 'What is it?' }, { type: 'image_url', image_url: { url: PIXEL } }] }] });
      expect(image.choices[0]?.message.content?.length).toBeGreaterThan(0);
      const json = await client.chat.completions.create({ model, response_format: { type: 'json_object' }, messages: [{ role: 'user', content: 'A JSON object about owls' }] });
      expect(typeof JSON.parse(json.choices[0]?.message.content ?? '')).toBe('object');
    });

    it('turns provider errors into the right OpenAI errors', async () => {
      gw.sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 3, model: upstream }] });
      await expect(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
      gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, model: upstream }] });
      await expect(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 502 });
      gw.sim.configure({ faults: [{ kind: 'http_error', status: 503, model: upstream }] });
      await expect(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 503 });
      gw.sim.configure({ faults: [{ kind: 'timeout', model: upstream }] });
      await expect(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 504, code: 'timeout' });
      gw.sim.configure({ faults: [{ kind: 'http_error', status: 400, model: upstream }] });
      await expect(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 400 });
      gw.sim.configure({ faults: [], contextWindow: 40 });
      await expect(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'word '.repeat(300) }] })).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' });
      gw.sim.configure({ contextWindow: 128_000, faults: [{ kind: 'drop_mid_stream', afterTokens: 2, model: upstream }] });
      const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 32 });
      await expect(
        (async () => {
          for await (const chunk of stream) void chunk;
        })(),
      ).rejects.toThrow();
    });

    if (SIMULATED_PROVIDERS[type].embeddingModel) {
      it('embeds with dimensions', async () => {
        const result = await client.embeddings.create({ model: embeddingModel(type), input: ['one', 'two'], dimensions: 256 });
        expect(result.data).toHaveLength(2);
        expect(result.data[0]?.embedding).toHaveLength(256);
      });
    }
  });

  it("maps Gemini's reasoning_effort xhigh and max to the model's highest thinking budget instead of refusing them", async () => {
    for (const effort of ['xhigh', 'max'] as const) {
      const answer = await client.chat.completions.create({ model: chatModel('gemini'), reasoning_effort: effort, messages: [{ role: 'user', content: 'Think hard.' }] });
      expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
      expect((gw.sim.requests().at(-1)?.body as { generationConfig?: unknown }).generationConfig).toMatchObject({ thinkingConfig: { thinkingBudget: 24576 } });
    }
  });
});

/**
 * Vertex AI as an enterprise on Google Cloud runs it: a service-account key whose JWT the token
 * endpoint verifies, Gemini and Claude behind one provider, tokens refreshed without the client
 * noticing.
 */
describe('vertex with a service-account key, Gemini and Claude', () => {
  const clientEmail = 'gateway@sim-project.iam.gserviceaccount.com';
  // Made at test time; no private key is committed.
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const account = { clientEmail, publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let gw: TestGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gw = await startWithEveryFamily((doc) => {
      const url = String((doc['providers'] as { simulated: { baseUrl: string } }).simulated.baseUrl).replace(/\/v1$/, '');
      const vertex = (key: string): Record<string, unknown> => ({
        type: 'vertex',
        project: 'sim-project',
        location: 'europe-west4',
        baseUrl: url,
        credentials: { clientEmail, privateKey: key, tokenUri: `${url}/token` },
        timeoutMs: 10_000,
      });
      const providers = doc['providers'] as Record<string, unknown>;
      providers['vertex-sa'] = vertex(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
      providers['vertex-stranger'] = vertex(stranger);
      const models = doc['models'] as Array<Record<string, unknown>>;
      models.push(
        { id: 'vertex-gemini', capabilities: ['chat', 'tools'], pricing: { input: '1', output: '2' }, deployments: [{ id: 'vertex-sa-gemini', provider: 'vertex-sa', model: 'gemini-2.5-flash' }] },
        { id: 'vertex-claude', capabilities: ['chat', 'tools'], pricing: { input: '1', output: '2' }, deployments: [{ id: 'vertex-sa-claude', provider: 'vertex-sa', model: 'claude-sonnet-4-5@20250929' }] },
        { id: 'vertex-untrusted', capabilities: ['chat'], deployments: [{ provider: 'vertex-stranger', model: 'gemini-2.5-flash' }] },
      );
    });
    client = gw.client();
  });
  afterAll(async () => gw?.close());
  beforeEach(() => {
    gw.sim.reset();
    gw.sim.trustServiceAccount(account);
  });

  const modelCalls = () => gw.sim.requests().filter((r) => r.path.startsWith('/v1/projects/'));

  it('answers Gemini and streams Claude with a token from the service-account grant', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'vertex-gemini', messages: [{ role: 'user', content: 'Hello' }] }).withResponse();
    expect(response.headers.get('x-openrouter-provider')).toBe('vertex-sa');
    expect(data.choices[0]?.message.content?.length).toBeGreaterThan(0);

    const stream = await client.chat.completions.create({ model: 'vertex-claude', messages: [{ role: 'user', content: 'Tell me something' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    expect(modelCalls().map((r) => r.path)).toEqual([
      '/v1/projects/sim-project/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent',
      '/v1/projects/sim-project/locations/europe-west4/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict',
    ]);
    expect(modelCalls().every((r) => r.headers['authorization'] === 'present')).toBe(true);
  });

  it("estimates Claude's reasoning tokens on Vertex AI as on Anthropic's API", async () => {
    const answer = await client.chat.completions.create({ model: 'vertex-claude', reasoning_effort: 'high', messages: [{ role: 'user', content: 'Is 1013 prime?' }] });
    const reasoning = (answer.choices[0]?.message as { reasoning_content?: string } | undefined)?.reasoning_content ?? '';
    expect(reasoning.length).toBeGreaterThan(0);
    const usage = answer.usage as OpenAI.CompletionUsage;
    expect(usage.completion_tokens_details?.reasoning_tokens).toBe(thinkingEstimate(reasoning, answer.choices[0]?.message.content ?? '', usage.completion_tokens));
    expect(usage.completion_tokens_details?.reasoning_tokens).toBeGreaterThan(0);
  });

  it('refreshes an expired token without the client noticing', async () => {
    await client.chat.completions.create({ model: 'vertex-gemini', messages: [{ role: 'user', content: 'Hello' }] });
    gw.sim.expireAccessTokens();
    const answer = await client.chat.completions.create({ model: 'vertex-claude', messages: [{ role: 'user', content: 'Hello again' }] });
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(modelCalls().map((r) => r.outcome)).toEqual(['completed', 'error', 'completed']);
  });

  it('answers 502 upstream_auth_failed when the token endpoint refuses the key, naming no secret', async () => {
    const failed = client.chat.completions.create({ model: 'vertex-untrusted', messages: [{ role: 'user', content: 'Hello' }] });
    await expect(failed).rejects.toMatchObject({ status: 502, code: 'upstream_auth_failed' });
    const error = (await failed.catch((e: unknown) => e)) as Error;
    expect(error.message).not.toMatch(/PRIVATE KEY|eyJ|ya29/);
    expect(modelCalls()).toEqual([]);
  });
});

describe('every provider family, with retries', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startWithEveryFamily((doc) => {
      const routing = doc['routing'] as Record<string, unknown>;
      doc['routing'] = { ...routing, retry: { maxAttempts: 2, baseDelayMs: 0, maxDelayMs: 0 } };
    });
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  it.each(PROVIDER_TYPES.map((type) => [type] as const))('%s: retries a stream the provider drops after opening its message, before any token: the client sees one whole answer', async (type) => {
    const upstream = SIMULATED_PROVIDERS[type].chatModel;
    gw.sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 0, model: upstream, remaining: 1 }] });
    const { data: stream, response } = await gw.client().chat.completions.create({ model: chatModel(type), messages: [{ role: 'user', content: 'hi' }], stream: true, max_tokens: 16 }).withResponse();
    let content = '';
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? '';
      finish ??= chunk.choices[0]?.finish_reason;
    }
    expect(content.length).toBeGreaterThan(0);
    expect(finish).toBeTruthy();
    expect(response.headers.get('x-openrouter-attempts')).toBe('2');
    expect(gw.sim.requests().map((r) => r.outcome)).toEqual([expect.not.stringMatching(/^completed$/), 'completed']);
  });
});

/**
 * How each wire carries Claude's thinking upstream: Anthropic's body has `thinking` and
 * `output_config` at the top and thinking blocks in its content; Converse puts them in
 * `additionalModelRequestFields` and `reasoningContent` blocks.
 */
interface ClaudeWire {
  family: 'anthropic' | 'bedrock';
  /** The thinking parameters the upstream body carries (undefined when off). */
  thinkingOf(body: Record<string, unknown>): { thinking?: unknown; output_config?: unknown } | undefined;
  /** The kinds of block, in order, of the upstream body's second (assistant) turn. */
  assistantTurn(body: Record<string, unknown>): string[];
  /** The limit the body sends, and the sampling parameter that thinking drops. */
  maxTokensOf(body: Record<string, unknown>): unknown;
  topPOf(body: Record<string, unknown>): unknown;
}

const CLAUDE_WIRES: ClaudeWire[] = [
  {
    family: 'anthropic',
    thinkingOf: (body) => (body['thinking'] === undefined ? undefined : { thinking: body['thinking'], ...(body['output_config'] === undefined ? {} : { output_config: body['output_config'] }) }),
    assistantTurn: (body) => (body['messages'] as Array<{ content: Array<{ type: string }> }>)[1]?.content.map((b) => b.type) ?? [],
    maxTokensOf: (body) => body['max_tokens'],
    topPOf: (body) => body['top_p'],
  },
  {
    family: 'bedrock',
    thinkingOf: (body) => body['additionalModelRequestFields'] as Record<string, unknown> | undefined,
    assistantTurn: (body) => (body['messages'] as Array<{ content: Array<Record<string, unknown>> }>)[1]?.content.map((b) => Object.keys(b)[0] ?? '') ?? [],
    maxTokensOf: (body) => (body['inferenceConfig'] as { maxTokens?: number } | undefined)?.maxTokens,
    topPOf: (body) => (body['inferenceConfig'] as { topP?: number } | undefined)?.topP,
  },
];

describe.each(CLAUDE_WIRES.map((wire) => [wire.family, wire] as const))('Claude extended thinking through the gateway (%s)', (family, wire) => {
  let gw: TestGateway;
  let client: OpenAI;
  const model = chatModel(family);
  const budgetModel = `${family}-budget-chat`;

  beforeAll(async () => {
    gw = await startWithEveryFamily((doc) => {
      const url = String((doc['providers'] as { simulated: { baseUrl: string } }).simulated.baseUrl).replace(/\/v1$/, '');
      (doc['providers'] as Record<string, unknown>)[`sim-${family}-budget`] = { ...SIMULATED_PROVIDERS[family].config(url, SIM_KEY), thinking: 'budget' };
      (doc['models'] as Array<Record<string, unknown>>).push({
        id: budgetModel,
        capabilities: ['chat', 'tools'],
        pricing: { input: '1', output: '2' },
        deployments: [{ id: `sim-${family}-budget-chat`, provider: `sim-${family}-budget`, model: SIMULATED_PROVIDERS[family].chatModel }],
      });
    });
    client = gw.client();
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  type Thinking = { type: 'thinking'; thinking: string; signature: string } | { type: 'redacted_thinking'; data: string };
  const extras = (value: object): { reasoning_content?: string; thinking_blocks?: Thinking[] } => value as { reasoning_content?: string; thinking_blocks?: Thinking[] };
  const upstreamBody = (): Record<string, unknown> => gw.sim.requests().at(-1)?.body as Record<string, unknown>;
  const toolTurn = (assistantExtra: object): OpenAI.ChatCompletionMessageParam[] => [
    { role: 'user', content: 'Weather in Oslo?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_oslo', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }], ...assistantExtra } as OpenAI.ChatCompletionAssistantMessageParam,
    { role: 'tool', tool_call_id: 'call_oslo', content: '{"celsius":4}' },
  ];

  it('thinks on reasoning_effort and returns the thinking as reasoning_content and signed thinking_blocks, billed as output', async () => {
    const { data: answer, response } = await client.chat.completions.create({ model, reasoning_effort: 'high', temperature: 0.2, messages: [{ role: 'user', content: 'Is 1013 prime?' }] }).withResponse();
    // The simulated Claude refuses a temperature other than 1 with thinking on: the gateway dropped it.
    expect(wire.thinkingOf(upstreamBody())).toEqual({ thinking: { type: 'adaptive' }, output_config: { effort: 'high' } });
    const message = extras(answer.choices[0]?.message ?? {});
    const [block] = message.thinking_blocks ?? [];
    expect(block?.type).toBe('thinking');
    if (block?.type !== 'thinking') return;
    expect(block.thinking.length).toBeGreaterThan(0);
    expect(message.reasoning_content).toBe(block.thinking);
    expect(block.signature).toBe(anthropicThinkingSignature(block.thinking));
    expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0);
    // Claude counts thinking in its output tokens: the answer alone is shorter than completion_tokens.
    expect(answer.usage?.completion_tokens).toBeGreaterThan(24);
    // Reasoning tokens are estimated from the thinking text and the output beyond the answer, within completion_tokens; billing prices completion_tokens alone.
    const usage = answer.usage as OpenAI.CompletionUsage;
    expect(usage.completion_tokens_details?.reasoning_tokens).toBe(thinkingEstimate(block.thinking, answer.choices[0]?.message.content ?? '', usage.completion_tokens));
    expect(usage.completion_tokens_details?.reasoning_tokens).toBeGreaterThan(0);
    expect(Number(response.headers.get('x-openrouter-cost'))).toBe(billedAt1And2(usage));
  });

  it('streams thinking as reasoning_content deltas before the answer, and the signed block once, on the finishing chunk', async () => {
    const stream = await client.chat.completions.create({ model, reasoning_effort: 'medium', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Plan a trip.' }] });
    let usage: OpenAI.CompletionUsage | null | undefined;
    let reasoning = '';
    let content = '';
    const blocks: Thinking[] = [];
    let reasoningAfterContent = false;
    const blocksOn: Array<string | null | undefined> = [];
    for await (const chunk of stream) {
      usage = chunk.usage ?? usage;
      const delta = chunk.choices[0]?.delta;
      if (!delta) continue;
      const extra = extras(delta);
      if (extra.reasoning_content && content !== '') reasoningAfterContent = true;
      reasoning += extra.reasoning_content ?? '';
      if (extra.thinking_blocks) blocksOn.push(chunk.choices[0]?.finish_reason);
      blocks.push(...(extra.thinking_blocks ?? []));
      content += delta.content ?? '';
    }
    expect(reasoning.length).toBeGreaterThan(0);
    expect(content.length).toBeGreaterThan(0);
    expect(reasoningAfterContent).toBe(false);
    expect(blocksOn).toEqual(['stop']);
    expect(blocks).toEqual([{ type: 'thinking', thinking: reasoning, signature: anthropicThinkingSignature(reasoning) }]);
    expect(usage?.completion_tokens_details?.reasoning_tokens).toBe(thinkingEstimate(reasoning, content, usage?.completion_tokens ?? 0));
    expect(usage?.completion_tokens_details?.reasoning_tokens).toBeGreaterThan(0);
  });

  it('hands the thinking an answer carried back on a tool turn; a client that dropped it still gets an answer, without thinking; an edited one is refused', async () => {
    const first = await client.chat.completions.create({ model, reasoning_effort: 'high', tools: [weather], messages: [{ role: 'user', content: 'Weather in Oslo?' }] });
    const carried = extras(first.choices[0]?.message ?? {}).thinking_blocks ?? [];
    expect(carried).toHaveLength(1);

    const handedBack = await client.chat.completions.create({ model, reasoning_effort: 'high', tools: [weather], messages: toolTurn({ thinking_blocks: carried }) });
    expect(handedBack.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(wire.thinkingOf(upstreamBody())?.thinking).toEqual({ type: 'adaptive' });
    expect(wire.assistantTurn(upstreamBody())).toEqual(family === 'anthropic' ? ['thinking', 'tool_use'] : ['reasoningContent', 'toolUse']);

    const dropped = await client.chat.completions.create({ model, reasoning_effort: 'high', tools: [weather], messages: toolTurn({}) });
    expect(dropped.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(wire.thinkingOf(upstreamBody())).toBeUndefined();

    const [block] = carried;
    if (block?.type !== 'thinking') throw new Error('expected a thinking block');
    const edited = client.chat.completions.create({ model, reasoning_effort: 'high', tools: [weather], messages: toolTurn({ thinking_blocks: [{ ...block, thinking: `${block.thinking} Edited.` }] }) });
    await expect(edited).rejects.toMatchObject({ status: 400 });
  });

  it('budget style: the budget takes at most half the limit the client set; forcing a tool with thinking is a clear 400', async () => {
    const answer = await client.chat.completions.create({ model: budgetModel, reasoning_effort: 'medium', max_completion_tokens: 2000, top_p: 0.5, messages: [{ role: 'user', content: 'Why is the sky blue?' }] });
    expect(wire.thinkingOf(upstreamBody())).toEqual({ thinking: { type: 'enabled', budget_tokens: 1024 } });
    expect(wire.maxTokensOf(upstreamBody())).toBe(2000);
    expect(wire.topPOf(upstreamBody())).toBeUndefined();
    expect(extras(answer.choices[0]?.message ?? {}).reasoning_content?.length).toBeGreaterThan(0);

    const forced = client.chat.completions.create({ model: budgetModel, reasoning_effort: 'low', tools: [weather], tool_choice: 'required', messages: [{ role: 'user', content: 'Weather?' }] });
    await expect(forced).rejects.toMatchObject({ status: 400, param: 'reasoning_effort' });
  });
});
