import OpenAI from 'openai';
import type { ProviderType } from '@openrouter/config';
import { anthropicThinkingSignature } from '@openrouter/provider-simulator';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { SIMULATED_PROVIDERS } from '../support/simulated-providers';
import { SIM_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * OpenAI's Responses API (`POST /v1/responses`) through the whole gateway with the official SDK:
 * served by the chat path, for every provider family (stored responses and `previous_response_id`:
 * stored-responses.e2e-spec.ts).
 */
const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

const OTHER_FAMILIES = ['anthropic', 'gemini', 'bedrock'] as const satisfies readonly ProviderType[];

/** The test gateway, plus one chat model on each of the other families' simulated wires. */
function startWithFamilies(): Promise<TestGateway> {
  return startTestGateway({
    configure: (doc) => {
      const url = String((doc['providers'] as { simulated: { baseUrl: string } }).simulated.baseUrl).replace(/\/v1$/, '');
      const providers = doc['providers'] as Record<string, unknown>;
      const models = doc['models'] as Array<Record<string, unknown>>;
      for (const type of OTHER_FAMILIES) {
        const profile = SIMULATED_PROVIDERS[type];
        providers[`sim-${type}`] = profile.config(url, SIM_KEY);
        models.push({
          id: `${type}-chat`,
          capabilities: ['chat', 'tools', 'vision', 'json_object', 'json_schema'],
          pricing: { input: '1', output: '2' },
          deployments: [{ id: `sim-${type}-chat`, provider: `sim-${type}`, model: profile.chatModel }],
        });
      }
    },
  });
}

type Message = { role: string; content?: unknown; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>; tool_call_id?: string };

describe('the Responses API through the gateway', () => {
  let gw: TestGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gw = await startWithFamilies();
    client = gw.client();
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  /** The chat body the provider was sent for the last request. */
  const upstreamBody = (): { model?: string; messages: Message[]; tools?: unknown[]; tool_choice?: unknown; response_format?: unknown; max_completion_tokens?: number } =>
    gw.sim.requests().at(-1)?.body as never;

  it('answers client.responses.create with output_text, usage and routing and cost headers', async () => {
    const { data, response } = await client.responses.create({ model: 'gpt-4o-mini', instructions: 'Be brief.', input: 'Hello there', temperature: 0.5 }).withResponse();
    expect(data).toMatchObject({ object: 'response', status: 'completed', model: 'gpt-4o-mini', instructions: 'Be brief.', temperature: 0.5, store: true, error: null });
    expect(data.id).toMatch(/^resp_/);
    expect(data.output_text.length).toBeGreaterThan(0);
    expect(data.output).toEqual([expect.objectContaining({ type: 'message', role: 'assistant', status: 'completed' })]);
    expect(data.usage?.input_tokens).toBeGreaterThan(0);
    expect(data.usage?.output_tokens).toBeGreaterThan(0);
    expect(data.usage?.total_tokens).toBe((data.usage?.input_tokens ?? 0) + (data.usage?.output_tokens ?? 0));
    expect(response.headers.get('x-openrouter-provider')).toBe('simulated');
    expect(response.headers.get('x-openrouter-model')).toBe('gpt-4o-mini');
    expect(response.headers.get('x-request-id')).toBeTruthy();
    // Metered as a chat completion is: the exact cost in the header, as a number in the usage.
    const cost = Number(response.headers.get('x-openrouter-cost'));
    expect(cost).toBeGreaterThan(0);
    expect((data.usage as unknown as { cost: number }).cost).toBe(cost);
    // The provider was asked an ordinary chat completion.
    expect(upstreamBody()).toMatchObject({ model: 'sim-mini-upstream', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }] });

    // The same conversation asked as a chat completion gets the same (deterministic) answer.
    const chat = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }], temperature: 0.5 });
    expect(data.output_text).toBe(chat.choices[0]?.message.content);
    expect(data.usage?.input_tokens).toBe(chat.usage?.prompt_tokens);
  });

  it('records a usage row for the request, with the chat operation and the cost of the header', async () => {
    const requestId = `responses-usage-${Date.now()}`;
    const { response } = await client.responses.create({ model: 'gpt-4o-mini', input: 'Count me' }, { headers: { 'x-request-id': requestId } }).withResponse();
    const rows = await waitFor(
      async () => {
        const found = await queryRows<{ operation: string; status: string; served_model: string; prompt_tokens: number; cost: string; stream: boolean }>(
          gw.gateway.billing.usage.store,
          'SELECT operation, status, served_model, prompt_tokens, toString(cost) AS cost, stream FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}',
          { id: requestId },
        );
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `the usage row of ${requestId}` },
    );
    expect(rows).toEqual([expect.objectContaining({ operation: 'chat', status: 'ok', served_model: 'gpt-4o-mini', stream: false })]);
    expect(rows[0]?.prompt_tokens).toBeGreaterThan(0);
    expect(Number(rows[0]?.cost)).toBe(Number(response.headers.get('x-openrouter-cost')));
  });

  it('is incomplete when the answer reaches max_output_tokens', async () => {
    const data = await client.responses.create({ model: 'gpt-4o-mini', input: 'Tell me a long story', max_output_tokens: 4 });
    expect(data).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, max_output_tokens: 4 });
    expect(data.usage?.output_tokens).toBe(4);
    expect(upstreamBody().max_completion_tokens).toBe(4);
  });

  it('streams with client.responses.stream: deltas, events in order and finalResponse()', async () => {
    const stream = client.responses.stream({ model: 'gpt-4o-mini', input: 'Stream please' });
    let text = '';
    const types: string[] = [];
    const sequence: number[] = [];
    stream.on('event', (event) => {
      types.push(event.type);
      sequence.push(event.sequence_number);
    });
    stream.on('response.output_text.delta', (event) => (text += event.delta));
    const final = await stream.finalResponse();
    expect(text.length).toBeGreaterThan(0);
    expect(final.output_text).toBe(text);
    expect(final.status).toBe('completed');
    expect(final.usage?.output_tokens).toBeGreaterThan(0);
    expect((final.usage as unknown as { cost: number }).cost).toBeGreaterThan(0);
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    expect(types.slice(-4)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    expect(types.filter((t) => t === 'response.output_text.delta').length).toBeGreaterThan(1);
    expect(sequence).toEqual(sequence.map((_, i) => i));
    // The provider streamed, and was asked for its usage.
    expect(gw.sim.requests().at(-1)).toMatchObject({ stream: true, body: { stream: true, stream_options: { include_usage: true } } });

    const whole = await client.responses.create({ model: 'gpt-4o-mini', input: 'Stream please' });
    expect(text).toBe(whole.output_text);
  });

  it('streams with create({stream: true}), every event typed', async () => {
    const events = await client.responses.create({ model: 'gpt-4o-mini', input: 'Events please', stream: true });
    const types: string[] = [];
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of events) {
      types.push(event.type);
      if (event.type === 'response.completed') completed = event.response;
    }
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    expect(completed?.output[0]?.type).toBe('message');
    expect(completed?.usage?.total_tokens).toBeGreaterThan(0);
  });

  it('makes a function call when tool_choice requires one, and answers its output', async () => {
    const first = await client.responses.create({ model: 'gpt-4o-mini', input: 'Weather in Oslo?', tools: [weather], tool_choice: 'required' });
    expect(upstreamBody()).toMatchObject({ tools: [{ type: 'function', function: { name: 'get_weather', strict: true } }], tool_choice: 'required' });
    const call = first.output.find((item) => item.type === 'function_call');
    expect(first.status).toBe('completed');
    if (call?.type !== 'function_call') throw new Error('no function call in the output');
    expect(call).toMatchObject({ name: 'get_weather', status: 'completed' });
    expect(call.call_id).toBeTruthy();
    expect(JSON.parse(call.arguments)).toHaveProperty('city');

    // The stateless round trip: the conversation so far, the call and its output.
    const second = await client.responses.create({
      model: 'gpt-4o-mini',
      tools: [weather],
      input: [{ role: 'user', content: 'Weather in Oslo?' }, call, { type: 'function_call_output', call_id: call.call_id, output: '{"celsius":4}' }],
    });
    expect(second.output_text.length).toBeGreaterThan(0);
    expect(second.output.every((item) => item.type === 'message')).toBe(true);
    const messages = upstreamBody().messages;
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(messages[1]?.tool_calls).toEqual([{ id: call.call_id, type: 'function', function: { name: 'get_weather', arguments: call.arguments } }]);
    expect(messages[2]).toMatchObject({ tool_call_id: call.call_id, content: '{"celsius":4}' });
  });

  it('streams a forced function call, its argument deltas adding up to the final arguments', async () => {
    const stream = client.responses.stream({ model: 'gpt-4o-mini', input: 'Weather in Bergen?', tools: [weather], tool_choice: { type: 'function', name: 'get_weather' } });
    let args = '';
    stream.on('response.function_call_arguments.delta', (event) => (args += event.delta));
    const final = await stream.finalResponse();
    const call = final.output.find((item) => item.type === 'function_call');
    if (call?.type !== 'function_call') throw new Error('no function call in the output');
    expect(call.name).toBe('get_weather');
    expect(call.arguments).toBe(args);
    expect(JSON.parse(args)).toHaveProperty('city');
    expect(upstreamBody().tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });
  });

  it('answers JSON that follows the text.format json_schema', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string' }, celsius: { type: 'number' } }, required: ['city', 'celsius'], additionalProperties: false };
    const parsed = await client.responses.parse({ model: 'gpt-4o-mini', input: 'Weather as JSON', text: { format: { type: 'json_schema', name: 'weather', schema, strict: true } } });
    expect(upstreamBody().response_format).toEqual({ type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } });
    const value = JSON.parse(parsed.output_text) as Record<string, unknown>;
    expect(typeof value['city']).toBe('string');
    expect(typeof value['celsius']).toBe('number');
    expect(parsed.output_parsed).toEqual(value);
    expect(parsed.text?.format).toMatchObject({ type: 'json_schema', name: 'weather' });
  });

  it("asks the provider for logprobs only when include has 'message.output_text.logprobs', as OpenAI returns them", async () => {
    const included = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi', include: ['message.output_text.logprobs'], top_logprobs: 2 });
    expect(upstreamBody()).toMatchObject({ logprobs: true, top_logprobs: 2 });
    const text = included.output.find((item) => item.type === 'message')?.content[0];
    expect(text).toMatchObject({ type: 'output_text', logprobs: [] });

    await client.responses.create({ model: 'gpt-4o-mini', input: 'hi', top_logprobs: 2 });
    expect(upstreamBody()).not.toHaveProperty('logprobs');
    expect(upstreamBody()).not.toHaveProperty('top_logprobs');

    // A provider that returns no logprobs refuses them, naming what the client sent.
    await expect(client.responses.create({ model: 'anthropic-chat', input: 'hi', include: ['message.output_text.logprobs'] })).rejects.toMatchObject({
      status: 400,
      param: 'include',
      code: 'unsupported_parameter',
    });
  });

  it('ends a stream the provider drops with an error event and response.failed', async () => {
    gw.sim.configure({ completionTokens: 40, faults: [{ kind: 'drop_mid_stream', afterTokens: 3, remaining: 1 }] });
    const types: string[] = [];
    let error: { code: string | null; message: string } | undefined;
    let failed: OpenAI.Responses.Response | undefined;
    for await (const event of await client.responses.create({ model: 'gpt-4o-mini', input: 'x', stream: true })) {
      types.push(event.type);
      if (event.type === 'error') error = event;
      if (event.type === 'response.failed') failed = event.response;
    }
    expect(types).toContain('response.output_text.delta');
    expect(types.slice(-2)).toEqual(['error', 'response.failed']);
    expect(error?.message.length).toBeGreaterThan(0);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'server_error' } });
  });

  it('stops the provider call when the client leaves mid-stream', async () => {
    gw.sim.configure({ completionTokens: 500, tokensPerSecond: 50 });
    const abort = new AbortController();
    const events = await client.responses.create({ model: 'gpt-4o-mini', input: 'long answer', stream: true }, { signal: abort.signal });
    let deltas = 0;
    try {
      for await (const event of events) {
        if (event.type === 'response.output_text.delta' && ++deltas === 2) {
          abort.abort();
          break;
        }
      }
    } catch {
      // the SDK may end the iteration or raise an abort error; either way the client is gone
    }
    expect(deltas).toBe(2);
    const observed = await gw.sim.waitForRequest((r) => r.outcome === 'aborted', 10_000);
    expect(observed.stream).toBe(true);
  });

  describe.each(OTHER_FAMILIES.map((type) => [type] as const))('on the %s family', (type) => {
    const model = `${type}-chat`;

    it('answers, streams and calls a function', async () => {
      const { data, response } = await client.responses.create({ model, instructions: 'Be brief.', input: 'Hello ✨ there', max_output_tokens: 32 }).withResponse();
      expect(response.headers.get('x-openrouter-provider')).toBe(`sim-${type}`);
      expect(data.model).toBe(model);
      expect(data.output_text.length).toBeGreaterThan(0);
      expect(data.usage?.input_tokens).toBeGreaterThan(0);

      const stream = client.responses.stream({ model, input: 'Tell me something', max_output_tokens: 32 });
      let text = '';
      stream.on('response.output_text.delta', (event) => (text += event.delta));
      const final = await stream.finalResponse();
      expect(text.length).toBeGreaterThan(0);
      expect(final.output_text).toBe(text);
      expect(final.usage?.output_tokens).toBeGreaterThan(0);

      const called = await client.responses.create({ model, input: 'Weather in Oslo?', tools: [weather], tool_choice: { type: 'function', name: 'get_weather' } });
      const call = called.output.find((item) => item.type === 'function_call');
      if (call?.type !== 'function_call') throw new Error('no function call in the output');
      expect(JSON.parse(call.arguments)).toHaveProperty('city');
      const answered = await client.responses.create({
        model,
        tools: [weather],
        input: [{ role: 'user', content: 'Weather in Oslo?' }, call, { type: 'function_call_output', call_id: call.call_id, output: '{"celsius":4}' }],
      });
      expect(answered.output_text.length).toBeGreaterThan(0);
    });
  });

  it("returns Claude's thinking as a reasoning item with its summary, whole and streamed", async () => {
    const whole = await client.responses.create({ model: 'anthropic-chat', input: 'Is 1013 prime?', reasoning: { effort: 'high' } });
    expect(whole.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    const reasoning = whole.output[0];
    expect(reasoning?.type === 'reasoning' ? reasoning.summary[0]?.text.length : 0).toBeGreaterThan(0);
    expect(whole.reasoning).toMatchObject({ effort: 'high' });
    expect(whole.usage?.output_tokens).toBeGreaterThan(0);

    const stream = client.responses.stream({ model: 'anthropic-chat', input: 'Plan a trip.', reasoning: { effort: 'medium' } });
    let summary = '';
    stream.on('response.reasoning_summary_text.delta', (event) => (summary += event.delta));
    const final = await stream.finalResponse();
    expect(summary.length).toBeGreaterThan(0);
    expect(final.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(final.output[0]?.type === 'reasoning' ? final.output[0].summary : []).toEqual([{ type: 'summary_text', text: summary }]);
    expect(final.output_text.length).toBeGreaterThan(0);
  });

  describe("Claude's thinking round-tripped through encrypted_content (stateless, as Codex-style clients do)", () => {
    type Block = { type: 'thinking'; thinking: string; signature: string } | { type: 'redacted_thinking'; data: string };
    /** What the gateway's encrypted_content holds (docs/responses-api.md): base64url of a versioned JSON. */
    const decoded = (content: string | null | undefined): { v: number; thinking_blocks: Block[] } => JSON.parse(Buffer.from(content ?? '', 'base64url').toString('utf8')) as never;
    const encoded = (blocks: Block[]): string => Buffer.from(JSON.stringify({ v: 1, thinking_blocks: blocks })).toString('base64url');
    type AnthropicBlock = { type: string; thinking?: string; signature?: string; id?: string; tool_use_id?: string };
    const anthropicMessages = (): Array<{ role: string; content: string | AnthropicBlock[] }> => (gw.sim.requests().at(-1)?.body as { messages: never }).messages;
    const toolTurn = (reasoning: OpenAI.Responses.ResponseInputItem): OpenAI.Responses.ResponseInput => [
      { role: 'user', content: 'Weather in Oslo?' },
      reasoning,
      { type: 'function_call', call_id: 'call_oslo', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      { type: 'function_call_output', call_id: 'call_oslo', output: '{"celsius":4}' },
    ];

    it('returns the signed thinking in the reasoning item, and hands it back first in the tool turn', async () => {
      const first = await client.responses.create({
        model: 'anthropic-chat',
        input: 'Weather in Oslo?',
        tools: [weather],
        reasoning: { effort: 'high' },
        include: ['reasoning.encrypted_content'],
        store: false,
      });
      const reasoning = first.output[0];
      if (reasoning?.type !== 'reasoning') throw new Error('no reasoning item in the output');
      const thinking = reasoning.summary[0]?.text ?? '';
      expect(thinking.length).toBeGreaterThan(0);
      expect(decoded(reasoning.encrypted_content)).toEqual({ v: 1, thinking_blocks: [{ type: 'thinking', thinking, signature: anthropicThinkingSignature(thinking) }] });

      // The next request carries the reasoning item as it came, the model's call and its output.
      const second = await client.responses.create({ model: 'anthropic-chat', tools: [weather], reasoning: { effort: 'high' }, include: ['reasoning.encrypted_content'], store: false, input: toolTurn(reasoning) });
      expect(second.output_text.length).toBeGreaterThan(0);
      const messages = anthropicMessages();
      expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
      expect(messages[1]?.content).toEqual([
        { type: 'thinking', thinking, signature: anthropicThinkingSignature(thinking) },
        expect.objectContaining({ type: 'tool_use', name: 'get_weather', input: { city: 'Oslo' } }),
      ]);
      expect(messages[2]?.content).toEqual([expect.objectContaining({ type: 'tool_result', content: '{"celsius":4}' })]);
    });

    it('carries it in a stream: the reasoning item done, and the completed response', async () => {
      const stream = client.responses.stream({ model: 'anthropic-chat', input: 'Plan a trip.', reasoning: { effort: 'medium' }, include: ['reasoning.encrypted_content'], store: false });
      const done: OpenAI.Responses.ResponseOutputItem[] = [];
      stream.on('response.output_item.done', (event) => done.push(event.item));
      const final = await stream.finalResponse();
      const reasoning = final.output[0];
      if (reasoning?.type !== 'reasoning') throw new Error('no reasoning item in the output');
      const thinking = reasoning.summary[0]?.text ?? '';
      expect(decoded(reasoning.encrypted_content).thinking_blocks).toEqual([{ type: 'thinking', thinking, signature: anthropicThinkingSignature(thinking) }]);
      expect(done[0]).toEqual(reasoning);

      // Without include, as OpenAI answers, no encrypted_content.
      const plain = await client.responses.create({ model: 'anthropic-chat', input: 'Plan a trip.', reasoning: { effort: 'medium' } });
      expect(plain.output[0]).not.toHaveProperty('encrypted_content');
    });

    it('refuses encrypted_content it did not write before any provider call, and the provider refuses edited thinking', async () => {
      const before = gw.sim.requests().length;
      const foreign = client.responses.create({ model: 'anthropic-chat', tools: [weather], input: toolTurn({ type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'gAAAAABoZ3QxZXN0' }) });
      await expect(foreign).rejects.toMatchObject({ status: 400, param: 'input[1].encrypted_content', code: 'invalid_value' });
      expect(gw.sim.requests().length).toBe(before);

      const edited = encoded([{ type: 'thinking', thinking: 'Edited thinking.', signature: anthropicThinkingSignature('Original thinking.') }]);
      const refused = client.responses.create({ model: 'anthropic-chat', tools: [weather], reasoning: { effort: 'high' }, input: toolTurn({ type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: edited }) });
      await expect(refused).rejects.toMatchObject({ status: 400, message: expect.stringContaining('signature') });
      expect(gw.sim.requests().length).toBeGreaterThan(before);
    });
  });

  describe('refusals', () => {
    it.each<[string, Record<string, unknown>, string]>([
      ['a stored prompt', { prompt: { id: 'pmpt_123' } }, 'prompt'],
      ['an include value the gateway does not serve', { include: ['reasoning.encrypted_content', 'file_search_call.results'] }, 'include'],
      ['a built-in tool', { tools: [weather, { type: 'web_search' }] }, 'tools[1].type'],
      ['an item reference', { input: [{ type: 'item_reference', id: 'msg_123' }] }, 'input[0]'],
    ])('refuses %s with 400 unsupported_parameter in OpenAI error shape, calling no provider', async (_name, extra, param) => {
      const before = gw.sim.requests().length;
      const error = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi', ...extra } as OpenAI.Responses.ResponseCreateParamsNonStreaming).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect(error).toMatchObject({ status: 400, param, code: 'unsupported_parameter', type: 'invalid_request_error' });
      expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain('not supported by this gateway');
      expect(gw.sim.requests().length).toBe(before);
    });

    it('refuses an unknown parameter and a malformed item naming the parameter', async () => {
      await expect(client.responses.create({ model: 'gpt-4o-mini', input: 'hi', frequency_penalty: 1 } as OpenAI.Responses.ResponseCreateParamsNonStreaming)).rejects.toMatchObject({
        status: 400,
        param: 'frequency_penalty',
        code: 'unknown_parameter',
      });
      await expect(client.responses.create({ model: 'gpt-4o-mini', input: [{ type: 'function_call_output', output: 'x' } as never] })).rejects.toMatchObject({
        status: 400,
        param: 'input[0].call_id',
        code: 'missing_required_parameter',
      });
      await expect(client.responses.create({ model: 'gpt-4o-mini' })).rejects.toMatchObject({ status: 400, param: 'input' });
    });

    it('names max_output_tokens when it is over the bound of a chat request', async () => {
      const error = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi', max_output_tokens: 10_000_000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ status: 400, param: 'max_output_tokens', code: 'invalid_value' });
      expect((error as Error).message).toMatch(/^400 max_output_tokens may be at most \d+; got 10000000\.$/);
    });

    it('authenticates: a wrong key is a 401, an unknown model a 404', async () => {
      await expect(gw.client({ apiKey: 'sk-wrong' }).responses.create({ model: 'gpt-4o-mini', input: 'hi' })).rejects.toMatchObject({ status: 401 });
      await expect(client.responses.create({ model: 'no-such-model', input: 'hi' })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    });

    it('checks the key before the body: a wrong key with a malformed body is a 401, and too many items are refused before they are read', async () => {
      const malformed = { model: 'gpt-4o-mini', input: [{ type: 'function_call_output', output: 'x' }] } as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming;
      await expect(gw.client({ apiKey: 'sk-wrong' }).responses.create(malformed)).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
      // 5,000 items, each of which would fail validation: the count is refused first, naming the bound.
      const many = { model: 'gpt-4o-mini', input: Array.from({ length: 5_000 }, () => ({ type: 'function_call_output', output: 'x' })) } as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming;
      const error = await client.responses.create(many).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ status: 400, param: 'input', code: 'invalid_value' });
      expect((error as Error).message).toMatch(/At most \d+ items are accepted; the request has 5000\./);
    });
  });
});

