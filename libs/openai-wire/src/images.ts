import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { badRequest, extraJson, type JsonObject, mergeExtra, opt, paramOf, validate } from './validation';

/** The longest prompt OpenAI takes (its GPT Image models'; DALL·E's are shorter, and the provider says so itself). */
export const MAX_IMAGE_PROMPT_CHARS = 32_000;
/** The most images one request may ask for, as OpenAI documents `n`. */
export const MAX_IMAGES_PER_REQUEST = 10;

const imageGenerationBody = z.looseObject({
  prompt: z.string().min(1).max(MAX_IMAGE_PROMPT_CHARS),
  model: z.string().nullish(),
  n: z.int().min(1).max(MAX_IMAGES_PER_REQUEST).nullish(),
  response_format: z.enum(['url', 'b64_json']).nullish(),
  user: z.string().nullish(),
  stream: z.boolean().nullish(),
});
const REQUEST_KEYS: ReadonlySet<string> = new Set(Object.keys(imageGenerationBody.shape));

/**
 * A client's image generation body (`POST /v1/images/generations`) as the canonical request. A
 * missing model is `''` (the caller picks the default). Parameters the gateway does not read
 * (`size`, `quality`, `background`, `output_format`, `style`, `moderation`…) travel as they are;
 * a streamed generation (`stream: true`) is refused by name.
 */
export function parseImageGenerationRequest(body: unknown): chatv1.ImageGenerationRequest {
  const b = validate(imageGenerationBody, body);
  if (b.stream === true) throw badRequest("'stream' is not supported by this gateway: streamed image generation is not served.", 'stream', 'unsupported_parameter');
  return {
    model: b.model ?? '',
    prompt: b.prompt,
    n: opt(b.n),
    responseFormat: opt(b.response_format),
    user: opt(b.user),
    extraJson: extraJson(b, REQUEST_KEYS),
  };
}

/** The canonical request as an OpenAI-compatible provider's body (Azure OpenAI's too). */
export function toOpenAIImageGenerationBody(request: chatv1.ImageGenerationRequest, upstreamModel: string, options: { dropParams?: readonly string[] } = {}): JsonObject {
  const out: JsonObject = { model: upstreamModel, prompt: request.prompt };
  if (request.n !== undefined) out['n'] = request.n;
  if (request.responseFormat !== undefined) out['response_format'] = request.responseFormat;
  if (request.user !== undefined) out['user'] = request.user;
  const body = mergeExtra(out, request.extraJson);
  // The provider's dropParams, as on chat and embeddings; `model` and `prompt` are the request itself.
  for (const key of options.dropParams ?? []) if (key !== 'model' && key !== 'prompt') delete body[key];
  return body;
}

const count = z.int().min(0);
const generatedImage = z
  .looseObject({ b64_json: z.string().nullish(), url: z.string().nullish(), revised_prompt: z.string().nullish() })
  .refine((image) => typeof image.b64_json === 'string' || typeof image.url === 'string', 'expected an image with b64_json or url');
// GPT Image reports `input_tokens` / `output_tokens`; a compatible server may use the chat names.
const imageUsage = z.looseObject({
  input_tokens: count.nullish(),
  output_tokens: count.nullish(),
  total_tokens: count.nullish(),
  prompt_tokens: count.nullish(),
  completion_tokens: count.nullish(),
});
const imageGenerationResponse = z.looseObject({
  created: z.number().nullish(),
  data: z.array(generatedImage),
  usage: imageUsage.nullish(),
});
// Azure's content-filter annotations are left out, as on chat.
const RESPONSE_KEYS: ReadonlySet<string> = new Set([...Object.keys(imageGenerationResponse.shape), 'prompt_filter_results']);

/**
 * A provider's image generation answer: every image as `b64_json` or `url` with its
 * `revised_prompt` (DALL·E 3), the other top-level fields (`background`, `output_format`,
 * `quality`, `size`) kept as they are (Azure's `prompt_filter_results` is not). Usage is the provider's when it reports any (GPT Image:
 * input tokens as prompt tokens, output tokens as completion tokens), else undefined (DALL·E):
 * the adapter estimates it then.
 */
export function parseOpenAIImageGenerationResponse(json: unknown): chatv1.ImageGenerationResponse {
  const parsed = imageGenerationResponse.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${paramOf(issue.path)}: ` : '';
    throw new GatewayError('upstream_error', `The provider returned a malformed image generation (${where}${lowerFirst(issue?.message ?? 'invalid')}).`);
  }
  const r = parsed.data;
  return {
    created: typeof r.created === 'number' && Number.isFinite(r.created) ? Math.trunc(r.created) : 0,
    data: r.data.map((image) => ({ b64Json: opt(image.b64_json), url: opt(image.url), revisedPrompt: opt(image.revised_prompt) })),
    usage: usageOf(r.usage),
    extraJson: extraJson(r, RESPONSE_KEYS),
  };
}

function usageOf(usage: z.infer<typeof imageUsage> | null | undefined): chatv1.Usage | undefined {
  if (!usage) return undefined;
  const input = usage.input_tokens ?? usage.prompt_tokens;
  const output = usage.output_tokens ?? usage.completion_tokens;
  if (input == null && output == null && usage.total_tokens == null) return undefined;
  const promptTokens = input ?? 0;
  const completionTokens = output ?? 0;
  const totalTokens = usage.total_tokens ?? promptTokens + completionTokens;
  return { promptTokens, completionTokens, totalTokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };
}

/**
 * The canonical answer in OpenAI's shape: `{created, data, usage?, …}` with the provider's other
 * top-level fields. OpenAI's image answer names no model (`model` is taken for symmetry with the
 * other writers and left out), and carries usage only when the provider reported it: the
 * gateway's estimate for a model that reports none (DALL·E) is its own metering, not the
 * provider's answer. A generation's input is its text prompt, so all input tokens are text tokens.
 */
export function toOpenAIImageGenerationResponse(response: chatv1.ImageGenerationResponse, _model?: string): JsonObject {
  const out: JsonObject = { created: response.created, data: response.data.map(imageBody) };
  const usage = response.usage;
  if (usage && !usage.estimated) {
    out['usage'] = {
      input_tokens: usage.promptTokens,
      input_tokens_details: { text_tokens: usage.promptTokens, image_tokens: 0 },
      output_tokens: usage.completionTokens,
      total_tokens: usage.totalTokens,
    };
  }
  const body = mergeExtra(out, response.extraJson);
  delete body['model'];
  return body;
}

function imageBody(image: chatv1.GeneratedImage): JsonObject {
  const out: JsonObject = {};
  if (image.b64Json !== undefined) out['b64_json'] = image.b64Json;
  if (image.url !== undefined) out['url'] = image.url;
  if (image.revisedPrompt !== undefined) out['revised_prompt'] = image.revisedPrompt;
  return out;
}

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);
