import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
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
import { IMAGE_FETCH_CONCURRENCY, type InlineImage } from '../image-source';
import { mapLimited } from '../map-limited';
import { HISTORY_TOOL_DESCRIPTION, historyToolNames, nonBlank, partText, safeToolId, trimFinalAssistant } from '../message-content';
import { refuseOpenAIOnly } from '../openai-only-parameters';

/** Bedrock Converse request shapes (the subset the gateway sends). */
export type BedrockImageFormat = 'png' | 'jpeg' | 'gif' | 'webp';
export type BedrockContentBlock =
  | { text: string }
  | { image: { format: BedrockImageFormat; source: { bytes: string } } }
  | { toolUse: { toolUseId: string; name: string; input: Record<string, unknown> } }
  | { toolResult: { toolUseId: string; content: BedrockToolResultContent[]; status?: 'success' | 'error' } }
  | BedrockReasoningBlock;
/** Claude's thinking in a Converse message: readable text with its signature, or redacted (base64 bytes). */
export interface BedrockReasoningBlock {
  reasoningContent: { reasoningText: { text: string; signature: string } } | { redactedContent: string };
}
export type BedrockToolResultContent = { text: string } | { image: { format: BedrockImageFormat; source: { bytes: string } } };
export interface BedrockMessage {
  role: 'user' | 'assistant';
  content: BedrockContentBlock[];
}
export interface BedrockToolSpec {
  toolSpec: { name: string; description?: string; inputSchema: { json: Record<string, unknown> } };
}
export type BedrockToolChoice = { auto: Record<string, never> } | { any: Record<string, never> } | { tool: { name: string } };
export interface ConverseBody {
  messages: BedrockMessage[];
  system?: { text: string }[];
  inferenceConfig?: { maxTokens?: number; temperature?: number; topP?: number; stopSequences?: string[] };
  toolConfig?: { tools: BedrockToolSpec[]; toolChoice?: BedrockToolChoice };
  [passthrough: string]: unknown;
}

/** What the response side needs to know about how the request was translated. */
export interface ConverseTranslation {
  body: ConverseBody;
  /** Set when `response_format: json_schema` became a forced tool: its tool use is the answer text. */
  jsonTool: string | undefined;
}

/** Fetches an image part's bytes (data URL or http(s)), refusals naming `param`; the adapter passes `loadImage`. */
export type ImageLoader = (url: string, param?: string) => Promise<InlineImage>;

export interface ConverseOptions {
  /**
   * How `reasoning_effort` turns extended thinking on for Claude models (the provider's `thinking`
   * setting): `adaptive` (`thinking: {type: "adaptive"}` with `output_config.effort`; Claude 4.6
   * and later) or `budget` (`thinking: {type: "enabled", budget_tokens}`; Claude 4.5 and earlier).
   */
  thinking?: ThinkingStyle;
  /** Model ids that are Claude without naming it (the provider's `claudeModels`). */
  claudeModels?: readonly string[];
}

/** The tool that carries a `json_schema` answer; a name no client tool is likely to use. */
export const JSON_RESPONSE_TOOL = 'json_response';
export const JSON_OBJECT_INSTRUCTION = 'Respond with a single valid JSON object only, with no text before or after it.';

/** Top-level Converse fields a client may send as extra body keys; passed through unchanged. */
const PASSTHROUGH_KEYS = ['additionalModelRequestFields', 'additionalModelResponseFieldPaths', 'guardrailConfig', 'performanceConfig', 'promptVariables', 'requestMetadata'];
const IMAGE_FORMATS: Readonly<Record<string, BedrockImageFormat>> = { 'image/png': 'png', 'image/jpeg': 'jpeg', 'image/gif': 'gif', 'image/webp': 'webp' };
/** Converse's limit on tool use ids and tool names (`[a-zA-Z0-9_-]{1,64}`). */
const MAX_TOOL_ID = 64;
const toolId = (id: string): string => safeToolId(id, MAX_TOOL_ID);
/** Converse's pattern for tool names, on toolSpec and toolUse alike (ToolSpecification, ToolUseBlock). */
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
/** Converse's `inferenceConfig.temperature` ranges 0–1 for every model, where OpenAI's goes to 2. */
const MAX_TEMPERATURE = 1;
/** Converse's limit on `inferenceConfig.stopSequences` (InferenceConfiguration). */
const MAX_STOP_SEQUENCES = 2500;

