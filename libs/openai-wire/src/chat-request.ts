import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { extraJson, isObject, type JsonObject, mergeExtra, modelName, opt, REQUIRED, validate } from './validation';

const UINT32_MAX = 4_294_967_295;
/** The bounds a request's output limit and number of choices must keep (chat and legacy completions alike). */
export const REQUEST_BOUNDS = { maxTokens: UINT32_MAX, choices: 128 } as const;

/** Extra checks for objects whose required fields depend on their `type`; other types pass as they are. */
function byType(shapes: Readonly<Record<string, z.ZodType>>) {
  return (value: { type: string }, ctx: z.RefinementCtx): void => {
    const shape = Object.hasOwn(shapes, value.type) ? shapes[value.type] : undefined;
    const result = shape?.safeParse(value);
    if (result && !result.success) for (const issue of result.error.issues) ctx.addIssue({ ...issue });
  };
}

const contentPart = z.looseObject({ type: z.string() }).superRefine(
  byType({
    text: z.looseObject({ text: z.string() }),
    image_url: z.looseObject({ image_url: z.looseObject({ url: z.string(), detail: z.string().nullish() }) }),
    input_audio: z.looseObject({ input_audio: z.looseObject({ data: z.string(), format: z.string() }) }),
    refusal: z.looseObject({ refusal: z.string() }),
  }),
);

const toolCall = z.looseObject({
  id: z.string(),
  type: z.string().optional(),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});

export const MESSAGE_ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

const message = z.looseObject({
  role: z.enum(MESSAGE_ROLES),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().nullish(),
  tool_calls: z.array(toolCall).nullish(),
  tool_call_id: z.string().nullish(),
  refusal: z.string().nullish(),
}).superRefine((m, ctx) => {
  // What OpenAI itself requires of each role.
  const hasContent = m.content !== undefined && m.content !== null;
  if (['system', 'developer', 'user', 'tool'].includes(m.role) && !hasContent) {
    ctx.addIssue({ code: 'custom', path: ['content'], message: `a ${m.role} message needs content`, params: REQUIRED });
  }
  if (m.role === 'tool' && (m.tool_call_id === undefined || m.tool_call_id === null)) {
    ctx.addIssue({ code: 'custom', path: ['tool_call_id'], message: 'a tool message names the tool call it answers', params: REQUIRED });
  }
  if (m.role === 'assistant' && !hasContent && !m.tool_calls?.length && m['function_call'] === undefined && m['audio'] === undefined && !m.refusal) {
    ctx.addIssue({ code: 'custom', path: ['content'], message: 'an assistant message needs content or tool_calls', params: REQUIRED });
  }
});
type WireMessage = z.infer<typeof message>;
type WireToolCall = z.infer<typeof toolCall>;
const MESSAGE_KEYS: ReadonlySet<string> = new Set(Object.keys(message.shape));
const MESSAGE_LOSSY = { nullModelled: 'content', defaultUnmodelled: new Set(['tool_calls']) };

const functionDefinition = z.looseObject({
  name: z.string().min(1),
  description: z.string().optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  strict: z.boolean().nullish(),
});
const tool = z.looseObject({ type: z.string() }).superRefine(byType({ function: z.looseObject({ function: functionDefinition }) }));

const toolChoice = z.union([
  z.enum(['none', 'auto', 'required']),
  z.looseObject({ type: z.string() }).superRefine(byType({ function: z.looseObject({ function: z.looseObject({ name: z.string() }) }) })),
]);

const jsonSchemaFormat = z.looseObject({
  name: z.string(),
  description: z.string().optional(),
  schema: z.record(z.string(), z.unknown()).optional(),
  strict: z.boolean().nullish(),
});
const responseFormat = z
  .looseObject({ type: z.enum(['text', 'json_object', 'json_schema']), json_schema: jsonSchemaFormat.optional() })
  .superRefine(byType({ json_schema: z.looseObject({ json_schema: jsonSchemaFormat }) }));

