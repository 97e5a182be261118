import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { REQUEST_BOUNDS } from './chat-request';
import { NO_REASONING, reasoningOf, thinkingBlock, type ThinkingBlock, unseenBlocks } from './reasoning';
import { toStrictSchema } from './strict-schema';
import { badRequest, isObject, type JsonObject, modelName, validate } from './validation';

/**
 * OpenAI's Responses API (`POST /v1/responses`), served by the chat path: a request becomes the
 * equivalent Chat Completions body, and the chat answer (whole or streamed) becomes a `response`
 * object or the Responses stream events. Storing responses is the caller's (ingress): a request
 * continuing a stored response (`previous_response_id`) is translated with the conversation so
 * far, which the caller hands in; without it, and for conversations, stored prompts and OpenAI's
 * built-in tools, the parameter is refused by name. Claude's signed thinking travels between turns
 * in reasoning items' `encrypted_content`, as OpenAI's own reasoning does statelessly. See
 * docs/responses-api.md.
 */

/** Extra checks for objects whose required fields depend on their `type`; other types pass as they are. */
function byType(shapes: Readonly<Record<string, z.ZodType>>) {
  return (value: { type: string }, ctx: z.RefinementCtx): void => {
    const shape = Object.hasOwn(shapes, value.type) ? shapes[value.type] : undefined;
    const result = shape?.safeParse(value);
    if (result && !result.success) for (const issue of result.error.issues) ctx.addIssue({ ...issue });
  };
}

const part = z.looseObject({ type: z.string() }).superRefine(
  byType({
    input_text: z.looseObject({ text: z.string() }),
    output_text: z.looseObject({ text: z.string() }),
    refusal: z.looseObject({ refusal: z.string() }),
    input_image: z.looseObject({ image_url: z.string().nullish(), file_id: z.string().nullish(), detail: z.string().nullish() }),
    input_file: z.looseObject({ file_data: z.string().nullish(), file_id: z.string().nullish(), file_url: z.string().nullish(), filename: z.string().nullish() }),
    input_audio: z.looseObject({ input_audio: z.looseObject({ data: z.string(), format: z.string() }) }),
  }),
);
type Part = z.infer<typeof part>;

const ROLES = ['user', 'assistant', 'system', 'developer'] as const;

/** Input items by `type` (a message may leave it out); other types are refused by name when translated. */
const ITEM_SHAPES: Readonly<Record<string, z.ZodType>> = {
  message: z.looseObject({ role: z.enum(ROLES), content: z.union([z.string(), z.array(part)]) }),
  function_call: z.looseObject({ call_id: z.string().min(1), name: z.string().min(1), arguments: z.string() }),
  function_call_output: z.looseObject({ call_id: z.string().min(1), output: z.union([z.string(), z.array(part)]) }),
  reasoning: z.looseObject({ encrypted_content: z.string().nullish() }),
};
/**
 * The most characters of an item's own id: one that is kept (a stored response's input, a
 * conversation's item) is addressed by it in a path (`/v1/conversations/{id}/items/{item_id}`),
 * whose parameters the HTTP server reads up to 100 characters.
 */
export const MAX_ITEM_ID_LENGTH = 100;

const inputItem = z
  .looseObject({ type: z.string().optional(), id: z.string().min(1).max(MAX_ITEM_ID_LENGTH).nullish() })
  .superRefine((item, ctx) => byType(ITEM_SHAPES)({ ...item, type: item.type ?? 'message' }, ctx));

const tool = z.looseObject({ type: z.string() }).superRefine(
  byType({
    function: z.looseObject({
      name: z.string().min(1),
      description: z.string().nullish(),
      parameters: z.record(z.string(), z.unknown()).nullish(),
      strict: z.boolean().nullish(),
    }),
  }),
);

const toolChoice = z.union([
  z.enum(['auto', 'none', 'required']),
  z.looseObject({ type: z.string() }).superRefine(byType({ function: z.looseObject({ name: z.string().min(1) }) })),
]);

const textFormat = z.looseObject({ type: z.enum(['text', 'json_object', 'json_schema']) }).superRefine(
  byType({
    json_schema: z.looseObject({
      name: z.string().min(1),
      schema: z.record(z.string(), z.unknown()),
      description: z.string().nullish(),
      strict: z.boolean().nullish(),
    }),
  }),
);

const responsesBody = z.strictObject({
  model: modelName,
  input: z.union([z.string(), z.array(inputItem)]).nullish(),
  instructions: z.string().nullish(),
  tools: z.array(tool).nullish(),
  tool_choice: toolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_output_tokens: z.int().min(1).max(REQUEST_BOUNDS.maxTokens).nullish(),
  max_tool_calls: z.int().min(1).nullish(),
  text: z.looseObject({ format: textFormat.nullish(), verbosity: z.string().nullish() }).nullish(),
  reasoning: z.looseObject({ effort: z.string().nullish(), summary: z.string().nullish(), generate_summary: z.string().nullish() }).nullish(),
  user: z.string().nullish(),
  safety_identifier: z.string().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_obfuscation: z.boolean().nullish() }).nullish(),
  top_logprobs: z.int().min(0).max(20).nullish(),
  service_tier: z.string().nullish(),
  store: z.boolean().nullish(),
  truncation: z.enum(['auto', 'disabled']).nullish(),
  prompt_cache_key: z.string().nullish(),
  prompt_cache_retention: z.string().nullish(),
  // Known and refused when set (they need state or services this gateway does not have).
  previous_response_id: z.string().nullish(),
  conversation: z.union([z.string(), z.looseObject({ id: z.string() })]).nullish(),
  background: z.boolean().nullish(),
  prompt: z.unknown().optional(),
  include: z.array(z.string()).nullish(),
  context_management: z.unknown().optional(),
  moderation: z.unknown().optional(),
  prompt_cache_options: z.unknown().optional(),
  // The gateway's routing extensions (docs/routing.md), passed on as the chat path takes them.
  models: z.unknown().optional(),
  route: z.unknown().optional(),
});
type ResponsesBody = z.infer<typeof responsesBody>;