describe('the Responses API under a hard budget', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['budgets'] = { list: [{ id: 'tiny', scope: { org: 'default' }, period: 'monthly', amount: '0.00002', enforcement: 'hard' }] };
      },
    });
  });
  afterAll(async () => gw?.close());

  it('ends a stream as response.incomplete where the budget runs out, then refuses with 402', async () => {
    gw.sim.configure({ completionTokens: 400 });
    const client = gw.client();
    const stream = client.responses.stream({ model: 'gpt-4o-mini', input: 'Tell me a long story' });
    let text = '';
    stream.on('response.output_text.delta', (event) => (text += event.delta));
    const final = await stream.finalResponse();
    expect(final).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } });
    expect(final.output_text).toBe(text);
    // 0.00002 = 20 micro-units: at 0.6 per output token, far fewer than the 400 the provider would write.
    expect(text.length).toBeGreaterThan(0);
    expect(text.split(' ').length).toBeLessThan(60);
    expect(final.usage?.output_tokens).toBeGreaterThan(0);
    await waitFor(async () => ((await gw.gateway.ingress.budgets.status())[0]?.reserved === '0' ? true : undefined), { what: 'the reservation settled' });

    await expect(client.responses.create({ model: 'gpt-4o-mini', input: 'hi' })).rejects.toMatchObject({ status: 402, code: 'budget_exceeded', type: 'insufficient_quota' });
  });
});
