import { errorOf } from './gateway-error.testing';
import { chatv1 } from '@openrouter/contracts';
import { parseChatRequest, toOpenAIChatBody } from './chat-request';

type Body = Record<string, unknown>;
const base = { model: 'public-model', messages: [{ role: 'user', content: 'hi' }] };

/** Client → canonical → provider; the canonical request also crosses gRPC (protobuf encode/decode) on the way. */
function roundTrip(body: Body): Body {
  const canonical = parseChatRequest(body);
  const overTheWire = chatv1.ChatRequest.decode(chatv1.ChatRequest.encode(canonical).finish());
  return toOpenAIChatBody(overTheWire, 'upstream');
}

function expected(body: Body): Body {
  const out: Body = { ...body, model: 'upstream' };
  if (typeof body['stop'] === 'string') out['stop'] = [body['stop']];
  // Both limits given: max_tokens carries the winning max_completion_tokens.
  if (typeof body['max_tokens'] === 'number' && typeof body['max_completion_tokens'] === 'number') out['max_tokens'] = body['max_completion_tokens'];
  return out;
}

// Every value a client may send for each parameter, including nulls and the defaults the
// canonical message cannot tell from absent.
const FIELD_FIXTURES: Record<string, unknown[]> = {
  tools: [
    [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: true } }],
    [{ type: 'function', function: { name: 'noop' } }, { type: 'function', function: { name: 'f2', parameters: {} } }],
    [{ type: 'function', function: { name: 'lax', strict: null } }],
    [{ type: 'function', function: { name: 'cached', parameters: { type: 'object' } }, cache_control: { type: 'ephemeral' } }],
    [{ type: 'custom', custom: { name: 'grammar', format: { type: 'text' } } }, { type: 'web_search' }],
    [],
    null,
  ],
  tool_choice: ['none', 'auto', 'required', { type: 'function', function: { name: 'get_weather' } }, { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [{ type: 'function', function: { name: 'a' } }] } }, { type: 'custom', custom: { name: 'grammar' } }, null],
  parallel_tool_calls: [true, false, null],
  response_format: [
    { type: 'text' },
    { type: 'json_object' },
    { type: 'json_schema', json_schema: { name: 'answer', description: 'An answer', schema: { type: 'object', properties: { a: { type: 'number' } }, additionalProperties: false }, strict: true } },
    { type: 'json_schema', json_schema: { name: 'minimal' } },
    // Together's and Fireworks' JSON mode: a schema beside json_object.
    { type: 'json_object', schema: { type: 'object', properties: { a: { type: 'string' } } } },
    { type: 'json_schema', json_schema: { name: 'lax', strict: null } },
    { type: 'json_schema', json_schema: { name: 'more', schema: { type: 'object' }, strict: true, vendor: 1 }, other: 2 },
    null,
  ],
  temperature: [0, 0.7, 2, null],
  top_p: [0, 0.25, 1, null],
  stop: ['END', ['a', 'b', 'c', 'd', 'e'], [], null],
  max_tokens: [1, 4096, null],
  max_completion_tokens: [1, 128000, null],
  n: [1, 3, null],
  seed: [0, -7, 2 ** 40, null],
  logprobs: [true, false, null],
  top_logprobs: [0, 5, 20, null],
  user: ['', 'user-42', null],
  stream: [true, false, null],
  stream_options: [{ include_usage: true }, { include_usage: false }, {}, { include_usage: null }, { include_usage: true, include_obfuscation: false }, null],
  presence_penalty: [-2, 0, 1.25, 2, null],
  frequency_penalty: [-2, 0.5, 2, null],
  logit_bias: [{ '50256': -100, '1234': 3.5 }, {}, null],
  reasoning_effort: ['minimal', 'high', null],
  service_tier: ['auto', 'flex', null],
  metadata: [{ team: 'search', run: '7' }, {}, null],
  store: [true, false, null],
  modalities: [['text'], ['text', 'audio'], [], null],
  audio: [{ voice: 'alloy', format: 'mp3' }],
  prediction: [{ type: 'content', content: 'predicted' }],
  web_search_options: [{ search_context_size: 'low' }],
  verbosity: ['low'],
  prompt_cache_key: ['k-1'],
  safety_identifier: ['hash'],
  top_k: [40],
  some_future_param: [{ nested: [1, { deep: null }], flag: false }],
};

