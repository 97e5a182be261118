import OpenAI from 'openai';
import { PROVIDER_TYPES, type ProviderType } from '@openrouter/config';
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

    it('streams, with the usage chunk last', async () => {
      const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Tell me something' }], stream: true, stream_options: { include_usage: true }, max_tokens: 16 });
      let text = '';
      let usage: OpenAI.CompletionUsage | null | undefined;
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (chunk.usage) usage = chunk.usage;
      }
      expect(text.length).toBeGreaterThan(0);
      expect(['stop', 'length']).toContain(finish);
      expect(usage?.completion_tokens).toBeGreaterThan(0);
    });

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