// ---- reasoning carried between turns ----

/** An `include` value the gateway serves: reasoning items carry `encrypted_content`. */
const ENCRYPTED_REASONING = 'reasoning.encrypted_content';

/**
 * An `include` value the gateway serves: `output_text` parts (and their stream events) carry the
 * tokens' log probabilities. As on OpenAI, only this asks for them; `top_logprobs` alone returns none.
 */
const OUTPUT_LOGPROBS = 'message.output_text.logprobs';


/** What a reasoning item's `encrypted_content` holds, versioned: the answer's thinking blocks. */
const encryptedReasoning = z.strictObject({ v: z.literal(1), thinking_blocks: z.array(thinkingBlock).min(1) });

/**
 * A reasoning item's `encrypted_content`: base64url of `{"v":1,"thinking_blocks":[...]}`. Opaque to
 * the client, not secret: the blocks are the provider's, and the provider checks their signatures
 * when they come back (see docs/responses-api.md).
 */
export function encodeReasoning(blocks: readonly ThinkingBlock[]): string {
  return Buffer.from(JSON.stringify({ v: 1, thinking_blocks: blocks }), 'utf8').toString('base64url');
}

/** The thinking blocks of an `encrypted_content` this gateway wrote; undefined for anything else. */
export function decodeReasoning(content: string): ThinkingBlock[] | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(content)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(content, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = encryptedReasoning.safeParse(value);
  return parsed.success ? parsed.data.thinking_blocks : undefined;
}

/** Whether the Responses request (as the client sent it) has `value` in its `include`. */
function includes(request: unknown, value: string): boolean {
  return isObject(request) && Array.isArray(request['include']) && request['include'].includes(value);
}

function unsupported(param: string, why: string): never {
  throw badRequest(`'${param}' is not supported by this gateway: ${why}.`, param, 'unsupported_parameter');
}

const NOT_STORED = "responses are not stored on this gateway (responses.store is false); send the whole conversation in 'input'";
const NO_CONVERSATIONS = "conversations are not stored on this gateway (responses.store is false); send the whole conversation in 'input'";

/**
 * Parameters that need a conversation or a stored prompt, or a service the gateway does not run;
 * `previous_response_id` unless the caller continues stored responses (`stateful`).
 */
function refuseUnsupported(b: ResponsesBody, stateful: boolean, background: boolean, conversations: boolean): void {
  if (b.previous_response_id != null && b.conversation != null) {
    throw badRequest("'previous_response_id' and 'conversation' cannot be used together: a response continues either a stored response or a conversation.", 'conversation', 'invalid_value');
  }
  if (b.previous_response_id != null && !stateful) unsupported('previous_response_id', NOT_STORED);
  if (b.conversation != null && !(stateful && conversations)) unsupported('conversation', NO_CONVERSATIONS);
  if (b.background === true && !background) unsupported('background', 'background responses are not run by this gateway (responses.store or responses.background.enabled is false); send the request without it, or run many of them as a batch (/v1/batches)');
  if (b.prompt != null) unsupported('prompt', "stored prompt templates are not available; send the prompt in 'instructions' and 'input'");
  const included = (b.include ?? []).filter((v) => v !== ENCRYPTED_REASONING && v !== OUTPUT_LOGPROBS);
  if (included.length > 0) {
    unsupported('include', `no additional output data but '${ENCRYPTED_REASONING}' and '${OUTPUT_LOGPROBS}' can be included (asked for ${included.map((v) => `'${v}'`).join(', ')})`);
  }
  if (b.truncation === 'auto') unsupported('truncation', "inputs are never truncated by the gateway; use 'disabled' (the default)");
  if (b.context_management != null) unsupported('context_management', 'server-side context compaction is not available');
  if (b.moderation != null) unsupported('moderation', 'moderation is not available on this endpoint');
  if (b.prompt_cache_options != null) unsupported('prompt_cache_options', "use 'prompt_cache_key', which is passed on to providers that support it");
}

/** How a Responses request is translated beyond its body. */
export interface ResponsesTranslation {
  /**
   * The conversation a request with `previous_response_id` continues, oldest first: each earlier
   * turn's input items and then its output items, as stored; or the items of the conversation a
   * request with `conversation` adds to. Given, `previous_response_id` (or, with
   * `conversations`, `conversation`) is served; absent, it is refused (nothing is stored). The
   * earlier turns' `instructions` are not carried over, as OpenAI does not carry them.
   */
  history?: readonly JsonObject[] | undefined;
  /** True when the caller serves `conversation` (and hands in its items as `history`); absent, `conversation` is refused. */
  conversations?: boolean | undefined;
  /** True when the caller runs `background: true` requests (which it then queues); absent, `background: true` is refused. */
  background?: boolean | undefined;
}

/**
 * A client's Responses request, validated, as the equivalent Chat Completions body. Unknown
 * parameters are refused (`unknown_parameter`) as OpenAI refuses them; parameters that need state
 * or OpenAI's hosted services are refused by name (`unsupported_parameter`).
 */
