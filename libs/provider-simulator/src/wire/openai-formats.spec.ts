import { chatCompletionFrames, type ChatCompletionPlan } from './openai-formats';

const plan = (toolCall: boolean): ChatCompletionPlan => ({
  id: 'chatcmpl-x"y',
  created: 1,
  model: 'm\\odel',
  systemFingerprint: 'fp_1',
  promptTokens: 4,
  completionTokens: 2,
  choices: [
    toolCall
      ? { index: 0, content: null, toolCall: { id: 'call_1', name: 'f', arguments: '{"a":1}' }, pieces: ['{"a', '":1}'], finishReason: 'tool_calls', completionTokens: 2 }
      : { index: 0, content: 'Hi "you"', pieces: ['Hi', ' "you"\n'], finishReason: 'stop', completionTokens: 2 },
  ],
});

const payloads = (p: ChatCompletionPlan, includeUsage: boolean, azure = false): unknown[] =>
  chatCompletionFrames(p, includeUsage, azure).map((frame) => {
    expect(frame.text.startsWith('data: ')).toBe(true);
    expect(frame.text.endsWith('\n\n')).toBe(true);
    const data = frame.text.slice(6, -2);
    return data === '[DONE]' ? data : JSON.parse(data);
  });

describe('OpenAI stream frames', () => {
  const envelope = { id: 'chatcmpl-x"y', object: 'chat.completion.chunk', created: 1, model: 'm\\odel', system_fingerprint: 'fp_1' };

  it('are valid JSON with escaped content and usage:null on every chunk when usage is requested', () => {
    expect(payloads(plan(false), true)).toEqual([
      { ...envelope, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], usage: null },
      { ...envelope, choices: [{ index: 0, delta: { content: 'Hi' }, logprobs: null, finish_reason: null }], usage: null },
      { ...envelope, choices: [{ index: 0, delta: { content: ' "you"\n' }, logprobs: null, finish_reason: null }], usage: null },
      { ...envelope, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], usage: null },
      {
        ...envelope,
        choices: [],
        usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
      },
      '[DONE]',
    ]);
  });

  it('stream a tool call as an opening delta plus argument fragments', () => {
    const chunks = payloads(plan(true), false) as { choices: { delta: unknown; finish_reason: string | null }[] }[];
    expect(chunks[0]?.choices[0]?.delta).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }],
    });
    expect(chunks[1]?.choices[0]?.delta).toEqual({ tool_calls: [{ index: 0, function: { arguments: '{"a' } }] });
    expect(chunks[2]?.choices[0]?.delta).toEqual({ tool_calls: [{ index: 0, function: { arguments: '":1}' } }] });
    expect(chunks[3]?.choices[0]?.finish_reason).toBe('tool_calls');
    expect(chunks).toHaveLength(5);
    expect(chunks.slice(0, 4).every((c) => !('usage' in c))).toBe(true);
  });

  it("open with Azure's prompt filter chunk and carry content_filter_results on every choice, as Azure OpenAI streams", () => {
    const safe = { filtered: false, severity: 'safe' };
    const verdict = { hate: safe, self_harm: safe, sexual: safe, violence: safe };
    expect(payloads(plan(false), true, true)).toEqual([
      { choices: [], created: 0, id: '', model: '', object: '', prompt_filter_results: [{ prompt_index: 0, content_filter_results: { ...verdict, jailbreak: { filtered: false, detected: false } } }] },
      { ...envelope, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null, content_filter_results: {} }], usage: null },
      { ...envelope, choices: [{ index: 0, delta: { content: 'Hi' }, logprobs: null, finish_reason: null, content_filter_results: verdict }], usage: null },
      { ...envelope, choices: [{ index: 0, delta: { content: ' "you"\n' }, logprobs: null, finish_reason: null, content_filter_results: verdict }], usage: null },
      { ...envelope, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop', content_filter_results: {} }], usage: null },
      {
        ...envelope,
        choices: [],
        usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
      },
      '[DONE]',
    ]);
  });
});
