import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { badRequest, extraJson, isObject, type JsonObject, mergeExtra, MODEL_NAME_MAX, paramOf, validate } from './validation';

/**
 * The most inputs one moderations request may hold: texts in a list, or parts of one multimodal
 * input. OpenAI documents no number; this is its embeddings limit, and each text is provider work.
 */
export const MAX_MODERATION_INPUTS = 2048;

/** An image for a moderation model: fetched by the provider (`https:`) or inline (`data:`); never a local or plain-HTTP address. */
const IMAGE_URL = /^(https:\/\/\S|data:)/i;

function byType(shapes: Readonly<Record<string, z.ZodType>>) {
  return (value: { type: string }, ctx: z.RefinementCtx): void => {
    const result = shapes[value.type]?.safeParse(value);
    if (result && !result.success) for (const issue of result.error.issues) ctx.addIssue({ ...issue });
  };
}

const moderationPart = z.looseObject({ type: z.enum(['text', 'image_url']) }).superRefine(
  byType({
    text: z.looseObject({ text: z.string() }),
    image_url: z.looseObject({ image_url: z.looseObject({ url: z.string().refine((url) => IMAGE_URL.test(url), 'expected an https: or data: URL') }) }),
  }),
);

const moderationBody = z.looseObject({
  input: z.union([z.string(), z.array(z.string()).min(1).max(MAX_MODERATION_INPUTS), z.array(moderationPart).min(1).max(MAX_MODERATION_INPUTS)]),
  model: z.string().max(MODEL_NAME_MAX).nullish(),
});
const MODERATION_KEYS: ReadonlySet<string> = new Set(Object.keys(moderationBody.shape));

type PartBody = z.infer<typeof moderationPart> & JsonObject;

/**
 * A client's moderations body as the canonical request: a string or a list of strings are texts,
 * each judged on its own; a list of `text` / `image_url` parts is one input. A missing model is
 * `''` (the caller picks the default).
 */
export function parseModerationRequest(body: unknown): chatv1.ModerationRequest {
  // A list that mixes strings and parts fits neither form; said plainly rather than as the first item of the wrong type.
  const input = isObject(body) ? body['input'] : undefined;
  if (Array.isArray(input) && input.some((item) => typeof item === 'string') && input.some(isObject)) {
    throw badRequest("Invalid type for 'input': expected a list of strings or a list of text and image_url parts, but got a list that mixes both.", 'input', 'invalid_type');
  }
  const b = validate(moderationBody, body);
  let texts: string[] = [];
  let parts: chatv1.ModerationPart[] = [];
  if (typeof b.input === 'string') texts = [b.input];
  else if (b.input.every((item): item is string => typeof item === 'string')) texts = b.input;
  else parts = (b.input as PartBody[]).map(toPart);
  return { model: b.model ?? '', texts, parts, extraJson: extraJson(b, MODERATION_KEYS) };
}

function toPart(part: PartBody): chatv1.ModerationPart {
  if (part.type === 'text') return { text: part['text'] as string };
  const image = part['image_url'] as { url: string };
  return { imageUrl: image.url };
}

/** The canonical request as an OpenAI-compatible provider's body (Mistral's too: it takes a list of strings). */
export function toOpenAIModerationBody(request: chatv1.ModerationRequest, upstreamModel: string, options: { dropParams?: readonly string[] } = {}): JsonObject {
  const input = request.parts.length > 0 ? request.parts.map(partBody) : request.texts;
  const body = mergeExtra({ model: upstreamModel, input }, request.extraJson);
  // The provider's dropParams, as on chat and embeddings; `model` and `input` are the request itself.
  for (const key of options.dropParams ?? []) if (key !== 'model' && key !== 'input') delete body[key];
  return body;
}

function partBody(part: chatv1.ModerationPart): JsonObject {
  if (part.imageUrl !== undefined) return { type: 'image_url', image_url: { url: part.imageUrl } };
  return { type: 'text', text: part.text ?? '' };
}

// Null values are what OpenAI sends for a category the model does not judge (`illicit` on the
// text-moderation models): such a category is left out.
const moderationResult = z.looseObject({
  flagged: z.boolean().nullish(),
  categories: z.record(z.string(), z.boolean().nullable()),
  category_scores: z.record(z.string(), z.number().nullable()),
});
const moderationResponse = z.looseObject({
  id: z.string().nullish(),
  model: z.string().max(MODEL_NAME_MAX).nullish(),
  results: z.array(moderationResult),
});
const RESULT_KEYS: ReadonlySet<string> = new Set(Object.keys(moderationResult.shape));

/**
 * A provider's moderation answer: OpenAI's, or Mistral's (the same top level, its own category
 * names, no `flagged`: then flagged is whether any category is). A result's other fields
 * (`category_applied_input_types`) are kept as they are. Usage is the adapter's to estimate.
 */
export function parseOpenAIModerationResponse(json: unknown): chatv1.ModerationResponse {
  const parsed = moderationResponse.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${paramOf(issue.path)}: ` : '';
    throw new GatewayError('upstream_error', `The provider returned a malformed moderation (${where}${lowerFirst(issue?.message ?? 'invalid')}).`);
  }
  const r = parsed.data;
  return { id: r.id ?? '', model: r.model ?? '', results: r.results.map(toResult), usage: undefined };
}

function toResult(r: z.infer<typeof moderationResult>): chatv1.ModerationResult {
  const categories: Record<string, boolean> = {};
  const categoryScores: Record<string, number> = {};
  for (const [name, value] of Object.entries(r.categories)) if (value !== null) categories[name] = value;
  for (const [name, value] of Object.entries(r.category_scores)) if (value !== null) categoryScores[name] = value;
  const flagged = r.flagged ?? Object.values(categories).some(Boolean);
  return { flagged, categories, categoryScores, extraJson: extraJson(r, RESULT_KEYS) };
}

/** The canonical answer as OpenAI's moderation object, under the public model id. */
export function toOpenAIModerationResponse(response: chatv1.ModerationResponse, model: string): JsonObject {
  return {
    id: response.id,
    model,
    results: response.results.map((r) => mergeExtra({ flagged: r.flagged, categories: { ...r.categories }, category_scores: { ...r.categoryScores } }, r.extraJson)),
  };
}

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);
