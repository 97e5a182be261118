import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { isObject, type JsonObject, jsonText, jsonValue, mergeExtra } from './validation';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
/**
 * A count a provider reported: a whole number, at most 2^53 − 1 (a larger one cannot be carried
 * exactly, nor encoded in the usage record's protobuf: the record would be lost).
 */
const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.min(Math.trunc(v), Number.MAX_SAFE_INTEGER) : 0);
const EMPTY: JsonObject = {};
const objectOrEmpty = (v: unknown): JsonObject => (isObject(v) ? v : EMPTY);
const indexOr = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : fallback);

const MESSAGE_KEYS: ReadonlySet<string> = new Set(['role', 'content', 'tool_calls', 'refusal']);

/** Fields the canonical message has no slot for, as JSON object text; nulls are the same as absent here. */
function extraFields(source: JsonObject, known: ReadonlySet<string>): string {
  let rest: JsonObject | undefined;
  for (const key in source) {
    const value = source[key];
    if (known.has(key) || value === undefined || value === null) continue;
    (rest ??= {})[key] = value;
  }
  return rest ? JSON.stringify(rest) : '';
}

function malformed(what: string): GatewayError {
  return new GatewayError('upstream_error', `The provider returned a malformed ${what}.`);
}

/** OpenAI's usage object (with its details) as canonical usage; undefined when absent or null. */
export function parseOpenAIUsage(json: unknown): chatv1.Usage | undefined {
  if (!isObject(json)) return undefined;
  const prompt = objectOrEmpty(json['prompt_tokens_details']);
  const completion = objectOrEmpty(json['completion_tokens_details']);
  const promptTokens = count(json['prompt_tokens']);
  const completionTokens = count(json['completion_tokens']);
  return {
    promptTokens,
    completionTokens,
    totalTokens: count(json['total_tokens']) || promptTokens + completionTokens,
    // DeepSeek-style servers report cache hits at the top level instead of in the details.
    cachedReadTokens: count(prompt['cached_tokens']) || count(json['prompt_cache_hit_tokens']),
    cacheWriteTokens: count(prompt['cache_write_tokens']),
    reasoningTokens: count(completion['reasoning_tokens']),
    estimated: false,
  };
}

function parseToolCalls(v: unknown): chatv1.ToolCall[] {
  if (!Array.isArray(v)) return [];
  const out: chatv1.ToolCall[] = [];
  for (const c of v) {
    if (!isObject(c)) continue;
    const f = objectOrEmpty(c['function']);
    out.push({ id: str(c['id']) ?? '', type: str(c['type']) ?? 'function', function: { name: str(f['name']) ?? '', arguments: str(f['arguments']) ?? '' } });
  }
  return out;
}

function parseChoice(ch: JsonObject, position: number): chatv1.Choice {
  const m = objectOrEmpty(ch['message']);
  return {
    index: indexOr(ch['index'], position),
    message: { role: str(m['role']) ?? 'assistant', content: str(m['content']), toolCalls: parseToolCalls(m['tool_calls']), refusal: str(m['refusal']), extraJson: extraFields(m, MESSAGE_KEYS) },
    finishReason: str(ch['finish_reason']) ?? '',
    logprobsJson: jsonText(ch['logprobs']),
  };
}

/** A provider's chat.completion object as the canonical completion. */
/** The fields a completion and a chunk share, with their choices parsed by `parseChoiceAt`. */
function parseEnvelope<C>(json: JsonObject, choices: unknown[], parseChoiceAt: (ch: JsonObject, position: number) => C) {
  const parsed: C[] = [];
  for (let i = 0; i < choices.length; i++) {
    const ch: unknown = choices[i];
    if (isObject(ch)) parsed.push(parseChoiceAt(ch, i));
  }
  return {
    id: str(json['id']) ?? '',
    created: count(json['created']),
    model: str(json['model']) ?? '',
    choices: parsed,
    usage: parseOpenAIUsage(json['usage']),
    systemFingerprint: str(json['system_fingerprint']),
    serviceTier: str(json['service_tier']),
  };
}

/** A provider's chat.completion object as the canonical completion. */
export function parseOpenAICompletion(json: unknown): chatv1.ChatCompletion {
  if (!isObject(json)) throw malformed('completion');
  const choices = json['choices'];
  if (!Array.isArray(choices)) throw malformed('completion (no choices)');
  return parseEnvelope(json, choices, parseChoice);
}

function parseToolCallDeltas(v: unknown): chatv1.ToolCallDelta[] {
  if (!Array.isArray(v)) return [];
  const out: chatv1.ToolCallDelta[] = [];
  for (let i = 0; i < v.length; i++) {
    const t: unknown = v[i];
    if (!isObject(t)) continue;
    const f = objectOrEmpty(t['function']);
    out.push({ index: indexOr(t['index'], i), id: str(t['id']), type: str(t['type']), name: str(f['name']), arguments: str(f['arguments']) });
  }
  return out;
}