const MESSAGE_FIXTURES: Body[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'system', content: [{ type: 'text', text: 'sys part' }], name: 'policy' },
  { role: 'developer', content: 'Prefer JSON.', name: 'ops' },
  { role: 'user', content: '' },
  { role: 'user', content: '日本語 🎉 "quotes" \\ and\nnewlines' },
  { role: 'user', content: [] },
  {
    role: 'user',
    content: [
      { type: 'text', text: 'look at these' },
      { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'high' } },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
      { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
      { type: 'file', file: { file_id: 'file-1', filename: 'a.pdf' } },
      { type: 'text', text: 'cached', cache_control: { type: 'ephemeral' } },
      { type: 'image_url', image_url: { url: 'https://example.com/b.png', detail: null } },
    ],
  },
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Zürich"}' } }, { id: 'call_2', type: 'function', function: { name: 'noop', arguments: '' } }] },
  // Google's OpenAI-compatible API wants each call's thought signature back.
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_3', type: 'function', function: { name: 'f', arguments: '{}' }, extra_content: { google: { thought_signature: 'c2ln' } } }, { id: 'call_4', function: { name: 'g', arguments: '', vendor: true } }] },
  { role: 'assistant', content: 'partial', refusal: null, annotations: [], audio: null },
  { role: 'assistant', content: [{ type: 'text', text: 'a' }, { type: 'refusal', refusal: 'cannot' }] },
  { role: 'assistant', refusal: 'I cannot help with that.' },
  { role: 'assistant', content: null, function_call: { name: 'legacy', arguments: '{}' } },
  { role: 'assistant', content: 'x', tool_calls: [] },
  { role: 'assistant', content: 'y', tool_calls: null, name: null },
  { role: 'assistant', audio: { id: 'audio_1' } },
  { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
  { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: 'done' }] },
  { role: 'function', name: 'legacy', content: 'result' },
  { role: 'user', content: 'with vendor field', weight: 0.5 },
];

describe('toOpenAIChatBody and reasoning handed back', () => {
  it("leaves out an assistant message's reasoning_content and thinking_blocks (strict servers refuse them) and keeps its other fields and a top-level thinking", () => {
    const body = roundTrip({
      ...base,
      thinking: { type: 'enabled' },
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: 'Sunny.', reasoning_content: 'Look outside.', thinking_blocks: [{ type: 'thinking', thinking: 'Look outside.', signature: 'c2ln' }], audio: { id: 'a1' } },
        { role: 'user', content: 'Thanks', reasoning_content: 'kept: not an answer' },
      ],
    });
    expect(body['messages']).toEqual([
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: 'Sunny.', audio: { id: 'a1' } },
      { role: 'user', content: 'Thanks', reasoning_content: 'kept: not an answer' },
    ]);
    expect(body['thinking']).toEqual({ type: 'enabled' });
  });
});