const chatBody = z.looseObject({
  model: modelName,
  messages: z.array(message).min(1),
  tools: z.array(tool).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  response_format: responseFormat.nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  max_tokens: z.int().min(1).max(REQUEST_BOUNDS.maxTokens).nullish(),
  max_completion_tokens: z.int().min(1).max(REQUEST_BOUNDS.maxTokens).nullish(),
  n: z.int().min(1).max(REQUEST_BOUNDS.choices).nullish(),
  seed: z.int().nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.int().min(0).max(20).nullish(),
  user: z.string().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z.record(z.string(), z.number().min(-100).max(100)).nullish(),
  reasoning_effort: z.string().nullish(),
  service_tier: z.string().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  store: z.boolean().nullish(),
  modalities: z.array(z.string()).nullish(),
});
type ChatBody = z.infer<typeof chatBody>;
const CHAT_KEYS: ReadonlySet<string> = new Set(Object.keys(chatBody.shape));
const CHAT_LOSSY = { defaultUnmodelled: new Set(['tools', 'stop', 'logit_bias', 'metadata', 'modalities', 'stream']) };
const STREAM_OPTIONS_LOSSY = { defaultUnmodelled: new Set(['include_usage']) };
const STREAM_OPTION_KEYS: ReadonlySet<string> = new Set(['include_usage']);

/** True when `obj` has no keys outside `allowed` (no array is allocated on this hot path). */
function onlyKeys(obj: JsonObject, allowed: ReadonlySet<string>): boolean {
  for (const key in obj) if (!allowed.has(key)) return false;
  return true;
}

const TEXT_PART = new Set(['type', 'text']);
const REFUSAL_PART = new Set(['type', 'refusal']);
const IMAGE_PART = new Set(['type', 'image_url']);
const IMAGE_URL = new Set(['url', 'detail']);
const AUDIO_PART = new Set(['type', 'input_audio']);
const INPUT_AUDIO = new Set(['data', 'format']);
const TOOL_KEYS = new Set(['type', 'function']);
const FUNCTION_KEYS = new Set(['name', 'description', 'parameters', 'strict']);
const NAMED_FUNCTION = new Set(['name']);
const TOOL_CALL_KEYS = new Set(['id', 'type', 'function']);
const FUNCTION_CALL_KEYS = new Set(['name', 'arguments']);
const RESPONSE_FORMAT_KEYS = new Set(['type', 'json_schema']);
const JSON_SCHEMA_KEYS = new Set(['name', 'description', 'schema', 'strict']);

/** A part the typed form would reproduce exactly becomes typed; anything else travels as its JSON. */
function toPart(part: JsonObject & { type: string }): chatv1.ContentPart {
  switch (part.type) {
    case 'text':
      if (typeof part['text'] === 'string' && onlyKeys(part, TEXT_PART)) return { text: part['text'] };
      break;
    case 'refusal':
      if (typeof part['refusal'] === 'string' && onlyKeys(part, REFUSAL_PART)) return { refusal: part['refusal'] };
      break;
    case 'image_url': {
      const image = part['image_url'];
      if (isObject(image) && typeof image['url'] === 'string' && onlyKeys(part, IMAGE_PART) && onlyKeys(image, IMAGE_URL)) {
        const detail = image['detail'];
        if (detail === undefined) return { imageUrl: { url: image['url'] } };
        if (typeof detail === 'string') return { imageUrl: { url: image['url'], detail } };
      }
      break;
    }
    case 'input_audio': {
      const audio = part['input_audio'];
      if (isObject(audio) && typeof audio['data'] === 'string' && typeof audio['format'] === 'string' && onlyKeys(part, AUDIO_PART) && onlyKeys(audio, INPUT_AUDIO)) {
        return { inputAudio: { data: audio['data'], format: audio['format'] } };
      }
      break;
    }
  }
  return { rawJson: JSON.stringify(part) };
}

/**
 * What a content part carries for routing (its text; whether it is an image), typed or kept as
 * JSON because it had keys the typed form has no slot for (`cache_control`, an `image_url` given
 * as a string, `detail: null`).
 */
export function partContent(part: chatv1.ContentPart): { text?: string; image: boolean } {
  if (part.text !== undefined) return { text: part.text, image: false };
  if (part.imageUrl) return { image: true };
  if (!part.rawJson) return { image: false };
  let raw: unknown;
  try {
    raw = JSON.parse(part.rawJson);
  } catch {
    return { image: false };
  }
  if (!isObject(raw)) return { image: false };
  if (raw['type'] === 'text' && typeof raw['text'] === 'string') return { text: raw['text'], image: false };
  return { image: raw['type'] === 'image_url' };
}

