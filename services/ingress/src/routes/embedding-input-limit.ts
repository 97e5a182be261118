import { embeddingInputTokenLimit, type GatewayConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import type { chatv1 } from '@openrouter/contracts';
import { exactTokens } from '../access/prompt-tokens';

export const EMBEDDING_INPUT_LIMITS = Symbol('EMBEDDING_INPUT_LIMITS');

/**
 * The most tokens one embeddings input may hold, by the name a request gives: a model's limit
 * (`embeddingInputTokenLimit`), an alias the smallest of its embedding members' (the router may
 * call any of them). Gemini and Vertex AI truncate a longer input silently, so it is refused here,
 * as OpenAI refuses it, before the request reaches a provider (`EmbeddingInputGuard`).
 */
export class EmbeddingInputLimits {
  private readonly limits = new Map<string, number>();
  private readonly capable = new Set<string>();
  private readonly aliases: ReadonlyMap<string, { models: string[] }>;

  constructor(config: Pick<GatewayConfig, 'models' | 'routing'>) {
    for (const model of config.models) {
      if (!model.capabilities.includes('embeddings')) continue;
      this.capable.add(model.id);
      const limit = embeddingInputTokenLimit(model);
      if (limit !== undefined) this.limits.set(model.id, limit);
    }
    this.aliases = new Map(Object.entries(config.routing.aliases));
  }

  /** The limit for a requested name; undefined when none applies (`auto`, an unknown name, a model without one). */
  limitFor(name: string): number | undefined {
    // Own entries only, as the router reads names: a request naming `constructor` names no alias.
    const members = this.capable.has(name) ? [name] : (this.aliases.get(name)?.models.filter((id) => this.capable.has(id)) ?? []);
    const limits = members.map((id) => this.limits.get(id));
    // A member without a known limit takes any input: only a limit every member shares binds.
    if (limits.length === 0 || limits.some((l) => l === undefined)) return undefined;
    return Math.min(...(limits as number[]));
  }

  /**
   * Refuses (400 `context_length_exceeded`, `input`) the first input over the requested model's
   * limit. The work is bounded: inputs no longer in UTF-8 bytes than the limit are never
   * tokenized (a byte-level BPE token holds at least one byte, whereas one UTF-16 unit can be
   * three tokens), each longer input is tokenized at most up to {@link PREFIX_BYTES_PER_TOKEN}
   * bytes a token of the limit, and one request has at most {@link EXACT_INPUT_BYTES} tokenized
   * in all. An input the budget no longer reaches goes on unchecked, to the provider's own limit.
   */
  check(request: chatv1.EmbeddingRequest): void {
    const limit = this.limitFor(request.model);
    if (limit === undefined) return;
    for (const [index, input] of request.tokenInputs.entries()) {
      if (input.ids.length > limit) throw overLimit(limit, index, `${input.ids.length}`);
    }
    let budget = EXACT_INPUT_BYTES;
    for (const [index, text] of request.texts.entries()) {
      const bytes = Buffer.byteLength(text, 'utf8');
      if (bytes <= limit) continue;
      const counted = countWithin(text, bytes, limit, budget);
      if (!counted) continue;
      budget -= counted.bytes;
      if (counted.tokens > limit) throw overLimit(limit, index, counted.whole ? `${counted.tokens}` : `at least ${counted.tokens}`);
    }
  }
}

/**
 * UTF-8 bytes of embeddings input one request may have tokenized. Tokenizing costs from about
 * 0.1 µs a byte (prose) to about 2 µs (random CJK or punctuation, in inputs of a few kilobytes):
 * this keeps one request's work to some 25 ms of prose and half a second at worst, whatever its
 * size (a body may hold 10 MiB of inputs, which took 1 to 35 s to tokenize whole), and still
 * covers dozens of inputs near a 2,048-token limit.
 */
export const EXACT_INPUT_BYTES = 256 * 1024;

/**
 * An input of more bytes than this many a token of the limit is judged by its start alone: prose
 * takes about 4 bytes a token, so a start of that length over the limit shows the whole is over
 * without tokenizing a 10 MiB input to the end.
 */
export const PREFIX_BYTES_PER_TOKEN = 16;

/**
 * The tokens of `text` (`bytes` long) as far as `budget` and the prefix window let them be
 * counted: the whole (`whole`), else a prefix cut where the tokenizer itself splits, which holds
 * no more tokens than the same stretch of the whole; undefined when nothing could be counted.
 */
function countWithin(text: string, bytes: number, limit: number, budget: number): { tokens: number; bytes: number; whole: boolean } | undefined {
  const window = Math.min(limit * PREFIX_BYTES_PER_TOKEN, budget);
  if (bytes <= window) return { tokens: exactTokens(text), bytes, whole: true };
  // A prefix of no more bytes than the limit cannot hold more tokens than it.
  if (window <= limit) return undefined;
  const prefix = prefixOf(text, window);
  if (prefix === undefined) return undefined;
  return { tokens: exactTokens(prefix), bytes: Buffer.byteLength(prefix, 'utf8'), whole: false };
}

/** How far back from the end of the window a place to cut is looked for. */
const CUT_SEARCH_CHARS = 4_096;
const SPACE = /\s/;

/**
 * A start of `text` of at most `maxBytes` UTF-8 bytes that ends just before a single space between
 * two other characters (`word| word`). The tokenizers' pre-split (cl100k, o200k) always begins a
 * piece at such a space, and its pieces are counted apart: the prefix's tokens are the whole's
 * tokens up to there, never more, so a prefix over the limit proves the whole is. Undefined when
 * the window has no such place near its end (a run without spaces).
 */
export function prefixOf(text: string, maxBytes: number): string | undefined {
  // A UTF-16 unit takes 1 to 3 bytes: shrink the window until its bytes fit.
  let end = Math.min(text.length, maxBytes);
  for (let bytes = Buffer.byteLength(text.slice(0, end), 'utf8'); bytes > maxBytes; bytes = Buffer.byteLength(text.slice(0, end), 'utf8')) {
    end = Math.floor((end * maxBytes) / bytes);
  }
  for (let at = Math.min(end, text.length - 2); at > 0 && at >= end - CUT_SEARCH_CHARS; at--) {
    if (text[at] === ' ' && !SPACE.test(text[at - 1] ?? ' ') && !SPACE.test(text[at + 1] ?? ' ')) return text.slice(0, at);
  }
  return undefined;
}

function overLimit(limit: number, index: number, tokens: string): GatewayError {
  return new GatewayError('context_length_exceeded', `This model's maximum context length is ${limit} tokens per input, however input ${index} has ${tokens} tokens. Please reduce the length of the input.`, {
    param: 'input',
    code: 'context_length_exceeded',
  });
}
