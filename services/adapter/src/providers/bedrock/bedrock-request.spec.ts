import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseChatRequest } from '@openrouter/openai-wire';
import { ImageSource } from '../image-source';
import { DEFAULT_ANSWER_TOKENS, JSON_OBJECT_INSTRUCTION, JSON_RESPONSE_TOOL, toConverseRequest } from './bedrock-request';
import fixture from './fixtures/converse-request.fixture.json';

const loader = new ImageSource().loader({ signal: new AbortController().signal });
const translate = (body: Record<string, unknown>) => toConverseRequest(parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], ...body }), loader);

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GatewayError);
  return error as GatewayError;
}

const TOOL = { type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } };
const TOOL_HISTORY = [
  { role: 'user', content: 'Find it' },
  { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } }] },
  { role: 'tool', tool_call_id: 't1', content: 'found' },
];

describe('Converse request translation', () => {
  it('translates the recorded OpenAI body to the recorded Converse body', async () => {
    const { body, jsonTool } = await toConverseRequest(parseChatRequest(fixture.openai), loader);
    expect(body).toEqual(fixture.converse);
    expect(jsonTool).toBeUndefined();
  });

  it('keeps multiple system and developer messages in order, wherever they appear', async () => {
    const { body } = await translate({
      messages: [
        { role: 'system', content: 'one' },
        { role: 'user', content: 'Hi' },
        { role: 'developer', content: 'two' },
        { role: 'system', content: '   ' },
      ],
    });
    expect(body.system).toEqual([{ text: 'one' }, { text: 'two' }]);
    expect(body.messages).toEqual([{ role: 'user', content: [{ text: 'Hi' }] }]);
  });

  it('merges consecutive same-role turns and drops empty text blocks', async () => {
    const { body } = await translate({
      messages: [
        { role: 'user', content: 'a' },
        { role: 'user', content: '' },
        { role: 'user', content: 'b' },
        { role: 'assistant', content: 'c' },
        { role: 'assistant', content: [{ type: 'text', text: 'd' }] },
      ],
    });
    expect(body.messages).toEqual([
      { role: 'user', content: [{ text: 'a' }, { text: 'b' }] },
      { role: 'assistant', content: [{ text: 'c' }, { text: 'd' }] },
    ]);
  });

  it('leaves whitespace-only stop sequences out for Claude models, which refuse them, and only there', async () => {
    const request = parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], stop: ['\n', 'END'] });
    expect((await toConverseRequest(request, loader, 'anthropic.claude-3-5-sonnet-20241022-v2:0')).body.inferenceConfig?.stopSequences).toEqual(['END']);
    expect((await toConverseRequest(request, loader, 'meta.llama3-70b-instruct-v1:0')).body.inferenceConfig?.stopSequences).toEqual(['\n', 'END']);
  });

  it("leaves whitespace-only stop sequences out for an application inference profile the provider's claudeModels lists", async () => {
    const request = parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], stop: ['\n', 'END'] });
    const profile = 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123';
    const listed = await toConverseRequest(request, loader, profile, { claudeModels: [profile] });
    expect(listed.body.inferenceConfig?.stopSequences).toEqual(['END']);
    expect(listed.body['additionalModelResponseFieldPaths']).toEqual(['/stop_sequence']);
    expect((await toConverseRequest(request, loader, profile)).body.inferenceConfig?.stopSequences).toEqual(['\n', 'END']);
  });

  it("asks a Claude model sent stop sequences for its own stop_sequence field, beside the client's paths, and only a Claude model", async () => {
    const claude = 'anthropic.claude-3-5-sonnet-20241022-v2:0';
    const request = (body: Record<string, unknown>) => parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], ...body });
    expect((await toConverseRequest(request({ stop: ['END'] }), loader, claude)).body['additionalModelResponseFieldPaths']).toEqual(['/stop_sequence']);
    const own = await toConverseRequest(request({ stop: ['END'], additionalModelResponseFieldPaths: ['/usage'] }), loader, claude);
    expect(own.body['additionalModelResponseFieldPaths']).toEqual(['/usage', '/stop_sequence']);
    const asked = await toConverseRequest(request({ stop: ['END'], additionalModelResponseFieldPaths: ['/stop_sequence'] }), loader, claude);
    expect(asked.body['additionalModelResponseFieldPaths']).toEqual(['/stop_sequence']);
    // No stop sequence left to name (Claude refuses whitespace-only ones), or a model without the field: nothing asked.
    expect((await toConverseRequest(request({ stop: ['\n'] }), loader, claude)).body['additionalModelResponseFieldPaths']).toBeUndefined();
    expect((await toConverseRequest(request({}), loader, claude)).body['additionalModelResponseFieldPaths']).toBeUndefined();
    expect((await toConverseRequest(request({ stop: ['END'] }), loader, 'meta.llama3-70b-instruct-v1:0')).body['additionalModelResponseFieldPaths']).toBeUndefined();
  });

  it('drops whitespace-only text blocks, which Converse refuses as blank', async () => {
    const { body } = await translate({
      tools: [TOOL],
      messages: [
        { role: 'user', content: 'a' },
        { role: 'user', content: ' \n' },
        { role: 'user', content: [{ type: 'text', text: '\t' }, { type: 'text', text: 'b' }] },
        { role: 'assistant', content: '  ', tool_calls: [{ id: 't1', type: 'function', function: { name: 'lookup', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 't1', content: '   ' },
        { role: 'assistant', content: [{ type: 'text', text: '\n\n' }] },
        { role: 'user', content: 'c' },
      ],
    });
    expect(body.messages).toEqual([
      { role: 'user', content: [{ text: 'a' }, { text: 'b' }] },
      { role: 'assistant', content: [{ toolUse: { toolUseId: 't1', name: 'lookup', input: {} } }] },
      { role: 'user', content: [{ toolResult: { toolUseId: 't1', content: [] } }, { text: 'c' }] },
    ]);
  });

  it('trims trailing whitespace from a final assistant message (a prefill), and drops it when nothing is left', async () => {
    const prefill = await translate({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'The answer is \n' }] });
    expect(prefill.body.messages[1]).toEqual({ role: 'assistant', content: [{ text: 'The answer is' }] });
    const earlier = await translate({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello. ' }, { role: 'user', content: 'More' }] });
    expect(earlier.body.messages[1]).toEqual({ role: 'assistant', content: [{ text: 'Hello. ' }] });
  });

  it('rewrites tool call ids to the characters and length Converse accepts, the same way on toolUse and toolResult', async () => {
    const long = `call.${'x'.repeat(80)}`;
    const { body } = await translate({
      tools: [TOOL],
      messages: [
        { role: 'user', content: 'go' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'functions.lookup:0', type: 'function', function: { name: 'lookup', arguments: '{}' } },
            { id: long, type: 'function', function: { name: 'lookup', arguments: '{}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'functions.lookup:0', content: 'one' },
        { role: 'tool', tool_call_id: long, content: 'two' },
      ],
    });
    const ids = body.messages.flatMap((m) => m.content.flatMap((b) => ('toolUse' in b ? [b.toolUse.toolUseId] : 'toolResult' in b ? [b.toolResult.toolUseId] : [])));
    expect(ids[0]).toBe('functions_lookup_0');
    expect(ids[2]).toBe(ids[0]);
    expect(ids[1]).toMatch(/^[A-Za-z0-9_-]{64}$/);
    expect(ids[3]).toBe(ids[1]);
  });

  it('reads text parts that carry extra keys such as cache_control, in system, user, assistant and tool messages', async () => {
    const cached = (text: string) => ({ type: 'text', text, cache_control: { type: 'ephemeral' } });
    const { body } = await translate({
      tools: [TOOL],
      messages: [
        { role: 'system', content: [cached('Be brief.')] },
        { role: 'user', content: [cached('Long document'), { type: 'text', text: 'Question' }] },
        { role: 'assistant', content: [cached('Earlier answer')], tool_calls: [{ id: 't1', type: 'function', function: { name: 'lookup', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 't1', content: [cached('found')] },
      ],
    });
    expect(body.system).toEqual([{ text: 'Be brief.' }]);
    expect(body.messages).toEqual([
      { role: 'user', content: [{ text: 'Long document' }, { text: 'Question' }] },
      { role: 'assistant', content: [{ text: 'Earlier answer' }, { toolUse: { toolUseId: 't1', name: 'lookup', input: {} } }] },
      { role: 'user', content: [{ toolResult: { toolUseId: 't1', content: [{ text: 'found' }] } }] },
    ]);
  });

  it('sends an assistant turn with empty content and tool calls as toolUse blocks only; empty arguments are {}', async () => {
    const { body } = await translate({
      tools: [TOOL],
      messages: [
        { role: 'user', content: 'go' },
        { role: 'assistant', content: '', tool_calls: [{ id: 'a', type: 'function', function: { name: 'lookup', arguments: '' } }] },
        { role: 'tool', tool_call_id: 'a', content: '' },
      ],
    });
    expect(body.messages[1]).toEqual({ role: 'assistant', content: [{ toolUse: { toolUseId: 'a', name: 'lookup', input: {} } }] });
    expect(body.messages[2]).toEqual({ role: 'user', content: [{ toolResult: { toolUseId: 'a', content: [] } }] });
  });

  it('maps every inference parameter, max_completion_tokens over max_tokens', async () => {
    expect((await translate({ max_tokens: 10 })).body.inferenceConfig).toEqual({ maxTokens: 10 });
    expect((await translate({ max_tokens: 10, max_completion_tokens: 20, temperature: 0, top_p: 1, stop: 'x' })).body.inferenceConfig).toEqual({
      maxTokens: 20,
      temperature: 0,
      topP: 1,
      stopSequences: ['x'],
    });
    expect((await translate({})).body.inferenceConfig).toBeUndefined();
  });

  it.each([
    ['required', { any: {} }],
    [{ type: 'function', function: { name: 'lookup' } }, { tool: { name: 'lookup' } }],
    ['auto', { auto: {} }],
  ])('maps tool_choice %j', async (choice, expected) => {
    expect((await translate({ tools: [TOOL], tool_choice: choice })).body.toolConfig?.toolChoice).toEqual(expected);
  });

  it('leaves toolChoice unset when the client did not choose (Bedrock defaults to auto)', async () => {
    expect((await translate({ tools: [TOOL] })).body.toolConfig).toEqual({
      tools: [{ toolSpec: { name: 'lookup', inputSchema: { json: TOOL.function.parameters } } }],
    });
  });

  it('omits tools for tool_choice none, and declares only stubs of the history\'s calls when it holds tool blocks', async () => {
    expect((await translate({ tools: [TOOL], tool_choice: 'none' })).body.toolConfig).toBeUndefined();
    const withHistory = await translate({ tools: [TOOL], tool_choice: 'none', messages: TOOL_HISTORY });
    // The history's calls are declared as stubs the model is told not to call, not as the client's tools.
    expect(withHistory.body.toolConfig).toEqual({
      tools: [{ toolSpec: { name: 'lookup', description: expect.stringContaining('do not call it') as unknown, inputSchema: { json: { type: 'object' } } } }],
    });
  });

  it('declares stub tools for a tool history sent without tools, with no toolChoice (Converse has no "none")', async () => {
    const { body } = await translate({ messages: [...TOOL_HISTORY, { role: 'user', content: 'Summarise.' }] });
    expect(body.toolConfig).toEqual({
      tools: [{ toolSpec: { name: 'lookup', description: expect.stringContaining('do not call it') as unknown, inputSchema: { json: { type: 'object' } } } }],
    });
    expect((await translate({ tool_choice: 'none', messages: TOOL_HISTORY })).body.toolConfig?.tools.map((t) => t.toolSpec.name)).toEqual(['lookup']);
    expect((await translate({})).body.toolConfig).toBeUndefined();
  });

  it('asks for a JSON object through a system instruction', async () => {
    const { body } = await translate({ messages: [{ role: 'system', content: 'Be terse.' }, { role: 'user', content: 'Hi' }], response_format: { type: 'json_object' } });
    expect(body.system).toEqual([{ text: 'Be terse.' }, { text: JSON_OBJECT_INSTRUCTION }]);
  });

  it('turns json_schema into a forced answer tool, alongside client tools when they may be used', async () => {
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } } };
    const alone = await translate({ response_format: { type: 'json_schema', json_schema: { name: 'verdict', schema } } });
    expect(alone.jsonTool).toBe(JSON_RESPONSE_TOOL);
    expect(alone.body.toolConfig).toEqual({
      tools: [{ toolSpec: { name: JSON_RESPONSE_TOOL, description: expect.stringContaining('verdict'), inputSchema: { json: schema } } }],
      toolChoice: { tool: { name: JSON_RESPONSE_TOOL } },
    });
    const withTools = await translate({ tools: [TOOL], response_format: { type: 'json_schema', json_schema: { name: 'verdict', schema } } });
    expect(withTools.body.toolConfig?.tools.map((t) => t.toolSpec.name)).toEqual(['lookup', JSON_RESPONSE_TOOL]);
    expect(withTools.body.toolConfig?.toolChoice).toEqual({ any: {} });
  });

  it('leaves json_schema unenforced when a client tool call is required anyway, so the answer is a client tool call', async () => {
    const response_format = { type: 'json_schema', json_schema: { name: 'verdict', schema: { type: 'object', properties: { ok: { type: 'boolean' } } } } };
    const required = await translate({ tools: [TOOL], tool_choice: 'required', response_format });
    expect(required.jsonTool).toBeUndefined();
    expect(required.body.toolConfig).toEqual({ tools: [{ toolSpec: { name: 'lookup', inputSchema: { json: TOOL.function.parameters } } }], toolChoice: { any: {} } });
    const named = await translate({ tools: [TOOL], tool_choice: { type: 'function', function: { name: 'lookup' } }, response_format });
    expect(named.jsonTool).toBeUndefined();
    expect(named.body.toolConfig?.tools.map((t) => t.toolSpec.name)).toEqual(['lookup']);
  });

  it('passes Converse-only fields sent as extra body keys and drops other unknown keys', async () => {
    const { body } = await translate({ performanceConfig: { latency: 'optimized' }, additionalModelRequestFields: { top_k: 5 }, some_future_param: 1 });
    expect(body['performanceConfig']).toEqual({ latency: 'optimized' });
    expect(body['additionalModelRequestFields']).toEqual({ top_k: 5 });
    expect(body['some_future_param']).toBeUndefined();
  });

  it('drops prediction (it only speeds an answer up), user and safety_identifier (Converse has no end-user field)', async () => {
    const plain = await translate({});
    await expect(translate({ prediction: { type: 'content', content: 'x' }, user: 'u', safety_identifier: 's' })).resolves.toEqual(plain);
  });

  it.each([
    ['n', { n: 2 }],
    ['logprobs', { logprobs: true }],
    ['top_logprobs', { top_logprobs: 3 }],
    ['logit_bias', { logit_bias: { '42': 10 } }],
    ['modalities', { modalities: ['text', 'audio'] }],
    ['audio', { audio: { voice: 'alloy', format: 'wav' } }],
    ['web_search_options', { web_search_options: {} }],
    ['functions', { functions: [{ name: 'lookup', parameters: { type: 'object' } }] }],
    ['function_call', { function_call: 'auto' }],
    ['tools', { tools: [{ type: 'custom', custom: { name: 'x' } }] }],
    ['tool_choice', { tools: [TOOL], tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [] } } }],
    ['tool_choice', { tools: [TOOL], tool_choice: { type: 'function', function: { name: 'missing' } } }],
    ['tool_choice', { tool_choice: 'required' }],
  ])('refuses what Bedrock cannot do with a 400 naming %s', async (param, body) => {
    await expect(rejection(translate(body))).resolves.toMatchObject({ kind: 'bad_request', param });
  });

  it('accepts the harmless forms of refused parameters', async () => {
    await expect(translate({ n: 1, logprobs: false, top_logprobs: 0, modalities: ['text'], tool_choice: 'auto' })).resolves.toBeDefined();
  });

  it.each([
    ['audio input', [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }], 'messages'],
    ['a file part', [{ type: 'file', file: { file_id: 'f1' } }], 'messages'],
    ['an image of another type', [{ type: 'image_url', image_url: { url: 'data:image/svg+xml;base64,PHN2Zz4=' } }], 'messages[0].content[0]'],
    ['an image data URL that is not base64', [{ type: 'text', text: 'x' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,%%%not-base64' } }], 'messages[0].content[1]'],
  ])('refuses %s in the messages', async (_name, content, param) => {
    await expect(rejection(translate({ messages: [{ role: 'user', content }] }))).resolves.toMatchObject({ kind: 'bad_request', param });
  });

  it('refuses tool-call arguments that are not a JSON object, and the deprecated function role', async () => {
    const bad = (args: string) => translate({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: null, tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: args } }] }] });
    await expect(rejection(bad('{not json'))).resolves.toMatchObject({ param: 'messages' });
    await expect(rejection(bad('[1,2]'))).resolves.toMatchObject({ param: 'messages' });
    await expect(rejection(translate({ messages: [{ role: 'function', name: 'f', content: 'x' }] }))).resolves.toMatchObject({ param: 'messages' });
  });

  it('keeps images inside tool results', async () => {
    const png = 'data:image/png;base64,iVBORw0KGgo=';
    const request: chatv1.ChatRequest = parseChatRequest({
      model: 'm',
      messages: [...TOOL_HISTORY.slice(0, 2), { role: 'tool', tool_call_id: 't1', content: [{ type: 'text', text: 'chart:' }, { type: 'image_url', image_url: { url: png } }] }],
      tools: [TOOL],
    });
    const { body } = await toConverseRequest(request, loader);
    expect(body.messages[2]?.content).toEqual([
      { toolResult: { toolUseId: 't1', content: [{ text: 'chart:' }, { image: { format: 'png', source: { bytes: 'iVBORw0KGgo=' } } }] } },
    ]);
  });
});