export function responsesToChatBody(body: unknown, translation: ResponsesTranslation = {}): JsonObject {
  const b = validate(responsesBody, body);
  const history = translation.history ?? [];
  refuseUnsupported(b, translation.history !== undefined, translation.background === true, translation.conversations === true);
  const messages: JsonObject[] = [];
  if (b.instructions != null && b.instructions !== '') messages.push({ role: 'system', content: b.instructions });
  const input: readonly JsonObject[] = typeof b.input === 'string' ? [{ role: 'user', content: b.input }] : (b.input ?? []);
  // The earlier turns and this one's input as one run of items, so that a turn joins across them
  // (a function call output answering the stored response's calls); a stored item that cannot be
  // translated is named by the parameter that brought it in.
  const historyParam = b.conversation != null ? 'conversation' : 'previous_response_id';
  addItems(messages, [...history, ...input], (i) => (i < history.length ? historyParam : typeof b.input === 'string' ? 'input' : `input[${i - history.length}]`));
  if (messages.length === 0) throw badRequest("Missing required parameter: 'input'.", 'input', 'missing_required_parameter');

  const chat: JsonObject = { model: b.model, messages };
  if (b.tools && b.tools.length > 0) chat['tools'] = b.tools.map(toChatTool);
  if (b.tool_choice != null) chat['tool_choice'] = toChatToolChoice(b.tool_choice);
  if (b.parallel_tool_calls != null) chat['parallel_tool_calls'] = b.parallel_tool_calls;
  if (b.temperature != null) chat['temperature'] = b.temperature;
  if (b.top_p != null) chat['top_p'] = b.top_p;
  if (b.max_output_tokens != null) chat['max_completion_tokens'] = b.max_output_tokens;
  const format = b.text?.format;
  if (format != null && format.type !== 'text') chat['response_format'] = toResponseFormat(format);
  if (b.text?.verbosity != null) chat['verbosity'] = b.text.verbosity;
  if (b.reasoning?.effort != null) chat['reasoning_effort'] = b.reasoning.effort;
  if (b.user != null) chat['user'] = b.user;
  if (b.safety_identifier != null) chat['safety_identifier'] = b.safety_identifier;
  if (b.stream === true) chat['stream'] = true;
  // Log probabilities only when included, as OpenAI returns them: asked for on `top_logprobs` alone,
  // the provider would compute (or refuse) what the response leaves out. Without `top_logprobs`,
  // chat's default applies: no alternatives.
  if ((b.include ?? []).includes(OUTPUT_LOGPROBS)) {
    chat['logprobs'] = true;
    if (b.top_logprobs != null) chat['top_logprobs'] = b.top_logprobs;
  }
  if (b.service_tier != null) chat['service_tier'] = b.service_tier;
  if (b.prompt_cache_key != null) chat['prompt_cache_key'] = b.prompt_cache_key;
  if (b.prompt_cache_retention != null) chat['prompt_cache_retention'] = b.prompt_cache_retention;
  if (b.models !== undefined) chat['models'] = b.models;
  if (b.route !== undefined) chat['route'] = b.route;
  return chat;
}

/**
 * Input items in order as chat messages. Consecutive function calls (and a function call right
 * after an assistant message) join one assistant turn, as chat carries them. A reasoning item's
 * thinking (its `encrypted_content`) goes with the assistant turn the items after it form, as its
 * `thinking_blocks` (the Claude adapters hand them back first in that turn); a reasoning item
 * without it is dropped (chat models take no other reasoning input).
 */
function addItems(messages: JsonObject[], items: readonly JsonObject[], where: (i: number) => string): void {
  // The assistant turn the next function call joins.
  let assistant: JsonObject | undefined;
  // Thinking of reasoning items for the assistant turn the next items form.
  let thinking: ThinkingBlock[] = [];
  const takeThinking = (message: JsonObject): void => {
    if (thinking.length === 0) return;
    const blocks = Array.isArray(message['thinking_blocks']) ? (message['thinking_blocks'] as ThinkingBlock[]) : [];
    message['thinking_blocks'] = [...blocks, ...thinking];
    thinking = [];
  };
  items.forEach((item, i) => {
    const type = typeof item['type'] === 'string' ? item['type'] : 'message';
    switch (type) {
      case 'message': {
        const message = toChatMessage(item, where(i));
        if (message['role'] === 'assistant') {
          takeThinking(message);
          assistant = message;
        } else {
          // Thinking that no assistant turn followed has nothing to go back with.
          thinking = [];
          assistant = undefined;
        }
        messages.push(message);
        return;
      }
      case 'function_call': {
        const call = { id: item['call_id'], type: 'function', function: { name: item['name'], arguments: item['arguments'] } };
        if (assistant) {
          const calls = Array.isArray(assistant['tool_calls']) ? (assistant['tool_calls'] as unknown[]) : (assistant['tool_calls'] = []);
          calls.push(call);
        } else {
          assistant = { role: 'assistant', content: null, tool_calls: [call] };
          messages.push(assistant);
        }
        takeThinking(assistant);
        return;
      }
      case 'function_call_output':
        messages.push({ role: 'tool', tool_call_id: item['call_id'], content: toolOutput(item['output'] as string | Part[], where(i)) });
        assistant = undefined;
        thinking = [];
        return;
      case 'reasoning':
        thinking.push(...reasoningInput(item, where(i)));
        return;
      case 'item_reference':
        return unsupported(where(i), "item references are not resolved by this gateway; send the item itself, or continue the stored response with 'previous_response_id'");
      default:
        return unsupported(`${where(i)}.type`, `'${type}' items belong to OpenAI's built-in tools; only messages, function calls and function call outputs are accepted`);
    }
  });
}

/**
 * The thinking blocks a reasoning item carries back: none without `encrypted_content` (a reasoning
 * item of another API, or one returned without `include`), a 400 for content this gateway did not
 * write or that was altered.
 */
function reasoningInput(item: JsonObject, at: string): ThinkingBlock[] {
  const content = item['encrypted_content'];
  if (typeof content !== 'string' || content === '') return [];
  const blocks = decodeReasoning(content);
  if (blocks) return blocks;
  const param = `${at}.encrypted_content`;
  throw badRequest(
    `Invalid value for '${param}': it is not the encrypted_content of a reasoning item this gateway returned; send reasoning items back unchanged, or leave out their encrypted_content.`,
    param,
    'invalid_value',
  );
}

function toChatMessage(item: JsonObject, at: string): JsonObject {
  const role = item['role'] as (typeof ROLES)[number];
  const content = item['content'] as string | Part[];
  if (typeof content === 'string') return { role, content };
  const parts = content.map((p, j) => toChatPart(p, `${at}.content[${j}]`, role));
  // Earlier answers go back as plain text: every provider takes that for an assistant turn.
  if (role === 'assistant') return { role, content: parts.map((p) => p['text']).join('') };
  return { role, content: parts };
}

