import { countPromptTokens } from './prompt-tokens';

describe('prompt token estimate', () => {
  it('counts message text, parts, images, tools, legacy prompts and embedding inputs', () => {
    expect(countPromptTokens({ messages: [{ role: 'user', content: 'hello world' }] })).toBe(4 + 2);
    expect(countPromptTokens({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }, { type: 'image_url', image_url: { url: 'x' } }] }] })).toBe(4 + 1 + 765);
    expect(countPromptTokens({ prompt: ['hello', 'world'] })).toBe(2);
    expect(countPromptTokens({ input: [[1, 2, 3]] })).toBe(3);
    expect(countPromptTokens({ messages: [], tools: [{ type: 'function' }] })).toBeGreaterThan(0);
    expect(countPromptTokens('not a body')).toBe(0);
  });

  it('estimates very long texts at 4 characters a token instead of tokenizing them', () => {
    expect(countPromptTokens({ messages: [{ role: 'user', content: 'a'.repeat(40_000) }] })).toBe(4 + 10_000);
  });

  it('counts a body once, however many parts of the request path ask', () => {
    const body = { messages: [{ role: 'user', content: 'hello world' }] };
    const first = countPromptTokens(body);
    body.messages[0] = { role: 'user', content: 'changed after counting' };
    expect(countPromptTokens(body)).toBe(first);
  });
});