function badRequest(message: string, param: string): GatewayError {
  return new GatewayError('bad_request', message, { param, code: 'unsupported_parameter' });
}

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('bad_request', message, { param, code: 'invalid_value' });
}

/** A tool name Converse would refuse (its ValidationException names no parameter of the client's), refused here naming `param`. */
function checkToolName(name: string, param: string): void {
  if (!TOOL_NAME.test(name)) throw invalid(`The tool name "${name.slice(0, 80)}" is not one Bedrock takes: 1 to 64 letters, digits, _ or -.`, param);
}

/**
 * Anthropic's Claude models, by foundation model id, inference profile (`us.anthropic.claude-…`) or
 * ARN, or listed by the provider's `claudeModels` (application inference profiles do not name
 * their model). They take Anthropic's own parameters (`thinking`, `output_config`) in
 * `additionalModelRequestFields` and apply Anthropic's rules.
 */
export const isClaudeModel = (modelId: string, claudeModels: readonly string[] = []): boolean =>
  /\banthropic\.claude/.test(modelId) || claudeModels.includes(modelId);

/**
 * The canonical request as a Converse body. Parameters Converse has no slot for are either
 * dropped (sampling hints that change nothing essential) or refused with a 400 naming the
 * parameter (asks the gateway cannot honour); docs/providers/bedrock.md lists each.
 */
export async function toConverseRequest(r: chatv1.ChatRequest, loadImage: ImageLoader, upstreamModel = '', options: ConverseOptions = {}): Promise<ConverseTranslation> {
  refuseUnsupported(r);
  const claude = isClaudeModel(upstreamModel, options.claudeModels);
  const { system, messages } = await translateMessages(r.messages, loadImage, claude);
  if (messages.length === 0) throw invalid('At least one user or assistant message with content is required for this model.', 'messages');
  const body: ConverseBody = { messages };

  const inference: NonNullable<ConverseBody['inferenceConfig']> = {};
  const maxTokens = r.maxCompletionTokens ?? r.maxTokens;
  if (maxTokens !== undefined) inference.maxTokens = maxTokens;
  if (r.temperature !== undefined) inference.temperature = Math.min(r.temperature, MAX_TEMPERATURE);
  if (r.topP !== undefined) inference.topP = r.topP;
  // Converse refuses an empty stop sequence, and Claude models (Anthropic's rule) a whitespace-only one ("\n"): they are left out.
  const stops = claude ? r.stop.filter(nonBlank) : r.stop.filter((stop) => stop !== '');
  if (stops.length > MAX_STOP_SEQUENCES) throw invalid(`Bedrock takes at most ${MAX_STOP_SEQUENCES} stop sequences.`, 'stop');
  if (stops.length > 0) inference.stopSequences = [...stops];
  body.inferenceConfig = inference;

  const format = r.responseFormat?.type;
  if (format === 'json_object') system.push({ text: JSON_OBJECT_INSTRUCTION });
  if (system.length > 0) body.system = system;

  // A client tool call the client forces (required, a named function) is the answer: the schema is not enforced then.
  const clientForced = r.toolChoice?.mode === 'required' || r.toolChoice?.functionName !== undefined;
  const jsonTool = format === 'json_schema' && !clientForced ? jsonSchemaTool(r) : undefined;
  const toolConfig = translateTools(r, jsonTool, historyTools(messages));
  if (toolConfig) body.toolConfig = toolConfig;

  Object.assign(body, passthrough(r.extraJson));
  if (claude) takeAnthropicFields(body, r.extraJson);
  if (claude && stops.length > 0) askMatchedStopSequence(body);
  const thinking = claude ? applyThinking(r, body, inference, options.thinking ?? 'adaptive') : undefined;
  if (thinking) {
    refuseForcedTools(body, jsonTool !== undefined, thinking);
    // With thinking on, Claude takes temperature 1 only and top_p from 0.95: other values are dropped.
    if (inference.temperature !== undefined && inference.temperature !== 1) delete inference.temperature;
    if (inference.topP !== undefined && inference.topP < MIN_THINKING_TOP_P) delete inference.topP;
  } else {
    for (const turn of messages) turn.content = turn.content.filter((b) => !isReasoning(b));
  }
  // Claude from Opus 4.1 on refuses temperature and top_p together (a ValidationException), which
  // many OpenAI clients send as defaults. The one whose loss changes least is dropped, for every
  // Claude (an inference profile's id does not tell which): temperature when it is 1, Claude's
  // default, else top_p.
  if (claude && inference.temperature !== undefined && inference.topP !== undefined) {
    if (inference.temperature === 1) delete inference.temperature;
    else delete inference.topP;
  }
  if (Object.keys(inference).length === 0) delete body.inferenceConfig;
  return { body, jsonTool: jsonTool?.toolSpec.name };
}

