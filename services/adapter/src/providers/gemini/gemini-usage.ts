import type { chatv1 } from '@openrouter/contracts';
import { countTextTokens } from '../text-tokens';

const PER_MESSAGE_OVERHEAD = 4;

/** An estimate of a chat request's prompt: every text part plus tool call names and arguments. */
export function estimatePromptTokens(r: chatv1.ChatRequest): number {
  let tokens = 0;
  for (const m of r.messages) {
    tokens += PER_MESSAGE_OVERHEAD;
    if (m.text !== undefined) tokens += countTextTokens(m.text);
    for (const p of m.parts?.parts ?? []) if (p.text !== undefined) tokens += countTextTokens(p.text);
    for (const c of m.toolCalls) tokens += countTextTokens(c.function?.name ?? '') + countTextTokens(c.function?.arguments ?? '');
  }
  return tokens;
}

export function estimatedUsage(promptTokens: number, completionTokens: number): chatv1.Usage {
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true };
}
