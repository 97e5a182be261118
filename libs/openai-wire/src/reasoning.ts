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
 * vLLM), and the blocks, `thinking_blocks` (the Claude adapters; in a stream, see
 * `unseenBlocks`). Blocks of another shape are left out: they could not be handed back.
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

/**
 * The blocks of a streamed delta's `thinking_blocks` that are new. The Claude adapters send every
 * block so far each time (a client keeping the field's latest value, as the OpenAI SDK's stream
 * helper does, then has them all), so a list that starts with the blocks already `seen` brings
 * only its tail. Any other list is new blocks, as a server that sends each block once streams them.
 */
export function unseenBlocks(seen: readonly ThinkingBlock[], given: readonly ThinkingBlock[]): ThinkingBlock[] {
  const whole = given.length >= seen.length && seen.every((b, i) => sameBlock(b, given[i]));
  return whole ? given.slice(seen.length) : [...given];
}

function sameBlock(a: ThinkingBlock, b: ThinkingBlock | undefined): boolean {
  if (a.type === 'thinking') return b?.type === 'thinking' && a.thinking === b.thinking && a.signature === b.signature;
  return b?.type === 'redacted_thinking' && a.data === b.data;
}
