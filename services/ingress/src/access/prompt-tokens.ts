import { createHash, randomBytes } from 'node:crypto';
import { countTokens } from 'gpt-tokenizer';
import { imageEditInputCount, isAudioUpload } from '@openrouter/openai-wire';
import { estimatedTokens } from '@openrouter/usage';

const PER_MESSAGE_OVERHEAD = 4;
/**
 * Prompt tokens an image part counts for on a model that declares no `imageTokens`: the most an
 * image costs under the usual formulas — OpenAI's tiles (gpt-4o: 85 + 170 a 512-px tile, at most
 * 8 tiles: 1,445), Anthropic's pixels (a larger image is scaled down to about 1,600 tokens),
 * Gemini 2's 258 a 768-px tile (six tiles, a 2304×1536 image, fit). Above it, budgets would be
 * under-reserved: models priced higher declare theirs (gpt-4o-mini: 2,833 + 5,667 a tile, up to
 * 48,169; OpenAI's patch-priced models up to 3,779).
 */
export const DEFAULT_IMAGE_TOKENS = 1_600;

/** What an image part counts for: any image `max`, one sent with `detail: "low"` `low` (unset: `max`). */
export interface ImageCost {
  max: number;
  low?: number | undefined;
}

const DEFAULT_IMAGE_COST: ImageCost = { max: DEFAULT_IMAGE_TOKENS };
/**
 * Audio parts are counted by the size of their base64 payload, never decoded: 16 base64 characters
 * (12 bytes) a token. Providers bill audio by its duration (OpenAI about 10 tokens a second,
 * Gemini 32); the densest audio they take, MP3 at 8 kb/s, is 1,000 bytes a second, 31 bytes a
 * Gemini token, so this counts any audio at least 2.5 times over (uncompressed WAV 100 times).
 */
export const AUDIO_BASE64_CHARS_PER_TOKEN = 16;
/**
 * File parts (PDFs) by the size of their base64 payload: 4 characters (3 bytes) a token, the rate
 * of ASCII text. Providers bill a PDF's text plus an image of each page; ordinary documents take
 * several kilobytes a page, which this counts above what they bill.
 */
export const FILE_BASE64_CHARS_PER_TOKEN = 4;
/**
 * UTF-8 bytes of text tokenized exactly per request; the rest is estimated. Tokenizing costs up to
 * about 2 µs a byte (random CJK, emoji, base64), so this bounds one request's work to a few tens
 * of milliseconds; ordinary prose costs a tenth of that.
 */
export const EXACT_BYTES = 8_192;
/**
 * Runs of letters (or of anything without whitespace) are one piece for the tokenizer, and its
 * cost on a piece grows faster than the piece's length: long runs are counted in slices of this
 * many characters. For letters a boundary can only add a token; a sliced run of whitespace may
 * count a token or two fewer (measured: CJK prose +0.3%, 1,000 spaces before a word −2 of 138).
 */
export const SLICE_CHARS = 256;
const LONG_RUN = new RegExp(`\\S{${SLICE_CHARS + 1},}|\\s{${SLICE_CHARS + 1},}`, 'g');

interface Budget {
  exactBytes: number;
}

/** A request's prompt without its images, and its image parts: what an image costs depends on the model. */
interface Counted {
  tokens: number;
  images: Images;
}

/** Image parts found, those sent with `detail: "low"` apart. */
interface Images {
  any: number;
  low: number;
}

const counted = new WeakMap<object, Counted>();
/** A prompt may quote strings like "<|endoftext|>": they count as plain text (the tokenizer would throw). */
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/**
 * An estimate of a request's prompt tokens before the call, for token rate limits and budget
 * reservations; corrected by the real usage afterwards. Reads everything of chat `messages` a
 * provider reads as input (text, images, audio and files, names, refusals, the tool calls and
 * legacy function calls of earlier turns), `tools` and legacy `functions`, a structured output's
 * schema (`response_format`), legacy `prompt` and embeddings `input`, and the images an image
 * edit's form uploads. Each image part or uploaded image counts for `images` (the model's
 * `imageTokens`; unset: {@link DEFAULT_IMAGE_TOKENS}).
 */
export function countPromptTokens(body: unknown, images: ImageCost | (() => ImageCost) = DEFAULT_IMAGE_COST): number {
  if (typeof body !== 'object' || body === null) return 0;
  // Rate limits, budgets and metering all ask for the same body: count it once.
  let known = counted.get(body);
  if (known === undefined) counted.set(body, (known = count(body)));
  if (known.images.any === 0) return known.tokens;
  // The image cost may take a look through the catalog: only for a body that has images.
  const cost = typeof images === 'function' ? images() : images;
  const low = known.images.low;
  return known.tokens + (known.images.any - low) * cost.max + low * (cost.low ?? cost.max);
}

function count(body: object): Counted {
  const budget: Budget = { exactBytes: EXACT_BYTES };
  const images: Images = { any: 0, low: 0 };
  const record = body as Record<string, unknown>;
  let tokens = 0;
  if (Array.isArray(record['messages'])) {
    for (const message of record['messages']) {
      tokens += PER_MESSAGE_OVERHEAD;
      if (isRecord(message)) tokens += messageTokens(message, budget, images);
    }
  }
  tokens += contentTokens(record['prompt'], budget, images) + contentTokens(record['input'], budget, images);
  tokens += jsonTokens(record['tools'], budget) + jsonTokens(record['functions'], budget);
  // A structured output's schema is input too: OpenAI reads it, Anthropic and Bedrock get it as a tool.
  const format = record['response_format'];
  if (isRecord(format)) tokens += jsonTokens(format['json_schema'] ?? format['schema'], budget);
  // An image edit's uploaded images are input images, as a chat's image parts are; their bytes are never text.
  images.any += imageEditInputCount(body);
  return { tokens, images };
}