function toMessage(m: WireMessage): chatv1.Message {
  const out: chatv1.Message = {
    role: m.role,
    contentIsNull: m.content === null,
    name: opt(m.name),
    toolCalls: m.tool_calls ? m.tool_calls.map(toToolCall) : [],
    toolCallId: opt(m.tool_call_id),
    refusal: opt(m.refusal),
    extraJson: extraJson(m, MESSAGE_KEYS, MESSAGE_LOSSY),
  };
  if (typeof m.content === 'string') out.text = m.content;
  else if (Array.isArray(m.content)) out.parts = { parts: m.content.map(toPart) };
  return out;
}

/**
 * A tool call handed back in an assistant message. The typed form is always filled (guardrails
 * redact its arguments, other adapters read it); when it would drop something (Google's
 * `extra_content`, which carries the `thought_signature` Gemini wants back), the call's JSON rides
 * along in `rawJson` for OpenAI-compatible providers.
 */
function toToolCall(c: WireToolCall): chatv1.ToolCall {
  const call: chatv1.ToolCall = { id: c.id, type: c.type ?? '', function: { name: c.function.name, arguments: c.function.arguments } };
  if (!onlyKeys(c, TOOL_CALL_KEYS) || !onlyKeys(c.function, FUNCTION_CALL_KEYS)) call.rawJson = JSON.stringify(c);
  return call;
}

/**
 * Function tools always fill `function` (routing and non-OpenAI adapters read it); when the typed
 * form would drop something (extra keys, `strict: null`), the tool's JSON rides along in `rawJson`
 * and OpenAI-compatible providers get that instead.
 */
function toTool(t: JsonObject & { type: string }): chatv1.Tool {
  const f = t['function'];
  if (t.type !== 'function' || !isObject(f) || typeof f['name'] !== 'string') return { type: t.type, rawJson: JSON.stringify(t) };
  const description = f['description'];
  const parameters = f['parameters'];
  const strict = f['strict'];
  const exact = onlyKeys(t, TOOL_KEYS) && onlyKeys(f, FUNCTION_KEYS) && strict !== null;
  return {
    type: 'function',
    function: {
      name: f['name'],
      description: typeof description === 'string' ? description : undefined,
      parametersJson: parameters === undefined ? '' : JSON.stringify(parameters),
      strict: typeof strict === 'boolean' ? strict : undefined,
    },
    rawJson: exact ? '' : JSON.stringify(t),
  };
}

function toToolChoice(c: NonNullable<ChatBody['tool_choice']>): chatv1.ToolChoice {
  if (typeof c === 'string') return { mode: c };
  const f = c['function'];
  if (c.type === 'function' && isObject(f) && typeof f['name'] === 'string' && onlyKeys(c, TOOL_KEYS) && onlyKeys(f, NAMED_FUNCTION)) return { functionName: f['name'] };
  return { rawJson: JSON.stringify(c) };
}

/**
 * The typed form (routing reads its type, other adapters its schema), with the client's JSON in
 * `rawJson` when the typed form would drop something: a `schema` beside `json_object` (Together's
 * and Fireworks' JSON mode), `strict: null`, any other key.
 */
function toResponseFormat(rf: NonNullable<ChatBody['response_format']>): chatv1.ResponseFormat {
  const js = rf.json_schema;
  const out: chatv1.ResponseFormat = { type: rf.type };
  if (js) out.jsonSchema = { name: js.name, description: js.description, schemaJson: js.schema === undefined ? '' : JSON.stringify(js.schema), strict: opt(js.strict) };
  if (!onlyKeys(rf, RESPONSE_FORMAT_KEYS) || (js && (!onlyKeys(js, JSON_SCHEMA_KEYS) || js.strict === null))) out.rawJson = JSON.stringify(rf);
  return out;
}

/**
 * A client's chat body, validated, as the canonical request. Unknown parameters (and explicit
 * nulls of known ones) ride in `extraJson`, so `toOpenAIChatBody` gives the provider the same body.
 */
