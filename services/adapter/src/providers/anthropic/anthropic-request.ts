import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { isBase64, parseDataUrl, type ImageLoader } from '../image-source';
import {
  budgetWithin,
  continuationKeepsThinking,
  effortLevel,
  forcedToolsWithThinking,
  handedBackThinking,
  MIN_THINKING_TOP_P,
  pushTurn,
  type ThinkingBlock,
  thinkingForEffort,
  type ThinkingStyle,
} from '../claude-thinking';
import { HISTORY_TOOL_DESCRIPTION, historyToolNames, nonBlank, safeToolId, trimFinalAssistant } from '../message-content';
import { refuseOpenAIOnly } from '../openai-only-parameters';

/** Anthropic's JSON values as we send them; the shapes follow the Messages API reference. */
type JsonObject = Record<string, unknown>;

export interface AnthropicTextBlock {
  type: 'text';
  text: string;
  cache_control?: JsonObject;
}
export interface AnthropicImageBlock {
  type: 'image';
  source: { type: 'base64'; media_type: string; data: string } | { type: 'url'; url: string };
  cache_control?: JsonObject;
}
export interface AnthropicDocumentBlock {
  type: 'document';
  source: { type: 'base64'; media_type: string; data: string };
  title?: string;
  cache_control?: JsonObject;
}
export interface AnthropicToolUseBlock {
  type: 'tool_use';
  id: string;
  name: string;
  input: JsonObject;
}
export interface AnthropicToolResultBlock {
  type: 'tool_result';
  tool_use_id: string;
  content?: string | AnthropicToolResultContent[];
  cache_control?: JsonObject;
}
/** What a tool result may hold: text, images and documents (a PDF a tool returned). */
export type AnthropicToolResultContent = AnthropicTextBlock | AnthropicImageBlock | AnthropicDocumentBlock;

/** Thinking blocks are sent as the answer carried them (claude-thinking.ts). */
export type AnthropicContentBlock = AnthropicTextBlock | AnthropicImageBlock | AnthropicDocumentBlock | AnthropicToolUseBlock | AnthropicToolResultBlock | ThinkingBlock;

export interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: AnthropicContentBlock[];
}

export interface AnthropicTool {
  name: string;
  description?: string;
  input_schema: JsonObject;
  cache_control?: JsonObject;
}

export type AnthropicToolChoice =
  | { type: 'auto' | 'any'; disable_parallel_tool_use?: boolean }
  | { type: 'tool'; name: string; disable_parallel_tool_use?: boolean }
  | { type: 'none' };

export interface AnthropicMessagesBody {
  model: string;
  max_tokens: number;
  messages: AnthropicMessage[];
  system?: string | AnthropicTextBlock[];
  tools?: AnthropicTool[];
  tool_choice?: AnthropicToolChoice;
  stop_sequences?: string[];
  temperature?: number;
  top_p?: number;
  top_k?: number;
  metadata?: { user_id: string };
  service_tier?: 'auto' | 'standard_only';
  thinking?: AnthropicThinking;
  output_config?: { effort: string };
  stream?: boolean;
}

/** Anthropic's `thinking` parameter, as a client may also send it itself (OpenAI SDK: `extra_body`). */
const thinkingSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('enabled'), budget_tokens: z.int().min(1), display: z.enum(['summarized', 'omitted']).optional() }),
  z.strictObject({ type: z.literal('adaptive'), display: z.enum(['summarized', 'omitted']).optional() }),
  z.strictObject({ type: z.literal('disabled') }),
]);
export type AnthropicThinking = z.infer<typeof thinkingSchema>;

export interface AnthropicTranslation {
  body: AnthropicMessagesBody;
  /**
   * Set when `response_format` asked for JSON: the name of the tool the answer is forced
   * through. Its input is the JSON answer and comes back as message content, not a tool call.
   */
  responseTool: string | undefined;
}

