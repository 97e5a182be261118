import type { chatv1 } from '@openrouter/contracts';
import { carriesAnswer, chunkCarriesAnswer } from './answer-progress';
import { parseOpenAIChunk } from './chat-response';

const chunk = (choice: Record<string, unknown>, extra: Record<string, unknown> = {}): chatv1.ChatChunk =>
  parseOpenAIChunk({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, logprobs: null, finish_reason: null, ...choice }], ...extra });

describe('chunkCarriesAnswer', () => {
  it.each([
    ['content', { delta: { content: 'Hi' } }],
    ['a refusal', { delta: { refusal: "I'm sorry" } }],
    ['a tool call', { delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }] } }],
    ['reasoning', { delta: { reasoning_content: 'Let me think' } }],
    ['logprobs', { delta: {}, logprobs: { content: [] } }],
    ['a finish reason', { delta: {}, finish_reason: 'stop' }],
  ])('counts a chunk with %s as the answer begun', (_what, choice) => {
    expect(chunkCarriesAnswer(chunk(choice))).toBe(true);
  });

  it('does not count an opening chunk with only the role and an empty content or refusal', () => {
    expect(chunkCarriesAnswer(chunk({ delta: { role: 'assistant', content: '' } }))).toBe(false);
    expect(chunkCarriesAnswer(chunk({ delta: { role: 'assistant', refusal: '' } }))).toBe(false);
    expect(chunkCarriesAnswer(chunk({ delta: { role: 'assistant', content: null, reasoning_content: null } }))).toBe(false);
  });

  it('counts usage, and a whole completion, as the answer', () => {
    expect(chunkCarriesAnswer(parseOpenAIChunk({ id: 'c', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }))).toBe(true);
    expect(carriesAnswer({ completion: { id: 'c', created: 1, model: 'm', choices: [] } })).toBe(true);
    expect(carriesAnswer({ chunk: chunk({ delta: { role: 'assistant', content: '' } }) })).toBe(false);
  });
});