describe('Converse request translation: fetching images', () => {
  const PNG = { mediaType: 'image/png', base64: 'iVBORw0KGgo=' };
  const image = (k: number) => ({ type: 'image_url', image_url: { url: `https://images.example/${k}.png` } });
  /** A loader whose fetches each end on the next turn of the event loop, counting those pending meanwhile. */
  const counting = (failing?: string) => {
    const seen = { pending: 0, most: 0, urls: [] as string[] };
    const load = async (url: string, param?: string) => {
      seen.urls.push(url);
      seen.most = Math.max(seen.most, ++seen.pending);
      await new Promise((next) => setImmediate(next));
      seen.pending--;
      if (url === failing) throw new GatewayError('bad_request', 'An image in the messages could not be fetched.', { param, code: 'invalid_image_url' });
      return PNG;
    };
    return { seen, load };
  };

  it('fetches the images of a message four at a time, in the order of its parts', async () => {
    const { seen, load } = counting();
    const content = [{ type: 'text', text: 'these' }, ...Array.from({ length: 12 }, (_, k) => image(k))];
    const { body } = await toConverseRequest(parseChatRequest({ model: 'm', messages: [{ role: 'user', content }] }), load);
    expect(seen.most).toBe(4);
    expect(body.messages[0]?.content).toEqual([{ text: 'these' }, ...Array.from({ length: 12 }, () => ({ image: { format: 'png', source: { bytes: PNG.base64 } } }))]);
  });

  it('starts no further fetch once one failed, and names the part that failed', async () => {
    const { seen, load } = counting('https://images.example/0.png');
    const content = Array.from({ length: 12 }, (_, k) => image(k));
    await expect(rejection(toConverseRequest(parseChatRequest({ model: 'm', messages: [{ role: 'user', content }] }), load))).resolves.toMatchObject({ param: 'messages[0].content[0]', code: 'invalid_image_url' });
    expect(seen.urls).toHaveLength(4);
  });

  it('refuses images over the byte budget of the call, naming the part that goes over it', async () => {
    const png = { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } };
    const request = parseChatRequest({ model: 'm', messages: [{ role: 'user', content: [png, png] }, { role: 'assistant', content: 'ok' }, { role: 'user', content: [png] }] });
    const budget = () => new ImageSource().loader({ signal: new AbortController().signal, maxTotalBytes: 20 });
    await expect(rejection(toConverseRequest(request, budget()))).resolves.toMatchObject({ kind: 'bad_request', param: 'messages[2].content[0]', code: 'invalid_image_url', message: expect.stringMatching(/total more than 20 bytes/) });
    await expect(toConverseRequest(parseChatRequest({ model: 'm', messages: [{ role: 'user', content: [png, png] }] }), budget())).resolves.toBeDefined();
  });
});