function toChatPart(p: Part, param: string, role: string): JsonObject {
  const text = p.type === 'input_text' || p.type === 'output_text' ? p['text'] : p.type === 'refusal' ? p['refusal'] : undefined;
  if (typeof text === 'string') return { type: 'text', text };
  if (role === 'assistant' && ['input_image', 'input_file', 'input_audio'].includes(p.type)) {
    throw badRequest(`Invalid value for '${param}.type': an assistant message carries text ('output_text' or 'refusal'), not '${p.type}'.`, `${param}.type`, 'invalid_value');
  }
  switch (p.type) {
    case 'input_image': {
      if (typeof p['file_id'] === 'string') unsupported(`${param}.file_id`, 'files are not stored here; send the image as image_url (a URL or a data: URL)');
      const url = p['image_url'];
      if (typeof url !== 'string') throw badRequest(`Missing required parameter: '${param}.image_url'.`, `${param}.image_url`, 'missing_required_parameter');
      const detail = p['detail'];
      return { type: 'image_url', image_url: typeof detail === 'string' ? { url, detail } : { url } };
    }
    case 'input_file': {
      if (typeof p['file_id'] === 'string') unsupported(`${param}.file_id`, "files are not stored here; send the file's content as file_data (a data: URL)");
      if (typeof p['file_url'] === 'string') unsupported(`${param}.file_url`, "files are not fetched by URL; send the file's content as file_data (a data: URL)");
      const data = p['file_data'];
      if (typeof data !== 'string') throw badRequest(`Missing required parameter: '${param}.file_data'.`, `${param}.file_data`, 'missing_required_parameter');
      const filename = p['filename'];
      return { type: 'file', file: typeof filename === 'string' ? { file_data: data, filename } : { file_data: data } };
    }
    case 'input_audio': {
      const audio = p['input_audio'] as { data: string; format: string };
      return { type: 'input_audio', input_audio: { data: audio.data, format: audio.format } };
    }
  }
  throw badRequest(
    `Invalid value for '${param}.type': expected 'input_text', 'input_image', 'input_file', 'input_audio', 'output_text' or 'refusal', but got '${p.type}' instead.`,
    `${param}.type`,
    'invalid_value',
  );
}

/** A function call's output as a tool message's content: chat tool messages carry text. */
function toolOutput(output: string | Part[], at: string): string | JsonObject[] {
  if (typeof output === 'string') return output;
  return output.map((p, j) => {
    if (p.type === 'input_text' || p.type === 'output_text') return { type: 'text', text: p['text'] };
    return unsupported(`${at}.output[${j}].type`, `a function call output is passed to chat models as text, so '${p.type}' parts cannot be sent in one`);
  });
}

function toChatTool(t: JsonObject & { type: string }, i: number): JsonObject {
  if (t.type !== 'function') {
    unsupported(`tools[${i}].type`, `the built-in tool '${t.type}' runs on OpenAI's servers; chat models are given function tools only (run the tool yourself and declare it as a function)`);
  }
  const fn: JsonObject = { name: t['name'] };
  if (typeof t['description'] === 'string') fn['description'] = t['description'];
  const { parameters, strict } = appliedStrictness(t);
  if (parameters) fn['parameters'] = parameters;
  // One the default leaves non-strict goes without `strict`: chat's own default is non-strict.
  if (strict || typeof t['strict'] === 'boolean') fn['strict'] = strict;
  return { type: 'function', function: fn };
}

/**
 * A function tool's `strict` and parameters as OpenAI's Responses API applies them: unlike a chat
 * tool, one is strict by default. Without `strict` (or with `null`), its parameters are normalized
 * into strict mode (`toStrictSchema`) and it is strict; when they cannot be, or it has none, it is
 * not, as OpenAI falls back to non-strict calling. An explicit `strict` is kept, parameters as sent
 * (a schema `strict: true` cannot take is refused by the provider, as OpenAI refuses it).
 */
function appliedStrictness(t: JsonObject): { parameters: JsonObject | undefined; strict: boolean } {
  const parameters = isObject(t['parameters']) ? t['parameters'] : undefined;
  if (typeof t['strict'] === 'boolean') return { parameters, strict: t['strict'] };
  const strict = parameters && toStrictSchema(parameters);
  return strict ? { parameters: strict, strict: true } : { parameters, strict: false };
}

function toChatToolChoice(c: NonNullable<ResponsesBody['tool_choice']>): unknown {
  if (typeof c === 'string') return c;
  if (c.type === 'function') return { type: 'function', function: { name: c['name'] } };
  return unsupported('tool_choice', `a tool choice of type '${c.type}' names something other than a function tool; use 'auto', 'none', 'required' or {"type":"function","name":…}`);
}

function toResponseFormat(f: JsonObject & { type: string }): JsonObject {
  if (f.type !== 'json_schema') return { type: f.type };
  const schema: JsonObject = { name: f['name'], schema: f['schema'] };
  if (typeof f['description'] === 'string') schema['description'] = f['description'];
  if (typeof f['strict'] === 'boolean') schema['strict'] = f['strict'];
  return { type: 'json_schema', json_schema: schema };
}

/**
 * A chat-shaped error parameter in the Responses request's words (an error of the chat path,
 * raised after the body was translated, names what the client sent).
 */
export function toResponsesParam(param: string): string {
  if (param === 'max_completion_tokens' || param === 'max_tokens') return 'max_output_tokens';
  if (param === 'messages' || param.startsWith('messages[') || param.startsWith('messages.')) return 'input';
  if (param === 'response_format' || param.startsWith('response_format.')) return `text.format${param.slice('response_format'.length).replace(/^\.json_schema/, '')}`;
  if (param === 'reasoning_effort') return 'reasoning.effort';
  // Only the include value asks for logprobs (`top_logprobs` keeps its name).
  if (param === 'logprobs') return 'include';
  if (param === 'verbosity') return 'text.verbosity';
  const tool = /^tools\[(\d+)\]\.function(.*)$/.exec(param);
  if (tool) return `tools[${tool[1]}]${tool[2]}`;
  if (param === 'tool_choice.function.name') return 'tool_choice.name';
  return param;
}

