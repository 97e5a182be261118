import type * as Tokenizer from 'gpt-tokenizer';

// Inputs may hold strings like "<|endoftext|>"; they count as plain text.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/**
 * Tokens of `text` by the gateway's own tokenizer (o200k). A provider's own tokenizer may differ,
 * so counts made here are marked `estimated`; they stand in only where a provider reports none.
 */
export function countTextTokens(text: string): number {
  return text === '' ? 0 : tokenizer().encode(text, PLAIN_TEXT).length;
}

let loaded: typeof Tokenizer | undefined;

/**
 * The tokenizer's tables take ~65 MB resident: they are loaded when a count is first needed (an
 * answer without usage), not by every adapter that merely includes a family that may need one.
 */
function tokenizer(): typeof Tokenizer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- deliberately loaded on first use
  loaded ??= require('gpt-tokenizer') as typeof Tokenizer;
  return loaded;
}
