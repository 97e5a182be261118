import { z } from 'zod';

/** Anthropic wants an opaque user id and refuses one that looks like an email address. */
const EMAIL = /[^\s@]+@[^\s@]+\.[^\s@]+/;

const cacheControl = z.looseObject({ type: z.literal('ephemeral') }).nullish();

/** The service refuses a text block of only whitespace (a tool result's string content is one too). */
const BLANK_TEXT = 'text content blocks must contain non-whitespace text';
const NON_WHITESPACE = /\S/;

const textBlock = z.looseObject({
  type: z.literal('text'),
  text: z.string().min(1, 'text content blocks must be non-empty').regex(NON_WHITESPACE, BLANK_TEXT),
  cache_control: cacheControl,
});

const IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'] as const;
const imageBlock = z.looseObject({
  type: z.literal('image'),
  source: z.discriminatedUnion('type', [
    z.looseObject({ type: z.literal('base64'), media_type: z.enum(IMAGE_MEDIA_TYPES), data: z.string().min(1) }),
    z.looseObject({ type: z.literal('url'), url: z.string().url() }),
  ]),
  cache_control: cacheControl,
});

const documentBlock = z.looseObject({
  type: z.literal('document'),
  source: z.looseObject({ type: z.string() }),
  cache_control: cacheControl,
});

const toolUseBlock = z.looseObject({
  type: z.literal('tool_use'),
  id: z.string().regex(/^[a-zA-Z0-9_-]+$/, 'String should match pattern ^[a-zA-Z0-9_-]+$'),
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()),
  cache_control: cacheControl,
});

const toolResultBlock = z.looseObject({
  type: z.literal('tool_result'),
  tool_use_id: z.string().regex(/^[a-zA-Z0-9_-]+$/, 'String should match pattern ^[a-zA-Z0-9_-]+$'),
  content: z
    .union([z.string().refine((text) => text === '' || NON_WHITESPACE.test(text), BLANK_TEXT), z.array(z.discriminatedUnion('type', [textBlock, imageBlock, documentBlock]))])
    .optional(),
  is_error: z.boolean().optional(),
  cache_control: cacheControl,
});

/**
 * Thinking blocks a client hands back from an earlier answer. The schema only wants their shape;
 * whether a `signature` really is the simulator's own is the planner's check, as it is the
 * service's (a schema error would name the wrong thing).
 */
const thinkingBlock = z.looseObject({ type: z.literal('thinking'), thinking: z.string(), signature: z.string() });
const redactedThinkingBlock = z.looseObject({ type: z.literal('redacted_thinking'), data: z.string().min(1) });

const contentBlock = z.discriminatedUnion('type', [textBlock, imageBlock, documentBlock, toolUseBlock, toolResultBlock, thinkingBlock, redactedThinkingBlock]);
export type ContentBlock = z.infer<typeof contentBlock>;

const message = z.looseObject({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string(), z.array(contentBlock)]),
});
export type AnthropicMessage = z.infer<typeof message>;

/** A message's content as blocks: a plain string is one text block. */
export function blocksOf(message: AnthropicMessage): ContentBlock[] {
  return typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : message.content;
}

const tool = z.looseObject({
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,128}$/, 'String should match pattern ^[a-zA-Z0-9_-]{1,128}$'),
  description: z.string().optional(),
  input_schema: z.looseObject({ type: z.literal('object') }),
  cache_control: cacheControl,
});
export type AnthropicTool = z.infer<typeof tool>;

const toolChoice = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
  z.strictObject({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
  z.strictObject({ type: z.literal('tool'), name: z.string(), disable_parallel_tool_use: z.boolean().optional() }),
  z.strictObject({ type: z.literal('none') }),
]);

const thinkingDisplay = z.enum(['summarized', 'omitted']).optional();

/** The smallest thinking budget Anthropic accepts. */
export const MIN_THINKING_BUDGET_TOKENS = 1024;

/**
 * Extended thinking: a fixed budget, adaptive (the model decides, steered by
 * `output_config.effort`) or off. Strict like the service, so a misspelt field is refused
 * instead of silently thinking with defaults.
 */
export const thinkingConfig = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('enabled'),
    budget_tokens: z.int().min(MIN_THINKING_BUDGET_TOKENS, `Input should be greater than or equal to ${MIN_THINKING_BUDGET_TOKENS}`),
    display: thinkingDisplay,
  }),
  z.strictObject({ type: z.literal('adaptive'), display: thinkingDisplay }),
  z.strictObject({ type: z.literal('disabled') }),
]);
export type ThinkingConfig = z.infer<typeof thinkingConfig>;

const outputConfig = z.looseObject({
  format: z.looseObject({ type: z.literal('json_schema'), schema: z.record(z.string(), z.unknown()) }).nullish(),
  effort: z.enum(['low', 'medium', 'high', 'xhigh', 'max']).optional(),
});

/**
 * The Messages API body. Like the real service it refuses fields it does not know, so a
 * translation that leaks an OpenAI parameter is caught here.
 */
export const messagesRequestSchema = z.strictObject({
  model: z.string().min(1),
  max_tokens: z.int().min(1),
  messages: z.array(message).min(1),
  system: z.union([z.string(), z.array(textBlock)]).optional(),
  tools: z.array(tool).optional(),
  tool_choice: toolChoice.optional(),
  stop_sequences: z
    .array(z.string())
    .refine((stops) => stops.every((stop) => /\S/.test(stop)), 'each stop sequence must contain non-whitespace')
    .optional(),
  stream: z.boolean().optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.int().min(0).optional(),
  metadata: z
    .strictObject({
      user_id: z
        .string()
        .max(256)
        .refine((id) => !EMAIL.test(id), 'user_id appears to contain an email address. Please send a uuid or hash value instead.')
        .nullish(),
    })
    .optional(),
  service_tier: z.enum(['auto', 'standard_only']).optional(),
  output_config: outputConfig.optional(),
  thinking: thinkingConfig.optional(),
  container: z.unknown().optional(),
  context_management: z.unknown().optional(),
  mcp_servers: z.unknown().optional(),
});
export type MessagesRequest = z.infer<typeof messagesRequestSchema>;

/** Anthropic names the failing field by its dotted path, e.g. `messages.0.content.1.source`. */
export function describeProblem(error: z.ZodError, raw: unknown): string {
  const first = error.issues[0];
  if (first === undefined) return 'Invalid request body.';
  const { issue, path } = deepest(first, []);
  const where = path.join('.');
  if (issue.code === 'unrecognized_keys') return `${where ? `${where}.` : ''}${issue.keys.join(', ')}: Extra inputs are not permitted`;
  if (issue.code === 'invalid_type' && valueAt(raw, path) === undefined) return `${where}: Field required`;
  return `${where || 'body'}: ${issue.message}`;
}

type Issue = z.core.$ZodIssue;

/** For a failed union (string or blocks…) the branch that got furthest is the one the client meant. */
function deepest(issue: Issue, prefix: (string | number)[]): { issue: Issue; path: (string | number)[] } {
  const path = [...prefix, ...issue.path.filter((segment): segment is string | number => typeof segment !== 'symbol')];
  if (issue.code !== 'invalid_union') return { issue, path };
  let best: Issue | undefined;
  for (const branch of issue.errors) {
    const candidate = branch[0];
    if (candidate && candidate.path.length > 0 && (!best || candidate.path.length > best.path.length)) best = candidate;
  }
  return best ? deepest(best, path) : { issue, path };
}

function valueAt(raw: unknown, path: readonly (string | number)[]): unknown {
  let node = raw;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}
