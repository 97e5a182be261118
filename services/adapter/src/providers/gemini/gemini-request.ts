import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import type { InlineImage } from '../image-source';
import { isBase64, parseDataUrl } from '../image-source';
import { refuseOpenAIOnly } from '../openai-only-parameters';
import { hasNoProperties, isObject, type JsonObject, toGeminiSchema } from './gemini-schema';

/** Gemini's JSON values as we send them; the shapes follow the generateContent reference. */
export interface GeminiPart {
  text?: string;
  inlineData?: { mimeType: string; data: string };
  functionCall?: { name: string; args: JsonObject };
  functionResponse?: { name: string; response: JsonObject };
  thoughtSignature?: string;
}

export interface GeminiContent {
  role: 'user' | 'model';
  parts: GeminiPart[];
}

export interface GeminiFunctionDeclaration {
  name: string;
  description?: string;
  parameters?: JsonObject;
  parametersJsonSchema?: JsonObject;
}

export interface GeminiGenerationConfig {
  stopSequences?: string[];
  responseMimeType?: string;
  responseSchema?: JsonObject;
  responseJsonSchema?: JsonObject;
  candidateCount?: number;
  maxOutputTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  responseLogprobs?: boolean;
  logprobs?: number;
  thinkingConfig?: { thinkingBudget: number };
}

export interface GeminiRequestBody {
  contents: GeminiContent[];
  systemInstruction?: { parts: { text: string }[] };
  tools?: { functionDeclarations: GeminiFunctionDeclaration[] }[];
  toolConfig?: { functionCallingConfig: { mode: 'AUTO' | 'ANY' | 'NONE'; allowedFunctionNames?: string[] } };
  generationConfig?: GeminiGenerationConfig;
}

export interface GeminiTranslation {
  body: GeminiRequestBody;
  /**
   * Set when a JSON answer is forced through a function (JSON mode next to tools, on models
   * before Gemini 3): the call of this function is the answer, returned as message content.
   */
  answerTool: string | undefined;
}

/** Fetches (or decodes) the bytes of an image URL, refusals naming `param`; the adapter passes `loadImage`. */
export type ImageLoader = (url: string, param?: string) => Promise<InlineImage>;

/** The function a JSON answer is forced through; a client tool of the same name is refused then. */
export const JSON_RESPONSE_FUNCTION = 'json_response';

/**
 * Models before Gemini 3 refuse function calling next to `responseMimeType: application/json`
 * ("Function calling with a response mime type: 'application/json' is unsupported"). The version
 * is read from the model name; a name without one (a tuned model, an alias) counts as older.
 */
export function allowsJsonWithFunctions(upstreamModel: string): boolean {
  const major = /(?:^|\/)gemini-(\d+)/.exec(upstreamModel)?.[1];
  return major !== undefined && Number(major) >= 3;
}

/**
 * The signature Google documents for function calls whose real thought signature is not at hand
 * (history written by a client, or by another model): Gemini 3 refuses a replayed function call
 * without one, and OpenAI's tool calls have no place to carry the real one back.
 */
export const REPLAYED_THOUGHT_SIGNATURE = 'skip_thought_signature_validator';

/**
 * reasoning_effort as a thinking budget in tokens, the levels Google's OpenAI-compatible endpoint
 * uses; `xhigh` and `max` (OpenAI's and Claude's levels above `high`) take the model's highest
 * budget rather than being refused.
 */
const THINKING_BUDGETS: Readonly<Record<string, number>> = { none: 0, minimal: 1024, low: 1024, medium: 8192, high: 24576, xhigh: 24576, max: 24576 };
/** Pro models think with at least 128 and at most 32,768 tokens (Flash and Flash-Lite: at most 24,576); they cannot stop thinking. */
const PRO_BUDGETS = { lowest: 128, highest: 32_768 } as const;

/**
 * Gemini's Pro models (`gemini-2.5-pro`, `gemini-3-pro-preview`) cannot switch thinking off: they
 * refuse a budget of 0. The catalog does not say which models can, so the name tells, as it tells
 * the version in `allowsJsonWithFunctions`.
 */
export function alwaysThinks(upstreamModel: string): boolean {
  return /(?:^|\/)gemini-[\d.]+-pro(?:-|$)/i.test(upstreamModel);
}