describe('Converse request translation: extended thinking (Claude)', () => {
  const CLAUDE = 'us.anthropic.claude-sonnet-4-6';
  const claude = async (body: Record<string, unknown>, options: { model?: string; thinking?: 'adaptive' | 'budget' } = {}) =>
    (await toConverseRequest(parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], ...body }), loader, options.model ?? CLAUDE, { thinking: options.thinking ?? 'adaptive' })).body;
  const thought = { type: 'thinking', thinking: 'Look it up.', signature: 'c2lnbmF0dXJl' };
  const redacted = { type: 'redacted_thinking', data: 'ZW5jcnlwdGVk' };
  const toolTurn = (assistantExtra: Record<string, unknown>) => [
    { role: 'user', content: 'Find it' },
    { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } }], ...assistantExtra },
    { role: 'tool', tool_call_id: 't1', content: 'found' },
  ];

  it('turns reasoning_effort into adaptive thinking with output_config.effort for Claude ids, profiles and ARNs, merged with the client fields', async () => {
    const body = await claude({ reasoning_effort: 'minimal', max_completion_tokens: 500, additionalModelRequestFields: { anthropic_beta: ['context-1m-2025-08-07'] } });
    expect(body.additionalModelRequestFields).toEqual({ anthropic_beta: ['context-1m-2025-08-07'], thinking: { type: 'adaptive' }, output_config: { effort: 'low' } });
    expect(body.inferenceConfig).toEqual({ maxTokens: 500 });
    const arn = await claude({ reasoning_effort: 'max' }, { model: 'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-6-v1' });
    expect(arn.additionalModelRequestFields).toEqual({ thinking: { type: 'adaptive' }, output_config: { effort: 'max' } });
    // An effort the client set in output_config wins; its other keys stay.
    const own = await claude({ reasoning_effort: 'high', additionalModelRequestFields: { output_config: { effort: 'medium', format: { type: 'json_schema' } } } });
    expect(own.additionalModelRequestFields).toEqual({ thinking: { type: 'adaptive' }, output_config: { effort: 'medium', format: { type: 'json_schema' } } });
    // Models other than Claude: dropped, as before (even a value Claude would refuse).
    for (const model of ['amazon.nova-pro-v1:0', 'us.deepseek.r1-v1:0']) {
      const other = await claude({ reasoning_effort: 'extreme', temperature: 0.3 }, { model });
      expect(other.additionalModelRequestFields).toBeUndefined();
      expect(other.inferenceConfig).toEqual({ temperature: 0.3 });
    }
  });

  it("treats an application inference profile as Claude only when the provider's claudeModels lists it", async () => {
    const profile = 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6';
    const turn = { reasoning_effort: 'high', messages: toolTurn({ thinking_blocks: [thought] }) };
    const opaque = await toConverseRequest(parseChatRequest({ model: 'm', ...turn }), loader, profile, { thinking: 'adaptive' });
    expect(opaque.body.additionalModelRequestFields).toBeUndefined();
    expect(JSON.stringify(opaque.body.messages)).not.toContain('reasoningContent');
    const listed = await toConverseRequest(parseChatRequest({ model: 'm', ...turn }), loader, profile, { thinking: 'adaptive', claudeModels: [profile] });
    expect(listed.body.additionalModelRequestFields).toEqual({ thinking: { type: 'adaptive' }, output_config: { effort: 'high' } });
    expect(listed.body.messages[1]?.content[0]).toEqual({ reasoningContent: { reasoningText: { text: 'Look it up.', signature: 'c2lnbmF0dXJl' } } });
  });

  it('budget style: the budget fits under the limit the client set, gets room on top without one, and is off when the limit is too small', async () => {
    const capped = await claude({ reasoning_effort: 'medium', max_completion_tokens: 2000 }, { thinking: 'budget' });
    expect(capped.additionalModelRequestFields).toEqual({ thinking: { type: 'enabled', budget_tokens: 1024 } });
    expect(capped.inferenceConfig).toEqual({ maxTokens: 2000 });
    const open = await claude({ reasoning_effort: 'high' }, { thinking: 'budget' });
    expect(open.additionalModelRequestFields).toEqual({ thinking: { type: 'enabled', budget_tokens: 24576 } });
    expect(open.inferenceConfig).toEqual({ maxTokens: DEFAULT_ANSWER_TOKENS + 24576 });
    const tooSmall = await claude({ reasoning_effort: 'low', max_tokens: 1000, temperature: 0.2 }, { thinking: 'budget' });
    expect(tooSmall.additionalModelRequestFields).toBeUndefined();
    expect(tooSmall.inferenceConfig).toEqual({ maxTokens: 1000, temperature: 0.2 });
  });

  it("sends the client's own thinking as given, over reasoning_effort (which still sets an adaptive effort); disabled leaves thinking off", async () => {
    const enabled = await claude({ reasoning_effort: 'high', additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 2048 } } });
    expect(enabled.additionalModelRequestFields).toEqual({ thinking: { type: 'enabled', budget_tokens: 2048 } });
    expect(enabled.inferenceConfig).toEqual({ maxTokens: DEFAULT_ANSWER_TOKENS + 2048 });
    const adaptive = await claude({ reasoning_effort: 'medium', additionalModelRequestFields: { thinking: { type: 'adaptive', display: 'omitted' } } }, { thinking: 'budget' });
    expect(adaptive.additionalModelRequestFields).toEqual({ thinking: { type: 'adaptive', display: 'omitted' }, output_config: { effort: 'medium' } });
    const disabled = await claude({ reasoning_effort: 'high', temperature: 0.2, additionalModelRequestFields: { thinking: { type: 'disabled' } } });
    expect(disabled.additionalModelRequestFields).toEqual({ thinking: { type: 'disabled' } });
    expect(disabled.inferenceConfig).toEqual({ temperature: 0.2 });
  });

  it("takes Anthropic's own thinking and top_k sent as extra keys (a Messages API request) into additionalModelRequestFields, where the client's own win", async () => {
    const messages = await claude({ max_tokens: 4000, thinking: { type: 'enabled', budget_tokens: 2000 }, top_k: 40 });
    // top_k goes with thinking on, as Claude refuses it then.
    expect(messages.additionalModelRequestFields).toEqual({ thinking: { type: 'enabled', budget_tokens: 2000 } });
    expect(messages.inferenceConfig).toEqual({ maxTokens: 4000 });
    expect(messages).not.toHaveProperty('thinking');
    const sampled = await claude({ top_k: 40 });
    expect(sampled.additionalModelRequestFields).toEqual({ top_k: 40 });
    const own = await claude({ thinking: { type: 'enabled', budget_tokens: 2000 }, additionalModelRequestFields: { thinking: { type: 'disabled' } } });
    expect(own.additionalModelRequestFields).toEqual({ thinking: { type: 'disabled' } });
    // Other models: not theirs to take.
    expect((await claude({ thinking: { type: 'enabled', budget_tokens: 2000 }, top_k: 40 }, { model: 'amazon.nova-pro-v1:0' })).additionalModelRequestFields).toBeUndefined();
  });

  it('with thinking on, drops a temperature other than 1, a top_p below 0.95 and top_k', async () => {
    const dropped = await claude({ reasoning_effort: 'high', temperature: 0.2, top_p: 0.5, additionalModelRequestFields: { top_k: 40 } });
    expect(dropped.inferenceConfig).toBeUndefined();
    expect(dropped.additionalModelRequestFields).toEqual({ thinking: { type: 'adaptive' }, output_config: { effort: 'high' } });
    // Claude refuses the two together: temperature 1, the only one thinking takes, is Claude's default and goes.
    const kept = await claude({ reasoning_effort: 'high', temperature: 1, top_p: 0.95 });
    expect(kept.inferenceConfig).toEqual({ topP: 0.95 });
    const off = await claude({ temperature: 0.2, additionalModelRequestFields: { top_k: 40 } });
    expect(off).toMatchObject({ inferenceConfig: { temperature: 0.2 }, additionalModelRequestFields: { top_k: 40 } });
  });

  it('never sends Claude temperature and top_p together (refused from Opus 4.1 on): top_p goes, unless temperature is 1; other models keep both', async () => {
    expect((await claude({ temperature: 0.2, top_p: 0.5 })).inferenceConfig).toEqual({ temperature: 0.2 });
    expect((await claude({ temperature: 1, top_p: 0.5 })).inferenceConfig).toEqual({ topP: 0.5 });
    const profile = 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123';
    const listed = await toConverseRequest(parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], temperature: 0.2, top_p: 0.5 }), loader, profile, { claudeModels: [profile] });
    expect(listed.body.inferenceConfig).toEqual({ temperature: 0.2 });
    expect((await claude({ temperature: 0.2, top_p: 0.5 }, { model: 'amazon.nova-pro-v1:0' })).inferenceConfig).toEqual({ temperature: 0.2, topP: 0.5 });
  });

  it('refuses a forced tool choice with thinking on (required, a named tool, json_schema), naming the parameter that turned it on', async () => {
    const forced: [Record<string, unknown>, string, RegExp][] = [
      [{ reasoning_effort: 'low', tools: [TOOL], tool_choice: 'required' }, 'reasoning_effort', /forces a tool call/],
      [{ reasoning_effort: 'low', tools: [TOOL], tool_choice: { type: 'function', function: { name: 'lookup' } } }, 'reasoning_effort', /forces a tool call/],
      [{ reasoning_effort: 'low', response_format: { type: 'json_schema', json_schema: { name: 'a', schema: { type: 'object' } } } }, 'reasoning_effort', /response_format/],
      [{ additionalModelRequestFields: { thinking: { type: 'adaptive' } }, tools: [TOOL], tool_choice: 'required' }, 'additionalModelRequestFields', /forces a tool call/],
    ];
    for (const [body, param, message] of forced) {
      const error = await rejection(claude(body));
      expect(error).toMatchObject({ kind: 'bad_request', param, code: 'unsupported_parameter' });
      expect(error.message).toMatch(message);
    }
    // auto, and json_object (an instruction, not a forced tool), are fine.
    await expect(claude({ reasoning_effort: 'low', tools: [TOOL], tool_choice: 'auto', response_format: { type: 'json_object' } })).resolves.toMatchObject({ toolConfig: { toolChoice: { auto: {} } } });
  });

  it('refuses a reasoning_effort Claude has no level for', async () => {
    await expect(rejection(claude({ reasoning_effort: 'extreme' }))).resolves.toMatchObject({ kind: 'bad_request', param: 'reasoning_effort', code: 'invalid_value' });
  });

  it('hands thinking_blocks back first in the assistant turn as reasoningContent, and leaves them out when thinking is off', async () => {
    const on = await claude({ reasoning_effort: 'high', tools: [TOOL], messages: toolTurn({ reasoning_content: 'Look it up.', thinking_blocks: [redacted, thought] }) });
    expect(on.messages[1]).toEqual({
      role: 'assistant',
      content: [
        { reasoningContent: { redactedContent: 'ZW5jcnlwdGVk' } },
        { reasoningContent: { reasoningText: { text: 'Look it up.', signature: 'c2lnbmF0dXJl' } } },
        { toolUse: { toolUseId: 't1', name: 'lookup', input: { q: 'x' } } },
      ],
    });
    expect(on.additionalModelRequestFields).toEqual({ thinking: { type: 'adaptive' }, output_config: { effort: 'high' } });
    const withText = await claude({ reasoning_effort: 'high', messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b', thinking_blocks: [thought] }, { role: 'user', content: 'c' }] });
    expect(withText.messages[1]?.content).toEqual([{ reasoningContent: { reasoningText: { text: 'Look it up.', signature: 'c2lnbmF0dXJl' } } }, { text: 'b' }]);
    const off = await claude({ tools: [TOOL], messages: toolTurn({ thinking_blocks: [thought] }) });
    expect(off.messages[1]?.content).toEqual([{ toolUse: { toolUseId: 't1', name: 'lookup', input: { q: 'x' } } }]);
    const notClaude = await claude({ reasoning_effort: 'high', tools: [TOOL], messages: toolTurn({ thinking_blocks: [thought] }) }, { model: 'amazon.nova-pro-v1:0' });
    expect(notClaude.messages[1]?.content).toEqual([{ toolUse: { toolUseId: 't1', name: 'lookup', input: { q: 'x' } } }]);
  });

  it('sends a tool turn whose thinking was not handed back without thinking, which Claude would refuse otherwise', async () => {
    const effort = await claude({ reasoning_effort: 'high', temperature: 0.2, tools: [TOOL], tool_choice: 'required', messages: toolTurn({}) });
    expect(effort.additionalModelRequestFields).toBeUndefined();
    expect(effort.inferenceConfig).toEqual({ temperature: 0.2 });
    expect(effort.toolConfig?.toolChoice).toEqual({ any: {} });
    const own = await claude({ tools: [TOOL], messages: toolTurn({}), additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 2048 }, anthropic_beta: ['x'] } });
    expect(own.additionalModelRequestFields).toEqual({ anthropic_beta: ['x'] });
    expect(own.inferenceConfig).toBeUndefined();
  });

  it('sends a final assistant message (a prefill) that does not start with its thinking without thinking, which Claude refuses with it on', async () => {
    const prefill = [{ role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Sure, here is' }];
    for (const thinking of ['adaptive', 'budget'] as const) {
      const effort = await claude({ reasoning_effort: 'high', temperature: 0.2, messages: prefill }, { thinking });
      expect(effort.additionalModelRequestFields).toBeUndefined();
      expect(effort.inferenceConfig).toEqual({ temperature: 0.2 });
      expect(effort.messages[1]).toEqual({ role: 'assistant', content: [{ text: 'Sure, here is' }] });
    }
    const own = await claude({ messages: prefill, additionalModelRequestFields: { thinking: { type: 'adaptive' }, anthropic_beta: ['x'] } });
    expect(own.additionalModelRequestFields).toEqual({ anthropic_beta: ['x'] });
    // A prefill that starts with the thinking it was given keeps thinking on.
    const continued = await claude({ reasoning_effort: 'high', messages: [prefill[0], { ...prefill[1], thinking_blocks: [thought] }] });
    expect(continued.additionalModelRequestFields).toEqual({ thinking: { type: 'adaptive' }, output_config: { effort: 'high' } });
    expect(continued.messages[1]?.content).toEqual([{ reasoningContent: { reasoningText: { text: 'Look it up.', signature: 'c2lnbmF0dXJl' } } }, { text: 'Sure, here is' }]);
  });

  it("refuses a reasoning_effort outside the levels beside the client's own thinking too, sending nothing on", async () => {
    for (const effort of ['bogus', 'constructor', '__proto__', 'toString']) {
      for (const thinking of [{ type: 'adaptive' }, { type: 'enabled', budget_tokens: 2048 }, { type: 'disabled' }]) {
        await expect(rejection(claude({ reasoning_effort: effort, additionalModelRequestFields: { thinking } }))).resolves.toMatchObject({ kind: 'bad_request', param: 'reasoning_effort', code: 'invalid_value' });
      }
    }
  });

  it('refuses thinking_blocks that are not the blocks an answer carried', async () => {
    const bad = [[{ type: 'thinking', thinking: 'x' }], [{ type: 'redacted_thinking', data: '' }], 'text'];
    for (const blocks of bad) {
      const error = await rejection(claude({ tools: [TOOL], messages: toolTurn({ thinking_blocks: blocks }) }));
      expect(error).toMatchObject({ kind: 'bad_request', param: 'messages[1].thinking_blocks', code: 'invalid_value' });
    }
  });
});