function refuseUnsupported(r: chatv1.ChatRequest): void {
  if (r.n !== undefined && r.n > 1) throw badRequest("Bedrock returns one choice per request; 'n' must be 1.", 'n');
  if (r.logprobs === true) throw badRequest("Bedrock does not return log probabilities; 'logprobs' is not supported.", 'logprobs');
  if (r.topLogprobs !== undefined && r.topLogprobs > 0) throw badRequest("Bedrock does not return log probabilities; 'top_logprobs' is not supported.", 'top_logprobs');
  if (Object.keys(r.logitBias).length > 0) throw badRequest("Bedrock cannot bias tokens; 'logit_bias' is not supported.", 'logit_bias');
  if (r.modalities.some((m) => m !== 'text')) throw badRequest("Bedrock Converse answers in text only; 'modalities' may only contain \"text\".", 'modalities');
  refuseOpenAIOnly(parseObject(r.extraJson), ['audio', 'web_search_options', 'functions', 'function_call']);
}

/** Claude's own response field naming the stop sequence that ended the answer, as a Converse JSON Pointer. */
const STOP_SEQUENCE_FIELD = '/stop_sequence';

/**
 * Converse says an answer stopped at a stop sequence, not which one; Claude's own response says,
 * and Converse returns it in `additionalModelResponseFields` when asked for it by path (added to
 * any paths the client asked for itself; a malformed value of the client's is Bedrock's to refuse).
 */
function askMatchedStopSequence(body: ConverseBody): void {
  const asked = body['additionalModelResponseFieldPaths'];
  if (asked === undefined) body['additionalModelResponseFieldPaths'] = [STOP_SEQUENCE_FIELD];
  else if (Array.isArray(asked) && !asked.includes(STOP_SEQUENCE_FIELD)) body['additionalModelResponseFieldPaths'] = [...(asked as unknown[]), STOP_SEQUENCE_FIELD];
}

function passthrough(extraJson: string): Record<string, unknown> {
  const extra = parseObject(extraJson);
  const out: Record<string, unknown> = {};
  for (const key of PASSTHROUGH_KEYS) if (extra[key] !== undefined && extra[key] !== null) out[key] = extra[key];
  return out;
}

/** Anthropic's own request fields a chat request may carry as extra keys (as the Messages API's are). */
const ANTHROPIC_FIELDS = ['thinking', 'top_k'] as const;

/**
 * Claude on Bedrock takes Anthropic's own fields in `additionalModelRequestFields`: the extra keys
 * `thinking` and `top_k` (a Messages API request's, translated) go there, unless the client set
 * them there itself, which wins. Thinking is then read and bounded as any other (`applyThinking`).
 */
function takeAnthropicFields(body: ConverseBody, extraJson: string): void {
  const extra = parseObject(extraJson);
  const sent = body['additionalModelRequestFields'];
  const fields: Record<string, unknown> = isObject(sent) ? { ...sent } : {};
  let taken = false;
  for (const key of ANTHROPIC_FIELDS) {
    if (extra[key] === undefined || extra[key] === null || fields[key] !== undefined) continue;
    fields[key] = extra[key];
    taken = true;
  }
  if (taken) body['additionalModelRequestFields'] = fields;
}