/** A known effort's thinking budget on this model: none is the lowest budget on a Pro model, and the highest levels its highest. */
function thinkingBudget(effort: string, upstreamModel: string): number {
  if (alwaysThinks(upstreamModel)) {
    if (effort === 'none') return PRO_BUDGETS.lowest;
    if (effort === 'xhigh' || effort === 'max') return PRO_BUDGETS.highest;
  }
  return THINKING_BUDGETS[effort] ?? 0;
}
const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;
/** GenerationConfig's limits: `candidateCount` 1–8 and five `stopSequences`; Gemini's refusal of more names no parameter of the client's. */
const MAX_CANDIDATES = 8;
const MAX_STOP_SEQUENCES = 5;
const AUDIO_TYPES: Readonly<Record<string, string>> = { wav: 'audio/wav', mp3: 'audio/mp3' };
/** The function names Gemini takes: a letter or underscore, then at most 63 letters, digits, `_`, `.`, `:` or `-`. */
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;

function unsupported(message: string, param: string): GatewayError {
  return new GatewayError('bad_request', message, { param, code: 'unsupported_parameter' });
}

function invalid(message: string, param: string): GatewayError {
  return new GatewayError('bad_request', message, { param, code: 'invalid_value' });
}

/** A function name Gemini would refuse (its own error names neither the tool nor the client's parameter), refused here naming `param`. */
function checkFunctionName(name: string, param: string): void {
  if (!FUNCTION_NAME.test(name)) {
    throw invalid(`The function name "${name.slice(0, 80)}" is not one this model takes: it starts with a letter or underscore and holds at most 64 letters, digits, _ . : or -.`, param);
  }
}

function parseObject(text: string): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** `gemini-2.5-flash` → `models/gemini-2.5-flash`; a full resource name (`tunedModels/x`) is kept. */
export function modelResource(upstreamModel: string): string {
  const name = upstreamModel.includes('/') ? upstreamModel : `models/${upstreamModel}`;
  return name.split('/').map(encodeURIComponent).join('/');
}

/**
 * The canonical request as the body of `models/{model}:generateContent` (streamed or not; the
 * body is the same). Parameters Gemini cannot honour are dropped when losing them changes
 * nothing the client can see, and refused with a 400 naming the parameter otherwise;
 * docs/providers/gemini.md lists every decision.
 */
export async function toGeminiRequest(r: chatv1.ChatRequest, loadImage: ImageLoader, upstreamModel: string): Promise<GeminiTranslation> {
  const extra = r.extraJson ? (parseObject(r.extraJson) ?? {}) : {};
  refuseUnsupported(r, extra);
  const toolNames = toolNamesById(r.messages);
  const system: { text: string }[] = [];
  const contents: GeminiContent[] = [];
  const callIds = new Set<string>();
  /** The call each function response answers (its tool_call_id). */
  const answering = new Map<GeminiPart, string>();
  for (let i = 0; i < r.messages.length; i++) {
    const m = r.messages[i] as chatv1.Message;
    const param = `messages[${i}]`;
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(...systemParts(m, param));
        break;
      case 'user':
        push(contents, 'user', await contentParts(m, param, loadImage));
        break;
      case 'assistant':
        push(contents, 'model', assistantParts(m, param, callIds));
        break;
      case 'tool': {
        const parts = await toolResultParts(m, param, toolNames, loadImage);
        if (parts[0]) answering.set(parts[0], m.toolCallId ?? '');
        push(contents, 'user', parts);
        break;
      }
      default:
        throw unsupported(`The role "${m.role}" is not supported by this model; send tool results with role "tool".`, `${param}.role`);
    }
  }
  if (contents.length === 0) throw invalid('At least one user or assistant message with content is required for this model.', 'messages');
  const callOrder = new Map([...callIds].map((id, at) => [id, at]));
  const orderOf = (part: GeminiPart): number => callOrder.get(answering.get(part) ?? '') ?? Number.MAX_SAFE_INTEGER;
  for (const turn of contents) if (turn.role === 'user') turn.parts = functionResponsesFirst(turn.parts, orderOf);

  const body: GeminiRequestBody = { contents };
  if (system.length > 0) body.systemInstruction = { parts: system };
  const jsonByFunction = r.tools.length > 0 && wantsJson(r.responseFormat) && !allowsJsonWithFunctions(upstreamModel);
  const answerTool = applyTools(r, body, jsonByFunction ? answerDeclaration(r.responseFormat) : undefined);
  const config = generationConfig(r, extra, !jsonByFunction, upstreamModel);
  if (Object.keys(config).length > 0) body.generationConfig = config;
  return { body, answerTool };
}