export function parseChatRequest(body: unknown): chatv1.ChatRequest {
  const b = validate(chatBody, body);
  const so = b.stream_options;
  return {
    model: b.model,
    messages: b.messages.map(toMessage),
    tools: b.tools ? b.tools.map(toTool) : [],
    toolChoice: b.tool_choice ? toToolChoice(b.tool_choice) : undefined,
    parallelToolCalls: opt(b.parallel_tool_calls),
    responseFormat: b.response_format ? toResponseFormat(b.response_format) : undefined,
    temperature: opt(b.temperature),
    topP: opt(b.top_p),
    stop: b.stop == null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop,
    maxTokens: opt(b.max_tokens),
    maxCompletionTokens: opt(b.max_completion_tokens),
    n: opt(b.n),
    seed: opt(b.seed),
    logprobs: opt(b.logprobs),
    topLogprobs: opt(b.top_logprobs),
    user: opt(b.user),
    stream: b.stream === true,
    streamOptions: so ? { includeUsage: so.include_usage === true, extraJson: extraJson(so, STREAM_OPTION_KEYS, STREAM_OPTIONS_LOSSY) } : undefined,
    presencePenalty: opt(b.presence_penalty),
    frequencyPenalty: opt(b.frequency_penalty),
    logitBias: b.logit_bias ?? {},
    reasoningEffort: opt(b.reasoning_effort),
    serviceTier: opt(b.service_tier),
    metadata: b.metadata ?? {},
    store: opt(b.store),
    modalities: b.modalities ?? [],
    extraJson: extraJson(b, CHAT_KEYS, CHAT_LOSSY),
  };
}

function fromPart(p: chatv1.ContentPart): unknown {
  if (p.text !== undefined) return { type: 'text', text: p.text };
  if (p.imageUrl) return { type: 'image_url', image_url: p.imageUrl.detail === undefined ? { url: p.imageUrl.url } : { url: p.imageUrl.url, detail: p.imageUrl.detail } };
  if (p.inputAudio) return { type: 'input_audio', input_audio: { data: p.inputAudio.data, format: p.inputAudio.format } };
  if (p.refusal !== undefined) return { type: 'refusal', refusal: p.refusal };
  return p.rawJson ? JSON.parse(p.rawJson) : { type: 'text', text: '' };
}

/**
 * A tool call as the client sent it: its JSON when it had keys the typed form has no slot for, with
 * the typed fields laid over it (a guardrail may have redacted the arguments since).
 */
function fromToolCall(c: chatv1.ToolCall): JsonObject {
  const raw = c.rawJson ? (JSON.parse(c.rawJson) as JsonObject) : {};
  const out: JsonObject = { ...raw, id: c.id };
  if (c.type) out['type'] = c.type;
  const rawFunction = isObject(raw['function']) ? raw['function'] : {};
  out['function'] = { ...rawFunction, name: c.function?.name ?? '', arguments: c.function?.arguments ?? '' };
  return out;
}

function fromMessage(m: chatv1.Message): JsonObject {
  const out: JsonObject = { role: m.role };
  if (m.text !== undefined) out['content'] = m.text;
  else if (m.parts) out['content'] = m.parts.parts.map(fromPart);
  else if (m.contentIsNull) out['content'] = null;
  if (m.name !== undefined) out['name'] = m.name;
  if (m.toolCalls.length > 0) out['tool_calls'] = m.toolCalls.map(fromToolCall);
  if (m.toolCallId !== undefined) out['tool_call_id'] = m.toolCallId;
  if (m.refusal !== undefined) out['refusal'] = m.refusal;
  const merged = mergeExtra(out, m.extraJson);
  // An answer's reasoning, handed back with it (`reasoning_content`, Claude's signed `thinking_blocks`),
  // is for the model that wrote it: OpenAI and strict compatible servers (DeepSeek's reasoner, older
  // vLLM) refuse these fields in input, so a conversation moving to them would fail with a 400.
  if (m.role === 'assistant') for (const key of HANDED_BACK_REASONING) delete merged[key];
  return merged;
}