function parseObject(json: string): Record<string, unknown> {
  if (!json) return {};
  const value: unknown = JSON.parse(json);
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

async function translateMessages(source: readonly chatv1.Message[], loadImage: ImageLoader, claude: boolean): Promise<{ system: { text: string }[]; messages: BedrockMessage[] }> {
  const system: { text: string }[] = [];
  const turns: BedrockMessage[] = [];
  /** The ids of the tool calls so far: a tool message answers one of them. */
  const called = new Set<string>();
  // Converse wants strict user/assistant alternation; same-role neighbours become one turn.
  const push = (role: BedrockMessage['role'], content: BedrockContentBlock[]): void => pushTurn(turns, role, content, isReasoning);

  for (let i = 0; i < source.length; i++) {
    const m = source[i] as chatv1.Message;
    const where = `messages[${i}]`;
    switch (m.role) {
      case 'system':
      case 'developer':
        for (const text of messageTexts(m, where)) if (nonBlank(text)) system.push({ text });
        break;
      case 'user':
        push('user', await userContent(m, where, loadImage));
        break;
      case 'assistant':
        push('assistant', assistantContent(m, where, claude));
        for (const call of m.toolCalls) called.add(call.id);
        break;
      case 'tool':
        push('user', [await toolResult(m, where, loadImage, called)]);
        break;
      default:
        throw new GatewayError('bad_request', `${where}: the role "${m.role}" is not supported by Bedrock; use tools and tool messages.`, { param: 'messages' });
    }
  }
  trimFinalAssistant(turns);
  return { system, messages: turns };
}

/** The text of a message that may only hold text (system, developer). */
function messageTexts(m: chatv1.Message, where: string): string[] {
  if (m.text !== undefined) return [m.text];
  if (!m.parts) return [];
  return m.parts.parts.map((p, j) => {
    const text = partText(p);
    if (text !== undefined) return text;
    throw new GatewayError('bad_request', `${where}.content[${j}]: only text parts are allowed in ${m.role} messages.`, { param: 'messages' });
  });
}

async function userContent(m: chatv1.Message, where: string, loadImage: ImageLoader): Promise<BedrockContentBlock[]> {
  if (m.text !== undefined) return nonBlank(m.text) ? [{ text: m.text }] : [];
  if (!m.parts) return [];
  // Images are fetched side by side, a few at a time: a message may hold many, each up to 3.75 MB.
  const blocks = await mapLimited(m.parts.parts, IMAGE_FETCH_CONCURRENCY, (p, j) => contentBlock(p, `${where}.content[${j}]`, loadImage));
  return blocks.filter((b) => !('text' in b) || nonBlank(b.text));
}

/**
 * One content part as a Converse block. A text part with extra keys (an Anthropic-aware client's
 * `cache_control`) is sent as its text; Converse marks cache points differently, so the key is dropped.
 */
async function contentBlock(p: chatv1.ContentPart, where: string, loadImage: ImageLoader): Promise<BedrockContentBlock> {
  const text = partText(p) ?? p.refusal;
  if (text !== undefined) return { text };
  if (p.imageUrl) return { image: await image(p.imageUrl.url, loadImage, where) };
  if (p.inputAudio) throw new GatewayError('bad_request', `${where}: audio input is not supported by Bedrock Converse.`, { param: 'messages', code: 'unsupported_content' });
  const type = partType(p.rawJson ?? '');
  throw new GatewayError('bad_request', `${where}: content parts of type "${type}" are not supported by Bedrock.`, { param: 'messages', code: 'unsupported_content' });
}

function partType(rawJson: string): string {
  try {
    const value: unknown = JSON.parse(rawJson);
    if (typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>)['type'] === 'string') return (value as Record<string, string>)['type'] ?? 'unknown';
  } catch {
    // fall through: the type is reported as unknown
  }
  return 'unknown';
}

async function image(url: string, loadImage: ImageLoader, where: string): Promise<{ format: BedrockImageFormat; source: { bytes: string } }> {
  const loaded = await loadImage(url, where);
  const format = IMAGE_FORMATS[loaded.mediaType];
  if (!format) throw new GatewayError('bad_request', `An image in the messages has type "${loaded.mediaType}", which Bedrock does not accept.`, { param: where, code: 'invalid_image_url' });
  return { format, source: { bytes: loaded.base64 } };
}