function wantsJson(rf: chatv1.ResponseFormat | undefined): boolean {
  return rf?.type === 'json_object' || rf?.type === 'json_schema';
}

function refuseUnsupported(r: chatv1.ChatRequest, extra: JsonObject): void {
  if (Object.keys(r.logitBias).length > 0) throw unsupported('This model does not support "logit_bias" (token ids are tokenizer-specific).', 'logit_bias');
  if (r.modalities.some((m) => m !== 'text')) throw unsupported('This model only answers in text.', 'modalities');
  if (r.topLogprobs !== undefined && r.topLogprobs > 0 && r.logprobs !== true) throw invalid('"top_logprobs" needs "logprobs": true.', 'top_logprobs');
  if (r.seed !== undefined && (r.seed < INT32_MIN || r.seed > INT32_MAX)) throw invalid('This model takes a 32-bit "seed".', 'seed');
  // Own entries only: `constructor` or `__proto__` is no effort (read as one, it was sent as no budget, or an object).
  if (r.reasoningEffort !== undefined && !Object.hasOwn(THINKING_BUDGETS, r.reasoningEffort)) {
    throw invalid(`"reasoning_effort" must be one of ${Object.keys(THINKING_BUDGETS).join(', ')} for this model.`, 'reasoning_effort');
  }
  if (r.n !== undefined && r.n > MAX_CANDIDATES) throw invalid(`This model returns at most ${MAX_CANDIDATES} choices per request ("n").`, 'n');
  if (r.stop.length > MAX_STOP_SEQUENCES) throw invalid(`This model takes at most ${MAX_STOP_SEQUENCES} stop sequences.`, 'stop');
  refuseOpenAIOnly(extra, ['audio', 'web_search_options', 'functions', 'function_call']);
}

/** Every tool call id in the history with its function name: Gemini matches results by name. */
function toolNamesById(messages: readonly chatv1.Message[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const m of messages) for (const call of m.toolCalls) names.set(call.id, call.function?.name ?? '');
  return names;
}

/** Adjacent turns of one role become one content: Gemini expects user and model to alternate. */
function push(contents: GeminiContent[], role: GeminiContent['role'], parts: GeminiPart[]): void {
  if (parts.length === 0) return;
  const last = contents[contents.length - 1];
  if (last?.role === role) last.parts.push(...parts);
  else contents.push({ role, parts });
}

/**
 * A function response turn must answer the calls before anything else the user adds, and in the
 * order of the calls: Gemini pairs a response with its call by name and position (the parts carry
 * no call id), and OpenAI's tool messages may come in any order, so two calls of one function
 * (`get_weather` for Paris, then London) would otherwise each get the other's result.
 */
function functionResponsesFirst(parts: GeminiPart[], orderOf: (part: GeminiPart) => number): GeminiPart[] {
  const responses = parts.filter((p) => p.functionResponse !== undefined);
  if (responses.length === 0) return parts;
  // A stable sort: responses to calls it does not know keep their places after the others.
  responses.sort((a, b) => orderOf(a) - orderOf(b));
  return [...responses, ...parts.filter((p) => p.functionResponse === undefined)];
}

function systemParts(m: chatv1.Message, param: string): { text: string }[] {
  if (m.text !== undefined) return m.text === '' ? [] : [{ text: m.text }];
  const out: { text: string }[] = [];
  const parts = m.parts?.parts ?? [];
  for (let j = 0; j < parts.length; j++) {
    const p = parts[j] as chatv1.ContentPart;
    const text = p.text ?? rawText(p.rawJson);
    if (text === undefined) throw unsupported('System and developer messages may only hold text for this model.', `${param}.content[${j}]`);
    if (text !== '') out.push({ text });
  }
  return out;
}

/** The text of a raw text part (one with keys the typed form has no slot for, such as cache_control). */
function rawText(rawJson: string | undefined): string | undefined {
  const part = rawJson ? parseObject(rawJson) : undefined;
  return part?.['type'] === 'text' && typeof part['text'] === 'string' ? part['text'] : undefined;
}

