import Anthropic, { APIError, OverloadedError, RateLimitError } from '@anthropic-ai/sdk';
import { startSimulator, type RunningSimulator } from '@openrouter/provider-simulator';

/**
 * The simulated provider's Anthropic Messages wire format, read by the official
 * `@anthropic-ai/sdk` rather than by hand: whatever the SDK cannot parse here, a real Anthropic
 * client of the gateway could not parse either.
 *
 * The simulator speaks API version 2023-06-01, as the gateway's Anthropic adapter does:
 * `x-api-key` authentication. SDK 1.x defaults to version 2026-10-21 and sends its key as
 * `Authorization: Bearer`, so the client here pins the older protocol through its headers.
 */
const API_KEY = 'sk-ant-sdk-conformance';
const SIMULATED_API_VERSION = '2023-06-01';
// Not one the SDK warns about as deprecated; the simulator answers any model name.
const MODEL = 'claude-haiku-4-5';
const SYSTEM = 'You are a terse assistant.';
const PROMPT: Anthropic.MessageParam[] = [{ role: 'user', content: 'Tell me about rivers.' }];

const lookup: Anthropic.Tool = {
  name: 'lookup_weather',
  description: 'Weather forecast for a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 } },
    required: ['city', 'days'],
  },
};
const forced: Anthropic.ToolChoiceTool = { type: 'tool', name: lookup.name };

function textOf(message: Anthropic.Message): string {
  const texts = message.content.flatMap((block) => (block.type === 'text' ? [block.text] : []));
  expect(texts.length).toBeGreaterThanOrEqual(1);
  return texts.join('');
}

function toolUseOf(message: Anthropic.Message): Anthropic.ToolUseBlock {
  const uses = message.content.filter((block): block is Anthropic.ToolUseBlock => block.type === 'tool_use');
  expect(uses).toHaveLength(1);
  const [use] = uses;
  if (use === undefined) throw new Error('no tool_use block');
  return use;
}

/** The input satisfies `lookup`'s schema: both required fields, the right types, days in range, nothing else. */
function expectValidLookupInput(input: unknown): void {
  expect(typeof input).toBe('object');
  expect(input).not.toBeNull();
  const record = input as Record<string, unknown>;
  expect(Object.keys(record).sort()).toEqual(['city', 'days']);
  expect(typeof record['city']).toBe('string');
  const days = record['days'];
  expect(Number.isInteger(days)).toBe(true);
  expect(days).toBeGreaterThanOrEqual(1);
  expect(days).toBeLessThanOrEqual(7);
}

function expectUsage(usage: Anthropic.Usage): void {
  expect(Number.isInteger(usage.input_tokens)).toBe(true);
  expect(usage.input_tokens).toBeGreaterThan(0);
  expect(Number.isInteger(usage.output_tokens)).toBe(true);
  expect(usage.output_tokens).toBeGreaterThan(0);
}

async function rejectionOf(run: () => Promise<unknown>): Promise<APIError> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(APIError);
    return error as APIError;
  }
  throw new Error('expected the SDK to throw an APIError');
}