/** Fields of an assistant message that carry reasoning back to the model that wrote it. */
const HANDED_BACK_REASONING = ['reasoning_content', 'thinking_blocks'] as const;

function fromTool(t: chatv1.Tool): unknown {
  if (t.rawJson) return JSON.parse(t.rawJson);
  const f = t.function;
  const fn: JsonObject = { name: f?.name ?? '' };
  if (f?.description !== undefined) fn['description'] = f.description;
  if (f?.parametersJson) fn['parameters'] = JSON.parse(f.parametersJson);
  if (f?.strict !== undefined) fn['strict'] = f.strict;
  return { type: t.type || 'function', function: fn };
}

function fromToolChoice(c: chatv1.ToolChoice): unknown {
  if (c.mode !== undefined) return c.mode;
  if (c.functionName !== undefined) return { type: 'function', function: { name: c.functionName } };
  return c.rawJson ? JSON.parse(c.rawJson) : 'auto';
}

function fromResponseFormat(rf: chatv1.ResponseFormat): JsonObject {
  if (rf.rawJson) return JSON.parse(rf.rawJson) as JsonObject;
  const out: JsonObject = { type: rf.type };
  const js = rf.jsonSchema;
  if (js) {
    const schema: JsonObject = { name: js.name };
    if (js.description !== undefined) schema['description'] = js.description;
    if (js.schemaJson) schema['schema'] = JSON.parse(js.schemaJson);
    if (js.strict !== undefined) schema['strict'] = js.strict;
    out['json_schema'] = schema;
  }
  return out;
}

export interface OpenAIBodyOptions {
  /** The one parameter the output limit goes in; unset: as the client sent it. */
  outputLimit?: 'max_tokens' | 'max_completion_tokens';
  /** Top-level parameters left out of the body (the provider's `dropParams`). */
  dropParams?: readonly string[];
}

/**
 * The canonical request as an OpenAI-compatible provider's body, under the provider's own model
 * name. `extraJson` keys are merged at the top level; typed fields win over them.
 */
export function toOpenAIChatBody(r: chatv1.ChatRequest, upstreamModel: string, options: OpenAIBodyOptions = {}): JsonObject {
  // `cache_control` (Anthropic's prompt-caching marker) is dropped wherever it appears: on content parts and tools.
  const uncached = options.dropParams?.includes('cache_control') === true;
  const messages = withToolMediaInUserMessages(r.messages.map(fromMessage));
  const out: JsonObject = { model: upstreamModel, messages: uncached ? messages.map(withoutCacheControl) : messages };
  if (r.tools.length > 0) out['tools'] = uncached ? r.tools.map((t) => dropKey(fromTool(t), 'cache_control')) : r.tools.map(fromTool);
  if (r.toolChoice) out['tool_choice'] = fromToolChoice(r.toolChoice);
  if (r.parallelToolCalls !== undefined) out['parallel_tool_calls'] = r.parallelToolCalls;
  if (r.responseFormat) out['response_format'] = fromResponseFormat(r.responseFormat);
  if (r.temperature !== undefined) out['temperature'] = r.temperature;
  if (r.topP !== undefined) out['top_p'] = r.topP;
  if (r.stop.length > 0) out['stop'] = r.stop;
  if (options.outputLimit) {
    // One limit, in the parameter the server knows (`max_completion_tokens` wins, as in every family).
    const limit = r.maxCompletionTokens ?? r.maxTokens;
    if (limit !== undefined) out[options.outputLimit] = limit;
  } else {
    // Both, as asked; but `max_completion_tokens` wins, so a server that knows only `max_tokens`
    // (Mistral, DeepSeek, Ollama) gets its value too: the limit budgets and rate limits counted.
    if (r.maxTokens !== undefined) out['max_tokens'] = r.maxCompletionTokens ?? r.maxTokens;
    if (r.maxCompletionTokens !== undefined) out['max_completion_tokens'] = r.maxCompletionTokens;
  }
  if (r.n !== undefined) out['n'] = r.n;
  if (r.seed !== undefined) out['seed'] = r.seed;
  if (r.logprobs !== undefined) out['logprobs'] = r.logprobs;
  if (r.topLogprobs !== undefined) out['top_logprobs'] = r.topLogprobs;
  if (r.user !== undefined) out['user'] = r.user;
  if (r.stream) out['stream'] = true;
  if (r.streamOptions) {
    out['stream_options'] = mergeExtra(r.streamOptions.includeUsage ? { include_usage: true } : {}, r.streamOptions.extraJson);
  }
  if (r.presencePenalty !== undefined) out['presence_penalty'] = r.presencePenalty;
  if (r.frequencyPenalty !== undefined) out['frequency_penalty'] = r.frequencyPenalty;
  if (hasKeys(r.logitBias)) out['logit_bias'] = r.logitBias;
  if (r.reasoningEffort !== undefined) out['reasoning_effort'] = r.reasoningEffort;
  if (r.serviceTier !== undefined) out['service_tier'] = r.serviceTier;
  if (hasKeys(r.metadata)) out['metadata'] = r.metadata;
  if (r.store !== undefined) out['store'] = r.store;
  if (r.modalities.length > 0) out['modalities'] = r.modalities;
  const body = mergeExtra(out, r.extraJson);
  for (const key of options.dropParams ?? []) delete body[key];
  return body;
}

