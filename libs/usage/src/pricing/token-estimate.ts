/**
 * How many tokens a text is estimated at where it is not tokenized: a long prompt past the exact
 * budget, an answer whose usage the provider never reported. One linear pass.
 */

/**
 * Runs without whitespace longer than this many characters are judged as a whole: base64 and hex
 * payloads, ids and hashes, minified data (MIME base64 breaks its lines at 76, a SHA-256 is 64).
 */
export const DENSE_RUN_CHARS = 32;
/**
 * A long run that looks random — letter case and digits alternating at least once every
 * {@link DENSE_CHANGE_EVERY} characters, as in base64 (once every 1.7) and hex (every 2.1), unlike
 * words, identifiers and minified JSON (its letters sit between quotes and punctuation) — is
 * counted at no less than one token per this many characters. Measured with this tokenizer
 * (characters a token): base64 1.46, hex 1.75, JSON lists of UUIDs 1.64, base32 1.55.
 */
export const DENSE_CHARS_PER_TOKEN = 1.4;
export const DENSE_CHANGE_EVERY = 4;

/** Character kinds of the estimate; only the first three count as changes within a run. */
const LOWER = 1;
const UPPER = 2;
const DIGIT = 3;
const SYMBOL = 4;
const TWO_BYTES = 5;
const THREE_BYTES = 6;
const SPACE = 0;

/** Tokens a character of each kind counts for, at the rates `estimatedTokens` documents. */
function tokensOf(kind: number): number {
  if (kind <= UPPER) return 1 / 4;
  if (kind <= SYMBOL) return 1 / 2;
  return kind === TWO_BYTES ? 2 / 3 : 1;
}

function kindOf(c: number): number {
  if (c >= 0x61 && c <= 0x7a) return LOWER;
  if (c >= 0x41 && c <= 0x5a) return UPPER;
  if (c >= 0x30 && c <= 0x39) return DIGIT;
  if (c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d) return SPACE;
  if (c < 0x80) return SYMBOL;
  // A surrogate pair is one 4-byte character: 2 per UTF-16 unit.
  return c < 0x800 || (c >= 0xd800 && c < 0xe000) ? TWO_BYTES : THREE_BYTES;
}

/** A run of characters without whitespace, as the estimate scans it. */
interface Run {
  chars: number;
  tokens: number;
  changes: number;
  last: number;
}

/** The tokens a finished run counts for (see DENSE_CHARS_PER_TOKEN), and the run emptied. */
function endRun(run: Run): number {
  let tokens = run.tokens;
  if (run.chars > DENSE_RUN_CHARS && run.changes * DENSE_CHANGE_EVERY >= run.chars) tokens = Math.max(tokens, run.chars / DENSE_CHARS_PER_TOKEN);
  run.chars = 0;
  run.tokens = 0;
  run.changes = 0;
  run.last = SPACE;
  return tokens;
}

/**
 * The estimate of a text beyond the exact budget: ASCII letters and whitespace at 4 characters a
 * token, other ASCII (digits, punctuation: the stuff of JSON, code and numbers) at 2, anything else
 * at 3 UTF-8 bytes a token; a long random-looking run without whitespace at no less than one token
 * per {@link DENSE_CHARS_PER_TOKEN} characters. One linear pass. Measured with this tokenizer
 * (tokens estimated ÷ real): base64 1.05 (0.43 before long runs were judged whole: 200 KB of it
 * counted 58,820 of 136,619), hex 1.26, JSON lists of UUIDs 1.18, minified JSON 1.1 (a flat 4
 * characters a token gave 0.7), minified JavaScript 1.15, code 0.75–1.2, English prose 1.5 (it runs
 * at 5–6 characters a token), prose with URLs 1.3; Japanese and Chinese prose 0.6–0.8 tokens a
 * character (estimated at 1), random CJK 1.9 (estimated at 1); Russian prose 7.7 bytes a token.
 * Still under-counted: random text without case changes or digits (random lowercase 0.48) and
 * random short words between spaces. Over rather than under: budgets reserve by it.
 */
export function estimatedTokens(text: string): number {
  return Math.ceil(estimatedTokenWeight(text));
}

/**
 * {@link estimatedTokens} before it is rounded up: the estimates of the pieces of one text (a
 * stream's deltas) add up to about the estimate of the whole, where rounding each would count a
 * token for every piece.
 */
export function estimatedTokenWeight(text: string): number {
  let tokens = 0;
  const run: Run = { chars: 0, tokens: 0, changes: 0, last: SPACE };
  for (let i = 0; i < text.length; i++) {
    const kind = kindOf(text.charCodeAt(i));
    if (kind === SPACE) {
      tokens += endRun(run) + tokensOf(SPACE);
      continue;
    }
    if (kind <= DIGIT && run.last !== SPACE && run.last <= DIGIT && kind !== run.last) run.changes++;
    run.last = kind;
    run.chars++;
    run.tokens += tokensOf(kind);
  }
  return tokens + endRun(run);
}