describe('toOpenAIChatBody and images in tool results', () => {
  const screenshot = { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } };
  const chart = { type: 'image_url', image_url: { url: 'https://example.com/chart.png' } };
  const pdf = { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0=', filename: 'a.pdf' } };
  const calls = (...ids: string[]) => ({ role: 'assistant', content: null, tool_calls: ids.map((id) => ({ id, type: 'function', function: { name: 'look', arguments: '{}' } })) });

  it("moves a tool message's images, in order, into one user message after the turn's tool messages, naming the call each came from", () => {
    const body = roundTrip({
      ...base,
      messages: [
        { role: 'user', content: 'What is on screen?' },
        calls('call_1', 'call_2'),
        { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'Screenshot taken.' }, screenshot] },
        { role: 'tool', tool_call_id: 'call_2', content: [chart, pdf] },
        { role: 'user', content: 'Describe them.' },
      ],
    });
    expect(body['messages']).toEqual([
      { role: 'user', content: 'What is on screen?' },
      calls('call_1', 'call_2'),
      { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'Screenshot taken.' }] },
      { role: 'tool', tool_call_id: 'call_2', content: 'The result is 1 image and 1 file, in the user message that follows.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'The result of tool call call_1 (1 image):' },
          screenshot,
          { type: 'text', text: 'The result of tool call call_2 (1 image and 1 file):' },
          chart,
          pdf,
        ],
      },
      { role: 'user', content: 'Describe them.' },
    ]);
  });

  it('places the user message after each run of tool messages, at the end of the conversation too', () => {
    const body = roundTrip({
      ...base,
      messages: [
        { role: 'user', content: 'Look twice.' },
        calls('call_1'),
        { role: 'tool', tool_call_id: 'call_1', content: [screenshot, screenshot] },
        calls('call_2'),
        { role: 'tool', tool_call_id: 'call_2', content: [chart] },
      ],
    });
    expect(body['messages']).toEqual([
      { role: 'user', content: 'Look twice.' },
      calls('call_1'),
      { role: 'tool', tool_call_id: 'call_1', content: 'The result is 2 images, in the user message that follows.' },
      { role: 'user', content: [{ type: 'text', text: 'The result of tool call call_1 (2 images):' }, screenshot, screenshot] },
      calls('call_2'),
      { role: 'tool', tool_call_id: 'call_2', content: 'The result is 1 image, in the user message that follows.' },
      { role: 'user', content: [{ type: 'text', text: 'The result of tool call call_2 (1 image):' }, chart] },
    ]);
  });

  it('leaves tool messages of text alone, and drops cache_control from moved parts when it is listed', () => {
    const texts = [{ role: 'user', content: 'hi' }, calls('call_1', 'call_2'), { role: 'tool', tool_call_id: 'call_1', content: '4 °C' }, { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: 'ok' }] }];
    expect(roundTrip({ ...base, messages: texts })['messages']).toEqual(texts);

    const cached = { ...screenshot, cache_control: { type: 'ephemeral' } };
    const request = parseChatRequest({ ...base, messages: [{ role: 'user', content: 'hi' }, calls('call_1'), { role: 'tool', tool_call_id: 'call_1', content: [cached] }] });
    expect(toOpenAIChatBody(request, 'u', { dropParams: ['cache_control'] })['messages']).toEqual([
      { role: 'user', content: 'hi' },
      calls('call_1'),
      { role: 'tool', tool_call_id: 'call_1', content: 'The result is 1 image, in the user message that follows.' },
      { role: 'user', content: [{ type: 'text', text: 'The result of tool call call_1 (1 image):' }, screenshot] },
    ]);
  });
});

