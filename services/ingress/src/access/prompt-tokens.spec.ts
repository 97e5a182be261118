import { encode } from 'gpt-tokenizer';
import { countPromptTokens, TextTokenCounter } from './prompt-tokens';

describe('prompt token estimate', () => {
  it('counts message text, parts, images, tools, legacy prompts and embedding inputs', () => {
    expect(countPromptTokens({ messages: [{ role: 'user', content: 'hello world' }] })).toBe(4 + 2);
    expect(countPromptTokens({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }, { type: 'image_url', image_url: { url: 'x' } }] }] })).toBe(4 + 1 + 765);
    expect(countPromptTokens({ prompt: ['hello', 'world'] })).toBe(2);
    expect(countPromptTokens({ input: [[1, 2, 3]] })).toBe(3);
    expect(countPromptTokens({ messages: [], tools: [{ type: 'function' }] })).toBeGreaterThan(0);
    expect(countPromptTokens('not a body')).toBe(0);
    // Quoted special tokens are text: the tokenizer's default would throw on them.
    expect(countPromptTokens({ messages: [{ role: 'user', content: 'what is <|endoftext|>?' }] })).toBeGreaterThan(4 + 3);
    expect(countPromptTokens({ input: `${'<|im_start|> '.repeat(100)}` })).toBeGreaterThan(100);
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

  it('remembers the counts of long texts by digest, most recently used kept, and counts as the tokenizer does', () => {
    const counter = new TextTokenCounter(100, 2);
    const texts = ['Résumé the quarterly policy, section 4.2 — 日本語も. '.repeat(5), 'def reverse(s):\n    return s[::-1]\n'.repeat(8), 'The third long text. '.repeat(10)];
    const exact = texts.map((t) => encode(t).length);
    expect(texts.map((t) => counter.count(t))).toEqual(exact);
    expect(counter).toMatchObject({ hits: 0, misses: 3 });
    // Capacity 2: the first text was evicted, the last two are remembered.
    expect(counter.count(texts[2] ?? '')).toBe(exact[2]);
    expect(counter.count(texts[1] ?? '')).toBe(exact[1]);
    expect(counter).toMatchObject({ hits: 2, misses: 3 });
    expect(counter.count(texts[0] ?? '')).toBe(exact[0]);
    expect(counter).toMatchObject({ hits: 2, misses: 4 });
    // Short texts are tokenized each time and never kept.
    expect(counter.count('hello world')).toBe(2);
    expect(counter).toMatchObject({ hits: 2, misses: 4 });
  });
});
