import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { isAudioUpload, isFormBody, type AudioUpload } from './audio-upload';
import { badRequest, extraJson, isObject, type JsonObject, mergeExtra, MODEL_NAME_MAX, opt, paramOf, validate } from './validation';

/** The longest prompt OpenAI takes (its GPT Image models'; DALL·E's are shorter, and the provider says so itself). */
export const MAX_IMAGE_PROMPT_CHARS = 32_000;
/** The most images one request may ask for, as OpenAI documents `n`. */
export const MAX_IMAGES_PER_REQUEST = 10;

const imageGenerationBody = z.looseObject({
  prompt: z.string().min(1).max(MAX_IMAGE_PROMPT_CHARS),
  model: z.string().max(MODEL_NAME_MAX).nullish(),
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
    images: [],
  };
}

/** The most images one edit may upload, as OpenAI takes them for GPT Image (DALL·E 2 takes one, and says so itself). */
export const MAX_IMAGE_EDIT_INPUTS = 16;

/** The image formats an edit's images may be in (a mask: PNG alone), as OpenAI takes them. */
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
type ImageType = (typeof IMAGE_TYPES)[number];

/** A form field's integer in decimal digits (`n=2`) as a number; anything else is left for the schema to refuse by type. */
const formInteger = (schema: z.ZodNumber) => z.preprocess((v) => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v), schema);

const imageEditForm = z.looseObject({
  prompt: z.string().min(1).max(MAX_IMAGE_PROMPT_CHARS),
  model: z.string().max(MODEL_NAME_MAX).optional(),
  n: formInteger(z.int().min(1).max(MAX_IMAGES_PER_REQUEST)).optional(),
  response_format: z.enum(['url', 'b64_json']).optional(),
  user: z.string().optional(),
  // A form carries booleans as text, as OpenAI's SDKs write them.
  stream: z.enum(['true', 'false']).optional(),
});
/** The form fields the canonical request models; the files are read apart. */
const IMAGE_EDIT_KEYS: ReadonlySet<string> = new Set(['image', 'image[]', 'mask', ...Object.keys(imageEditForm.shape)]);

/**
 * A client's image edit form (`POST /v1/images/edits`) as the canonical request: an image
 * generation request with the images to edit. The body is the multipart form as ingress read it
 * (files as {@link AudioUpload}s, every other field as text, a field sent several times as a
 * list). The images come in `image` (one file, or several) or `image[]` (as OpenAI's SDKs send a
 * list), 1 to {@link MAX_IMAGE_EDIT_INPUTS} of them, each a non-empty PNG, JPEG or WebP file; the
 * optional `mask` is one PNG file. A file is an image when its media type says so or, failing
 * that (sent untyped, or as `application/octet-stream`), when its bytes do: it then travels under
 * the type its bytes tell, as a provider wants it named. `prompt` is
 * required; a missing `model` is `''` (the caller picks the default). The form's other fields
 * (`size`, `quality`, `background`, `input_fidelity`, `output_format`…) travel in `extraJson` as
 * their texts (a repeated field as a list of texts); a streamed edit (`stream=true`) is refused by
 * name.
 */
export function parseImageEditRequest(body: unknown): chatv1.ImageGenerationRequest {
  if (!isFormBody(body) || !isObject(body)) {
    throw new GatewayError('bad_request', "The request body must be multipart/form-data, with the images to edit in the 'image' field.", { param: 'image', code: 'invalid_content_type' });
  }
  const images = editImages(body);
  const mask = editMask(body['mask']);
  const f = validate(imageEditForm, body);
  if (f.stream === 'true') throw badRequest("'stream' is not supported by this gateway: streamed image edits are not served.", 'stream', 'unsupported_parameter');
  return {
    model: f.model ?? '',
    prompt: f.prompt,
    n: f.n,
    responseFormat: f.response_format,
    user: f.user,
    extraJson: editExtraJson(body),
    images,
    mask,
  };
}

/** The uploads an edit form holds in `image` and `image[]`, in that order (a field's value: one upload, a text, or a list). */
function imageFieldValues(body: Record<string, unknown>): unknown[] {
  const values: unknown[] = [];
  for (const name of ['image', 'image[]']) {
    const value = body[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) values.push(...(value as unknown[]));
    else values.push(value);
  }
  return values;
}

