import { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import * as promptTokens from '../access/prompt-tokens';
import { EmbeddingInputLimits, EXACT_INPUT_BYTES, prefixOf } from './embedding-input-limit';

jest.mock('../access/prompt-tokens', () => {
  const actual: typeof promptTokens = jest.requireActual('../access/prompt-tokens');
  return { ...actual, exactTokens: jest.fn(actual.exactTokens) };
});
const { exactTokens } = jest.requireActual<typeof promptTokens>('../access/prompt-tokens');
const counting = promptTokens.exactTokens as jest.MockedFunction<typeof promptTokens.exactTokens>;
/** UTF-8 bytes the limits had tokenized since the last call. */
function bytesTokenized(): number {
  const bytes = counting.mock.calls.reduce((sum, [text]) => sum + Buffer.byteLength(text, 'utf8'), 0);
  counting.mockClear();
  return bytes;
}

const model = (id: string, upstream: string, maxInputTokens?: number) => ({ id, capabilities: ['embeddings'], maxInputTokens, deployments: [{ model: upstream }] });
const limits = new EmbeddingInputLimits({
  models: [model('small', 'text-embedding-3-small'), model('gem', 'gemini-embedding-001'), model('own', 'my-model', 5), model('unknown', 'my-model')],
  routing: { aliases: { both: { models: ['small', 'gem'] }, open: { models: ['small', 'unknown'] } } },
} as never);
const request = (model: string, texts: string[], tokenInputs: number[][] = []) => chatv1.EmbeddingRequest.fromPartial({ model, texts, tokenInputs: tokenInputs.map((ids) => ({ ids })) });

describe('EmbeddingInputLimits', () => {
  it('knows the providers’ limits, takes a configured one, and an alias’s smallest', () => {
    expect(limits.limitFor('small')).toBe(8192);
    expect(limits.limitFor('gem')).toBe(2048);
    expect(limits.limitFor('own')).toBe(5);
    expect(limits.limitFor('both')).toBe(2048);
    expect(limits.limitFor('unknown')).toBeUndefined();
    expect(limits.limitFor('open')).toBeUndefined();
    expect(limits.limitFor('auto')).toBeUndefined();
  });

  it('refuses the first input over the limit with context_length_exceeded naming it', () => {
    const refusal = (() => {
      try {
        limits.check(request('gem', ['short', 'word '.repeat(2_100)]));
      } catch (error) {
        return error as GatewayError;
      }
      return undefined;
    })();
    expect(refusal).toMatchObject({ kind: 'context_length_exceeded', param: 'input', code: 'context_length_exceeded' });
    expect(refusal?.message).toMatch(/maximum context length is 2048 tokens per input, however input 1 has 21\d\d tokens/);
  });

  it('counts token-array inputs by their length and passes inputs within the limit', () => {
    expect(() => limits.check(request('own', [], [[1, 2, 3, 4, 5]]))).not.toThrow();
    expect(() => limits.check(request('own', [], [[1], [1, 2, 3, 4, 5, 6]]))).toThrow(/input 1 has 6 tokens/);
    expect(() => limits.check(request('gem', ['word '.repeat(1_000)]))).not.toThrow();
  });

  it('takes a character that tokenizes to several tokens at its count: 2,048 of U+0807 are 6,144 tokens, not 2,048', () => {
    const text = '\u0807'.repeat(2_048);
    expect(text.length).toBe(2_048);
    expect(() => limits.check(request('gem', [text]))).toThrow(/input 0 has 6144 tokens/);
    // Hangul syllables: two tokens each when they do not merge.
    const hangul = Array.from({ length: 1_500 }, (_, i) => String.fromCharCode(0xac00 + ((i * 7919) % 11_172))).join('');
    expect(exactTokens(hangul)).toBeGreaterThan(2_048);
    expect(() => limits.check(request('gem', [hangul]))).toThrow(GatewayError);
  });

  it('never tokenizes an input of no more UTF-8 bytes than the limit', () => {
    bytesTokenized();
    limits.check(request('gem', Array.from({ length: 500 }, () => 'a'.repeat(2_048))));
    expect(bytesTokenized()).toBe(0);
  });

  it('judges a huge input by its start, and tokenizes at most its budget in one request', () => {
    bytesTokenized();
    const huge = 'word '.repeat(2_000_000);
    expect(() => limits.check(request('gem', [huge]))).toThrow(/input 0 has at least \d+ tokens/);
    expect(bytesTokenized()).toBeLessThanOrEqual(2_048 * 16);
    // Two thousand inputs that each fit, each longer in bytes than the limit: counted until the budget is spent.
    const fits = Array.from({ length: 2_000 }, (_, i) => `entry ${i}: ${'lorem ipsum dolor sit amet '.repeat(150)}`);
    expect(() => limits.check(request('gem', fits))).not.toThrow();
    const spent = bytesTokenized();
    expect(spent).toBeGreaterThan(EXACT_INPUT_BYTES / 2);
    expect(spent).toBeLessThanOrEqual(EXACT_INPUT_BYTES);
  });
});

describe('prefixOf', () => {
  const texts = {
    prose: 'The quick brown fox jumps over the lazy dog. '.repeat(400),
    code: 'const x = await fetch(url, { method: "POST" }); // isn\'t it 12345678 \n'.repeat(300),
    mixed: '日本語の文章 and English, 한국어 텍스트 ... émoji 👩‍💻 x '.repeat(300),
    punctuation: '!!?? ... ;; -- ++ ** '.repeat(600),
  };

  it.each(Object.entries(texts))('cuts %s where the tokenizer splits: the two parts count the whole’s tokens exactly', (_name, text) => {
    for (const maxBytes of [3_000, 5_001, 7_777]) {
      const prefix = prefixOf(text, maxBytes);
      if (prefix === undefined) throw new Error('expected a place to cut');
      expect(Buffer.byteLength(prefix, 'utf8')).toBeLessThanOrEqual(maxBytes);
      expect(text[prefix.length]).toBe(' ');
      expect(exactTokens(prefix) + exactTokens(text.slice(prefix.length))).toBe(exactTokens(text));
    }
  });

  it('finds no place to cut in a run without spaces', () => {
    expect(prefixOf('x'.repeat(20_000), 10_000)).toBeUndefined();
  });
});