async function contentParts(m: chatv1.Message, param: string, loadImage: ImageLoader): Promise<GeminiPart[]> {
  if (m.text !== undefined) return m.text === '' ? [] : [{ text: m.text }];
  const out: GeminiPart[] = [];
  const parts = m.parts?.parts ?? [];
  for (let j = 0; j < parts.length; j++) {
    const part = await contentPart(parts[j] as chatv1.ContentPart, `${param}.content[${j}]`, loadImage);
    if (part) out.push(part);
  }
  return out;
}

async function contentPart(p: chatv1.ContentPart, param: string, loadImage: ImageLoader): Promise<GeminiPart | undefined> {
  if (p.text !== undefined) return p.text === '' ? undefined : { text: p.text };
  if (p.refusal !== undefined) return p.refusal === '' ? undefined : { text: p.refusal };
  if (p.imageUrl) {
    const image = await loadImage(p.imageUrl.url, param);
    return { inlineData: { mimeType: image.mediaType, data: image.base64 } };
  }
  if (p.inputAudio) {
    // Own entries only: a format named `constructor` names no audio type.
    const mimeType = Object.hasOwn(AUDIO_TYPES, p.inputAudio.format) ? AUDIO_TYPES[p.inputAudio.format] : undefined;
    if (!mimeType) throw unsupported(`Audio in the format "${p.inputAudio.format}" is not supported; use wav or mp3.`, param);
    return { inlineData: { mimeType, data: p.inputAudio.data } };
  }
  if (p.rawJson) return rawPart(p.rawJson, param, loadImage);
  return undefined;
}

/** Parts kept as JSON: text or image parts with extra keys, and `file` parts with inline base64 data. */
async function rawPart(rawJson: string, param: string, loadImage: ImageLoader): Promise<GeminiPart | undefined> {
  const part = parseObject(rawJson);
  switch (part?.['type']) {
    case 'text': {
      const text = part['text'];
      if (typeof text === 'string') return text === '' ? undefined : { text };
      break;
    }
    case 'image_url': {
      const image = part['image_url'];
      const url = isObject(image) ? image['url'] : undefined;
      if (typeof url === 'string') {
        const loaded = await loadImage(url, param);
        return { inlineData: { mimeType: loaded.mediaType, data: loaded.base64 } };
      }
      break;
    }
    case 'file': {
      const file = isObject(part['file']) ? part['file'] : {};
      const data = typeof file['file_data'] === 'string' ? parseDataUrl(file['file_data']) : undefined;
      if (!data) throw unsupported('Files are supported only inline, as a base64 data URL in `file_data`.', param);
      if (!isBase64(data.base64)) throw invalid('The file data is not base64.', param);
      return { inlineData: { mimeType: data.mediaType, data: data.base64 } };
    }
  }
  throw unsupported(`The content part type "${String(part?.['type'] ?? 'unknown')}" is not supported by this model.`, param);
}

/**
 * An assistant message as a `model` turn. `callIds` holds the ids of the tool calls before it: a
 * call reusing one is refused, as Gemini pairs calls and responses by count and name and one
 * tool message cannot answer two calls (OpenAI refuses a repeated `tool_call_id` too).
 */
function assistantParts(m: chatv1.Message, param: string, callIds: Set<string>): GeminiPart[] {
  const parts: GeminiPart[] = [];
  if (m.text !== undefined && m.text !== '') parts.push({ text: m.text });
  for (const [j, p] of (m.parts?.parts ?? []).entries()) {
    const text = p.text ?? p.refusal ?? rawText(p.rawJson);
    if (text === undefined) throw unsupported('Assistant messages may only hold text and tool calls for this model.', `${param}.content[${j}]`);
    if (text !== '') parts.push({ text });
  }
  if (parts.length === 0 && m.refusal !== undefined && m.refusal !== '') parts.push({ text: m.refusal });
  for (let k = 0; k < m.toolCalls.length; k++) {
    const call = m.toolCalls[k] as chatv1.ToolCall;
    const args = call.function?.arguments ?? '';
    const parsed = args.trim() === '' ? {} : parseObject(args);
    if (!parsed) throw invalid('Tool call arguments must be a JSON object.', `${param}.tool_calls[${k}].function.arguments`);
    const name = call.function?.name ?? '';
    checkFunctionName(name, `${param}.tool_calls[${k}].function.name`);
    if (callIds.has(call.id)) throw invalid(`The tool call id "${call.id.slice(0, 80)}" is already an earlier tool call's; each call needs its own id.`, `${param}.tool_calls[${k}].id`);
    callIds.add(call.id);
    const part: GeminiPart = { functionCall: { name, args: parsed } };
    if (k === 0) part.thoughtSignature = REPLAYED_THOUGHT_SIGNATURE;
    parts.push(part);
  }
  return parts;
}