export interface RequestOptions {
  defaultMaxTokens: number;
  /** Fetches a plain http:// image (Anthropic only fetches https) and decodes data URLs. */
  loadImage: ImageLoader;
  /**
   * How `reasoning_effort` turns extended thinking on: `adaptive` (the model decides how much to
   * think, steered by `output_config.effort`; Claude 4.6 and later) or `budget` (a fixed
   * `budget_tokens`; Claude 4.5 and earlier).
   */
  thinking: ThinkingStyle;
  /** Every image URL is fetched and sent as base64 (Claude on Vertex AI), not https ones passed on as `url` sources. */
  inlineImageUrls?: boolean;
}

/** The tool a JSON answer is forced through; a client tool of the same name is refused. */
export const JSON_RESPONSE_TOOL = 'json_response';
/** Anthropic's limit on tool names (`[a-zA-Z0-9_-]{1,128}`). */
const MAX_TOOL_NAME = 128;
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,128}$/;
/** Anthropic's sampling temperature tops out at 1 where OpenAI's goes to 2. */
export const MAX_TEMPERATURE = 1;

function unsupported(message: string, param: string): GatewayError {
  return new GatewayError('bad_request', message, { param, code: 'unsupported_parameter' });
}

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('bad_request', message, { param, code: 'invalid_value' });
}

function parseObject(text: string): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : undefined;
  } catch {
    return undefined;
  }
}

/** The `cache_control` object among keys the canonical form kept as JSON (a part's, a tool's, a message's extra keys). */
function cacheControlOf(json: JsonObject | undefined): JsonObject | undefined {
  const value = json?.['cache_control'];
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : undefined;
}

/**
 * The canonical request as the body of `POST /v1/messages`. Parameters Anthropic cannot honour
 * are either dropped (sampling hints with no equivalent) or refused with a 400 naming the
 * parameter (anything whose loss would change what the client gets back); docs/providers/anthropic.md
 * lists every decision.
 */
export async function toAnthropicRequest(r: chatv1.ChatRequest, upstreamModel: string, options: RequestOptions): Promise<AnthropicTranslation> {
  refuseUnsupported(r);
  const system: AnthropicTextBlock[] = [];
  const turns: AnthropicMessage[] = [];
  /** The ids of the tool calls so far: a tool message answers one of them. */
  const called = new Set<string>();
  for (let i = 0; i < r.messages.length; i++) {
    const m = r.messages[i] as chatv1.Message;
    const param = `messages[${i}]`;
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(...(await contentBlocks(m, param, options, 'system')).filter(isText));
        break;
      case 'user':
        push(turns, 'user', await contentBlocks(m, param, options, 'user'));
        break;
      case 'assistant':
        push(turns, 'assistant', await assistantBlocks(m, param, options));
        for (const call of m.toolCalls) called.add(call.id);
        break;
      case 'tool':
        push(turns, 'user', [await toolResult(m, param, options, called)]);
        break;
      default:
        throw unsupported(`The role "${m.role}" is not supported by this model; send tool results with role "tool".`, `${param}.role`);
    }
  }
  if (turns.length === 0) throw invalid('At least one user or assistant message with content is required for this model.', 'messages');
  for (const turn of turns) if (turn.role === 'user') turn.content = toolResultsFirst(turn.content);
  trimFinalAssistant(turns);

  const body: AnthropicMessagesBody = {
    model: upstreamModel,
    max_tokens: r.maxCompletionTokens ?? r.maxTokens ?? options.defaultMaxTokens,
    messages: turns,
  };
  const thinking = applyThinking(r, body, options);
  if (!thinking) for (const turn of turns) turn.content = turn.content.filter((b) => !isThinking(b));
  const onlySystem = system.length === 1 ? system[0] : undefined;
  if (onlySystem && onlySystem.cache_control === undefined) body.system = onlySystem.text;
  else if (system.length > 0) body.system = system;
  const responseTool = applyTools(r, body);
  if (body.tools === undefined) declareHistoryTools(body);
  // Anthropic refuses whitespace-only stop sequences ("\n" is a common one); they are left out.
  const stops = r.stop.filter(nonBlank);
  if (stops.length > 0) body.stop_sequences = stops;
  if (thinking) refuseForcedTools(body, responseTool, r, thinking);
  // With thinking on, Anthropic takes temperature 1 only, no top_k and top_p from 0.95: others are dropped.
  if (r.temperature !== undefined && (!thinking || r.temperature === 1)) body.temperature = Math.min(r.temperature, MAX_TEMPERATURE);
  if (r.topP !== undefined && (!thinking || r.topP >= MIN_THINKING_TOP_P)) body.top_p = r.topP;
  // Claude from Opus 4.1 on refuses temperature and top_p together (a 400), which many OpenAI
  // clients send as defaults. The one whose loss changes least is dropped, for every Claude (the
  // model id does not always tell which it is): temperature when it is 1, Claude's default, else top_p.
  if (body.temperature !== undefined && body.top_p !== undefined) {
    if (body.temperature === 1) delete body.temperature;
    else delete body.top_p;
  }
  const topK = topKOf(r.extraJson);
  if (topK !== undefined && !thinking) body.top_k = topK;
  const endUser = endUserOf(r);
  if (endUser !== undefined) body.metadata = { user_id: opaqueUserId(endUser) };
  if (r.serviceTier === 'auto') body.service_tier = 'auto';
  else if (r.serviceTier === 'default') body.service_tier = 'standard_only';
  if (r.stream) body.stream = true;
  return { body, responseTool };
}

