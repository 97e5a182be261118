import { type ImageDimensions, type ImageFileFormat, imageDimensions, imageFormatOfContentType, sniffImageFormat } from '../core/image-file';
import { countTokens } from '../core/token-counter';
import { type FormFields, type FormValue, isUploadedFile, type UploadedFile } from '../http/multipart-form';
import { describeProblem, type ImageGenerationRequest, imageEditFormSchema, imageGenerationRequestSchema, type RequestProblem } from './openai-request-schemas';

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
  /** GPT Image only: what its answer's `usage` reports (input = text + image tokens). */
  usage: ImageUsage | undefined;
}

export interface ImageUsage {
  textTokens: number;
  /** An edit's input images (`gptImageInputTokens`); 0 for a generation. */
  imageTokens: number;
  outputTokens: number;
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
  const usage = family === 'gpt-image' ? { textTokens: countTokens(request.prompt), imageTokens: 0, outputTokens: n * gptImageOutputTokens(quality, size) } : undefined;
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

/** GPT Image takes up to this many input images in one edit; DALL·E 2 exactly one. */
export const GPT_IMAGE_MAX_INPUT_IMAGES = 16;
/** Each input image, and a mask, must be smaller than these (a file of exactly the limit is refused, as OpenAI says "less than"). */
export const GPT_IMAGE_MAX_IMAGE_BYTES = 50 * 1024 * 1024;
export const DALL_E_2_MAX_IMAGE_BYTES = 4 * 1024 * 1024;
export const MAX_MASK_BYTES = 4 * 1024 * 1024;

/**
 * What one input image of an edit costs GPT Image, by its size in pixels, in the manner of
 * OpenAI's vision tiles: the image is scaled down to fit 2048×2048, then so its short side is at
 * most 768, and costs the base plus a figure per 512-pixel tile. An image whose header does not
 * say its size is counted as 1024×1024 (581 tokens); an 8×8 PNG is one tile (194 tokens).
 */
export const GPT_IMAGE_INPUT_BASE_TOKENS = 65;
export const GPT_IMAGE_INPUT_TILE_TOKENS = 129;

export function gptImageInputTokens(dimensions: ImageDimensions | undefined): number {
  let { width, height } = dimensions ?? { width: 1024, height: 1024 };
  const fit = Math.min(1, 2048 / Math.max(width, height));
  width *= fit;
  height *= fit;
  const shorten = Math.min(1, 768 / Math.min(width, height));
  width *= shorten;
  height *= shorten;
  const tiles = Math.ceil(width / 512) * Math.ceil(height / 512);
  return GPT_IMAGE_INPUT_BASE_TOKENS + GPT_IMAGE_INPUT_TILE_TOKENS * tiles;
}

export interface ImageEditPlan extends ImagePlan {
  /** The first input image's bytes: they join the prompt in choosing the answer's colours. */
  source: Uint8Array;
  /** How many images were uploaded (the mask not counted). */
  inputImages: number;
}

export type ImageEditPlanResult = { ok: true; plan: ImageEditPlan; request: ImageGenerationRequest } | { ok: false; problem: RequestProblem };

const fail = (message: string, param: string | null, code: string | null): { ok: false; problem: RequestProblem } => ({ ok: false, problem: { message, param, code } });

/** An upload taken as an image: its format (by its bytes, else its Content-Type) and, when its header says, its size. */
interface InputImage {
  file: UploadedFile;
  format: ImageFileFormat | undefined;
  dimensions: ImageDimensions | undefined;
}

function inspect(file: UploadedFile): InputImage {
  const format = sniffImageFormat(file.bytes) ?? imageFormatOfContentType(file.type);
  return { file, format, dimensions: format === undefined ? undefined : imageDimensions(file.bytes, format) };
}

const mimetype = (file: UploadedFile): string => (file.type === '' ? 'application/octet-stream' : file.type);
const megabytes = (bytes: number): string => `${bytes / (1024 * 1024)} MB`;

/**
 * Checks an image edit form under OpenAI's rules and plans its answer. `image` (or `image[]`, as
 * the SDKs send a list) holds the images: GPT Image takes 1–16 png, webp or jpeg files under
 * 50 MB, DALL·E 2 one square png under 4 MB; DALL·E 3 edits nothing. An optional `mask` is a png
 * under 4 MB the size of the first image. The text fields follow a generation's rules
 * (`planImageGeneration`); GPT Image's usage also counts the input images (`gptImageInputTokens`).
 * A file is an image when its bytes start as a PNG, JPEG or WebP does, or else its Content-Type
 * names one of them. `model` is the form's, or on Azure the deployment's name.
 */
export function planImageEdit(fields: FormFields): ImageEditPlanResult {
  const values: FormValue[] = [fields['image'], fields['image[]']].flatMap((value) => (value === undefined ? [] : Array.isArray(value) ? value : [value]));
  if (values.length === 0) return fail("Missing required parameter: 'image'.", 'image', 'missing_required_parameter');
  const files = values.filter(isUploadedFile);
  if (files.length !== values.length) return fail("Invalid type for 'image': expected one of an array of files or file, but got a string instead.", 'image', 'invalid_type');
  const parsed = imageEditFormSchema.safeParse(fields);
  if (!parsed.success) return { ok: false, problem: describeProblem(parsed.error, fields) };
  const form = parsed.data;
  const model = form.model ?? DEFAULT_IMAGE_MODEL;
  const family = imageModelFamily(model);
  if (family === 'dall-e-3') {
    return fail(`Invalid value: '${model}'. Image edits take 'dall-e-2' and the GPT Image models; DALL·E 3 edits no images.`, 'model', 'invalid_value');
  }

  const images = files.map(inspect);
  const imagesProblem = checkImages(images, family);
  if (imagesProblem !== undefined) return { ok: false, problem: imagesProblem };
  const first = images[0];
  if (first === undefined) return fail("Missing required parameter: 'image'.", 'image', 'missing_required_parameter');
  const maskProblem = checkMask(fields['mask'], first);
  if (maskProblem !== undefined) return { ok: false, problem: maskProblem };

  if (form.stream !== undefined && form.stream !== 'false') {
    if (form.stream === 'true') return fail('Streamed image edits are not simulated.', 'stream', 'unsupported_parameter');
    return fail(`Invalid 'stream': expected a boolean, but got '${form.stream}' instead.`, 'stream', 'invalid_type');
  }
  const n = integerField('n', form.n, 1, 10);
  if (!n.ok) return n;
  for (const [name, max] of [['output_compression', 100], ['partial_images', 3]] as const) {
    const checked = integerField(name, form[name], 0, max);
    if (!checked.ok) return checked;
  }
  if (form.input_fidelity !== undefined && form.input_fidelity !== 'high' && form.input_fidelity !== 'low') {
    return fail(`Invalid value: '${form.input_fidelity}'. Supported values are: 'high' and 'low'.`, 'input_fidelity', 'invalid_value');
  }

  const candidate = Object.fromEntries(
    Object.entries({
      prompt: form.prompt,
      model,
      n: n.value,
      response_format: form.response_format,
      size: form.size,
      quality: form.quality,
      background: form.background,
      output_format: form.output_format,
      user: form.user,
    }).filter(([, value]) => value !== undefined),
  );
  const request = imageGenerationRequestSchema.safeParse(candidate);
  if (!request.success) return { ok: false, problem: describeProblem(request.error, candidate) };
  const planned = planImageGeneration(request.data, model);
  if (!planned.ok) return planned;
  const { plan } = planned;
  const imageTokens = images.reduce((sum, image) => sum + gptImageInputTokens(image.dimensions), 0);
  const usage = plan.usage === undefined ? undefined : { ...plan.usage, imageTokens };
  return { ok: true, plan: { ...plan, usage, source: first.file.bytes, inputImages: images.length }, request: request.data };
}

function checkImages(images: readonly InputImage[], family: ImageModelFamily): RequestProblem | undefined {
  const refuse = (message: string, code: string): RequestProblem => ({ message, param: 'image', code });
  if (family === 'dall-e-2' && images.length > 1) return refuse(`Invalid 'image': dall-e-2 takes exactly one image, but got ${images.length}.`, 'invalid_value');
  if (images.length > GPT_IMAGE_MAX_INPUT_IMAGES) {
    return refuse(`Invalid 'image': array too long. Expected an array with maximum length ${GPT_IMAGE_MAX_INPUT_IMAGES}, but got an array with length ${images.length} instead.`, 'array_above_max_length');
  }
  for (const [index, image] of images.entries()) {
    const name = images.length === 1 ? 'image' : `image[${index}]`;
    const { file, format, dimensions } = image;
    if (file.bytes.length === 0) return refuse(`Invalid file '${name}': the file is empty.`, 'empty_file');
    if (family === 'dall-e-2') {
      if (format !== 'png') return refuse(`Invalid file '${name}': unsupported mimetype ('${mimetype(file)}'). Supported file formats are 'image/png'.`, 'invalid_image_format');
      if (file.bytes.length >= DALL_E_2_MAX_IMAGE_BYTES) return refuse(`Uploaded image must be a PNG and less than ${megabytes(DALL_E_2_MAX_IMAGE_BYTES)}.`, 'file_too_large');
      // The square check needs the PNG's header: bytes taken by their Content-Type alone are not measured.
      if (dimensions !== undefined && dimensions.width !== dimensions.height) {
        return refuse(`Invalid input image - must be square, but got ${dimensions.width}x${dimensions.height}.`, 'invalid_image');
      }
      continue;
    }
    if (format === undefined) {
      return refuse(`Invalid file '${name}': unsupported mimetype ('${mimetype(file)}'). Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.`, 'invalid_image_format');
    }
    if (file.bytes.length >= GPT_IMAGE_MAX_IMAGE_BYTES) return refuse(`Invalid file '${name}': each image must be less than ${megabytes(GPT_IMAGE_MAX_IMAGE_BYTES)}.`, 'file_too_large');
  }
  return undefined;
}

function checkMask(value: FormValue | FormValue[] | undefined, first: InputImage): RequestProblem | undefined {
  if (value === undefined) return undefined;
  const refuse = (message: string, code: string): RequestProblem => ({ message, param: 'mask', code });
  if (!isUploadedFile(value)) return refuse(`Invalid type for 'mask': expected a file, but got ${Array.isArray(value) ? 'an array' : 'a string'} instead.`, 'invalid_type');
  const mask = inspect(value);
  if (value.bytes.length === 0) return refuse("Invalid file 'mask': the file is empty.", 'empty_file');
  if (mask.format !== 'png') return refuse(`Invalid file 'mask': unsupported mimetype ('${mimetype(value)}'). Supported file formats are 'image/png'.`, 'invalid_image_format');
  if (value.bytes.length >= MAX_MASK_BYTES) return refuse(`Invalid file 'mask': the mask must be less than ${megabytes(MAX_MASK_BYTES)}.`, 'file_too_large');
  const image = first.dimensions;
  const size = mask.dimensions;
  if (image !== undefined && size !== undefined && (image.width !== size.width || image.height !== size.height)) {
    return refuse(`Invalid mask image - must be the same size as the image (${image.width}x${image.height}), but got ${size.width}x${size.height}.`, 'invalid_value');
  }
  return undefined;
}

/** A form's integer field within [min, max], worded as OpenAI words a JSON integer's problems; undefined when absent. */
function integerField(name: string, text: string | undefined, min: number, max: number): { ok: true; value: number | undefined } | { ok: false; problem: RequestProblem } {
  if (text === undefined) return { ok: true, value: undefined };
  if (!/^\s*-?\d+\s*$/.test(text)) return fail(`Invalid '${name}': expected an integer, but got '${text}' instead.`, name, 'invalid_type');
  const value = Number(text);
  if (value < min) return fail(`Invalid '${name}': integer below minimum value. Expected a value >= ${min}, but got ${value} instead.`, name, 'integer_below_min_value');
  if (value > max) return fail(`Invalid '${name}': integer above maximum value. Expected a value <= ${max}, but got ${value} instead.`, name, 'integer_above_max_value');
  return { ok: true, value };
}
