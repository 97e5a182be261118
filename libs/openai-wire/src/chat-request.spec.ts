import { GatewayError } from '@openrouter/errors';
import { parseChatRequest, toOpenAIChatBody } from './chat-request';

const base = { model: 'public-model', messages: [{ role: 'user', content: 'hi' }] };

/** Every field travels client → canonical → provider unchanged (model replaced by the upstream name). */
function roundTrip(body: Record<string, unknown>): Record<string, unknown> {
  return toOpenAIChatBody(parseChatRequest(body), 'upstream');
}

describe('chat request translation', () => {
  const fields: Array<[string, unknown]> = [
    ['tools', [{ type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] }, strict: true } }]],
    ['tool_choice', 'required'],
    ['tool_choice', { type: 'function', function: { name: 'f' } }],
    ['tool_choice', { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [] } }],
    ['parallel_tool_calls', false],
    ['response_format', { type: 'json_object' }],
    ['response_format', { type: 'json_schema', json_schema: { name: 's', description: 'x', schema: { type: 'object' }, strict: true } }],
    ['temperature', 0.3],
    ['top_p', 0.9],
    ['stop', ['a', 'b']],
    ['max_tokens', 12],
    ['max_completion_tokens', 34],
    ['n', 2],
    ['seed', 42],
    ['logprobs', true],
    ['top_logprobs', 3],
    ['user', 'u-1'],
    ['stream', true],
    ['presence_penalty', -1.5],
    ['frequency_penalty', 1.5],
    ['logit_bias', { '50256': -100 }],
    ['reasoning_effort', 'low'],
    ['service_tier', 'flex'],
    ['metadata', { team: 'a' }],
    ['store', true],
    ['modalities', ['text']],
    ['audio', { voice: 'alloy', format: 'mp3' }],
    ['prediction', { type: 'content', content: 'x' }],
    ['some_future_param', { nested: [1, 2] }],
  ];

  it.each(fields)('carries %s without loss', (key, value) => {
    const body = { ...base, [key]: value };
    expect(roundTrip(body)).toEqual({ ...body, model: 'upstream' });
  });

  it('carries stream_options with unknown keys', () => {
    const body = { ...base, stream: true, stream_options: { include_usage: true, include_obfuscation: false } };
    expect(roundTrip(body)).toEqual({ ...body, model: 'upstream' });
  });

  it('sends a single stop string as a one-element list', () => {
    expect(roundTrip({ ...base, stop: 'END' })['stop']).toEqual(['END']);
  });

  it('carries every message shape: roles, parts, null content, tool calls and results, extra fields', () => {
    const messages = [
      { role: 'system', content: 'sys' },
      { role: 'developer', content: 'dev', name: 'ops' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'look' },
          { type: 'image_url', image_url: { url: 'https://x/y.png', detail: 'high' } },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
          { type: 'input_audio', input_audio: { data: 'UklG', format: 'wav' } },
          { type: 'file', file: { file_id: 'f1' } },
        ],
      },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":"é"}' } }, { id: 'c2', type: 'function', function: { name: 'g', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'r1' },
      { role: 'tool', tool_call_id: 'c2', content: [{ type: 'text', text: 'r2' }] },
      { role: 'assistant', content: '', refusal: 'no', audio: { id: 'a1' } },
      { role: 'user', content: '日本語 🎉' },
    ];
    const body = { model: 'm', messages };
    expect(roundTrip(body)).toEqual({ model: 'upstream', messages });
  });

  it('keeps unknown top-level fields out of the typed ones', () => {
    const parsed = parseChatRequest({ ...base, top_k: 5 });
    expect(JSON.parse(parsed.extraJson)).toEqual({ top_k: 5 });
    expect(parseChatRequest(base).extraJson).toBe('');
  });

  const invalid: Array<[string, unknown, string]> = [
    ['missing model', { messages: base.messages }, 'model'],
    ['missing messages', { model: 'm' }, 'messages'],
    ['empty messages', { model: 'm', messages: [] }, 'messages'],
    ['bad role', { model: 'm', messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
    ['content of the wrong type', { model: 'm', messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
    ['temperature too high', { ...base, temperature: 3 }, 'temperature'],
    ['temperature as text', { ...base, temperature: 'hot' }, 'temperature'],
    ['top_p out of range', { ...base, top_p: 2 }, 'top_p'],
    ['n zero', { ...base, n: 0 }, 'n'],
    ['max_tokens negative', { ...base, max_tokens: -1 }, 'max_tokens'],
    ['stream not a boolean', { ...base, stream: 'yes' }, 'stream'],
    ['top_logprobs too high', { ...base, top_logprobs: 21 }, 'top_logprobs'],
  ];

  it.each(invalid)('rejects %s with 400 naming the param', (_name, body, param) => {
    let error: unknown;
    try {
      parseChatRequest(body);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ kind: 'bad_request', param });
  });

  it.each([null, [], 'text', 5])('rejects a body that is not an object (%p)', (body) => {
    expect(() => parseChatRequest(body)).toThrow(GatewayError);
  });
});