/**
 * Who the end user is, for Anthropic's `metadata.user_id`: OpenAI's `safety_identifier` (its
 * replacement for `user`, meant for the same abuse detection), else `user`.
 */
function endUserOf(r: chatv1.ChatRequest): string | undefined {
  const safetyIdentifier = r.extraJson ? parseObject(r.extraJson)?.['safety_identifier'] : undefined;
  if (typeof safetyIdentifier === 'string' && safetyIdentifier !== '') return safetyIdentifier;
  return r.user !== undefined && r.user !== '' ? r.user : undefined;
}

/**
 * Anthropic wants an opaque user id (it refuses one that looks like an email address, and any over
 * 256 characters); a SHA-256 of `user` is stable per user and reveals nothing.
 */
export const opaqueUserId = (user: string): string => createHash('sha256').update(user).digest('hex');

/** Parameters whose loss would silently change the answer's shape are refused up front. */
function refuseUnsupported(r: chatv1.ChatRequest): void {
  if (r.n !== undefined && r.n > 1) throw unsupported('This model returns one choice per request; "n" greater than 1 is not supported.', 'n');
  if (r.logprobs === true) throw unsupported('This model does not return log probabilities.', 'logprobs');
  if (r.topLogprobs !== undefined && r.topLogprobs > 0) throw unsupported('This model does not return log probabilities.', 'top_logprobs');
  if (Object.keys(r.logitBias).length > 0) throw unsupported('This model does not support "logit_bias" (token ids are tokenizer-specific).', 'logit_bias');
  if (r.modalities.some((m) => m !== 'text')) throw unsupported('This model only answers in text.', 'modalities');
  refuseOpenAIOnly((r.extraJson ? parseObject(r.extraJson) : undefined) ?? {}, ['audio', 'web_search_options', 'functions', 'function_call']);
}