function assistantContent(m: chatv1.Message, where: string, claude: boolean): BedrockContentBlock[] {
  const blocks: BedrockContentBlock[] = [];
  if (m.text !== undefined && nonBlank(m.text)) blocks.push({ text: m.text });
  else if (m.parts) {
    for (const p of m.parts.parts) {
      const text = partText(p) ?? p.refusal;
      if (text === undefined) throw new GatewayError('bad_request', `${where}: assistant messages may only hold text parts.`, { param: 'messages' });
      if (nonBlank(text)) blocks.push({ text });
    }
  }
  if (blocks.length === 0 && m.refusal !== undefined && nonBlank(m.refusal)) blocks.push({ text: m.refusal });
  // Claude's thinking handed back (as this adapter's answers carry it) goes first, as the model wrote it.
  if (claude && (blocks.length > 0 || m.toolCalls.length > 0)) blocks.unshift(...thinkingBlocksOf(m, where));
  m.toolCalls.forEach((call, j) => {
    const name = call.function?.name ?? '';
    checkToolName(name, `${where}.tool_calls[${j}].function.name`);
    blocks.push({ toolUse: { toolUseId: toolId(call.id), name, input: toolInput(call.function?.arguments ?? '', `${where}.tool_calls[${j}]`) } });
  });
  return blocks;
}

/** Tool-call arguments as the JSON object Converse wants; empty arguments are an empty object. */
function toolInput(args: string, where: string): Record<string, unknown> {
  if (args.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(args);
  } catch {
    throw new GatewayError('bad_request', `${where}.function.arguments is not valid JSON.`, { param: 'messages' });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GatewayError('bad_request', `${where}.function.arguments must be a JSON object for Bedrock.`, { param: 'messages' });
  }
  return value as Record<string, unknown>;
}

/** A tool result answers a toolUse of the conversation (ToolResultBlock); one answering no call is refused naming its id. */
async function toolResult(m: chatv1.Message, where: string, loadImage: ImageLoader, called: ReadonlySet<string>): Promise<BedrockContentBlock> {
  if (!m.toolCallId) throw new GatewayError('bad_request', `${where}: tool messages need a 'tool_call_id'.`, { param: 'messages' });
  if (!called.has(m.toolCallId)) throw invalid(`The tool message answers "${m.toolCallId.slice(0, 80)}", which no earlier assistant tool call has.`, `${where}.tool_call_id`);
  const content: BedrockToolResultContent[] = [];
  if (m.text !== undefined) {
    if (nonBlank(m.text)) content.push({ text: m.text });
  } else if (m.parts) {
    for (let j = 0; j < m.parts.parts.length; j++) {
      const block = await contentBlock(m.parts.parts[j] as chatv1.ContentPart, `${where}.content[${j}]`, loadImage);
      if ('text' in block) {
        if (nonBlank(block.text)) content.push(block);
      } else if ('image' in block) content.push(block);
    }
  }
  return { toolResult: { toolUseId: toolId(m.toolCallId), content } };
}

function schemaObject(json: string, param: string): Record<string, unknown> {
  if (!json) return { type: 'object', properties: {} };
  const value: unknown = JSON.parse(json);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest('The schema must be a JSON object.', param);
  return value as Record<string, unknown>;
}

function jsonSchemaTool(r: chatv1.ChatRequest): BedrockToolSpec {
  const js = r.responseFormat?.jsonSchema;
  if (r.tools.some((t) => t.function?.name === JSON_RESPONSE_TOOL)) {
    throw badRequest(`A tool named "${JSON_RESPONSE_TOOL}" cannot be combined with response_format json_schema on Bedrock.`, 'response_format');
  }
  const description = js?.description ?? `Give the final answer${js?.name ? ` (${js.name})` : ''} as JSON matching this schema.`;
  return { toolSpec: { name: JSON_RESPONSE_TOOL, description, inputSchema: { json: schemaObject(js?.schemaJson ?? '', 'response_format') } } };
}