function parseChunkChoice(ch: JsonObject, position: number): chatv1.ChunkChoice {
  const d = objectOrEmpty(ch['delta']);
  return {
    index: indexOr(ch['index'], position),
    delta: { role: str(d['role']), content: str(d['content']), toolCalls: parseToolCallDeltas(d['tool_calls']), refusal: str(d['refusal']), extraJson: extraFields(d, MESSAGE_KEYS) },
    finishReason: str(ch['finish_reason']),
    logprobsJson: jsonText(ch['logprobs']),
  };
}

/** A provider's chat.completion.chunk as the canonical chunk (usage-only chunks have no choices). */
export function parseOpenAIChunk(json: unknown): chatv1.ChatChunk {
  if (!isObject(json)) throw malformed('stream chunk');
  const choices = json['choices'];
  return parseEnvelope(json, Array.isArray(choices) ? choices : [], parseChunkChoice);
}

export function emptyUsage(): chatv1.Usage {
  return { promptTokens: 0, completionTokens: 0, totalTokens: 0, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };
}

/** Adds `u` into `total` (several provider calls answering one client request). */
export function addUsage(total: chatv1.Usage, u: chatv1.Usage): void {
  total.promptTokens += u.promptTokens;
  total.completionTokens += u.completionTokens;
  total.totalTokens += u.totalTokens;
  total.cachedReadTokens += u.cachedReadTokens;
  total.cacheWriteTokens += u.cacheWriteTokens;
  total.reasoningTokens += u.reasoningTokens;
  total.estimated ||= u.estimated;
}

export function toOpenAIUsage(u: chatv1.Usage): JsonObject {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.totalTokens,
    prompt_tokens_details: { cached_tokens: u.cachedReadTokens },
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens },
  };
}

function toolCallJson(c: chatv1.ToolCall): JsonObject {
  return { id: c.id, type: c.type || 'function', function: { name: c.function?.name ?? '', arguments: c.function?.arguments ?? '' } };
}

function toolCallDeltaJson(t: chatv1.ToolCallDelta): JsonObject {
  const call: JsonObject = { index: t.index };
  if (t.id !== undefined) call['id'] = t.id;
  if (t.type !== undefined) call['type'] = t.type;
  const fn: JsonObject = {};
  if (t.name !== undefined) fn['name'] = t.name;
  if (t.arguments !== undefined) fn['arguments'] = t.arguments;
  call['function'] = fn;
  return call;
}

const createdOrNow = (created: number): number => created || Math.floor(Date.now() / 1000);

function choiceJson(ch: chatv1.Choice): JsonObject {
  const m = ch.message;
  const message: JsonObject = { role: m?.role || 'assistant', content: m?.content ?? null, refusal: m?.refusal ?? null };
  if (m && m.toolCalls.length > 0) message['tool_calls'] = m.toolCalls.map(toolCallJson);
  if (m?.extraJson) mergeExtra(message, m.extraJson);
  return { index: ch.index, message, logprobs: jsonValue(ch.logprobsJson), finish_reason: ch.finishReason || null };
}

/** The canonical completion as OpenAI's chat.completion object, under the public model id. */
export function toOpenAICompletion(c: chatv1.ChatCompletion, model: string): JsonObject {
  const out: JsonObject = { id: c.id, object: 'chat.completion', created: createdOrNow(c.created), model, choices: c.choices.map(choiceJson) };
  if (c.usage) out['usage'] = toOpenAIUsage(c.usage);
  if (c.systemFingerprint !== undefined) out['system_fingerprint'] = c.systemFingerprint;
  if (c.serviceTier !== undefined) out['service_tier'] = c.serviceTier;
  return out;
}

function chunkChoiceJson(ch: chatv1.ChunkChoice): JsonObject {
  const d = ch.delta;
  const delta: JsonObject = {};
  if (d) {
    if (d.role !== undefined) delta['role'] = d.role;
    if (d.content !== undefined) delta['content'] = d.content;
    if (d.refusal !== undefined) delta['refusal'] = d.refusal;
    if (d.toolCalls.length > 0) delta['tool_calls'] = d.toolCalls.map(toolCallDeltaJson);
    if (d.extraJson) mergeExtra(delta, d.extraJson);
  }
  return { index: ch.index, delta, logprobs: jsonValue(ch.logprobsJson), finish_reason: ch.finishReason ?? null };
}

/** The canonical chunk as OpenAI's chat.completion.chunk object, under the public model id. */
export function toOpenAIChunk(c: chatv1.ChatChunk, model: string): JsonObject {
  const out: JsonObject = { id: c.id, object: 'chat.completion.chunk', created: createdOrNow(c.created), model, choices: c.choices.map(chunkChoiceJson) };
  if (c.usage) out['usage'] = toOpenAIUsage(c.usage);
  if (c.systemFingerprint !== undefined) out['system_fingerprint'] = c.systemFingerprint;
  if (c.serviceTier !== undefined) out['service_tier'] = c.serviceTier;
  return out;
}