function topKOf(extraJson: string): number | undefined {
  const value = extraJson ? parseObject(extraJson)?.['top_k'] : undefined;
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

const isText = (b: AnthropicContentBlock): b is AnthropicTextBlock => b.type === 'text';

/** Adjacent turns of one role become one message: Anthropic requires user and assistant to alternate. */
function push(turns: AnthropicMessage[], role: AnthropicMessage['role'], content: AnthropicContentBlock[]): void {
  pushTurn(turns, role, content, isThinking);
}

/** In a user turn, tool results must come before any other content. */
function toolResultsFirst(content: AnthropicContentBlock[]): AnthropicContentBlock[] {
  const results = content.filter((b) => b.type === 'tool_result');
  if (results.length === 0 || results.length === content.length) return content;
  return [...results, ...content.filter((b) => b.type !== 'tool_result')];
}

type Context = 'system' | 'user' | 'assistant' | 'tool';

async function contentBlocks(m: chatv1.Message, param: string, options: RequestOptions, context: Context): Promise<AnthropicContentBlock[]> {
  if (m.text !== undefined) return nonBlank(m.text) ? [{ type: 'text', text: m.text }] : [];
  if (!m.parts) return [];
  const blocks: AnthropicContentBlock[] = [];
  const parts = m.parts.parts;
  for (let j = 0; j < parts.length; j++) {
    const block = await partBlock(parts[j] as chatv1.ContentPart, `${param}.content[${j}]`, options, context);
    if (block) blocks.push(block);
  }
  return blocks;
}

async function partBlock(p: chatv1.ContentPart, param: string, options: RequestOptions, context: Context): Promise<AnthropicContentBlock | undefined> {
  if (p.text !== undefined) return nonBlank(p.text) ? { type: 'text', text: p.text } : undefined;
  if (p.refusal !== undefined) return nonBlank(p.refusal) ? { type: 'text', text: p.refusal } : undefined;
  if (p.imageUrl) return imageBlock(p.imageUrl.url, param, options, context);
  if (p.inputAudio) throw unsupported('This model does not accept audio input.', param);
  if (p.rawJson) return rawPartBlock(p.rawJson, param, options, context);
  return undefined;
}

async function imageBlock(url: string, param: string, options: RequestOptions, context: Context, cacheControl?: JsonObject): Promise<AnthropicImageBlock> {
  if (context === 'system' || context === 'assistant') throw unsupported(`Images are only accepted in user and tool messages.`, param);
  let block: AnthropicImageBlock;
  if (url.startsWith('https://') && !options.inlineImageUrls) {
    block = { type: 'image', source: { type: 'url', url } };
  } else {
    // Data URLs are checked (type, encoding); plain http URLs are fetched and inlined, since Anthropic only fetches https.
    const image = await options.loadImage(url, param);
    block = { type: 'image', source: { type: 'base64', media_type: image.mediaType, data: image.base64 } };
  }
  if (cacheControl) block.cache_control = cacheControl;
  return block;
}

/**
 * Parts the canonical form keeps as JSON: text or image parts with extra keys (an Anthropic-aware
 * client's `cache_control` is honoured) and `file` parts holding a base64 PDF (with theirs too).
 */
async function rawPartBlock(rawJson: string, param: string, options: RequestOptions, context: Context): Promise<AnthropicContentBlock | undefined> {
  const part = parseObject(rawJson);
  const cacheControl = cacheControlOf(part);
  switch (part?.['type']) {
    case 'text': {
      const text = part['text'];
      if (typeof text !== 'string') break;
      if (!nonBlank(text)) return undefined;
      const block: AnthropicTextBlock = { type: 'text', text };
      if (cacheControl) block.cache_control = cacheControl;
      return block;
    }
    case 'image_url': {
      const image = part['image_url'];
      const url = typeof image === 'object' && image !== null ? (image as JsonObject)['url'] : undefined;
      if (typeof url === 'string') return imageBlock(url, param, options, context, cacheControl);
      break;
    }
    case 'file':
      return documentBlock(part['file'], param, context, cacheControl);
  }
  throw unsupported(`The content part type "${String(part?.['type'] ?? 'unknown')}" is not supported by this model.`, param);
}

function documentBlock(file: unknown, param: string, context: Context, cacheControl: JsonObject | undefined): AnthropicDocumentBlock {
  const f = typeof file === 'object' && file !== null ? (file as JsonObject) : {};
  const data = typeof f['file_data'] === 'string' ? parseDataUrl(f['file_data']) : undefined;
  if (context !== 'user' && context !== 'tool') throw unsupported('Files are only accepted in user messages.', param);
  if (!data || data.mediaType !== 'application/pdf') throw unsupported('Only PDF files given inline as base64 `file_data` are supported by this model.', param);
  if (!isBase64(data.base64)) throw invalid('The file data is not base64.', param);
  const block: AnthropicDocumentBlock = { type: 'document', source: { type: 'base64', media_type: data.mediaType, data: data.base64 } };
  if (typeof f['filename'] === 'string' && f['filename'] !== '') block.title = f['filename'];
  if (cacheControl) block.cache_control = cacheControl;
  return block;
}

async function assistantBlocks(m: chatv1.Message, param: string, options: RequestOptions): Promise<AnthropicContentBlock[]> {
  const blocks = await contentBlocks(m, param, options, 'assistant');
  if (m.refusal !== undefined && nonBlank(m.refusal) && blocks.length === 0) blocks.push({ type: 'text', text: m.refusal });
  // Thinking handed back (as this adapter's answers carry it) goes first, as the model wrote it.
  if (blocks.length > 0 || m.toolCalls.length > 0) blocks.unshift(...handedBackThinking(m, param));
  for (let k = 0; k < m.toolCalls.length; k++) {
    const call = m.toolCalls[k] as chatv1.ToolCall;
    const args = call.function?.arguments ?? '';
    const input = args.trim() === '' ? {} : parseObject(args);
    if (!input) throw invalid('Tool call arguments must be a JSON object.', `${param}.tool_calls[${k}].function.arguments`);
    const name = call.function?.name ?? '';
    // Anthropic refuses a tool_use without a name, naming no parameter of the client's.
    if (name === '') throw invalid('A tool call needs the name of the function it called.', `${param}.tool_calls[${k}].function.name`);
    blocks.push({ type: 'tool_use', id: safeToolId(call.id), name, input });
  }
  return blocks;
}

/** A tool_result must answer a tool_use (Anthropic refuses an "unexpected `tool_use_id`" naming no parameter of the client's). */
async function toolResult(m: chatv1.Message, param: string, options: RequestOptions, called: ReadonlySet<string>): Promise<AnthropicToolResultBlock> {
  if (!m.toolCallId) throw new GatewayError('bad_request', 'A tool message needs the "tool_call_id" it answers.', { param: `${param}.tool_call_id`, code: 'missing_required_parameter' });
  if (!called.has(m.toolCallId)) throw invalid(`The tool message answers "${m.toolCallId.slice(0, 80)}", which no earlier assistant tool call has.`, `${param}.tool_call_id`);
  const block: AnthropicToolResultBlock = { type: 'tool_result', tool_use_id: safeToolId(m.toolCallId) };
  // The tool message's own `cache_control` (an extra key) marks the tool_result block, as a Messages client put it.
  const cacheControl = m.extraJson ? cacheControlOf(parseObject(m.extraJson)) : undefined;
  if (cacheControl) block.cache_control = cacheControl;
  if (m.text !== undefined) {
    // Anthropic refuses a blank or whitespace-only result as a text block without text; a result without content is valid.
    if (nonBlank(m.text)) block.content = m.text;
    return block;
  }
  const parts = (await contentBlocks(m, param, options, 'tool')).filter((b): b is AnthropicToolResultContent => b.type === 'text' || b.type === 'image' || b.type === 'document');
  if (parts.length > 0) block.content = parts;
  return block;
}

const isThinking = (b: AnthropicContentBlock): b is ThinkingBlock => b.type === 'thinking' || b.type === 'redacted_thinking';

/** Which request parameter turned thinking on, for the errors that name it. */
type ThinkingSource = 'thinking' | 'reasoning_effort';

/**
 * Extended thinking, from the client's own `thinking` object (sent as is) or from
 * `reasoning_effort` in the provider's style (claude-thinking.ts), with `defaultMaxTokens` as the
 * answer's room when the client set no limit. Thinking stays off for a request continuing an
 * assistant turn that does not start with its thinking, which Anthropic would refuse: a final
 * assistant message (a prefill) or a tool turn whose thinking was not handed back
 * (`thinking_blocks`). Returns what turned it on.
 */
function applyThinking(r: chatv1.ChatRequest, body: AnthropicMessagesBody, options: RequestOptions): ThinkingSource | undefined {
  // Checked first: the effort steers thinking the client's own object turned on too, and a value outside the levels is a 400 either way.
  const effort = effortLevel(r.reasoningEffort);
  const explicit = r.extraJson ? parseObject(r.extraJson)?.['thinking'] : undefined;
  const limit = r.maxCompletionTokens ?? r.maxTokens;
  let source: ThinkingSource;
  let thinking: AnthropicThinking;
  let maxTokens: number | undefined;
  if (explicit !== undefined && explicit !== null) {
    const parsed = thinkingSchema.safeParse(explicit);
    if (!parsed.success) throw invalid('"thinking" must be {type: "enabled", budget_tokens}, {type: "adaptive"} or {type: "disabled"}.', 'thinking');
    if (parsed.data.type === 'disabled') return undefined;
    thinking = parsed.data;
    if (parsed.data.type === 'enabled') {
      const budget = budgetWithin(parsed.data.budget_tokens, limit, true);
      if (budget === undefined) return undefined;
      thinking = { ...parsed.data, budget_tokens: budget };
      // Without a limit from the client, the default one is room for the answer on top of the budget.
      if (limit === undefined) maxTokens = options.defaultMaxTokens + budget;
    }
    source = 'thinking';
  } else {
    const fromEffort = thinkingForEffort(r.reasoningEffort, options.thinking, limit, options.defaultMaxTokens);
    if (!fromEffort) return undefined;
    thinking = fromEffort.thinking;
    maxTokens = fromEffort.maxTokens;
    source = 'reasoning_effort';
  }
  if (!continuationKeepsThinking(body.messages, (b) => b.type === 'tool_result', isThinking)) return undefined;
  body.thinking = thinking;
  if (maxTokens !== undefined) body.max_tokens = maxTokens;
  if (thinking.type === 'adaptive' && effort !== undefined) body.output_config = { effort };
  return source;
}

/** Anthropic refuses thinking together with a tool_choice that forces a call, which JSON mode uses too. */
function refuseForcedTools(body: AnthropicMessagesBody, responseTool: string | undefined, r: chatv1.ChatRequest, source: ThinkingSource): void {
  const type = body.tool_choice?.type;
  if (type !== 'any' && type !== 'tool') return;
  const clientForced = r.toolChoice?.functionName !== undefined || r.toolChoice?.mode === 'required';
  throw forcedToolsWithThinking(source, responseTool !== undefined && !clientForced);
}

/**
 * Tools and tool_choice, plus JSON mode. Anthropic has no `response_format`, so a JSON answer is
 * forced through a tool whose input schema is the requested schema (any object for json_object);
 * the tool's input is returned to the client as the message content. With client tools and
 * tool_choice auto, the model must pick a client tool or the answer tool (`any`), so a turn ends
 * either in real tool calls or in a JSON answer. With `required` or a named tool the answer is a
 * tool call anyway and the format is not enforced.
 */
function applyTools(r: chatv1.ChatRequest, body: AnthropicMessagesBody): string | undefined {
  const tools = r.tools.map(toTool);
  const disableParallel = r.parallelToolCalls === false;
  const choice = r.toolChoice;
  if (choice?.rawJson !== undefined) throw unsupported('This form of "tool_choice" is not supported by this model; use none, auto, required or a named function.', 'tool_choice');
  const mode = choice?.functionName !== undefined ? 'named' : (choice?.mode ?? 'auto');
  if (choice?.functionName !== undefined && !tools.some((t) => t.name === choice.functionName)) {
    throw invalid(`"tool_choice" names the function "${choice.functionName}", which is not among the tools.`, 'tool_choice');
  }
  // A call cannot be required with nothing to call (OpenAI refuses it too).
  if (mode === 'required' && tools.length === 0) throw invalid('"tool_choice" "required" needs at least one tool.', 'tool_choice');
  const schema = jsonSchemaOf(r.responseFormat);
  const answerInJson = schema !== undefined && (mode === 'auto' || mode === 'none' || tools.length === 0);
  if (answerInJson) {
    if (tools.some((t) => t.name === JSON_RESPONSE_TOOL)) throw invalid(`The tool name "${JSON_RESPONSE_TOOL}" is reserved for JSON answers on this model.`, 'tools');
    const description = r.responseFormat?.jsonSchema?.description;
    body.tools = [
      ...tools,
      {
        name: JSON_RESPONSE_TOOL,
        description: `Give the final answer as JSON through this tool.${description ? ` ${description}` : ''}`,
        input_schema: schema,
      },
    ];
    // Forced to the answer tool, one call is all there is; with client tools the client's choice stands.
    const useClientTools = tools.length > 0 && mode === 'auto';
    body.tool_choice = useClientTools ? parallel({ type: 'any' }, disableParallel) : { type: 'tool', name: JSON_RESPONSE_TOOL, disable_parallel_tool_use: true };
    return JSON_RESPONSE_TOOL;
  }
  if (tools.length === 0) return undefined;
  body.tools = tools;
  switch (mode) {
    case 'none':
      body.tool_choice = { type: 'none' };
      break;
    case 'required':
      body.tool_choice = parallel({ type: 'any' }, disableParallel);
      break;
    case 'named':
      body.tool_choice = parallel({ type: 'tool', name: choice?.functionName ?? '' }, disableParallel);
      break;
    case 'auto':
      if (choice !== undefined || disableParallel) body.tool_choice = parallel({ type: 'auto' }, disableParallel);
      break;
    default:
      throw invalid(`Invalid value for "tool_choice": "${mode}".`, 'tool_choice');
  }
  return undefined;
}

/**
 * Anthropic refuses tool_use and tool_result blocks in a request without tools. When the client
 * sent a tool history but no tools, stubs named after the calls are declared and `tool_choice:
 * none` keeps the model from calling them.
 */
function declareHistoryTools(body: AnthropicMessagesBody): void {
  const blocks = body.messages.flatMap((m) => m.content);
  if (!blocks.some((b) => b.type === 'tool_use' || b.type === 'tool_result')) return;
  const called = blocks.flatMap((b) => (b.type === 'tool_use' ? [b.name] : []));
  body.tools = historyToolNames(called, MAX_TOOL_NAME).map((name) => ({ name, description: HISTORY_TOOL_DESCRIPTION, input_schema: { type: 'object' } }));
  body.tool_choice = { type: 'none' };
}

/** `parallel_tool_calls: false` is Anthropic's `disable_parallel_tool_use: true` on the tool choice. */
function parallel(choice: Exclude<AnthropicToolChoice, { type: 'none' }>, disable: boolean): AnthropicToolChoice {
  if (disable) choice.disable_parallel_tool_use = true;
  return choice;
}

function toTool(t: chatv1.Tool, index: number): AnthropicTool {
  const f = t.function;
  if ((t.type && t.type !== 'function') || !f) throw unsupported(`Only function tools are supported by this model.`, `tools[${index}]`);
  if (!TOOL_NAME.test(f.name)) {
    throw invalid(`The tool name "${f.name.slice(0, 80)}" is not one this model takes: 1 to ${MAX_TOOL_NAME} letters, digits, _ or -.`, `tools[${index}].function.name`);
  }
  let schema: JsonObject = { type: 'object', properties: {} };
  if (f.parametersJson) {
    const parsed = parseObject(f.parametersJson);
    if (!parsed) throw invalid('Function parameters must be a JSON Schema object.', `tools[${index}].function.parameters`);
    schema = parsed['type'] === undefined ? { type: 'object', ...parsed } : parsed;
  }
  const tool: AnthropicTool = { name: f.name, input_schema: schema };
  if (f.description !== undefined && f.description !== '') tool.description = f.description;
  // A tool's extra keys ride in its JSON beside `function`: its `cache_control` marks the definition.
  const cacheControl = t.rawJson ? cacheControlOf(parseObject(t.rawJson)) : undefined;
  if (cacheControl) tool.cache_control = cacheControl;
  return tool;
}

/** The input schema of the answer tool; undefined when no JSON answer was asked for. */
function jsonSchemaOf(rf: chatv1.ResponseFormat | undefined): JsonObject | undefined {
  if (!rf || rf.type === 'text') return undefined;
  if (rf.type === 'json_object') return { type: 'object', additionalProperties: true };
  if (rf.type !== 'json_schema') throw invalid(`Invalid value for "response_format.type": "${rf.type}".`, 'response_format');
  const text = rf.jsonSchema?.schemaJson ?? '';
  if (text === '') return { type: 'object', additionalProperties: true };
  const schema = parseObject(text);
  if (!schema || (schema['type'] !== undefined && schema['type'] !== 'object')) {
    throw unsupported('The JSON schema must describe an object at its root for this model.', 'response_format.json_schema.schema');
  }
  return schema['type'] === undefined ? { type: 'object', ...schema } : schema;
}
