import { encode } from 'gpt-tokenizer/cjs/encoding/o200k_base';
import { choiceSeed, finalizeContent, generateReplyPieces, REPLY_VOCABULARY, TOOL_RESULT_OPENING } from './reply-generator';

describe('reply generator', () => {
  it('keeps a useful vocabulary of single-token words', () => {
    expect(REPLY_VOCABULARY.length).toBeGreaterThan(50);
  });

  it('is deterministic per seed and text, and varies with either', () => {
    const a = generateReplyPieces(1, 'hello there', 24);
    expect(generateReplyPieces(1, 'hello there', 24)).toEqual(a);
    expect(generateReplyPieces(1, 'something else', 24)).not.toEqual(a);
    expect(generateReplyPieces(2, 'hello there', 24)).not.toEqual(a);
  });

  it('produces exactly the requested number of o200k tokens, one per piece', () => {
    for (let seed = 0; seed < 40; seed++) {
      for (const length of [1, 2, 5, 16, 64, 257]) {
        const pieces = generateReplyPieces(seed, `prompt ${seed}`, length);
        expect(pieces).toHaveLength(length);
        expect(encode(pieces.join(''))).toHaveLength(length);
        for (const piece of pieces) expect(encode(piece)).toHaveLength(1);
      }
    }
  });

  it('reads like sentences and ends with a full stop', () => {
    const text = generateReplyPieces(3, 'x', 30).join('');
    expect(text).toMatch(/^[A-Z][a-z]+/);
    expect(text.endsWith('.')).toBe(true);
    expect(text).not.toMatch(/\s{2}|[.,][a-z]/);
  });

  it('starts a tool-result reply with the opening phrase', () => {
    const pieces = generateReplyPieces(1, 'q', 12, TOOL_RESULT_OPENING);
    expect(pieces.join('')).toMatch(/^Tool result received\. [A-Z]/);
    expect(encode(pieces.join(''))).toHaveLength(12);
  });

  it('derives distinct choices while choice 0 matches n=1', () => {
    expect(choiceSeed(9, 0)).toBe(9);
    expect(choiceSeed(9, 1)).not.toBe(9);
    expect(generateReplyPieces(choiceSeed(9, 1), 'q', 16)).not.toEqual(generateReplyPieces(9, 'q', 16));
  });
});

describe('finalizeContent', () => {
  const pieces = ['Hello', ' brown', ' fox', ' over', ' the', ' dog', '.'];

  it('returns the natural reply with finish_reason stop', () => {
    expect(finalizeContent(pieces, {})).toEqual({ pieces, text: 'Hello brown fox over the dog.', completionTokens: 7, finishReason: 'stop' });
  });

  it('truncates to maxTokens with finish_reason length', () => {
    expect(finalizeContent(pieces, { maxTokens: 3 })).toEqual({
      pieces: ['Hello', ' brown', ' fox'],
      text: 'Hello brown fox',
      completionTokens: 3,
      finishReason: 'length',
    });
  });

  it('cuts at the earliest stop sequence, excluding it', () => {
    const result = finalizeContent(pieces, { stop: [' dog', 'ox ov'] });
    expect(result.text).toBe('Hello brown f');
    expect(result.pieces).toEqual(['Hello', ' brown', ' f']);
    expect(result.finishReason).toBe('stop');
    expect(result.completionTokens).toBe(3);
  });

  it('prefers a stop found inside the max_tokens window', () => {
    expect(finalizeContent(pieces, { maxTokens: 4, stop: [' fox'] })).toMatchObject({ text: 'Hello brown', finishReason: 'stop' });
    expect(finalizeContent(pieces, { maxTokens: 2, stop: [' fox'] })).toMatchObject({ text: 'Hello brown', finishReason: 'length' });
  });

  it('ignores empty and absent stop sequences', () => {
    expect(finalizeContent(pieces, { stop: ['', 'zebra'] }).text).toBe('Hello brown fox over the dog.');
  });
});