describe('Converse request translation: what Converse would refuse naming no parameter', () => {
  const call = (id: string, name: string) => ({ role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name, arguments: '{}' } }] });

  it.each([
    ['empty content', [{ role: 'user', content: '' }]],
    ['whitespace-only content', [{ role: 'user', content: ' \n\t ' }]],
    ['an empty content list', [{ role: 'user', content: [] }]],
    ['an empty text part', [{ role: 'user', content: [{ type: 'text', text: '' }] }]],
    ['only a system message', [{ role: 'system', content: 'You are terse.' }]],
    ['only a final assistant message of whitespace', [{ role: 'assistant', content: '  ' }]],
  ])('refuses a conversation with no content left (%s) naming messages', async (_name, messages) => {
    await expect(rejection(translate({ messages }))).resolves.toMatchObject({ kind: 'bad_request', param: 'messages', code: 'invalid_value' });
  });

  it('caps temperature at 1, the top of Converse\'s range, for Claude and every other model', async () => {
    expect((await translate({ temperature: 2 })).body.inferenceConfig).toEqual({ temperature: 1 });
    expect((await translate({ temperature: 0.7 })).body.inferenceConfig).toEqual({ temperature: 0.7 });
    const claude = await toConverseRequest(parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], temperature: 1.5 }), loader, 'anthropic.claude-3-5-sonnet-20241022-v2:0');
    expect(claude.body.inferenceConfig).toEqual({ temperature: 1 });
    const listed = await toConverseRequest(parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], temperature: 1.5 }), loader, 'arn:aws:bedrock:us-east-1:1:application-inference-profile/x', { claudeModels: ['arn:aws:bedrock:us-east-1:1:application-inference-profile/x'] });
    expect(listed.body.inferenceConfig).toEqual({ temperature: 1 });
  });

  it('leaves empty stop sequences out, and refuses more than Converse takes naming stop', async () => {
    expect((await translate({ stop: ['', 'END'] })).body.inferenceConfig).toEqual({ stopSequences: ['END'] });
    expect((await translate({ stop: [''] })).body.inferenceConfig).toBeUndefined();
    const many = Array.from({ length: 2_501 }, (_, i) => `s${i}`);
    expect((await translate({ stop: many.slice(0, 2_500) })).body.inferenceConfig?.stopSequences).toHaveLength(2_500);
    await expect(rejection(translate({ stop: many }))).resolves.toMatchObject({ kind: 'bad_request', param: 'stop' });
  });

  it.each(['get weather', 'a.b', 'x'.repeat(65), 'wetter_✨'])('refuses the tool name %j naming tools[i].function.name', async (name) => {
    const tools = [TOOL, { type: 'function', function: { name, parameters: { type: 'object' } } }];
    await expect(rejection(translate({ tools }))).resolves.toMatchObject({ kind: 'bad_request', param: 'tools[1].function.name', code: 'invalid_value' });
  });

  it('refuses an earlier tool call whose name Converse would refuse, naming it', async () => {
    for (const name of ['', 'get weather']) {
      const messages = [{ role: 'user', content: 'hi' }, call('c1', name), { role: 'tool', tool_call_id: 'c1', content: 'x' }];
      await expect(rejection(translate({ messages }))).resolves.toMatchObject({ kind: 'bad_request', param: 'messages[1].tool_calls[0].function.name' });
    }
    await expect(translate({ messages: [{ role: 'user', content: 'hi' }, call('c1', 'x'.repeat(64)), { role: 'tool', tool_call_id: 'c1', content: 'x' }] })).resolves.toBeDefined();
  });

  it('refuses a tool message answering no earlier tool call, naming its tool_call_id', async () => {
    await expect(rejection(translate({ messages: [{ role: 'user', content: 'hi' }, { role: 'tool', tool_call_id: 'nope', content: 'x' }], tools: [TOOL] }))).resolves.toMatchObject({
      kind: 'bad_request',
      param: 'messages[1].tool_call_id',
    });
    const later = [{ role: 'user', content: 'hi' }, { role: 'tool', tool_call_id: 'c1', content: 'x' }, call('c1', 'lookup')];
    await expect(rejection(translate({ messages: later, tools: [TOOL] }))).resolves.toMatchObject({ param: 'messages[1].tool_call_id' });
    await expect(rejection(translate({ messages: [{ role: 'user', content: 'hi' }, { role: 'tool', tool_call_id: '__proto__', content: 'x' }] }))).resolves.toMatchObject({ param: 'messages[1].tool_call_id' });
  });
});