/**
 * OpenAI takes only text in a `tool` message ("Image URLs are only allowed for messages with role
 * 'user'…"), while clients put a tool's screenshot there (Claude Code's tool results do). A tool
 * message keeps its text parts (or says where the rest went); its other parts move, in order, into
 * one user message after the run of tool messages: every tool call must be answered right after the
 * assistant message that made it. Each call's parts follow a text naming the call. docs/providers/openai.md
 */
function withToolMediaInUserMessages(messages: JsonObject[]): JsonObject[] {
  if (!messages.some(hasToolMedia)) return messages;
  const out: JsonObject[] = [];
  let moved: unknown[] = [];
  const endRun = (): void => {
    if (moved.length > 0) out.push({ role: 'user', content: moved });
    moved = [];
  };
  for (const message of messages) {
    if (message['role'] !== 'tool') endRun();
    if (!hasToolMedia(message)) {
      out.push(message);
      continue;
    }
    const parts = message['content'] as unknown[];
    const texts = parts.filter(isTextPart);
    const media = parts.filter((p) => !isTextPart(p));
    const what = describeParts(media);
    out.push({ ...message, content: texts.length > 0 ? texts : `The result is ${what}, in the user message that follows.` });
    moved.push({ type: 'text', text: `The result of tool call ${String(message['tool_call_id'])} (${what}):` }, ...media);
  }
  endRun();
  return out;
}

function hasToolMedia(message: JsonObject): boolean {
  const content = message['content'];
  return message['role'] === 'tool' && Array.isArray(content) && !content.every(isTextPart);
}

const isTextPart = (part: unknown): boolean => isObject(part) && part['type'] === 'text';

/** What moved parts are, counted by kind ("2 images and 1 file"). */
function describeParts(parts: readonly unknown[]): string {
  const counts = new Map<string, number>();
  for (const part of parts) {
    const kind = (isObject(part) && typeof part['type'] === 'string' && PART_NOUNS.get(part['type'])) || 'part';
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  const named = [...counts].map(([kind, n]) => `${n} ${kind}${n === 1 ? '' : 's'}`);
  return named.length > 1 ? `${named.slice(0, -1).join(', ')} and ${named.at(-1)}` : (named[0] ?? '');
}

const PART_NOUNS: ReadonlyMap<string, string> = new Map([
  ['image_url', 'image'],
  ['file', 'file'],
  ['input_audio', 'audio clip'],
]);

/** A message without `cache_control` on itself or on its content parts. */
function withoutCacheControl(message: JsonObject): JsonObject {
  const out = dropKey(message, 'cache_control') as JsonObject;
  const content = out['content'];
  if (Array.isArray(content)) out['content'] = content.map((part) => dropKey(part, 'cache_control'));
  return out;
}

/** `value` without `key` when it is an object that has it (a copy), else `value` itself. */
function dropKey(value: unknown, key: string): unknown {
  if (!isObject(value) || !(key in value)) return value;
  const { [key]: _dropped, ...rest } = value;
  return rest;
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}