/**
 * Converse refuses toolUse and toolResult blocks without a toolConfig. For a history with tool
 * blocks: stubs named after its calls, declared when the request has no tools of its own.
 * Undefined when the history has none.
 */
function historyTools(messages: readonly BedrockMessage[]): BedrockToolSpec[] | undefined {
  const blocks = messages.flatMap((m) => m.content);
  if (!blocks.some((b) => 'toolUse' in b || 'toolResult' in b)) return undefined;
  const called = blocks.flatMap((b) => ('toolUse' in b ? [b.toolUse.name] : []));
  return historyToolNames(called, MAX_TOOL_ID).map((name) => ({ toolSpec: { name, description: HISTORY_TOOL_DESCRIPTION, inputSchema: { json: { type: 'object' } } } }));
}

function translateTools(r: chatv1.ChatRequest, jsonTool: BedrockToolSpec | undefined, historyStubs: BedrockToolSpec[] | undefined): ConverseBody['toolConfig'] {
  const tools: BedrockToolSpec[] = r.tools.map((t, i) => {
    if (t.type !== 'function' || !t.function) throw badRequest(`tools[${i}]: only function tools are supported by Bedrock (got "${t.type}").`, 'tools');
    checkToolName(t.function.name, `tools[${i}].function.name`);
    const spec: BedrockToolSpec['toolSpec'] = { name: t.function.name, inputSchema: { json: schemaObject(t.function.parametersJson, 'tools') } };
    if (t.function.description) spec.description = t.function.description;
    return { toolSpec: spec };
  });
  const choice = r.toolChoice;
  if (choice?.rawJson) throw badRequest('This form of tool_choice is not supported by Bedrock; use "auto", "required", "none" or a named function.', 'tool_choice');
  const named = choice?.functionName;
  if (named !== undefined && !tools.some((t) => t.toolSpec.name === named)) throw badRequest(`tool_choice names "${named}", which is not in tools.`, 'tool_choice');
  if ((choice?.mode === 'required' || named !== undefined) && tools.length === 0) throw badRequest("'tool_choice' needs 'tools'.", 'tool_choice');

  if (jsonTool) {
    // The answer is the forced schema tool, unless the client allows its own tools: then the model calls one or answers.
    if (choice?.mode === 'none' || tools.length === 0) {
      return { tools: historyStubs ? [...tools, jsonTool] : [jsonTool], toolChoice: { tool: { name: jsonTool.toolSpec.name } } };
    }
    return { tools: [...tools, jsonTool], toolChoice: { any: {} } };
  }
  // Converse has no "none": without tools to offer (none given, or "none"), only a tool history
  // still needs tools declared, and the stubs' description tells the model not to call them.
  if (tools.length === 0 || choice?.mode === 'none') return historyStubs ? { tools: historyStubs } : undefined;
  if (named !== undefined) return { tools, toolChoice: { tool: { name: named } } };
  if (choice?.mode === 'required') return { tools, toolChoice: { any: {} } };
  // Unset means Bedrock's default (auto); models without tool-choice support accept that form only.
  return choice?.mode === 'auto' ? { tools, toolChoice: { auto: {} } } : { tools };
}

/** Converse's form of a thinking block: `reasoningText` with its signature, or the redacted bytes (base64, as JSON carries a blob). */
function reasoningBlockOf(block: ThinkingBlock): BedrockReasoningBlock {
  return block.type === 'thinking' ? { reasoningContent: { reasoningText: { text: block.thinking, signature: block.signature } } } : { reasoningContent: { redactedContent: block.data } };
}

/** A message's `thinking_blocks`, checked, as Converse blocks. */
function thinkingBlocksOf(m: chatv1.Message, where: string): BedrockReasoningBlock[] {
  return handedBackThinking(m, where).map(reasoningBlockOf);
}