describe('toOpenAIChatBody with an output limit parameter', () => {
  it('sends the one limit in the parameter the server takes, max_completion_tokens winning', () => {
    const both = parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 10, max_completion_tokens: 20 });
    expect(toOpenAIChatBody(both, 'u', { outputLimit: 'max_tokens' })).toMatchObject({ max_tokens: 20 });
    expect(toOpenAIChatBody(both, 'u', { outputLimit: 'max_tokens' })).not.toHaveProperty('max_completion_tokens');
    const legacy = parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 });
    expect(toOpenAIChatBody(legacy, 'u', { outputLimit: 'max_completion_tokens' })).toMatchObject({ max_completion_tokens: 10 });
    expect(toOpenAIChatBody(legacy, 'u', { outputLimit: 'max_completion_tokens' })).not.toHaveProperty('max_tokens');
    expect(toOpenAIChatBody(legacy, 'u')).toMatchObject({ max_tokens: 10 });
  });

  it('without one, sends both limits as asked, max_tokens carrying the winning max_completion_tokens', () => {
    // A server that knows only max_tokens must not be given more than budgets and rate limits counted.
    const huge = parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 100_000, max_completion_tokens: 1 });
    expect(toOpenAIChatBody(huge, 'u')).toMatchObject({ max_tokens: 1, max_completion_tokens: 1 });
    const only = parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 7 });
    expect(toOpenAIChatBody(only, 'u')).toEqual(expect.objectContaining({ max_completion_tokens: 7 }));
    expect(toOpenAIChatBody(only, 'u')).not.toHaveProperty('max_tokens');
  });

  it("leaves out the provider's dropParams, extra keys and typed ones alike, and keeps every other extra key", () => {
    const request = parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }], thinking: { type: 'enabled', budget_tokens: 2048 }, top_k: 5, seed: 7, reasoning_effort: 'low', verbosity: 'low' });
    const body = toOpenAIChatBody(request, 'u', { dropParams: ['thinking', 'top_k', 'seed'] });
    expect(body).not.toHaveProperty('thinking');
    expect(body).not.toHaveProperty('top_k');
    expect(body).not.toHaveProperty('seed');
    expect(body).toMatchObject({ reasoning_effort: 'low', verbosity: 'low' });
    expect(toOpenAIChatBody(request, 'u')).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 2048 }, top_k: 5, seed: 7 });
  });

  it('drops cache_control wherever it appears when it is listed: content parts, messages and tools', () => {
    const cached = { type: 'ephemeral' };
    const request = parseChatRequest({
      model: 'm',
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'Be brief.', cache_control: cached }] },
        { role: 'user', content: [{ type: 'text', text: 'hi', cache_control: cached }, { type: 'image_url', image_url: { url: 'https://example.com/a.png' }, cache_control: cached }] },
      ],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } }, cache_control: cached }],
    });
    const body = toOpenAIChatBody(request, 'u', { dropParams: ['cache_control'] });
    expect(JSON.stringify(body)).not.toContain('cache_control');
    expect(body['messages']).toEqual([
      { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
      { role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] },
    ]);
    expect(body['tools']).toEqual([{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }]);
    // Not listed: sent as the client gave it.
    expect(JSON.stringify(toOpenAIChatBody(request, 'u')).split('cache_control').length - 1).toBe(4);
  });
});