// ---- the response ----

/** An id of the Responses API's shape (`resp_…`, `msg_…`): random (about 192 bits), never reused. */
export function responseId(prefix: 'resp' | 'msg' | 'rs' | 'fc' | 'fco' | 'call'): string {
  return `${prefix}_${randomBytes(24).toString('hex')}`;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** A function tool as it was applied (as OpenAI echoes it): its strictness and parameters after the default. */
function echoTool(t: unknown): unknown {
  if (!isObject(t) || t['type'] !== 'function') return t;
  const { parameters, strict } = appliedStrictness(t);
  return { type: 'function', name: t['name'], description: t['description'] ?? null, parameters: parameters ?? null, strict };
}

type Status = 'queued' | 'in_progress' | 'completed' | 'incomplete' | 'failed' | 'cancelled';

/**
 * The response object's fields that echo the request, as OpenAI returns them, with no output yet;
 * `stored` when the response is being kept (docs/responses-api.md#stored-responses).
 */
function envelope(request: unknown, model: string, id: string, createdAt: number, status: Status, stored: boolean): JsonObject {
  const r = isObject(request) ? request : {};
  const reasoning = isObject(r['reasoning']) ? r['reasoning'] : {};
  const text = isObject(r['text']) ? r['text'] : {};
  const out: JsonObject = {
    id,
    object: 'response',
    created_at: createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: str(r['instructions']) ?? null,
    max_output_tokens: num(r['max_output_tokens']) ?? null,
    max_tool_calls: num(r['max_tool_calls']) ?? null,
    model,
    output: [],
    parallel_tool_calls: typeof r['parallel_tool_calls'] === 'boolean' ? r['parallel_tool_calls'] : true,
    previous_response_id: str(r['previous_response_id']) ?? null,
    prompt_cache_key: str(r['prompt_cache_key']) ?? null,
    reasoning: { effort: str(reasoning['effort']) ?? null, summary: str(reasoning['summary']) ?? null },
    safety_identifier: str(r['safety_identifier']) ?? null,
    service_tier: str(r['service_tier']) ?? null,
    store: stored,
    temperature: num(r['temperature']) ?? null,
    text: { format: isObject(text['format']) ? text['format'] : { type: 'text' }, verbosity: str(text['verbosity']) ?? null },
    tool_choice: r['tool_choice'] ?? 'auto',
    tools: Array.isArray(r['tools']) ? r['tools'].map(echoTool) : [],
    top_logprobs: num(r['top_logprobs']) ?? null,
    top_p: num(r['top_p']) ?? null,
    truncation: 'disabled',
    usage: null,
    metadata: isObject(r['metadata']) ? r['metadata'] : {},
  };
  if (typeof r['user'] === 'string') out['user'] = r['user'];
  const conversation = conversationIdOf(r);
  if (conversation !== undefined) out['conversation'] = { id: conversation };
  return out;
}

/** The id of the conversation a Responses request adds to (`conversation`: its id, or `{id}`), if any. */
export function conversationIdOf(request: unknown): string | undefined {
  const c = isObject(request) ? request['conversation'] : undefined;
  if (typeof c === 'string') return c;
  return isObject(c) && typeof c['id'] === 'string' ? c['id'] : undefined;
}

/**
 * A background response that has no answer yet (`queued`, `in_progress`), or never will
 * (`cancelled`, or `failed` with its `error`), as OpenAI shows it: the request's echoed fields,
 * no output, no usage, `background` and `store` true.
 */
export function pendingResponse(request: unknown, model: string, id: string, createdAt: number, status: 'queued' | 'in_progress' | 'cancelled' | 'failed', error: { code: string; message: string } | null = null): JsonObject {
  const out = envelope(request, model, id, createdAt, status, true);
  out['background'] = true;
  out['error'] = error;
  return out;
}

/** The response's status from the chat finish reason: cut answers are `incomplete`, with why. */
function outcome(finishReason: string | undefined): { status: 'completed' | 'incomplete'; details: JsonObject | null } {
  if (finishReason === 'length') return { status: 'incomplete', details: { reason: 'max_output_tokens' } };
  if (finishReason === 'content_filter') return { status: 'incomplete', details: { reason: 'content_filter' } };
  return { status: 'completed', details: null };
}

/** Canonical usage in the Responses API's words. */
export function toResponsesUsage(u: chatv1.Usage): JsonObject {
  return {
    input_tokens: u.promptTokens,
    // Cache writes too, as the SDK's ResponseUsage has them (billed apart from plain input).
    input_tokens_details: { cached_tokens: u.cachedReadTokens, cache_write_tokens: u.cacheWriteTokens },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.totalTokens || u.promptTokens + u.completionTokens,
  };
}

/**
 * A finished reasoning item: the text as one `summary_text` (none when there is no text, as for
 * redacted thinking), and, when the request included it or the response is stored (`keep`; the
 * client's view leaves it out again, `responseView`), `encrypted_content` holding the thinking
 * blocks (null when the answer had none to hand back).
 */
function reasoningItem(id: string, summary: JsonObject[], blocks: readonly ThinkingBlock[], keep: boolean): JsonObject {
  const item: JsonObject = { id, type: 'reasoning', summary };
  if (keep) item['encrypted_content'] = blocks.length > 0 ? encodeReasoning(blocks) : null;
  return item;
}

/** Whether reasoning items are built with their `encrypted_content`: included, or kept for the next turn. */
const keepsReasoning = (request: unknown, stored: boolean): boolean => stored || includes(request, ENCRYPTED_REASONING);

/**
 * An item (of a response's output, or of its input) as the client sees it: a reasoning item
 * without its `encrypted_content` unless the client included `reasoning.encrypted_content`.
 */
export function itemView<T>(item: T, include: boolean): T {
  if (include || !isObject(item) || item['type'] !== 'reasoning' || !('encrypted_content' in item)) return item;
  const { encrypted_content: _hidden, ...rest } = item;
  return rest as T;
}

/**
 * A response as the client sees it: a stored response keeps its reasoning items'
 * `encrypted_content` for the next turn, which is shown only to a request (or a retrieval) whose
 * `include` has `reasoning.encrypted_content`. The stored object is not changed.
 */
export function responseView(response: JsonObject, request: unknown): JsonObject {
  const include = includes(request, ENCRYPTED_REASONING);
  const output = response['output'];
  if (include || !Array.isArray(output)) return response;
  return { ...response, output: output.map((item) => itemView(item, false)) };
}

/**
 * The input items of a validated Responses request as a stored response keeps them: as sent
 * (so the next turn sends the provider the same conversation), each with an id (the client's, or a
 * new one) and its `type`.
 */
export function storedInputItems(body: unknown): JsonObject[] {
  const input = isObject(body) ? body['input'] : undefined;
  const items: JsonObject[] = typeof input === 'string' ? [{ role: 'user', content: input }] : Array.isArray(input) ? input.filter(isObject) : [];
  return items.map((item) => {
    const type = str(item['type']) ?? 'message';
    return { ...item, id: str(item['id']) ?? responseId(ITEM_ID_PREFIX[type] ?? 'msg'), type };
  });
}

/**
 * A stored item as `GET /v1/responses/{id}/input_items` lists it, in OpenAI's shape: a message's
 * text content as one part (`input_text`, or `output_text` for an assistant's).
 */
export function inputItemView(item: JsonObject): JsonObject {
  const content = item['content'];
  if (item['type'] !== 'message' || typeof content !== 'string') return item;
  return { ...item, content: [item['role'] === 'assistant' ? outputText(content, []) : { type: 'input_text', text: content }] };
}

/** The id prefix of a stored input item by its type. */
const ITEM_ID_PREFIX: Readonly<Record<string, 'msg' | 'fc' | 'fco' | 'rs'>> = { message: 'msg', function_call: 'fc', function_call_output: 'fco', reasoning: 'rs' };

/**
 * Chat logprobs (`{content: [...]}`) as an output_text part's `logprobs`; none (`[]`, as OpenAI
 * answers) unless the request included them.
 */
function toLogprobs(json: string, request: unknown): JsonObject[] {
  if (!json || !includes(request, OUTPUT_LOGPROBS)) return [];
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return [];
  }
  const content = isObject(value) && Array.isArray(value['content']) ? value['content'] : [];
  const token = (t: JsonObject): JsonObject => ({ token: str(t['token']) ?? '', bytes: Array.isArray(t['bytes']) ? t['bytes'] : [], logprob: num(t['logprob']) ?? 0 });
  return content.filter(isObject).map((t) => ({ ...token(t), top_logprobs: Array.isArray(t['top_logprobs']) ? t['top_logprobs'].filter(isObject).map(token) : [] }));
}

