import { z } from 'zod';

const contentPartSchema = z.looseObject({ type: z.string(), text: z.string().optional() });

const messageContentSchema = z.union([z.string(), z.array(contentPartSchema)]).nullable().optional();

const toolCallSchema = z.looseObject({
  id: z.string(),
  type: z.literal('function'),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});

const messageSchema = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: messageContentSchema,
  name: z.string().optional(),
  tool_calls: z.array(toolCallSchema).optional(),
  tool_call_id: z.string().optional(),
});

const functionToolSchema = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({
    name: z.string().min(1),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string() }) }),
]);

const responseFormatSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text') }),
  z.looseObject({ type: z.literal('json_object') }),
  z.looseObject({
    type: z.literal('json_schema'),
    json_schema: z.looseObject({
      name: z.string(),
      description: z.string().optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullable().optional(),
    }),
  }),
]);

const positiveTokenLimit = z.int().min(1).nullable().optional();

export const chatCompletionRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(messageSchema).min(1),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  n: z.int().min(1).max(128).nullable().optional(),
  max_tokens: positiveTokenLimit,
  max_completion_tokens: positiveTokenLimit,
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullable().optional(),
  tools: z.array(functionToolSchema).optional(),
  tool_choice: toolChoiceSchema.optional(),
  response_format: responseFormatSchema.optional(),
});

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;
export type ChatMessage = ChatCompletionRequest['messages'][number];
export type FunctionTool = NonNullable<ChatCompletionRequest['tools']>[number];

const tokenIds = z.array(z.int().min(0)).min(1);

export const embeddingRequestSchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(2048), tokenIds, z.array(tokenIds).min(1).max(2048)]),
  dimensions: z.int().min(1).optional(),
  encoding_format: z.enum(['float', 'base64']).optional(),
  user: z.string().optional(),
});

export type EmbeddingRequest = z.infer<typeof embeddingRequestSchema>;

const moderationPartSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('text'), text: z.string() }),
  z.looseObject({ type: z.literal('image_url'), image_url: z.looseObject({ url: z.string() }) }),
]);

export const moderationRequestSchema = z.looseObject({
  model: z.string().min(1).optional(),
  input: z.union([z.string(), z.array(z.string()).min(1), z.array(moderationPartSchema).min(1)]),
});

export type ModerationRequest = z.infer<typeof moderationRequestSchema>;
export type ModerationPart = z.infer<typeof moderationPartSchema>;

export const imageGenerationRequestSchema = z.looseObject({
  prompt: z.string().min(1),
  model: z.string().min(1).nullable().optional(),
  n: z.int().min(1).max(10).nullable().optional(),
  response_format: z.enum(['url', 'b64_json']).nullable().optional(),
  size: z.string().nullable().optional(),
  quality: z.string().nullable().optional(),
  style: z.enum(['vivid', 'natural']).nullable().optional(),
  background: z.enum(['transparent', 'opaque', 'auto']).nullable().optional(),
  output_format: z.enum(['png', 'jpeg', 'webp']).nullable().optional(),
  user: z.string().optional(),
  stream: z.boolean().nullable().optional(),
});

export type ImageGenerationRequest = z.infer<typeof imageGenerationRequestSchema>;

/**
 * The text fields of an image edit form (the images and mask are checked apart: they are files).
 * Each must be sent once, as text; `openai-image-planner.ts` reads the numbers out of them and
 * applies the same rules as to a generation.
 */
export const imageEditFormSchema = z.looseObject({
  prompt: z.string(),
  model: z.string().min(1).optional(),
  n: z.string().optional(),
  size: z.string().optional(),
  quality: z.string().optional(),
  response_format: z.string().optional(),
  background: z.string().optional(),
  output_format: z.string().optional(),
  output_compression: z.string().optional(),
  input_fidelity: z.string().optional(),
  partial_images: z.string().optional(),
  stream: z.string().optional(),
  user: z.string().optional(),
});

export type ImageEditForm = z.infer<typeof imageEditFormSchema>;

/**
 * The text fields of a transcription or translation form (the file is checked apart: it is not
 * text). Values are checked against OpenAI's rules by `openai-audio-planner.ts`, which words them
 * as OpenAI does.
 */
export const transcriptionFormSchema = z.looseObject({
  model: z.string().min(1),
  language: z.string().optional(),
  prompt: z.string().optional(),
  response_format: z.string().optional(),
  temperature: z.string().optional(),
  stream: z.string().optional(),
});

export type TranscriptionForm = z.infer<typeof transcriptionFormSchema>;

export const speechRequestSchema = z.looseObject({
  model: z.string().min(1),
  input: z.string(),
  voice: z.union([z.string().min(1), z.looseObject({ id: z.string().min(1) })]),
  instructions: z.string().nullable().optional(),
  response_format: z.string().nullable().optional(),
  speed: z.number().nullable().optional(),
  stream_format: z.string().nullable().optional(),
});

export type SpeechRequest = z.infer<typeof speechRequestSchema>;

export interface RequestProblem {
  message: string;
  param: string | null;
  code: string | null;
}

/** Maps a zod failure onto OpenAI's wording: missing vs. invalid, with the dotted param path. */
export function describeProblem(error: z.ZodError, raw: unknown): RequestProblem {
  const issue = error.issues[0];
  if (issue === undefined) return { message: 'Invalid request body.', param: null, code: null };
  const path = issue.path.filter((segment): segment is string | number => typeof segment !== 'symbol');
  const param = path.length === 0 ? null : formatParam(path);
  if (param !== null && (issue.code === 'invalid_type' || issue.code === 'invalid_union') && valueAt(raw, path) === undefined) {
    return { message: `Missing required parameter: '${param}'.`, param, code: 'missing_required_parameter' };
  }
  if (param === null) return { message: `Invalid request body: ${issue.message}.`, param: null, code: 'invalid_request_body' };
  const code = issue.code === 'invalid_type' ? 'invalid_type' : 'invalid_value';
  return { message: `Invalid value for '${param}': ${issue.message}.`, param, code };
}

function formatParam(path: readonly (string | number)[]): string {
  return path.map((segment, i) => (typeof segment === 'number' ? `[${segment}]` : i === 0 ? segment : `.${segment}`)).join('');
}

function valueAt(raw: unknown, path: readonly (string | number)[]): unknown {
  let node = raw;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}
