import type { chatv1 } from '@openrouter/contracts';
import { toOpenAIChunk } from '@openrouter/openai-wire';
import { completionStorable, replayChunks, StreamedAnswer } from './cached-answer';

const usage: chatv1.Usage = { promptTokens: 5, completionTokens: 4, totalTokens: 9, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };

function chunk(choices: chatv1.ChunkChoice[]): chatv1.ChatChunk {
  return { id: 'c1', created: 100, model: 'up', choices };
}

function delta(d: Partial<chatv1.Delta>): chatv1.Delta {
  return { toolCalls: [], extraJson: '', ...d };
}

function completion(finishReason: string): chatv1.ChatCompletion {
  return { id: 'c1', created: 100, model: 'up', choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there', toolCalls: [], extraJson: '' }, finishReason, logprobsJson: '' }], usage };
}

describe('cached answers', () => {
  it('stores only answers every choice of which finished with stop, length or tool_calls', () => {
    expect(completionStorable(completion('stop'))).toBe(true);
    expect(completionStorable(completion('length'))).toBe(true);
    expect(completionStorable(completion('tool_calls'))).toBe(true);
    expect(completionStorable(completion('content_filter'))).toBe(false);
    expect(completionStorable(completion(''))).toBe(false);
    expect(completionStorable({ ...completion('stop'), choices: [] })).toBe(false);
  });

  it('gathers a stream into the whole answer: content, tool calls by index, finish reasons, usage', () => {
    const answer = new StreamedAnswer();
    answer.add(chunk([{ index: 0, delta: delta({ role: 'assistant', content: 'Hel' }), logprobsJson: '' }]));
    answer.add(chunk([{ index: 0, delta: delta({ content: 'lo' }), logprobsJson: '' }, { index: 1, delta: delta({ toolCalls: [{ index: 0, id: 'call_1', type: 'function', name: 'get', arguments: '{"a"' }] }), logprobsJson: '' }]));
    answer.add(chunk([{ index: 1, delta: delta({ toolCalls: [{ index: 0, arguments: ':1}' }] }), finishReason: 'tool_calls', logprobsJson: '' }]));
    answer.add(chunk([{ index: 0, delta: delta({}), finishReason: 'stop', logprobsJson: '' }]));
    const whole = answer.whole(usage);
    expect(whole?.choices.map((c) => [c.index, c.message?.content, c.finishReason])).toEqual([
      [0, 'Hello', 'stop'],
      [1, undefined, 'tool_calls'],
    ]);
    expect(whole?.choices[1]?.message?.toolCalls).toEqual([{ id: 'call_1', type: 'function', function: { name: 'get', arguments: '{"a":1}' } }]);
    expect(whole?.usage).toEqual(usage);
  });

  it('keeps the first name of a tool call that its later deltas repeat, as some OpenAI-compatible upstreams do', () => {
    const answer = new StreamedAnswer();
    answer.add(chunk([{ index: 0, delta: delta({ toolCalls: [{ index: 0, id: 'call_1', type: 'function', name: 'get_weather', arguments: '{"city":' }] }), logprobsJson: '' }]));
    answer.add(chunk([{ index: 0, delta: delta({ toolCalls: [{ index: 0, name: 'get_weather', arguments: '"Oslo"}' }] }), finishReason: 'tool_calls', logprobsJson: '' }]));
    expect(answer.whole(usage)?.choices[0]?.message?.toolCalls).toEqual([{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }]);
  });

  it('does not store a stream with an unfinished choice, a filtered one, or provider-specific fields', () => {
    const unfinished = new StreamedAnswer();
    unfinished.add(chunk([{ index: 0, delta: delta({ content: 'cut' }), logprobsJson: '' }]));
    expect(unfinished.whole(usage)).toBeUndefined();

    const filtered = new StreamedAnswer();
    filtered.add(chunk([{ index: 0, delta: delta({ content: 'x' }), finishReason: 'content_filter', logprobsJson: '' }]));
    expect(filtered.whole(usage)).toBeUndefined();

    const reasoning = new StreamedAnswer();
    reasoning.add(chunk([{ index: 0, delta: delta({ extraJson: '{"reasoning":"…"}' }), logprobsJson: '' }]));
    reasoning.add(chunk([{ index: 0, delta: delta({ content: 'x' }), finishReason: 'stop', logprobsJson: '' }]));
    expect(reasoning.whole(usage)).toBeUndefined();
  });

  it('replays a whole answer as a message chunk and a finish chunk per choice, which gather back into it', () => {
    const original = completion('stop');
    const chunks = replayChunks(original);
    expect(chunks.map((c) => [c.choices[0]?.delta?.content, c.choices[0]?.finishReason])).toEqual([
      ['Hello there', undefined],
      [undefined, 'stop'],
    ]);
    const again = new StreamedAnswer();
    for (const c of chunks) again.add(c);
    expect(again.whole(usage)?.choices).toEqual(original.choices);
  });

  it("replays a whole answer's log probabilities on its message chunk, as a stream that asked for them carries them", () => {
    const logprobs = { content: [{ token: 'Hello', logprob: -0.1, bytes: [72, 101, 108, 108, 111], top_logprobs: [] }, { token: ' there', logprob: -0.2, bytes: null, top_logprobs: [] }], refusal: null };
    const original = completion('stop');
    const withLogprobs = { ...original, choices: original.choices.map((c) => ({ ...c, logprobsJson: JSON.stringify(logprobs) })) };
    const [message, finish] = replayChunks(withLogprobs).map((c) => toOpenAIChunk(c, 'gpt-4o-mini') as { choices: { logprobs: unknown }[] });
    expect(message?.choices[0]?.logprobs).toEqual(logprobs);
    expect(finish?.choices[0]?.logprobs).toBeNull();
  });

  it('stops gathering a stream once its answer outgrows the entry bound: nothing is kept, nothing stored', () => {
    const bounded = new StreamedAnswer(64);
    for (let i = 0; i < 10; i++) bounded.add(chunk([{ index: 0, delta: delta({ content: 'x'.repeat(10) }), logprobsJson: '' }]));
    bounded.add(chunk([{ index: 0, delta: delta({}), finishReason: 'stop', logprobsJson: '' }]));
    expect(bounded.whole(usage)).toBeUndefined();
    // Tool-call arguments count as the content does.
    const tools = new StreamedAnswer(64);
    tools.add(chunk([{ index: 0, delta: delta({ toolCalls: [{ index: 0, id: 'call_1', type: 'function', name: 'get', arguments: '{"q":"' + 'y'.repeat(100) + '"}' }] }), finishReason: 'tool_calls', logprobsJson: '' }]));
    expect(tools.whole(usage)).toBeUndefined();
    // Within the bound: stored as before.
    const small = new StreamedAnswer(64);
    small.add(chunk([{ index: 0, delta: delta({ content: 'x'.repeat(60) }), finishReason: 'stop', logprobsJson: '' }]));
    expect(small.whole(usage)?.choices[0]?.message?.content).toBe('x'.repeat(60));
  });
});