const outputText = (text: string, logprobs: JsonObject[]): JsonObject => ({ type: 'output_text', annotations: [], logprobs, text });

/**
 * The Responses API's `response` object for a whole chat completion (its first choice), under the
 * public model id; `request` is the Responses request as the client sent it (for the echoed fields).
 * A response being `stored` says so and keeps its reasoning's `encrypted_content` (the client gets
 * `responseView` of it).
 */
export function toResponse(completion: chatv1.ChatCompletion, model: string, request: unknown, stored = false): JsonObject {
  const choice = completion.choices.find((c) => c.index === 0) ?? completion.choices[0];
  const { status, details } = outcome(choice?.finishReason);
  const itemStatus = status === 'incomplete' ? 'incomplete' : 'completed';
  const m = choice?.message;
  const output: JsonObject[] = [];
  const reasoning = m ? reasoningOf(m.extraJson) : NO_REASONING;
  if (reasoning.text || reasoning.blocks.length > 0) {
    const summary = reasoning.text ? [{ type: 'summary_text', text: reasoning.text }] : [];
    output.push(reasoningItem(responseId('rs'), summary, reasoning.blocks, keepsReasoning(request, stored)));
  }
  const calls = m?.toolCalls ?? [];
  const content: JsonObject[] = [];
  if (m?.content) content.push(outputText(m.content, toLogprobs(choice?.logprobsJson ?? '', request)));
  if (m?.refusal) content.push({ type: 'refusal', refusal: m.refusal });
  // An answer with nothing in it is still one (empty) message, so `output_text` is ''.
  if (content.length === 0 && calls.length === 0) content.push(outputText('', []));
  if (content.length > 0) output.push({ id: responseId('msg'), type: 'message', status: itemStatus, content, role: 'assistant' });
  for (const c of calls) {
    output.push({ id: responseId('fc'), type: 'function_call', status: itemStatus, arguments: c.function?.arguments ?? '', call_id: c.id || responseId('call'), name: c.function?.name ?? '' });
  }
  const out = envelope(request, model, responseId('resp'), completion.created || nowSeconds(), status, stored);
  out['incomplete_details'] = details;
  out['output'] = output;
  if (completion.serviceTier !== undefined) out['service_tier'] = completion.serviceTier;
  out['usage'] = completion.usage ? toResponsesUsage(completion.usage) : null;
  if (status === 'completed') out['completed_at'] = nowSeconds();
  return out;
}

// ---- the stream ----

/** One Responses stream event: written as `event: <type>` and `data: <the event as JSON>`. */
export type ResponsesStreamEvent = JsonObject & { type: string; sequence_number: number };

/** The error a stream fails with, in OpenAI's words (its error body's `error`). */
export interface ResponsesStreamError {
  code: string | null;
  message: string;
  param: string | null;
}

interface OpenPart {
  type: 'output_text' | 'refusal';
  text: string;
  logprobs: JsonObject[];
}

interface MessageItem {
  index: number;
  id: string;
  parts: JsonObject[];
  open: OpenPart | undefined;
}

