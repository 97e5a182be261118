import { createHash, randomBytes } from 'node:crypto';
import { countTokens } from 'gpt-tokenizer';

const PER_MESSAGE_OVERHEAD = 4;
const PER_IMAGE = 765;
/** Text beyond this many characters per request is estimated at 4 characters a token: exact counting costs CPU. */
const EXACT_CHARS = 32_000;

interface Budget {
  exactChars: number;
}

const counted = new WeakMap<object, number>();
/** A prompt may quote strings like "<|endoftext|>": they count as plain text (the tokenizer would throw). */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/**
 * An estimate of a request's prompt tokens before the call, for token rate limits; corrected
 * by the real usage afterwards. Reads chat `messages`, legacy `prompt` and embeddings `input`.
 */
export function countPromptTokens(body: unknown): number {
  if (typeof body !== 'object' || body === null) return 0;
  // Rate limits, budgets and metering all ask for the same body: count it once.
  const known = counted.get(body);
  if (known !== undefined) return known;
  const tokens = count(body);
  counted.set(body, tokens);
  return tokens;
}

function count(body: object): number {
  const budget = { exactChars: EXACT_CHARS };
  const record = body as Record<string, unknown>;
  let tokens = 0;
  if (Array.isArray(record['messages'])) {
    for (const message of record['messages']) {
      tokens += PER_MESSAGE_OVERHEAD;
      if (typeof message === 'object' && message !== null) tokens += contentTokens((message as Record<string, unknown>)['content'], budget);
    }
  }
  tokens += contentTokens(record['prompt'], budget) + contentTokens(record['input'], budget);
  if (record['tools'] !== undefined) tokens += textTokens(JSON.stringify(record['tools']), budget);
  return tokens;
}

function contentTokens(content: unknown, budget: Budget): number {
  if (typeof content === 'string') return textTokens(content, budget);
  if (!Array.isArray(content)) return 0;
  let tokens = 0;
  for (const part of content) {
    if (typeof part === 'string') tokens += textTokens(part, budget);
    else if (typeof part === 'number') tokens += 1;
    else if (Array.isArray(part)) tokens += part.length;
    else if (typeof part === 'object' && part !== null) {
      const p = part as Record<string, unknown>;
      if (typeof p['text'] === 'string') tokens += textTokens(p['text'], budget);
      else if (p['type'] === 'image_url') tokens += PER_IMAGE;
    }
  }
  return tokens;
}

function textTokens(text: string, budget: Budget): number {
  if (text.length > budget.exactChars) return Math.ceil(text.length / 4);
  budget.exactChars -= text.length;
  return longTexts.count(text);
}

/**
 * Token counts of long texts, remembered by a salted digest. A conversation resends every earlier
 * message with each turn and applications repeat their system prompts, so the same long texts come
 * back request after request; a digest costs about a twentieth of tokenizing them. Short texts are
 * tokenized each time (cheaper than the digest). Only digests are kept, never text: the salt is
 * random per process, so they cannot be matched against the digest of a guessed prompt.
 */
export class TextTokenCounter {
  private readonly counts = new Map<string, number>();
  private readonly salt = randomBytes(16);
  hits = 0;
  misses = 0;

  constructor(
    private readonly minChars = 512,
    private readonly capacity = 4_096,
  ) {}

  count(text: string): number {
    if (text.length < this.minChars) return countTokens(text, PLAIN_TEXT);
    const key = createHash('sha256').update(this.salt).update(text).digest('base64');
    const known = this.counts.get(key);
    if (known !== undefined) {
      this.hits++;
      // Most recently used last: the first entry is the one to evict.
      this.counts.delete(key);
      this.counts.set(key, known);
      return known;
    }
    this.misses++;
    const tokens = countTokens(text, PLAIN_TEXT);
    if (this.counts.size >= this.capacity) this.counts.delete(this.counts.keys().next().value as string);
    this.counts.set(key, tokens);
    return tokens;
  }
}

const longTexts = new TextTokenCounter();