function editImages(body: Record<string, unknown>): chatv1.UploadedFile[] {
  const values = imageFieldValues(body);
  if (values.length === 0) throw badRequest("Missing required parameter: 'image'.", 'image', 'missing_required_parameter');
  if (values.length > MAX_IMAGE_EDIT_INPUTS) {
    throw badRequest(`Invalid value for 'image': expected at most ${MAX_IMAGE_EDIT_INPUTS} images, but got ${values.length} images instead.`, 'image', 'invalid_value');
  }
  return values.map((value) => imageFile(value, 'image', IMAGE_TYPES));
}

function editMask(value: unknown): chatv1.UploadedFile | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw badRequest("Invalid value for 'mask': expected one file, but got several instead.", 'mask', 'invalid_value');
  return imageFile(value, 'mask', ['image/png']);
}

/** One uploaded image of `field`, in one of `types` by its media type or, failing that, by its bytes. */
function imageFile(value: unknown, field: 'image' | 'mask', types: readonly ImageType[]): chatv1.UploadedFile {
  if (!isAudioUpload(value)) throw badRequest(`Invalid type for '${field}': expected a file, but got a text field instead.`, field, 'invalid_type');
  if (value.data.length === 0) throw badRequest(`Invalid value for '${field}': expected an image file, but got an empty file instead.`, field, 'invalid_value');
  const declared = value.contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  const contentType = types.find((t) => t === declared) ?? types.find((t) => t === sniffedImageType(value.data));
  if (contentType === undefined) {
    const supported = types.map((t) => `'${t}'`).join(', ');
    throw new GatewayError('bad_request', `Invalid file '${field}': unsupported mimetype ('${declared || 'none'}'). Supported file formats are ${supported}.`, {
      param: field,
      code: 'unsupported_file_mimetype',
    });
  }
  return { data: asBuffer(value), filename: value.filename, contentType };
}

/** The image type a file's first bytes tell (PNG's signature, JPEG's SOI marker, a RIFF/WEBP header), else undefined. */
export function sniffedImageType(data: Uint8Array): ImageType | undefined {
  const starts = (bytes: readonly number[], at = 0): boolean => data.length >= at + bytes.length && bytes.every((b, i) => data[at + i] === b);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (starts([0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return 'image/webp';
  return undefined;
}

/** The upload's bytes as a Buffer over the same memory (never copied: an edit may be tens of megabytes). */
function asBuffer(upload: AudioUpload): Buffer {
  return Buffer.from(upload.data.buffer, upload.data.byteOffset, upload.data.byteLength);
}

/** The fields the gateway does not read, as a JSON object of their texts (a repeated field: its texts in order); only text travels. */
function editExtraJson(body: Record<string, unknown>): string {
  for (const name of Object.keys(body)) {
    if (IMAGE_EDIT_KEYS.has(name)) continue;
    const value = body[name];
    const texts = Array.isArray(value) ? (value as unknown[]) : [value];
    if (!texts.every((t) => typeof t === 'string')) throw badRequest(`Invalid type for '${name}': expected a text field, but got a file instead.`, name, 'invalid_type');
  }
  return extraJson(body, IMAGE_EDIT_KEYS);
}

/**
 * How many images an edit form uploads (`image`, `image[]`), as budgets and rate limits count
 * them before it is parsed: its non-empty files. Any other body has none; a form with more than
 * {@link MAX_IMAGE_EDIT_INPUTS} (refused with a 400) counts one.
 */
export function imageEditInputCount(body: unknown): number {
  if (!isFormBody(body) || !isObject(body)) return 0;
  const files = imageFieldValues(body).filter((v) => isAudioUpload(v) && v.data.length > 0).length;
  return files > MAX_IMAGE_EDIT_INPUTS ? 1 : files;
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
  input_tokens_details: z.looseObject({ image_tokens: count.nullish() }).nullish(),
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
    inputImageTokens: r.usage?.input_tokens_details?.image_tokens ?? 0,
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
 * top-level fields. OpenAI's image answer names no model, and carries usage only when the
 * provider reported it: the gateway's estimate for a model that reports none (DALL·E) is its own
 * metering, not the provider's answer. Its input tokens are split as the provider split them: an
 * edit's input images (`inputImageTokens`), the rest the prompt's text.
 */
export function toOpenAIImageGenerationResponse(response: chatv1.ImageGenerationResponse): JsonObject {
  const out: JsonObject = { created: response.created, data: response.data.map(imageBody) };
  const usage = response.usage;
  if (usage && !usage.estimated) {
    const imageTokens = Math.min(response.inputImageTokens, usage.promptTokens);
    out['usage'] = {
      input_tokens: usage.promptTokens,
      input_tokens_details: { text_tokens: usage.promptTokens - imageTokens, image_tokens: imageTokens },
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
