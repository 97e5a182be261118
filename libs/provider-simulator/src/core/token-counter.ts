import { decode, encode } from 'gpt-tokenizer/cjs/encoding/o200k_base';

/**
 * Prompt accounting, documented so callers can predict `prompt_tokens`:
 *   prompt_tokens = PROMPT_REPLY_PRIMING_TOKENS
 *                 + Σ over messages (PROMPT_TOKENS_PER_MESSAGE + tokens(every text of the message))
 * where a message's texts are its content text parts, its `name`, and the name and
 * arguments of any tool calls it carries. Tool definitions are not counted.
 * The constants follow OpenAI's published chat-format estimate (3 per message, 3 for priming).
 */
export const PROMPT_TOKENS_PER_MESSAGE = 3;
export const PROMPT_REPLY_PRIMING_TOKENS = 3;

// User text may legitimately contain strings like "<|endoftext|>"; count them as plain text.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

const CACHE_LIMIT = 512;
const CACHE_MIN_LENGTH = 256;
// Benchmarks replay the same long system prompts; BPE over them dominates the hot path.
const longTextCache = new Map<string, number>();

export function countTokens(text: string): number {
  if (text.length === 0) return 0;
  if (text.length < CACHE_MIN_LENGTH) return encode(text, PLAIN_TEXT).length;
  const cached = longTextCache.get(text);
  if (cached !== undefined) return cached;
  const count = encode(text, PLAIN_TEXT).length;
  if (longTextCache.size >= CACHE_LIMIT) {
    const oldest = longTextCache.keys().next();
    if (!oldest.done) longTextCache.delete(oldest.value);
  }
  longTextCache.set(text, count);
  return count;
}

/** The o200k_base token ids of `text` (special-token strings count as plain text). */
export function tokenIds(text: string): number[] {
  return text.length === 0 ? [] : encode(text, PLAIN_TEXT);
}

export function countPromptTokens(messages: readonly (readonly string[])[]): number {
  let total = PROMPT_REPLY_PRIMING_TOKENS;
  for (const texts of messages) {
    total += PROMPT_TOKENS_PER_MESSAGE;
    for (const text of texts) total += countTokens(text);
  }
  return total;
}

/**
 * Splits text into pieces that each decode from whole tokens: one token per piece, except
 * where a multi-byte character spans tokens (those tokens stay together so no piece is
 * broken UTF-8). Returns the token count alongside.
 */
export function splitIntoTokenPieces(text: string): { pieces: string[]; tokenCount: number } {
  const tokens = encode(text, PLAIN_TEXT);
  const pieces: string[] = [];
  let pending: number[] = [];
  for (const token of tokens) {
    pending.push(token);
    const piece = decode(pending);
    if (piece.endsWith('\uFFFD') && pending.length < 4) continue;
    pieces.push(piece);
    pending = [];
  }
  if (pending.length > 0) pieces.push(decode(pending));
  return { pieces, tokenCount: tokens.length };
}

export function isSingleToken(text: string): boolean {
  return encode(text, PLAIN_TEXT).length === 1;
}
