import { StreamedCompletion } from './streamed-completion';

const head = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 100, model: 'up' };

describe('StreamedCompletion', () => {
  it('puts the chunks together: text joined, tool calls by index with their arguments joined', () => {
    const gathered = new StreamedCompletion();
    gathered.add({ ...head, choices: [{ index: 0, delta: { role: 'assistant', content: 'Let me ' }, logprobs: null, finish_reason: null }] });
    gathered.add({ ...head, choices: [{ index: 0, delta: { content: 'look.', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":' } }] }, finish_reason: null }] });
    gathered.add({ ...head, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"Oslo"}' } }] }, finish_reason: 'tool_calls' }] });
    expect(gathered.whole({ total_tokens: 3 })).toEqual({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 100,
      model: 'up',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Let me look.', refusal: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
          logprobs: null,
          finish_reason: 'tool_calls',
        },
      ],
      usage: { total_tokens: 3 },
    });
  });

  it('keeps the first name of a tool call that its later deltas repeat, as some OpenAI-compatible upstreams do', () => {
    const gathered = new StreamedCompletion();
    gathered.add({ ...head, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":' } }] }, finish_reason: null }] });
    gathered.add({ ...head, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'get_weather', arguments: '"Oslo"}' } }] }, finish_reason: 'tool_calls' }] });
    const choices = gathered.whole({})?.['choices'] as Array<{ message: { tool_calls: unknown } }>;
    expect(choices[0]?.message.tool_calls).toEqual([{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }]);
  });
});
