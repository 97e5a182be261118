import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseOpenAIChunk, parseOpenAICompletion, parseOpenAIUsage, toOpenAIChunk, toOpenAICompletion, toOpenAIUsage } from './chat-response';

const usageJson = {
  prompt_tokens: 120,
  completion_tokens: 30,
  total_tokens: 150,
  prompt_tokens_details: { cached_tokens: 100 },
  completion_tokens_details: { reasoning_tokens: 12 },
};

const logprobs = { content: [{ token: 'Hi', logprob: -0.01, bytes: [72, 105], top_logprobs: [] }], refusal: null };

/** A chat.completion as OpenAI sends it, every optional part filled. */
const providerCompletion = {
  id: 'chatcmpl-abc',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-4o-2024-08-06',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'Hi', refusal: null, annotations: [{ type: 'url_citation', url_citation: { url: 'https://x', title: 'x', start_index: 0, end_index: 2 } }] },
      logprobs,
      finish_reason: 'stop',
    },
    {
      index: 1,
      message: { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      logprobs: null,
      finish_reason: 'tool_calls',
    },
    { index: 2, message: { role: 'assistant', content: null, refusal: 'I cannot help.' }, logprobs: null, finish_reason: 'stop' },
    { index: 3, message: { role: 'assistant', content: 'thinking done', refusal: null, reasoning_content: 'step 1', audio: { id: 'a', data: 'UklG', expires_at: 1, transcript: 't' } }, logprobs: null, finish_reason: 'length' },
  ],
  usage: usageJson,
  system_fingerprint: 'fp_123',
  service_tier: 'default',
};

describe('parseOpenAICompletion', () => {
  it('reads every part of a completion', () => {
    const c = parseOpenAICompletion(providerCompletion);
    expect(c).toMatchObject({ id: 'chatcmpl-abc', created: 1_700_000_000, model: 'gpt-4o-2024-08-06', systemFingerprint: 'fp_123', serviceTier: 'default' });
    expect(c.usage).toEqual({ promptTokens: 120, completionTokens: 30, totalTokens: 150, cachedReadTokens: 100, cacheWriteTokens: 0, reasoningTokens: 12, estimated: false });
    const [text, tools, refusal, extra] = c.choices;
    expect(text).toEqual({
      index: 0,
      message: { role: 'assistant', content: 'Hi', toolCalls: [], refusal: undefined, extraJson: JSON.stringify({ annotations: providerCompletion.choices[0]?.message.annotations }) },
      finishReason: 'stop',
      logprobsJson: JSON.stringify(logprobs),
    });
    expect(tools?.message).toMatchObject({ content: undefined, toolCalls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] });
    expect(tools?.finishReason).toBe('tool_calls');
    expect(tools?.logprobsJson).toBe('');
    expect(refusal?.message?.refusal).toBe('I cannot help.');
    expect(JSON.parse(extra?.message?.extraJson ?? '')).toEqual({ reasoning_content: 'step 1', audio: { id: 'a', data: 'UklG', expires_at: 1, transcript: 't' } });
  });

  it('gives back the same JSON under the public model id', () => {
    expect(toOpenAICompletion(parseOpenAICompletion(providerCompletion), 'public/gpt-4o')).toEqual({ ...providerCompletion, model: 'public/gpt-4o' });
  });

  it('tolerates a completion without usage or optional fields', () => {
    const c = parseOpenAICompletion({ id: 'x', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] });
    expect(c.usage).toBeUndefined();
    expect(c.systemFingerprint).toBeUndefined();
    const out = toOpenAICompletion(c, 'pub');
    expect(out).not.toHaveProperty('usage');
    expect(out['choices']).toEqual([{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, logprobs: null, finish_reason: 'stop' }]);
  });

  it.each([null, 'text', [], { id: 'x' }, { choices: 'nope' }])('rejects a malformed completion %j as an upstream error', (json) => {
    expect(() => parseOpenAICompletion(json)).toThrow(expect.objectContaining({ kind: 'upstream_error' }) as GatewayError);
  });
});

describe('toOpenAICompletion', () => {
  const completion: chatv1.ChatCompletion = {
    id: 'chatcmpl-1',
    created: 0,
    model: 'upstream-model',
    choices: [{ index: 0, message: { role: 'assistant', toolCalls: [], extraJson: '' }, finishReason: '', logprobsJson: '' }],
  };

  it('writes content, refusal and logprobs as null when absent, and the created time when unknown', () => {
    const out = toOpenAICompletion(completion, 'public');
    expect(out).toMatchObject({ id: 'chatcmpl-1', object: 'chat.completion', model: 'public', choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: null }, logprobs: null, finish_reason: null }] });
    expect(out['created']).toBeGreaterThan(1_700_000_000);
  });

  it('never lets extra fields overwrite the typed ones', () => {
    const out = toOpenAICompletion({ ...completion, choices: [{ index: 0, message: { role: 'assistant', content: 'real', toolCalls: [], extraJson: '{"content":"fake","annotations":[]}' }, finishReason: 'stop', logprobsJson: '' }] }, 'p');
    expect(out['choices']).toEqual([{ index: 0, message: { role: 'assistant', content: 'real', refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }]);
  });
});