interface ReasoningItem {
  index: number;
  id: string;
  /** Whether its summary part was opened (at the first reasoning text). */
  summarised: boolean;
  text: string;
  blocks: ThinkingBlock[];
}

interface CallItem {
  index: number;
  id: string;
  callId: string;
  name: string;
  arguments: string;
}

/**
 * Translates one streamed chat answer (its first choice) into the Responses API's stream events,
 * numbered in order: `start` for the first two, `chunk` for each chat chunk, then `complete` or
 * `fail` once. Items follow one another as OpenAI sends them: reasoning (its summary, and once
 * done its `encrypted_content` when the request included it), the message (text, then a
 * refusal), function calls; an item ends when the next begins, function calls when the answer ends.
 */
export class ResponsesStream {
  private sequence = 0;
  private readonly id: string;
  private readonly createdAt: number;
  /** Items by output index, in their final form once done. */
  private readonly output: JsonObject[] = [];
  private readonly done = new Set<number>();
  private reasoning: ReasoningItem | undefined;
  private message: MessageItem | undefined;
  private readonly calls = new Map<number, CallItem>();
  /** Every thinking block the stream brought so far, in order (a delta may repeat them, see `unseenBlocks`). */
  private readonly blocks: ThinkingBlock[] = [];
  private finishReason: string | undefined;
  private usage: chatv1.Usage | undefined;
  private serviceTier: string | undefined;
  /** Whether the client sees reasoning items' `encrypted_content`. */
  private readonly include: boolean;
  private completed: JsonObject | undefined;

  /**
   * `stored`: the response is being kept (it says so, and keeps its reasoning's `encrypted_content`
   * for the next turn). `background`: the background response this stream is the run of, whose id
   * and creation time the response takes (and says `background: true`); a new id otherwise.
   */
  constructor(
    private readonly model: string,
    private readonly request: unknown,
    private readonly stored = false,
    private readonly background?: { id: string; createdAt: number },
  ) {
    this.include = includes(request, ENCRYPTED_REASONING);
    this.id = background?.id ?? responseId('resp');
    this.createdAt = background?.createdAt ?? nowSeconds();
  }

  /** The response `complete` ended the stream with, whole (reasoning items keep their `encrypted_content` when stored); the events carry the client's view of it. */
  get response(): JsonObject | undefined {
    return this.completed;
  }

  /** `response.created` and `response.in_progress`. */
  start(): ResponsesStreamEvent[] {
    const response = this.snapshot('in_progress');
    return [this.event('response.created', { response }), this.event('response.in_progress', { response: this.snapshot('in_progress') })];
  }

  /** The events of one chat chunk (none for a usage-only chunk, whose usage is kept for the end). */
  chunk(chunk: chatv1.ChatChunk): ResponsesStreamEvent[] {
    const events: ResponsesStreamEvent[] = [];
    if (chunk.usage) this.usage = chunk.usage;
    if (chunk.serviceTier !== undefined) this.serviceTier = chunk.serviceTier;
    for (const choice of chunk.choices) {
      if (choice.index !== 0) continue;
      const d = choice.delta;
      if (d) {
        const reasoning = d.extraJson ? reasoningOf(d.extraJson) : NO_REASONING;
        if (reasoning.text) this.reasoningDelta(reasoning.text, events);
        const blocks = unseenBlocks(this.blocks, reasoning.blocks);
        this.blocks.push(...blocks);
        if (blocks.length > 0) this.openReasoning(events).blocks.push(...blocks);
        if (d.content) this.textDelta('output_text', d.content, toLogprobs(choice.logprobsJson, this.request), events);
        if (d.refusal) this.textDelta('refusal', d.refusal, [], events);
        for (const t of d.toolCalls) this.toolDelta(t, events);
      }
      if (choice.finishReason) this.finishReason = choice.finishReason;
    }
    return events;
  }

  /**
   * Ends every open item and the response: `response.completed`, or `response.incomplete` when the
   * answer was cut (its length, a content filter). `usage` wins over the usage the chunks carried.
   */
  complete(usage?: chatv1.Usage): ResponsesStreamEvent[] {
    const events: ResponsesStreamEvent[] = [];
    const { status, details } = outcome(this.finishReason);
    const itemStatus = status === 'incomplete' ? 'incomplete' : 'completed';
    // An answer with nothing in it is still one (empty) message, as a whole response has.
    if (this.output.length === 0) this.openPart('output_text', events);
    this.closeReasoning(events);
    this.closeMessage(itemStatus, events);
    for (const call of [...this.calls.values()].sort((a, b) => a.index - b.index)) this.closeCall(call, itemStatus, events);
    const response = this.snapshot(status);
    response['incomplete_details'] = details;
    response['output'] = [...this.output];
    const tokens = usage ?? this.usage;
    response['usage'] = tokens ? toResponsesUsage(tokens) : null;
    if (status === 'completed') response['completed_at'] = nowSeconds();
    this.completed = response;
    events.push(this.event(status === 'completed' ? 'response.completed' : 'response.incomplete', { response: responseView(response, this.request) }));
    return events;
  }

  /** A failure after the stream started: an `error` event, then `response.failed` with the items already done. */
  fail(error: ResponsesStreamError): ResponsesStreamEvent[] {
    const response = this.snapshot('failed');
    response['output'] = this.output.filter((_, i) => this.done.has(i)).map((item) => itemView(item, this.include));
    response['error'] = { code: error.code === 'rate_limit_exceeded' ? 'rate_limit_exceeded' : 'server_error', message: error.message };
    return [this.event('error', { code: error.code, message: error.message, param: error.param }), this.event('response.failed', { response })];
  }

  private snapshot(status: Status): JsonObject {
    const out = envelope(this.request, this.model, this.id, this.createdAt, status, this.stored);
    if (this.background) out['background'] = true;
    if (this.serviceTier !== undefined) out['service_tier'] = this.serviceTier;
    return out;
  }

  private event(type: string, fields: JsonObject): ResponsesStreamEvent {
    return { type, sequence_number: this.sequence++, ...fields };
  }