describe('parseChatRequest → toOpenAIChatBody round trip', () => {
  const cases = Object.entries(FIELD_FIXTURES).flatMap(([key, values]) => values.map((value) => [key, value] as const));

  it.each(cases)('carries %s = %j without loss', (key, value) => {
    const body = { ...base, [key]: value };
    expect(roundTrip(body)).toEqual(expected(body));
  });

  it.each(MESSAGE_FIXTURES.map((m) => [m['role'], m] as const))('carries a %s message %j without loss', (_role, message) => {
    const body = { model: 'm', messages: [message] };
    expect(roundTrip(body)).toEqual(expected(body));
  });

  it('carries randomly composed rich bodies without loss (property over the fixture set)', () => {
    let seed = 0x5eed;
    const random = (): number => {
      // mulberry32: deterministic, so a failure names a reproducible case.
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const keys = Object.keys(FIELD_FIXTURES);
    for (let run = 0; run < 500; run++) {
      const body: Body = { model: `model-${run}`, messages: Array.from({ length: 1 + Math.floor(random() * 6) }, () => pick(MESSAGE_FIXTURES)) };
      for (const key of keys) if (random() < 0.35) body[key] = pick(FIELD_FIXTURES[key] ?? []);
      const out = roundTrip(body);
      expect({ run, out }).toEqual({ run, out: expected(body) });
      // And the provider body is plain JSON: serialising it changes nothing.
      expect(JSON.parse(JSON.stringify(out))).toEqual(out);
      // Parsing the provider body again gives the same canonical request (the same winning limit).
      expect(parseChatRequest({ ...out, model: body['model'] })).toEqual(parseChatRequest({ ...expected(body), model: body['model'] }));
    }
  });

  it('sends a single stop string as a one-element list', () => {
    expect(roundTrip({ ...base, stop: 'END' })['stop']).toEqual(['END']);
  });

  it('replaces the model with the upstream name', () => {
    expect(toOpenAIChatBody(parseChatRequest(base), 'gpt-4o-2024-08-06')['model']).toBe('gpt-4o-2024-08-06');
  });

  it('lets typed fields win over extra_json keys of the same name', () => {
    const request = parseChatRequest({ ...base, temperature: null, stream: false, stream_options: { include_usage: null } });
    request.temperature = 0.5;
    request.stream = true;
    request.streamOptions = { extraJson: '', ...request.streamOptions, includeUsage: true };
    const body = toOpenAIChatBody(request, 'u');
    expect(body).toMatchObject({ temperature: 0.5, stream: true, stream_options: { include_usage: true } });
  });
});

describe('parseChatRequest canonical fields', () => {
  const parse = (extra: Body): chatv1.ChatRequest => parseChatRequest({ ...base, ...extra });

  it('keeps the model and defaults everything else to empty', () => {
    expect(parseChatRequest(base)).toEqual({
      model: 'public-model',
      messages: [{ role: 'user', text: 'hi', contentIsNull: false, toolCalls: [], extraJson: '' }],
      tools: [],
      stop: [],
      stream: false,
      logitBias: {},
      metadata: {},
      modalities: [],
      extraJson: '',
    });
  });

  it('reads string content as text and part lists as typed parts, other parts as raw JSON', () => {
    const [m] = parse({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 't' },
            { type: 'image_url', image_url: { url: 'https://x/y.png', detail: 'low' } },
            { type: 'input_audio', input_audio: { data: 'AAA=', format: 'mp3' } },
            { type: 'refusal', refusal: 'no' },
            { type: 'file', file: { file_id: 'f' } },
          ],
        },
      ],
    }).messages;
    expect(m?.parts?.parts).toEqual([
      { text: 't' },
      { imageUrl: { url: 'https://x/y.png', detail: 'low' } },
      { inputAudio: { data: 'AAA=', format: 'mp3' } },
      { refusal: 'no' },
      { rawJson: '{"type":"file","file":{"file_id":"f"}}' },
    ]);
  });

  it('tells explicit null content from absent content', () => {
    const [withNull, absent] = parse({ messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'assistant', refusal: 'r' }] }).messages;
    expect(withNull).toMatchObject({ contentIsNull: true, toolCalls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] });
    expect(withNull?.text).toBeUndefined();
    expect(absent).toMatchObject({ contentIsNull: false, refusal: 'r' });
    expect(absent?.text).toBeUndefined();
    expect(absent?.parts).toBeUndefined();
  });

  it('reads name, tool_call_id and other message fields', () => {
    const [a, b] = parse({ messages: [{ role: 'tool', tool_call_id: 'c1', content: 'r' }, { role: 'user', name: 'n', content: 'x', vendor: { a: 1 } }] }).messages;
    expect(a?.toolCallId).toBe('c1');
    expect(b).toMatchObject({ name: 'n', extraJson: '{"vendor":{"a":1}}' });
  });

  it('reads function tools with their schema as JSON text; other tools as raw JSON', () => {
    const tools = parse({
      tools: [
        { type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object' }, strict: false } },
        { type: 'function', function: { name: 'g' } },
        { type: 'custom', custom: { name: 'c' } },
      ],
    }).tools;
    expect(tools).toEqual([
      { type: 'function', function: { name: 'f', description: 'd', parametersJson: '{"type":"object"}', strict: false }, rawJson: '' },
      { type: 'function', function: { name: 'g', parametersJson: '' }, rawJson: '' },
      { type: 'custom', rawJson: '{"type":"custom","custom":{"name":"c"}}' },
    ]);
  });

  it('keeps the typed function of a function tool that also needs its raw JSON', () => {
    const [tool] = parse({ tools: [{ type: 'function', function: { name: 'f' }, cache_control: { type: 'ephemeral' } }] }).tools;
    expect(tool?.function?.name).toBe('f');
    expect(JSON.parse(tool?.rawJson ?? '')).toEqual({ type: 'function', function: { name: 'f' }, cache_control: { type: 'ephemeral' } });
  });

  it.each([
    ['auto', { mode: 'auto' }],
    ['none', { mode: 'none' }],
    ['required', { mode: 'required' }],
    [{ type: 'function', function: { name: 'f' } }, { functionName: 'f' }],
    [{ type: 'allowed_tools', allowed_tools: { mode: 'required', tools: [] } }, { rawJson: '{"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[]}}' }],
  ])('reads tool_choice %j', (value, choice) => {
    expect(parse({ tool_choice: value }).toolChoice).toEqual(choice);
  });

  it('reads response_format variants', () => {
    expect(parse({ response_format: { type: 'json_object' } }).responseFormat).toEqual({ type: 'json_object' });
    expect(parse({ response_format: { type: 'json_schema', json_schema: { name: 's', description: 'd', schema: { type: 'object' }, strict: true } } }).responseFormat).toEqual({
      type: 'json_schema',
      jsonSchema: { name: 's', description: 'd', schemaJson: '{"type":"object"}', strict: true },
    });
  });

  it('keeps a response_format the typed form would lose as raw JSON beside its typed form', () => {
    const mode = { type: 'json_object', schema: { type: 'object' } };
    expect(parse({ response_format: mode }).responseFormat).toEqual({ type: 'json_object', rawJson: JSON.stringify(mode) });
    const lax = { type: 'json_schema', json_schema: { name: 's', strict: null } };
    expect(parse({ response_format: lax }).responseFormat).toEqual({ type: 'json_schema', jsonSchema: { name: 's', schemaJson: '' }, rawJson: JSON.stringify(lax) });
  });

  it("keeps an assistant tool call the typed form would lose as raw JSON, the typed call filled, and the typed arguments winning on the way out", () => {
    const call = { id: 'c1', type: 'function', function: { name: 'f', arguments: '{"card":"4111"}' }, extra_content: { google: { thought_signature: 'sig' } } };
    const request = parse({ messages: [{ role: 'assistant', content: null, tool_calls: [call] }] });
    const [parsed] = request.messages[0]?.toolCalls ?? [];
    expect(parsed).toEqual({ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"card":"4111"}' }, rawJson: JSON.stringify(call) });
    // A guardrail redacts the typed arguments: the provider gets them, with the call's other keys.
    if (parsed?.function) parsed.function.arguments = '{"card":"[REDACTED]"}';
    const [message] = toOpenAIChatBody(request, 'u')['messages'] as Body[];
    expect(message?.['tool_calls']).toEqual([{ ...call, function: { name: 'f', arguments: '{"card":"[REDACTED]"}' } }]);
    // A call the typed form holds whole carries no raw JSON.
    const plain = parse({ messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c2', type: 'function', function: { name: 'g', arguments: '' } }] }] });
    expect(plain.messages[0]?.toolCalls[0]?.rawJson).toBeUndefined();
  });

  it.each([
    [{ temperature: 0.2 }, { temperature: 0.2 }],
    [{ top_p: 0.9 }, { topP: 0.9 }],
    [{ stop: 'x' }, { stop: ['x'] }],
    [{ stop: ['x', 'y'] }, { stop: ['x', 'y'] }],
    [{ max_tokens: 10 }, { maxTokens: 10 }],
    [{ max_completion_tokens: 20 }, { maxCompletionTokens: 20 }],
    [{ n: 2 }, { n: 2 }],
    [{ seed: 7 }, { seed: 7 }],
    [{ logprobs: true }, { logprobs: true }],
    [{ top_logprobs: 4 }, { topLogprobs: 4 }],
    [{ user: 'u' }, { user: 'u' }],
    [{ stream: true }, { stream: true }],
    [{ stream_options: { include_usage: true, x: 1 } }, { streamOptions: { includeUsage: true, extraJson: '{"x":1}' } }],
    [{ presence_penalty: -1 }, { presencePenalty: -1 }],
    [{ frequency_penalty: 1 }, { frequencyPenalty: 1 }],
    [{ logit_bias: { '42': 5 } }, { logitBias: { '42': 5 } }],
    [{ reasoning_effort: 'low' }, { reasoningEffort: 'low' }],
    [{ service_tier: 'priority' }, { serviceTier: 'priority' }],
    [{ metadata: { a: 'b' } }, { metadata: { a: 'b' } }],
    [{ store: false }, { store: false }],
    [{ modalities: ['text', 'audio'] }, { modalities: ['text', 'audio'] }],
    [{ parallel_tool_calls: false }, { parallelToolCalls: false }],
    [{ audio: { voice: 'x' }, top_k: 3 }, { extraJson: '{"audio":{"voice":"x"},"top_k":3}' }],
  ])('reads %j', (input, canonical) => {
    expect(parse(input)).toMatchObject(canonical);
  });

  it('treats an explicit null as unset, keeping the null for the provider', () => {
    const request = parse({ temperature: null, max_tokens: null });
    expect(request.temperature).toBeUndefined();
    expect(request.maxTokens).toBeUndefined();
    expect(JSON.parse(request.extraJson)).toEqual({ temperature: null, max_tokens: null });
  });
});

describe('parseChatRequest validation', () => {
  const invalid: Array<[string, unknown, string, string]> = [
    ['missing model', { messages: base.messages }, 'model', 'missing_required_parameter'],
    ['empty model', { ...base, model: '' }, 'model', 'invalid_value'],
    ['model of the wrong type', { ...base, model: 5 }, 'model', 'invalid_type'],
    ['a model name past 256 characters', { ...base, model: '界'.repeat(257) }, 'model', 'invalid_value'],
    ['missing messages', { model: 'm' }, 'messages', 'missing_required_parameter'],
    ['empty messages', { model: 'm', messages: [] }, 'messages', 'invalid_value'],
    ['messages not a list', { model: 'm', messages: 'hi' }, 'messages', 'invalid_type'],
    ['a message that is not an object', { model: 'm', messages: ['hi'] }, 'messages[0]', 'invalid_type'],
    ['missing role', { model: 'm', messages: [{ content: 'x' }] }, 'messages[0].role', 'missing_required_parameter'],
    ['unknown role', { model: 'm', messages: [{ role: 'user', content: 'x' }, { role: 'robot', content: 'x' }] }, 'messages[1].role', 'invalid_value'],
    ['content of the wrong type', { model: 'm', messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }, { role: 'user', content: 5 }] }, 'messages[2].content', 'invalid_type'],
    ['a text part without text', { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'ok' }, { type: 'text' }] }] }, 'messages[0].content[1].text', 'missing_required_parameter'],
    ['a part without type', { model: 'm', messages: [{ role: 'user', content: [{ text: 'x' }] }] }, 'messages[0].content[0].type', 'missing_required_parameter'],
    ['an image part without url', { model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }, 'messages[0].content[0].image_url.url', 'missing_required_parameter'],
    ['tool call arguments not a string', { model: 'm', messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: {} } }] }] }, 'messages[0].tool_calls[0].function.arguments', 'invalid_type'],
    ['a function tool without a name', { ...base, tools: [{ type: 'function', function: {} }] }, 'tools[0].function.name', 'missing_required_parameter'],
    ['an unknown tool_choice mode', { ...base, tool_choice: 'sometimes' }, 'tool_choice', 'invalid_value'],
    ['tool_choice of the wrong type', { ...base, tool_choice: 3 }, 'tool_choice', 'invalid_type'],
    ['an unknown response_format type', { ...base, response_format: { type: 'yaml' } }, 'response_format.type', 'invalid_value'],
    ['json_schema format without its schema', { ...base, response_format: { type: 'json_schema' } }, 'response_format.json_schema', 'missing_required_parameter'],
    ['temperature too high', { ...base, temperature: 2.1 }, 'temperature', 'invalid_value'],
    ['temperature negative', { ...base, temperature: -0.1 }, 'temperature', 'invalid_value'],
    ['temperature as text', { ...base, temperature: 'hot' }, 'temperature', 'invalid_type'],
    ['top_p out of range', { ...base, top_p: 1.5 }, 'top_p', 'invalid_value'],
    ['n zero', { ...base, n: 0 }, 'n', 'invalid_value'],
    ['n fractional', { ...base, n: 1.5 }, 'n', 'invalid_type'],
    ['max_tokens zero', { ...base, max_tokens: 0 }, 'max_tokens', 'invalid_value'],
    ['max_tokens negative', { ...base, max_tokens: -1 }, 'max_tokens', 'invalid_value'],
    ['max_completion_tokens zero', { ...base, max_completion_tokens: 0 }, 'max_completion_tokens', 'invalid_value'],
    ['presence_penalty too low', { ...base, presence_penalty: -2.5 }, 'presence_penalty', 'invalid_value'],
    ['frequency_penalty too high', { ...base, frequency_penalty: 2.5 }, 'frequency_penalty', 'invalid_value'],
    ['top_logprobs too high', { ...base, top_logprobs: 21 }, 'top_logprobs', 'invalid_value'],
    ['stream not a boolean', { ...base, stream: 'yes' }, 'stream', 'invalid_type'],
    ['stop of the wrong type', { ...base, stop: 5 }, 'stop', 'invalid_type'],
    ['a stop entry of the wrong type', { ...base, stop: ['a', 1] }, 'stop[1]', 'invalid_type'],
    ['metadata values not strings', { ...base, metadata: { a: 1 } }, 'metadata.a', 'invalid_type'],
    ['logit_bias out of range', { ...base, logit_bias: { '1': 101 } }, 'logit_bias.1', 'invalid_value'],
  ];

  it.each(invalid)('rejects %s with 400 naming the param', (_name, body, param, code) => {
    const error = errorOf(() => parseChatRequest(body));
    expect(error).toMatchObject({ kind: 'bad_request', param, code });
    expect(error.message).toContain(param);
  });

  it('says what was expected and what it got', () => {
    expect(errorOf(() => parseChatRequest({ ...base, temperature: 3 })).message).toBe("Invalid value for 'temperature': expected a value <= 2, but got 3 instead.");
    expect(errorOf(() => parseChatRequest({ ...base, messages: [{ role: 'user', content: 5 }] })).message).toBe("Invalid type for 'messages[0].content': expected a string, an array or null, but got an integer instead.");
    expect(errorOf(() => parseChatRequest({ messages: [] })).message).toBe("Missing required parameter: 'model'.");
    expect(errorOf(() => parseChatRequest({ ...base, model: '' })).message).toBe("Invalid value for 'model': expected a non-empty string, but got an empty string instead.");
    expect(errorOf(() => parseChatRequest({ ...base, messages: [] })).message).toBe("Invalid value for 'messages': expected a non-empty array, but got an empty array instead.");
    expect(errorOf(() => parseChatRequest({ ...base, n: 1.5 })).message).toBe("Invalid type for 'n': expected an integer, but got a decimal number instead.");
    expect(errorOf(() => parseChatRequest({ ...base, logit_bias: 5 })).message).toBe("Invalid type for 'logit_bias': expected an object, but got an integer instead.");
    expect(errorOf(() => parseChatRequest({ ...base, response_format: { type: 'yaml' } })).message).toBe(
      "Invalid value for 'response_format.type': expected 'text', 'json_object' or 'json_schema', but got 'yaml' instead.",
    );
  });

  it.each([
    ['a user message without content', { role: 'user' }, 'messages[0].content', "Missing required parameter: 'messages[0].content' (a user message needs content)."],
    ['a user message with null content', { role: 'user', content: null }, 'messages[0].content', "Missing required parameter: 'messages[0].content' (a user message needs content, not null)."],
    ['an assistant message with neither content nor tool_calls', { role: 'assistant', content: null }, 'messages[0].content', "Missing required parameter: 'messages[0].content' (an assistant message needs content or tool_calls, not null)."],
    ['a tool message with a null tool_call_id', { role: 'tool', content: 'x', tool_call_id: null }, 'messages[0].tool_call_id', "Missing required parameter: 'messages[0].tool_call_id' (a tool message names the tool call it answers, not null)."],
  ])('rejects %s as a missing required parameter', (_name, message, param, text) => {
    const error = errorOf(() => parseChatRequest({ model: 'm', messages: [message] }));
    expect(error).toMatchObject({ kind: 'bad_request', param, code: 'missing_required_parameter', message: text });
  });

  it.each([null, [], 'text', 5, undefined])('rejects a body that is not an object (%p) with no param', (body) => {
    expect(errorOf(() => parseChatRequest(body))).toMatchObject({ kind: 'bad_request', param: undefined });
  });

  it('never rejects unknown top-level fields', () => {
    expect(() => parseChatRequest({ ...base, anything: { at: ['all'] }, another: null })).not.toThrow();
  });
});
