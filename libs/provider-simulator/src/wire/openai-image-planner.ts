import { countTokens } from '../core/token-counter';
import type { ImageGenerationRequest, RequestProblem } from './openai-request-schemas';

/** OpenAI's image model families, each with its own sizes, qualities, prompt limit and answer. */
export type ImageModelFamily = 'dall-e-2' | 'dall-e-3' | 'gpt-image';

/** OpenAI's default image model, answered when the request names none. */
export const DEFAULT_IMAGE_MODEL = 'dall-e-2';

/**
 * The family of a model (or Azure deployment) name: `gpt-image*` and `chatgpt-image*` are GPT
 * Image, `dall-e-3*` is DALL·E 3, anything else is answered as DALL·E 2.
 */
export function imageModelFamily(model: string): ImageModelFamily {
  if (/^(gpt-image|chatgpt-image)/i.test(model)) return 'gpt-image';
  if (/^dall-e-3/i.test(model)) return 'dall-e-3';
  return 'dall-e-2';
}

const PROMPT_LIMIT: Readonly<Record<ImageModelFamily, number>> = { 'dall-e-2': 1000, 'dall-e-3': 4000, 'gpt-image': 32_000 };
const SIZES: Readonly<Record<ImageModelFamily, readonly string[]>> = {
  'dall-e-2': ['256x256', '512x512', '1024x1024'],
  'dall-e-3': ['1024x1024', '1792x1024', '1024x1792'],
  'gpt-image': ['1024x1024', '1536x1024', '1024x1536', 'auto'],
};
const QUALITIES: Readonly<Record<ImageModelFamily, readonly string[]>> = {
  'dall-e-2': ['standard', 'auto'],
  'dall-e-3': ['standard', 'hd', 'auto'],
  'gpt-image': ['low', 'medium', 'high', 'auto'],
};

/**
 * GPT Image's output tokens per image by quality and size: OpenAI's published figures for
 * `gpt-image-1`. `auto` size is 1024x1024 and `auto` quality is medium. A size of `gpt-image-2`'s
 * own (`WIDTHxHEIGHT`) costs the square figure scaled by its pixel count.
 */
export const GPT_IMAGE_OUTPUT_TOKENS: Readonly<Record<'low' | 'medium' | 'high', Readonly<Record<string, number>>>> = {
  low: { '1024x1024': 272, '1024x1536': 408, '1536x1024': 400 },
  medium: { '1024x1024': 1056, '1024x1536': 1584, '1536x1024': 1568 },
  high: { '1024x1024': 4160, '1024x1536': 6240, '1536x1024': 6208 },
};

export interface ImagePlan {
  family: ImageModelFamily;
  n: number;
  format: 'url' | 'b64_json';
  /** The size and quality the answer reports (`auto` resolved). */
  size: string;
  quality: string;
  /** DALL·E 3's rewrite of the prompt; undefined for the other families. */
  revisedPrompt: string | undefined;
  /** GPT Image only: what its answer's `usage` reports. */
  usage: { inputTokens: number; outputTokens: number } | undefined;
}

export type ImagePlanResult = { ok: true; plan: ImagePlan } | { ok: false; problem: RequestProblem };

const problem = (message: string, param: string | null, code: string | null): ImagePlanResult => ({ ok: false, problem: { message, param, code } });

const quoted = (values: readonly string[]): string => {
  const items = values.map((v) => `'${v}'`);
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')}, and ${items[items.length - 1] ?? ''}`;
};

/** Applies OpenAI's per-model rules to a schema-valid request and plans the answer. */
export function planImageGeneration(request: ImageGenerationRequest, model: string): ImagePlanResult {
  const family = imageModelFamily(model);
  if (request.stream === true) return problem('Streamed image generation is not simulated.', 'stream', 'unsupported_parameter');
  const limit = PROMPT_LIMIT[family];
  if (request.prompt.length > limit) {
    return problem(
      `Invalid 'prompt': string too long. Expected a string with maximum length ${limit}, but got a string with length ${request.prompt.length} instead.`,
      'prompt',
      'string_above_max_length',
    );
  }
  if (family === 'gpt-image' && request.response_format != null) return problem("Unknown parameter: 'response_format'.", 'response_format', 'unknown_parameter');
  const n = request.n ?? 1;
  if (family === 'dall-e-3' && n !== 1) return problem('You must provide n=1 for this model.', 'n', 'invalid_value');
  const size = resolveSize(family, model, request.size ?? undefined);
  if (size === undefined) {
    return problem(`Invalid value: '${request.size ?? ''}'. Supported values are: ${quoted(SIZES[family])}.`, 'size', 'invalid_value');
  }
  const asked = request.quality ?? 'auto';
  if (!QUALITIES[family].includes(asked)) return problem(`Invalid value: '${asked}'. Supported values are: ${quoted(QUALITIES[family])}.`, 'quality', 'invalid_value');
  const quality = asked !== 'auto' ? asked : family === 'gpt-image' ? 'medium' : 'standard';
  const format = family === 'gpt-image' ? 'b64_json' : (request.response_format ?? 'url');
  const revisedPrompt = family === 'dall-e-3' ? `${request.style === 'natural' ? 'A natural, true-to-life' : 'A vivid, detailed'} image of: ${request.prompt}` : undefined;
  const usage = family === 'gpt-image' ? { inputTokens: countTokens(request.prompt), outputTokens: n * gptImageOutputTokens(quality, size) } : undefined;
  return { ok: true, plan: { family, n, format, size, quality, revisedPrompt, usage } };
}

/** The size the answer is made at: one of the family's, `auto` as 1024x1024, or a `gpt-image-2` size of its own; undefined when the model takes no such size. */
function resolveSize(family: ImageModelFamily, model: string, asked: string | undefined): string | undefined {
  if (asked === undefined || asked === 'auto') return family === 'gpt-image' || asked === undefined ? '1024x1024' : undefined;
  if (SIZES[family].includes(asked)) return asked;
  if (/^gpt-image-2/i.test(model) && customSizeAllowed(asked)) return asked;
  return undefined;
}

/** `gpt-image-2`'s own sizes: edges divisible by 16, at most 3840, aspect between 1:3 and 3:1, at most 3840x2160's pixels. */
function customSizeAllowed(size: string): boolean {
  const match = /^(\d+)x(\d+)$/.exec(size);
  if (!match) return false;
  const width = Number(match[1]);
  const height = Number(match[2]);
  if (width <= 0 || height <= 0 || width % 16 !== 0 || height % 16 !== 0 || width > 3840 || height > 3840) return false;
  if (width > 3 * height || height > 3 * width) return false;
  return width * height <= 3840 * 2160;
}

export function gptImageOutputTokens(quality: string, size: string): number {
  const table = GPT_IMAGE_OUTPUT_TOKENS[quality as keyof typeof GPT_IMAGE_OUTPUT_TOKENS] ?? GPT_IMAGE_OUTPUT_TOKENS.medium;
  const listed = table[size];
  if (listed !== undefined) return listed;
  const [width = 1024, height = 1024] = size.split('x').map(Number);
  return Math.ceil(((table['1024x1024'] ?? 0) * width * height) / (1024 * 1024));
}
