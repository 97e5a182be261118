import { z } from 'zod';

/** The tokens a batch's answered lines used, as OpenAI's Batch object reports them (`usage`). */
export interface BatchTokens {
  input: number;
  cached: number;
  output: number;
  reasoning: number;
}

export const NO_TOKENS: BatchTokens = { input: 0, cached: 0, output: 0, reasoning: 0 };

const count = z.number().int().nonnegative().catch(0);
const answerUsage = z
  .object({
    usage: z
      .object({
        // Chat, legacy completions and embeddings name them prompt and completion tokens; the Responses API input and output tokens.
        prompt_tokens: count.optional(),
        completion_tokens: count.optional(),
        input_tokens: count.optional(),
        output_tokens: count.optional(),
        prompt_tokens_details: z.object({ cached_tokens: count.optional() }).nullish().catch(undefined),
        input_tokens_details: z.object({ cached_tokens: count.optional() }).nullish().catch(undefined),
        completion_tokens_details: z.object({ reasoning_tokens: count.optional() }).nullish().catch(undefined),
        output_tokens_details: z.object({ reasoning_tokens: count.optional() }).nullish().catch(undefined),
      })
      .nullish()
      .catch(undefined),
  })
  .catch({ usage: undefined });

/** The tokens of one answer, from the `usage` of its body, whichever API's shape it has (none: moderations). */
export function tokensOf(body: unknown): BatchTokens {
  const usage = answerUsage.parse(body).usage;
  if (!usage) return NO_TOKENS;
  return {
    input: usage.input_tokens ?? usage.prompt_tokens ?? 0,
    cached: usage.input_tokens_details?.cached_tokens ?? usage.prompt_tokens_details?.cached_tokens ?? 0,
    output: usage.output_tokens ?? usage.completion_tokens ?? 0,
    reasoning: usage.output_tokens_details?.reasoning_tokens ?? usage.completion_tokens_details?.reasoning_tokens ?? 0,
  };
}

export function addTokens(a: BatchTokens, b: BatchTokens): BatchTokens {
  return { input: a.input + b.input, cached: a.cached + b.cached, output: a.output + b.output, reasoning: a.reasoning + b.reasoning };
}

/** OpenAI's `usage` of a Batch object. */
export function toOpenAIBatchUsage(tokens: BatchTokens): {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
} {
  return {
    input_tokens: tokens.input,
    input_tokens_details: { cached_tokens: tokens.cached },
    output_tokens: tokens.output,
    output_tokens_details: { reasoning_tokens: tokens.reasoning },
    total_tokens: tokens.input + tokens.output,
  };
}