describe('the official Anthropic SDK against the simulated provider', () => {
  let sim: RunningSimulator;
  let client: Anthropic;

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: API_KEY, seed: 5 });
    client = clientFor(API_KEY);
  });
  afterEach(() => sim.reset());
  afterAll(() => sim?.close());

  /** Sends the key as `x-api-key` (no `Authorization`) under the API version the simulator implements. */
  const clientFor = (apiKey: string): Anthropic =>
    new Anthropic({
      apiKey,
      baseURL: sim.url,
      maxRetries: 0,
      timeout: 10_000,
      defaultHeaders: { authorization: null, 'x-api-key': apiKey, 'anthropic-version': SIMULATED_API_VERSION },
    });

  describe('messages.create', () => {
    it('parses a non-streaming reply to a prompt with a system message', async () => {
      const message = await client.messages.create({ model: MODEL, max_tokens: 256, system: SYSTEM, messages: PROMPT });

      expect(message.type).toBe('message');
      expect(message.role).toBe('assistant');
      expect(message.model).toBe(MODEL);
      expect(message.id).toMatch(/^msg_/);
      expect(textOf(message).trim()).not.toBe('');
      expect(message.stop_reason).toBe('end_turn');
      expect(message.stop_sequence).toBeNull();
      expectUsage(message.usage);

      const seen = await sim.waitForRequest((r) => r.path === '/v1/messages' && r.outcome === 'completed');
      expect(seen.headers['x-api-key']).toBe('present');
      expect(seen.headers['authorization']).toBe('absent');
      expect(seen.headers['anthropic-version']).toBe(SIMULATED_API_VERSION);
      expect(seen.body).toMatchObject({ model: MODEL, system: SYSTEM });
    });

    it('counts the system prompt towards input tokens', async () => {
      const without = await client.messages.create({ model: MODEL, max_tokens: 256, messages: PROMPT });
      const withSystem = await client.messages.create({ model: MODEL, max_tokens: 256, system: SYSTEM, messages: PROMPT });
      expect(withSystem.usage.input_tokens).toBeGreaterThan(without.usage.input_tokens);
    });

    it('reports max_tokens when the reply is cut short', async () => {
      const message = await client.messages.create({ model: MODEL, max_tokens: 2, system: SYSTEM, messages: PROMPT });
      expect(message.stop_reason).toBe('max_tokens');
      expect(message.usage.output_tokens).toBe(2);
    });
  });

  describe('messages.stream', () => {
    it('assembles text deltas into the final message, with usage at the end', async () => {
      const stream = client.messages.stream({ model: MODEL, max_tokens: 256, system: SYSTEM, messages: PROMPT });
      const eventTypes: string[] = [];
      let fromDeltas = '';
      for await (const event of stream) {
        eventTypes.push(event.type);
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') fromDeltas += event.delta.text;
      }
      const final = await stream.finalMessage();

      expect(eventTypes[0]).toBe('message_start');
      expect(eventTypes.slice(-2)).toEqual(['message_delta', 'message_stop']);
      expect(eventTypes.filter((t) => t === 'content_block_delta').length).toBeGreaterThan(1);
      expect(fromDeltas).not.toBe('');
      expect(textOf(final)).toBe(fromDeltas);
      expect(final.type).toBe('message');
      expect(final.role).toBe('assistant');
      expect(final.stop_reason).toBe('end_turn');
      expectUsage(final.usage);

      // The simulator is deterministic per seed and prompt: the stream tells the same reply as the JSON answer.
      const plain = await client.messages.create({ model: MODEL, max_tokens: 256, system: SYSTEM, messages: PROMPT });
      expect(textOf(final)).toBe(textOf(plain));
      expect(final.usage.input_tokens).toBe(plain.usage.input_tokens);
      expect(final.usage.output_tokens).toBe(plain.usage.output_tokens);
    });

    it('gives the raw event stream with create({ stream: true })', async () => {
      const events = await client.messages.create({ model: MODEL, max_tokens: 256, system: SYSTEM, messages: PROMPT, stream: true });
      let text = '';
      let inputTokens = 0;
      let outputTokens = 0;
      let stopReason: Anthropic.StopReason | null = null;
      for await (const event of events) {
        if (event.type === 'message_start') inputTokens = event.message.usage.input_tokens;
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
        if (event.type === 'message_delta') {
          stopReason = event.delta.stop_reason;
          outputTokens = event.usage.output_tokens;
        }
      }
      expect(text).not.toBe('');
      expect(stopReason).toBe('end_turn');
      expect(inputTokens).toBeGreaterThan(0);
      expect(outputTokens).toBeGreaterThan(0);
    });
  });

  describe('tool use', () => {
    it('answers a forced tool with a tool_use block whose input fits the schema', async () => {
      const message = await client.messages.create({ model: MODEL, max_tokens: 256, system: SYSTEM, messages: PROMPT, tools: [lookup], tool_choice: forced });

      expect(message.stop_reason).toBe('tool_use');
      const use = toolUseOf(message);
      expect(use.name).toBe(lookup.name);
      expect(use.id).toMatch(/^toolu_/);
      expectValidLookupInput(use.input);
      expectUsage(message.usage);
    });

    it('streams input_json_delta fragments that the SDK assembles into the tool_use input', async () => {
      const stream = client.messages.stream({ model: MODEL, max_tokens: 256, system: SYSTEM, messages: PROMPT, tools: [lookup], tool_choice: forced });
      let fromFragments = '';
      let sawToolStart = false;
      for await (const event of stream) {
        if (event.type === 'content_block_start' && event.content_block.type === 'tool_use') sawToolStart = event.content_block.name === lookup.name;
        if (event.type === 'content_block_delta' && event.delta.type === 'input_json_delta') fromFragments += event.delta.partial_json;
      }
      const final = await stream.finalMessage();

      expect(sawToolStart).toBe(true);
      expect(final.stop_reason).toBe('tool_use');
      const use = toolUseOf(final);
      expect(use.name).toBe(lookup.name);
      expect(use.id).toMatch(/^toolu_/);
      expectValidLookupInput(use.input);
      expect(use.input).toEqual(JSON.parse(fromFragments));
      expectUsage(final.usage);

      const plain = await client.messages.create({ model: MODEL, max_tokens: 256, system: SYSTEM, messages: PROMPT, tools: [lookup], tool_choice: forced });
      expect(use.input).toEqual(toolUseOf(plain).input);
    });
  });

  describe('errors', () => {
    it('throws RateLimitError for an injected 429, with the type from the body and retry-after', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 429, remaining: 1 }] });
      const error = await rejectionOf(() => client.messages.create({ model: MODEL, max_tokens: 64, messages: PROMPT }));

      expect(error).toBeInstanceOf(RateLimitError);
      expect(error).toBeInstanceOf(Anthropic.RateLimitError);
      expect(error.status).toBe(429);
      expect(error.type).toBe('rate_limit_error');
      expect(error.error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error', message: expect.any(String) } });
      expect(error.apiMessage).toEqual(expect.stringContaining('rate limit'));
      expect(error.headers?.get('retry-after')).toBe('1');

      // One fault, no SDK retry: the next call succeeds, and only two requests reached the simulator.
      await expect(client.messages.create({ model: MODEL, max_tokens: 64, messages: PROMPT })).resolves.toMatchObject({ type: 'message' });
      expect(sim.requests()).toHaveLength(2);
    });

    it('throws OverloadedError for an injected 529, also from a stream', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 529, remaining: 2 }] });
      const error = await rejectionOf(() => client.messages.create({ model: MODEL, max_tokens: 64, messages: PROMPT }));
      expect(error).toBeInstanceOf(OverloadedError);
      expect(error.status).toBe(529);
      expect(error.type).toBe('overloaded_error');
      expect(error.error).toMatchObject({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });

      const streamed = await rejectionOf(() => client.messages.stream({ model: MODEL, max_tokens: 64, messages: PROMPT }).finalMessage());
      expect(streamed).toBeInstanceOf(OverloadedError);
      expect(streamed.type).toBe('overloaded_error');
    });

    it('throws AuthenticationError for a wrong x-api-key', async () => {
      const error = await rejectionOf(() => clientFor('sk-ant-wrong').messages.create({ model: MODEL, max_tokens: 64, messages: PROMPT }));
      expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(error.status).toBe(401);
      expect(error.type).toBe('authentication_error');
      expect(error.apiMessage).toBe('invalid x-api-key');
    });

    it('refuses the SDK default credentials (Authorization: Bearer, no x-api-key) as version 2023-06-01 does', async () => {
      const sdkDefaults = new Anthropic({ apiKey: API_KEY, baseURL: sim.url, maxRetries: 0 });
      const error = await rejectionOf(() => sdkDefaults.messages.create({ model: MODEL, max_tokens: 64, messages: PROMPT }));
      expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(error.type).toBe('authentication_error');
      expect(error.apiMessage).toBe('x-api-key header is required');
      const seen = await sim.waitForRequest((r) => r.outcome === 'error');
      expect(seen.headers).toMatchObject({ authorization: 'present', 'anthropic-version': expect.not.stringMatching(`^${SIMULATED_API_VERSION}$`) });
      expect(seen.headers['x-api-key']).toBeUndefined();
    });
  });
});