/**
 * A tool message as a functionResponse part (Gemini pairs results with calls by function name,
 * resolved here from the call id) followed by any images it returned as inline data.
 */
async function toolResultParts(m: chatv1.Message, param: string, toolNames: ReadonlyMap<string, string>, loadImage: ImageLoader): Promise<GeminiPart[]> {
  const id = m.toolCallId ?? '';
  const name = toolNames.get(id);
  if (name === undefined) throw invalid(`The tool message answers "${id}", which no earlier assistant tool call has.`, `${param}.tool_call_id`);
  const texts: string[] = [];
  const media: GeminiPart[] = [];
  if (m.text !== undefined) texts.push(m.text);
  else {
    for (const [j, p] of (m.parts?.parts ?? []).entries()) {
      const part = await contentPart(p, `${param}.content[${j}]`, loadImage);
      if (part?.text !== undefined) texts.push(part.text);
      else if (part) media.push(part);
    }
  }
  const text = texts.join('');
  return [{ functionResponse: { name, response: parseObject(text) ?? { result: text } } }, ...media];
}

/**
 * Tools as function declarations, tool_choice as the function calling mode. With an answer
 * function (JSON mode next to tools on a model that cannot combine them) it is declared too and
 * the answer is forced through it as the Anthropic adapter does: with tool_choice auto the model
 * must call a client function or answer (mode ANY), with none it must answer; with required or a
 * named function the answer is a call anyway and the format is not enforced. Returns the answer
 * function's name when it was declared.
 */
function applyTools(r: chatv1.ChatRequest, body: GeminiRequestBody, answer: GeminiFunctionDeclaration | undefined): string | undefined {
  const declarations = r.tools.map(toDeclaration);
  const choice = r.toolChoice;
  if (choice?.rawJson !== undefined) throw unsupported('This form of "tool_choice" is not supported by this model; use none, auto, required or a named function.', 'tool_choice');
  if (choice?.functionName !== undefined && !declarations.some((d) => d.name === choice.functionName)) {
    throw invalid(`"tool_choice" names the function "${choice.functionName}", which is not among the tools.`, 'tool_choice');
  }
  if (choice?.mode === 'required' && declarations.length === 0) throw invalid('"tool_choice" "required" needs at least one tool.', 'tool_choice');
  if (declarations.length === 0) return undefined;
  body.tools = [{ functionDeclarations: declarations }];
  if (choice?.functionName !== undefined) {
    body.toolConfig = { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [choice.functionName] } };
    return undefined;
  }
  const mode = choice?.mode;
  if (answer && (mode === undefined || mode === 'auto' || mode === 'none')) {
    if (declarations.some((d) => d.name === answer.name)) throw invalid(`The tool name "${answer.name}" is reserved for JSON answers on this model.`, 'tools');
    body.tools = [{ functionDeclarations: [...declarations, answer] }];
    body.toolConfig = { functionCallingConfig: mode === 'none' ? { mode: 'ANY', allowedFunctionNames: [answer.name] } : { mode: 'ANY' } };
    return answer.name;
  }
  switch (mode) {
    case undefined:
      return undefined;
    case 'auto':
      body.toolConfig = { functionCallingConfig: { mode: 'AUTO' } };
      return undefined;
    case 'none':
      body.toolConfig = { functionCallingConfig: { mode: 'NONE' } };
      return undefined;
    case 'required':
      body.toolConfig = { functionCallingConfig: { mode: 'ANY' } };
      return undefined;
    default:
      throw invalid(`Invalid value for "tool_choice": "${mode}".`, 'tool_choice');
  }
}