  private add(item: JsonObject, events: ResponsesStreamEvent[]): number {
    const index = this.output.length;
    this.output.push(item);
    events.push(this.event('response.output_item.added', { output_index: index, item }));
    return index;
  }

  private finish(index: number, item: JsonObject, events: ResponsesStreamEvent[]): void {
    this.output[index] = item;
    this.done.add(index);
    events.push(this.event('response.output_item.done', { output_index: index, item: itemView(item, this.include) }));
  }

  /** The open reasoning item, opened (ending the message) if there is none. */
  private openReasoning(events: ResponsesStreamEvent[]): ReasoningItem {
    if (!this.reasoning) {
      this.closeMessage('completed', events);
      const id = responseId('rs');
      const index = this.add({ id, type: 'reasoning', summary: [] }, events);
      this.reasoning = { index, id, summarised: false, text: '', blocks: [] };
    }
    return this.reasoning;
  }

  private reasoningDelta(delta: string, events: ResponsesStreamEvent[]): void {
    const r = this.openReasoning(events);
    if (!r.summarised) {
      r.summarised = true;
      events.push(this.event('response.reasoning_summary_part.added', { item_id: r.id, output_index: r.index, summary_index: 0, part: { type: 'summary_text', text: '' } }));
    }
    r.text += delta;
    events.push(this.event('response.reasoning_summary_text.delta', { item_id: r.id, output_index: r.index, summary_index: 0, delta }));
  }

  private closeReasoning(events: ResponsesStreamEvent[]): void {
    const r = this.reasoning;
    if (!r) return;
    this.reasoning = undefined;
    const summary: JsonObject[] = [];
    if (r.summarised) {
      const part = { type: 'summary_text', text: r.text };
      events.push(this.event('response.reasoning_summary_text.done', { item_id: r.id, output_index: r.index, summary_index: 0, text: r.text }));
      events.push(this.event('response.reasoning_summary_part.done', { item_id: r.id, output_index: r.index, summary_index: 0, part }));
      summary.push(part);
    }
    this.finish(r.index, reasoningItem(r.id, summary, r.blocks, this.stored || this.include), events);
  }

  /** The message's part of `type`, opened (with the message) if it is not the one open. */
  private openPart(type: OpenPart['type'], events: ResponsesStreamEvent[]): { message: MessageItem; part: OpenPart } {
    this.closeReasoning(events);
    let message = this.message;
    if (!message) {
      const id = responseId('msg');
      const index = this.add({ id, type: 'message', status: 'in_progress', content: [], role: 'assistant' }, events);
      message = this.message = { index, id, parts: [], open: undefined };
    }
    if (message.open?.type !== type) {
      this.closePart(message, events);
      message.open = { type, text: '', logprobs: [] };
      const part = type === 'output_text' ? outputText('', []) : { type: 'refusal', refusal: '' };
      events.push(this.event('response.content_part.added', { item_id: message.id, output_index: message.index, content_index: message.parts.length, part }));
    }
    return { message, part: message.open as OpenPart };
  }

  private textDelta(type: OpenPart['type'], delta: string, logprobs: JsonObject[], events: ResponsesStreamEvent[]): void {
    const { message, part } = this.openPart(type, events);
    part.text += delta;
    const at = { item_id: message.id, output_index: message.index, content_index: message.parts.length };
    if (type === 'refusal') {
      events.push(this.event('response.refusal.delta', { ...at, delta }));
      return;
    }
    part.logprobs.push(...logprobs);
    events.push(this.event('response.output_text.delta', { ...at, delta, logprobs }));
  }

  private closePart(message: MessageItem, events: ResponsesStreamEvent[]): void {
    const open = message.open;
    if (!open) return;
    message.open = undefined;
    const at = { item_id: message.id, output_index: message.index, content_index: message.parts.length };
    let part: JsonObject;
    if (open.type === 'output_text') {
      part = outputText(open.text, open.logprobs);
      events.push(this.event('response.output_text.done', { ...at, text: open.text, logprobs: open.logprobs }));
    } else {
      part = { type: 'refusal', refusal: open.text };
      events.push(this.event('response.refusal.done', { ...at, refusal: open.text }));
    }
    events.push(this.event('response.content_part.done', { ...at, part }));
    message.parts.push(part);
  }

  private closeMessage(status: 'completed' | 'incomplete', events: ResponsesStreamEvent[]): void {
    const message = this.message;
    if (!message) return;
    this.message = undefined;
    this.closePart(message, events);
    this.finish(message.index, { id: message.id, type: 'message', status, content: message.parts, role: 'assistant' }, events);
  }

  private toolDelta(t: chatv1.ToolCallDelta, events: ResponsesStreamEvent[]): void {
    let call = this.calls.get(t.index);
    if (!call) {
      this.closeReasoning(events);
      this.closeMessage('completed', events);
      const id = responseId('fc');
      const callId = t.id || responseId('call');
      const name = t.name ?? '';
      const index = this.add({ id, type: 'function_call', status: 'in_progress', arguments: '', call_id: callId, name }, events);
      call = { index, id, callId, name, arguments: '' };
      this.calls.set(t.index, call);
    } else if (t.name && !call.name) {
      // The first name is the call's: an OpenAI-compatible upstream may repeat it on later deltas
      // (as the SDK's own accumulator allows, replacing it), which must not double it.
      call.name = t.name;
    }
    if (t.arguments) {
      call.arguments += t.arguments;
      events.push(this.event('response.function_call_arguments.delta', { item_id: call.id, output_index: call.index, delta: t.arguments }));
    }
  }

  private closeCall(call: CallItem, status: 'completed' | 'incomplete', events: ResponsesStreamEvent[]): void {
    events.push(this.event('response.function_call_arguments.done', { item_id: call.id, output_index: call.index, arguments: call.arguments, name: call.name }));
    this.finish(call.index, { id: call.id, type: 'function_call', status, arguments: call.arguments, call_id: call.callId, name: call.name }, events);
  }
}
