import { addTokens, NO_TOKENS, tokensOf, toOpenAIBatchUsage } from './batch-usage';

describe('the tokens of a batch line', () => {
  it("reads chat, legacy completions' and embeddings' prompt and completion tokens, with the cached and reasoning ones", () => {
    expect(tokensOf({ usage: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42, prompt_tokens_details: { cached_tokens: 4 }, completion_tokens_details: { reasoning_tokens: 9 } } })).toEqual({ input: 12, cached: 4, output: 30, reasoning: 9 });
    expect(tokensOf({ object: 'list', usage: { prompt_tokens: 8, total_tokens: 8 } })).toEqual({ input: 8, cached: 0, output: 0, reasoning: 0 });
  });

  it("reads the Responses API's input and output tokens", () => {
    expect(tokensOf({ usage: { input_tokens: 5, output_tokens: 7, input_tokens_details: { cached_tokens: 2 }, output_tokens_details: { reasoning_tokens: 3 } } })).toEqual({ input: 5, cached: 2, output: 7, reasoning: 3 });
  });

  it('counts nothing for an answer without usage (moderations) and nothing it cannot read', () => {
    expect(tokensOf({ results: [] })).toEqual(NO_TOKENS);
    expect(tokensOf('text')).toEqual(NO_TOKENS);
    expect(tokensOf(null)).toEqual(NO_TOKENS);
    expect(tokensOf({ usage: { prompt_tokens: -1, completion_tokens: 'many', prompt_tokens_details: 'x' } })).toEqual(NO_TOKENS);
  });

  it("sums lines and writes OpenAI's usage of a batch", () => {
    const total = addTokens({ input: 1, cached: 0, output: 2, reasoning: 0 }, { input: 3, cached: 1, output: 4, reasoning: 2 });
    expect(toOpenAIBatchUsage(total)).toEqual({ input_tokens: 4, input_tokens_details: { cached_tokens: 1 }, output_tokens: 6, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 10 });
  });
});
