import { encode } from 'gpt-tokenizer/cjs/encoding/o200k_base';
import { countPromptTokens, countTokens, PROMPT_REPLY_PRIMING_TOKENS, PROMPT_TOKENS_PER_MESSAGE, splitIntoTokenPieces } from './token-counter';

describe('token counter', () => {
  it('counts with o200k_base', () => {
    expect(countTokens('Hello world, how are you?')).toBe(encode('Hello world, how are you?').length);
    expect(countTokens('')).toBe(0);
  });

  it('treats special-token look-alikes in user text as plain text', () => {
    expect(countTokens('a <|endoftext|> b')).toBeGreaterThan(3);
  });

  it('gives the same answer for long (cached) texts on repeat', () => {
    const long = 'lorem ipsum dolor sit amet '.repeat(50);
    const first = countTokens(long);
    expect(first).toBe(encode(long).length);
    expect(countTokens(long)).toBe(first);
  });

  it('adds the documented per-message and priming overhead', () => {
    const messages = [['You are terse.'], ['Hi there', 'alice'], []];
    const content = countTokens('You are terse.') + countTokens('Hi there') + countTokens('alice');
    expect(countPromptTokens(messages)).toBe(PROMPT_REPLY_PRIMING_TOKENS + 3 * PROMPT_TOKENS_PER_MESSAGE + content);
    expect(PROMPT_TOKENS_PER_MESSAGE).toBe(3);
    expect(PROMPT_REPLY_PRIMING_TOKENS).toBe(3);
  });

  it('splits text into token pieces that join back losslessly', () => {
    for (const text of ['{"city":"sample","days":1}', 'naïve café 東京 🚀 done', '']) {
      const { pieces, tokenCount } = splitIntoTokenPieces(text);
      expect(pieces.join('')).toBe(text);
      expect(tokenCount).toBe(encode(text).length);
      expect(pieces.some((piece) => piece.includes('\uFFFD'))).toBe(false);
    }
    expect(splitIntoTokenPieces('{"a":true}').pieces).toHaveLength(encode('{"a":true}').length);
  });
});