/**
 * Tokens of a value a provider reads as JSON (tool definitions). A file of a multipart form (an
 * audio upload, whatever its field) is bytes, never text: serialised, its bytes would be counted
 * as digits, ten characters a byte.
 */
function jsonTokens(value: unknown, budget: Budget): number {
  if (value === undefined || isAudioUpload(value) || ArrayBuffer.isView(value)) return 0;
  return textTokens(JSON.stringify(value), budget);
}

/**
 * Tokens of one plain text a provider reads (an audio request's `prompt` hint, the text to speak),
 * as a request's prompt is counted: the first {@link EXACT_BYTES} tokenized exactly, the rest estimated.
 */
export function countTextTokens(text: string): number {
  return textTokens(text, { exactBytes: EXACT_BYTES });
}

/**
 * A message's content and everything else of it a provider reads: its name, a refusal, and an
 * assistant turn's tool calls (`tool_calls`) or legacy `function_call`, whose arguments can be
 * far longer than any text of the conversation.
 */
function messageTokens(message: Record<string, unknown>, budget: Budget, images: Images): number {
  let tokens = contentTokens(message['content'], budget, images) + stringTokens(message['name'], budget) + stringTokens(message['refusal'], budget);
  const calls = message['tool_calls'];
  if (Array.isArray(calls)) for (const call of calls) if (isRecord(call)) tokens += functionTokens(call['function'], budget);
  return tokens + functionTokens(message['function_call'], budget);
}

function functionTokens(call: unknown, budget: Budget): number {
  return isRecord(call) ? stringTokens(call['name'], budget) + stringTokens(call['arguments'], budget) : 0;
}

function stringTokens(value: unknown, budget: Budget): number {
  return typeof value === 'string' ? textTokens(value, budget) : 0;
}

/** A base64 payload by its length (see AUDIO_BASE64_CHARS_PER_TOKEN): never decoded nor scanned. */
function payloadTokens(data: unknown, charsPerToken: number): number {
  return typeof data === 'string' ? Math.ceil(data.length / charsPerToken) : 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Tokens of a content (text, parts); its image parts are counted in `images`, not in the tokens. */
function contentTokens(content: unknown, budget: Budget, images: Images): number {
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
      else if (p['type'] === 'image_url') countImage(p['image_url'], images);
      else if (p['type'] === 'input_audio') tokens += isRecord(p['input_audio']) ? payloadTokens(p['input_audio']['data'], AUDIO_BASE64_CHARS_PER_TOKEN) : 0;
      else if (p['type'] === 'file') tokens += isRecord(p['file']) ? payloadTokens(p['file']['file_data'], FILE_BASE64_CHARS_PER_TOKEN) + stringTokens(p['file']['filename'], budget) : 0;
      else tokens += stringTokens(p['refusal'], budget);
    }
  }
  return tokens;
}

function countImage(image: unknown, images: Images): void {
  images.any++;
  if (isRecord(image) && image['detail'] === 'low') images.low++;
}

function textTokens(text: string, budget: Budget): number {
  return longTexts.count(text, budget);
}

/** Tokens of a text as the tokenizer counts them, long runs in slices (see SLICE_CHARS). */
export function exactTokens(text: string): number {
  // Too short to hold a long run: no scan needed (most messages).
  if (text.length <= SLICE_CHARS) return countTokens(text, PLAIN_TEXT);
  let tokens = 0;
  let from = 0;
  for (const run of text.matchAll(LONG_RUN)) {
    if (run.index > from) tokens += countTokens(text.slice(from, run.index), PLAIN_TEXT);
    const end = run.index + run[0].length;
    for (let i = run.index; i < end; ) {
      let j = Math.min(i + SLICE_CHARS, end);
      // Never split a surrogate pair: half a character would count as two bad bytes.
      if (j < end && isHighSurrogate(text.charCodeAt(j - 1))) j--;
      tokens += countTokens(text.slice(i, j), PLAIN_TEXT);
      i = j;
    }
    from = end;
  }
  if (from < text.length) tokens += countTokens(text.slice(from), PLAIN_TEXT);
  return tokens;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code < 0xdc00;
}

/**
 * Token counts of long texts, remembered by a salted digest. A conversation resends every earlier
 * message with each turn and applications repeat their system prompts, so the same long texts come
 * back request after request; a digest costs about a twentieth of tokenizing them, so a remembered
 * count is not charged to the request's exact budget. Short texts are tokenized each time (cheaper
 * than the digest). Only digests are kept, never text: the salt is random per process, so they
 * cannot be matched against the digest of a guessed prompt. Estimates are never remembered.
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

  /** Counts exactly while `budget` (UTF-8 bytes) lasts, charging it; estimates beyond it. */
  count(text: string, budget: Budget = { exactBytes: Number.POSITIVE_INFINITY }): number {
    if (text.length < this.minChars) return charge(text, budget) ? exactTokens(text) : estimatedTokens(text);
    const key = createHash('sha256').update(this.salt).update(text).digest('base64');
    const known = this.counts.get(key);
    if (known !== undefined) {
      this.hits++;
      // Most recently used last: the first entry is the one to evict.
      this.counts.delete(key);
      this.counts.set(key, known);
      return known;
    }
    if (!charge(text, budget)) return estimatedTokens(text);
    this.misses++;
    const tokens = exactTokens(text);
    if (this.counts.size >= this.capacity) this.counts.delete(this.counts.keys().next().value as string);
    this.counts.set(key, tokens);
    return tokens;
  }
}

function charge(text: string, budget: Budget): boolean {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > budget.exactBytes) return false;
  budget.exactBytes -= bytes;
  return true;
}

const longTexts = new TextTokenCounter();
