import type * as Tokenizer from 'gpt-tokenizer';
import type { chatv1 } from '@openrouter/contracts';

const PER_MESSAGE_OVERHEAD = 4;
// Prompts may hold strings like "<|endoftext|>"; they count as plain text.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/**
 * Tokens of `text` by the gateway's own tokenizer (o200k). Gemini's tokenizer differs, so
 * counts made here are marked `estimated`; they stand in only where Gemini reports none.
 */
export function countTextTokens(text: string): number {
  return text === '' ? 0 : tokenizer().encode(text, PLAIN_TEXT).length;
}

let loaded: typeof Tokenizer | undefined;

/**
 * The tokenizer's tables take ~65 MB resident: they are loaded when a count is first needed (a
 * Gemini answer without usage), not by every adapter that merely includes the Gemini family.
 */
function tokenizer(): typeof Tokenizer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- deliberately loaded on first use
  loaded ??= require('gpt-tokenizer') as typeof Tokenizer;
  return loaded;
}

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
