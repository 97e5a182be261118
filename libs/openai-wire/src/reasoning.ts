import { z } from 'zod';
import { isObject } from './validation';

/**
 * A block of Claude's extended thinking as chat answers carry it (`thinking_blocks`) and a client
 * hands it back on its next tool turn (the Claude adapters check it the same way).
 */
export const thinkingBlock = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('thinking'), thinking: z.string(), signature: z.string().min(1) }),
  z.strictObject({ type: z.literal('redacted_thinking'), data: z.string().min(1) }),
]);
export type ThinkingBlock = z.infer<typeof thinkingBlock>;

/** An answer's reasoning: its text, and Claude's signed thinking blocks. */
export interface Reasoning {
  text: string;
  blocks: ThinkingBlock[];
}

export const NO_REASONING: Reasoning = { text: '', blocks: [] };

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Reasoning among a message's or delta's extra fields: the text, `reasoning_content` (DeepSeek,
 * vLLM, and what the Claude, Gemini and Bedrock adapters write) or `reasoning` (OpenRouter, newer
 * vLLM), and the blocks, `thinking_blocks` (the Claude adapters; a stream sends each whole once).
 * Blocks of another shape are left out: they could not be handed back.
 */
export function reasoningOf(extraJson: string): Reasoning {
  if (!extraJson.includes('"reasoning') && !extraJson.includes('"thinking_blocks"')) return NO_REASONING;
  let extra: unknown;
  try {
    extra = JSON.parse(extraJson);
  } catch {
    return NO_REASONING;
  }
  if (!isObject(extra)) return NO_REASONING;
  const text = str(extra['reasoning_content']) ?? str(extra['reasoning']) ?? '';
  const given = Array.isArray(extra['thinking_blocks']) ? extra['thinking_blocks'] : [];
  const blocks = given.flatMap((b) => {
    const parsed = thinkingBlock.safeParse(b);
    return parsed.success ? [parsed.data] : [];
  });
  return { text, blocks };
}