const isReasoning = (b: BedrockContentBlock): b is BedrockReasoningBlock => 'reasoningContent' in b;
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Room for the answer on top of a thinking budget when the client set no limit (the `anthropic` provider's default `defaultMaxTokens`). */
export const DEFAULT_ANSWER_TOKENS = 4096;

/** Which request parameter turned thinking on, for the errors that name it. */
type ThinkingSource = 'reasoning_effort' | 'additionalModelRequestFields';

/**
 * Extended thinking for a Claude model, in `additionalModelRequestFields` (merged with the
 * client's own): the client's `thinking` there (sent as given), or `reasoning_effort` (`none`
 * leaves it off) in the provider's style. Budget style: the effort's budget, within a limit the
 * client set (it bounds thinking and answer together, as OpenAI's does) or on top of
 * DEFAULT_ANSWER_TOKENS when it set none; a limit too small for the smallest budget leaves
 * thinking off. Thinking also stays off for a request continuing an assistant turn that does not
 * start with its thinking, which Claude would refuse: a final assistant message (a prefill) or a
 * tool turn whose thinking was not handed back (`thinking_blocks`). Returns what turned it on.
 */
function applyThinking(r: chatv1.ChatRequest, body: ConverseBody, inference: NonNullable<ConverseBody['inferenceConfig']>, style: ThinkingStyle): ThinkingSource | undefined {
  // Checked first: the effort steers thinking the client's own fields turned on too, and a value outside the levels is a 400 either way.
  const level = effortLevel(r.reasoningEffort);
  const sent = body['additionalModelRequestFields'];
  const fields: Record<string, unknown> = isObject(sent) ? { ...sent } : {};
  const own = fields['thinking'];
  const effort = r.reasoningEffort;
  const limit = inference.maxTokens;
  let source: ThinkingSource;
  let thinking: Record<string, unknown>;
  let maxTokens: number | undefined;
  if (own !== undefined && own !== null) {
    const type = isObject(own) ? own['type'] : undefined;
    if (type !== 'enabled' && type !== 'adaptive') return undefined;
    source = 'additionalModelRequestFields';
    thinking = own as Record<string, unknown>;
    const wanted = thinking['budget_tokens'];
    if (type === 'enabled' && typeof wanted === 'number') {
      const budget = budgetWithin(wanted, limit, true);
      if (budget === undefined) return withoutThinking(body, fields);
      thinking = { ...thinking, budget_tokens: budget };
      if (limit === undefined) maxTokens = DEFAULT_ANSWER_TOKENS + budget;
    }
  } else {
    const fromEffort = thinkingForEffort(effort, style, limit, DEFAULT_ANSWER_TOKENS);
    if (!fromEffort) return undefined;
    source = 'reasoning_effort';
    thinking = fromEffort.thinking;
    maxTokens = fromEffort.maxTokens;
  }
  if (!continuationKeepsThinking(body.messages, (b) => 'toolResult' in b, isReasoning)) return source === 'additionalModelRequestFields' ? withoutThinking(body, fields) : undefined;
  if (maxTokens !== undefined) inference.maxTokens = maxTokens;
  fields['thinking'] = thinking;
  const output = fields['output_config'];
  // The effort steers adaptive thinking; an effort the client set in output_config wins.
  if (thinking['type'] === 'adaptive' && level !== undefined && (output === undefined || isObject(output))) fields['output_config'] = { effort: level, ...output };
  // Claude refuses top_k with thinking on; it can only have come in the client's own fields.
  delete fields['top_k'];
  body['additionalModelRequestFields'] = fields;
  return source;
}

/** The request without the client's own `thinking` (its other additional fields stay): thinking is off. */
function withoutThinking(body: ConverseBody, fields: Record<string, unknown>): undefined {
  delete fields['thinking'];
  if (Object.keys(fields).length > 0) body['additionalModelRequestFields'] = fields;
  else delete body['additionalModelRequestFields'];
  return undefined;
}

/**
 * Claude refuses thinking together with a toolChoice that forces a call (`any`, `tool`), which
 * json_schema answers use too (the schema tool is only offered when the client forces no call).
 */
function refuseForcedTools(body: ConverseBody, jsonAnswer: boolean, source: ThinkingSource): void {
  const choice = body.toolConfig?.toolChoice;
  if (choice === undefined || 'auto' in choice) return;
  throw forcedToolsWithThinking(source, jsonAnswer);
}
