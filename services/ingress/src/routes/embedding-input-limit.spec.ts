import { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { EmbeddingInputLimits } from './embedding-input-limit';

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
});