/** A streamed answer as OpenAI sends it with stream_options.include_usage. */
const providerChunks = [
  { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1_700_000_001, model: 'gpt-4o', system_fingerprint: 'fp_1', choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], usage: null },
  { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1_700_000_001, model: 'gpt-4o', system_fingerprint: 'fp_1', choices: [{ index: 0, delta: { content: 'Hel' }, logprobs: null, finish_reason: null }], usage: null },
  { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1_700_000_001, model: 'gpt-4o', system_fingerprint: 'fp_1', choices: [{ index: 0, delta: { content: 'lo' }, logprobs: { content: [], refusal: null }, finish_reason: null }], usage: null },
  {
    id: 'chatcmpl-s',
    object: 'chat.completion.chunk',
    created: 1_700_000_001,
    model: 'gpt-4o',
    system_fingerprint: 'fp_1',
    choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_9', type: 'function', function: { name: 'f', arguments: '' } }] }, logprobs: null, finish_reason: null }],
    usage: null,
  },
  { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1_700_000_001, model: 'gpt-4o', system_fingerprint: 'fp_1', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"a":1}' } }] }, logprobs: null, finish_reason: null }], usage: null },
  { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1_700_000_001, model: 'gpt-4o', system_fingerprint: 'fp_1', choices: [{ index: 0, delta: { reasoning_content: 'hmm' }, logprobs: null, finish_reason: null }], usage: null },
  { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1_700_000_001, model: 'gpt-4o', system_fingerprint: 'fp_1', choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' }], usage: null },
  { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1_700_000_001, model: 'gpt-4o', system_fingerprint: 'fp_1', choices: [], usage: usageJson },
];

describe('parseOpenAIChunk', () => {
  it('reads role, content, tool call deltas, finish reasons and usage-only chunks', () => {
    const chunks = providerChunks.map(parseOpenAIChunk);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '', refusal: undefined, toolCalls: [], extraJson: '' });
    expect(chunks[0]?.usage).toBeUndefined();
    expect(chunks[2]?.choices[0]?.logprobsJson).toBe('{"content":[],"refusal":null}');
    expect(chunks[3]?.choices[0]?.delta?.toolCalls).toEqual([{ index: 0, id: 'call_9', type: 'function', name: 'f', arguments: '' }]);
    expect(chunks[4]?.choices[0]?.delta?.toolCalls).toEqual([{ index: 0, id: undefined, type: undefined, name: undefined, arguments: '{"a":1}' }]);
    expect(chunks[5]?.choices[0]?.delta?.extraJson).toBe('{"reasoning_content":"hmm"}');
    expect(chunks[6]?.choices[0]?.finishReason).toBe('tool_calls');
    expect(chunks[7]).toMatchObject({ choices: [], usage: { promptTokens: 120, completionTokens: 30, totalTokens: 150, cachedReadTokens: 100, reasoningTokens: 12 } });
  });

  it('gives back the same chunks under the public model id (nulls of usage and refusal dropped)', () => {
    const out = providerChunks.map((c) => toOpenAIChunk(parseOpenAIChunk(c), 'public'));
    const expected = providerChunks.map((c) => {
      const { usage, ...rest } = c;
      const json: Record<string, unknown> = { ...rest, model: 'public' };
      if (usage) json['usage'] = usage;
      return json;
    });
    expected[0] = { ...expected[0], choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] };
    expect(out).toEqual(expected);
  });

  it('accepts a chunk without choices and a choice without a delta', () => {
    expect(parseOpenAIChunk({ id: 'x', created: 1, model: 'm' }).choices).toEqual([]);
    expect(parseOpenAIChunk({ id: 'x', choices: [{ index: 0, finish_reason: 'stop' }] }).choices[0]).toMatchObject({ finishReason: 'stop', delta: { toolCalls: [] } });
  });

  it('rejects a chunk that is not an object', () => {
    expect(() => parseOpenAIChunk('data')).toThrow(GatewayError);
  });
});

describe('usage', () => {
  it('writes prompt and completion details', () => {
    expect(toOpenAIUsage({ promptTokens: 10, completionTokens: 5, totalTokens: 15, cachedReadTokens: 4, cacheWriteTokens: 2, reasoningTokens: 3, estimated: false })).toEqual({
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 15,
      prompt_tokens_details: { cached_tokens: 4 },
      completion_tokens_details: { reasoning_tokens: 3 },
    });
  });

  it('reads missing totals and details as sums and zeros; null as absent', () => {
    expect(parseOpenAIUsage({ prompt_tokens: 3, completion_tokens: 4 })).toEqual({ promptTokens: 3, completionTokens: 4, totalTokens: 7, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false });
    expect(parseOpenAIUsage({ prompt_tokens: 3, completion_tokens: 4, prompt_cache_hit_tokens: 2 })?.cachedReadTokens).toBe(2);
    // A count past 2^53 (a provider's bug) is held to it: the usage record could not carry it at all.
    expect(parseOpenAIUsage({ prompt_tokens: 1e21, completion_tokens: 4 })?.promptTokens).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseOpenAIUsage(null)).toBeUndefined();
  });
});