/** The function a JSON answer is forced through: its parameters are the requested schema (any object for json_object). */
function answerDeclaration(rf: chatv1.ResponseFormat | undefined): GeminiFunctionDeclaration {
  const extra = rf?.jsonSchema?.description;
  const head = { name: JSON_RESPONSE_FUNCTION, description: `Give the final answer as JSON through this function.${extra ? ` ${extra}` : ''}` };
  const text = rf?.type === 'json_schema' ? (rf.jsonSchema?.schemaJson ?? '') : '';
  if (text === '') return { ...head, parametersJsonSchema: { type: 'object' } };
  const schema = parseObject(text);
  if (!schema) throw invalid('The JSON schema must be a JSON object.', 'response_format.json_schema.schema');
  if (schema['type'] !== undefined && schema['type'] !== 'object') {
    throw unsupported('Next to tools, this model needs a JSON schema with an object at its root.', 'response_format.json_schema.schema');
  }
  const rooted = schema['type'] === undefined ? { type: 'object', ...schema } : schema;
  // Gemini's Schema refuses an OBJECT without properties; JSON Schema takes any object.
  const converted = hasNoProperties(rooted) ? undefined : toGeminiSchema(rooted);
  return converted ? { ...head, parameters: converted } : { ...head, parametersJsonSchema: withoutMetaKeywords(rooted) };
}

function toDeclaration(t: chatv1.Tool, index: number): GeminiFunctionDeclaration {
  const f = t.function;
  if ((t.type && t.type !== 'function') || !f) throw unsupported('Only function tools are supported by this model.', `tools[${index}]`);
  checkFunctionName(f.name, `tools[${index}].function.name`);
  const declaration: GeminiFunctionDeclaration = { name: f.name };
  if (f.description !== undefined && f.description !== '') declaration.description = f.description;
  if (!f.parametersJson) return declaration;
  const schema = parseObject(f.parametersJson);
  if (!schema) throw invalid('Function parameters must be a JSON Schema object.', `tools[${index}].function.parameters`);
  if (hasNoProperties(schema) && !isObject(schema['additionalProperties'])) return declaration;
  const converted = toGeminiSchema(schema);
  if (converted) declaration.parameters = converted;
  else declaration.parametersJsonSchema = withoutMetaKeywords(schema);
  return declaration;
}

/** `$schema` and `strict` describe the document, not the data; Gemini rejects unknown meta keys. */
function withoutMetaKeywords(schema: JsonObject): JsonObject {
  const { $schema: _schema, strict: _strict, ...rest } = schema;
  return rest;
}

function generationConfig(r: chatv1.ChatRequest, extra: JsonObject, withResponseFormat: boolean, upstreamModel: string): GeminiGenerationConfig {
  const config: GeminiGenerationConfig = {};
  if (r.stop.length > 0) config.stopSequences = [...r.stop];
  const maxTokens = r.maxCompletionTokens ?? r.maxTokens;
  if (maxTokens !== undefined) config.maxOutputTokens = maxTokens;
  if (r.n !== undefined) config.candidateCount = r.n;
  if (r.temperature !== undefined) config.temperature = r.temperature;
  if (r.topP !== undefined) config.topP = r.topP;
  const topK = extra['top_k'];
  if (typeof topK === 'number' && Number.isInteger(topK) && topK > 0) config.topK = topK;
  if (r.seed !== undefined) config.seed = r.seed;
  // presence_penalty and frequency_penalty are dropped, as hints: Gemini 2.5 and later refuse
  // them ("Penalty is not enabled for models/…", 400 INVALID_ARGUMENT), which would fail the request.
  if (r.logprobs === true) {
    config.responseLogprobs = true;
    if (r.topLogprobs !== undefined && r.topLogprobs > 0) config.logprobs = r.topLogprobs;
  }
  if (r.reasoningEffort !== undefined) config.thinkingConfig = { thinkingBudget: thinkingBudget(r.reasoningEffort, upstreamModel) };
  if (withResponseFormat) applyResponseFormat(r.responseFormat, config);
  return config;
}

function applyResponseFormat(rf: chatv1.ResponseFormat | undefined, config: GeminiGenerationConfig): void {
  if (!rf || rf.type === 'text') return;
  if (rf.type !== 'json_object' && rf.type !== 'json_schema') throw invalid(`Invalid value for "response_format.type": "${rf.type}".`, 'response_format');
  config.responseMimeType = 'application/json';
  const text = rf.type === 'json_schema' ? (rf.jsonSchema?.schemaJson ?? '') : '';
  if (text === '') return;
  const schema = parseObject(text);
  if (!schema) throw invalid('The JSON schema must be a JSON object.', 'response_format.json_schema.schema');
  const converted = toGeminiSchema(schema);
  if (converted) config.responseSchema = converted;
  else config.responseJsonSchema = withoutMetaKeywords(schema);
}
