import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { extraJson, mergeExtra, validate } from './validation';

const json = z.unknown();
const text = z.string();

const contentPart = z.looseObject({ type: z.string() });
const toolCall = z.looseObject({ id: z.string(), type: z.string().default('function'), function: z.looseObject({ name: z.string(), arguments: z.string() }) });

const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([text, z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
  tool_calls: z.array(toolCall).optional(),
  tool_call_id: z.string().optional(),
  refusal: z.string().nullable().optional(),
});

const tool = z.looseObject({ type: z.string() });
const MESSAGE_KEYS = new Set(['role', 'content', 'name', 'tool_calls', 'tool_call_id', 'refusal']);

const chatBody = z.looseObject({
  model: z.string().min(1),
  messages: z.array(message).min(1),
  tools: z.array(tool).optional(),
  tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string() })]).optional(),
  parallel_tool_calls: z.boolean().optional(),
  response_format: z.looseObject({ type: z.enum(['text', 'json_object', 'json_schema']), json_schema: z.looseObject({ name: z.string(), schema: json.optional(), description: z.string().optional(), strict: z.boolean().nullable().optional() }).optional() }).optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullable().optional(),
  max_tokens: z.number().int().min(1).nullable().optional(),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  n: z.number().int().min(1).max(128).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  user: z.string().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  logit_bias: z.record(z.string(), z.number()).nullable().optional(),
  reasoning_effort: z.string().nullable().optional(),
  service_tier: z.string().nullable().optional(),
  metadata: z.record(z.string(), z.string()).nullable().optional(),
  store: z.boolean().nullable().optional(),
  modalities: z.array(z.string()).nullable().optional(),
});
type ChatBody = z.infer<typeof chatBody>;
const CHAT_KEYS = new Set(Object.keys(chatBody.shape));

function toPart(part: z.infer<typeof contentPart>): chatv1.ContentPart {
  const p = part as Record<string, unknown>;
  if (part.type === 'text' && typeof p['text'] === 'string' && Object.keys(p).length === 2) return { text: p['text'] };
  if (part.type === 'refusal' && typeof p['refusal'] === 'string' && Object.keys(p).length === 2) return { refusal: p['refusal'] };
  const img = p['image_url'] as { url?: unknown; detail?: unknown } | undefined;
  if (part.type === 'image_url' && img && typeof img.url === 'string' && Object.keys(p).length === 2 && Object.keys(img).every((k) => k === 'url' || k === 'detail')) {
    return { imageUrl: { url: img.url, detail: typeof img.detail === 'string' ? img.detail : undefined } };
  }
  const audio = p['input_audio'] as { data?: unknown; format?: unknown } | undefined;
  if (part.type === 'input_audio' && audio && typeof audio.data === 'string' && typeof audio.format === 'string' && Object.keys(p).length === 2) {
    return { inputAudio: { data: audio.data, format: audio.format } };
  }
  return { rawJson: JSON.stringify(part) };
}

function toMessage(m: z.infer<typeof message>): chatv1.Message {
  const out: chatv1.Message = {
    role: m.role,
    contentIsNull: m.content === null,
    toolCalls: (m.tool_calls ?? []).map((c) => ({ id: c.id, type: c.type, function: { name: c.function.name, arguments: c.function.arguments } })),
    extraJson: extraJson(m, MESSAGE_KEYS),
    name: m.name,
    toolCallId: m.tool_call_id,
    refusal: m.refusal ?? undefined,
  };
  if (typeof m.content === 'string') out.text = m.content;
  else if (Array.isArray(m.content)) out.parts = { parts: m.content.map(toPart) };
  return out;
}

function toTool(t: z.infer<typeof tool>): chatv1.Tool {
  const f = (t as Record<string, unknown>)['function'] as Record<string, unknown> | undefined;
  const plain = t.type === 'function' && f && typeof f['name'] === 'string' && Object.keys(t).length === 2 && Object.keys(f).every((k) => ['name', 'description', 'parameters', 'strict'].includes(k));
  if (!plain || !f) return { type: t.type, rawJson: JSON.stringify(t) };
  return {
    type: 'function',
    function: {
      name: f['name'] as string,
      description: typeof f['description'] === 'string' ? f['description'] : undefined,
      parametersJson: f['parameters'] === undefined ? '' : JSON.stringify(f['parameters']),
      strict: typeof f['strict'] === 'boolean' ? f['strict'] : undefined,
    },
    rawJson: '',
  };
}

function toToolChoice(c: ChatBody['tool_choice']): chatv1.ToolChoice | undefined {
  if (c === undefined) return undefined;
  if (typeof c === 'string') return { mode: c };
  const f = (c as Record<string, unknown>)['function'] as { name?: unknown } | undefined;
  if (c.type === 'function' && f && typeof f.name === 'string' && Object.keys(c).length === 2 && Object.keys(f).length === 1) return { functionName: f.name };
  return { rawJson: JSON.stringify(c) };
}

const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

/** A client's chat body, validated, as the canonical request. Unknown parameters ride in extraJson. */
export function parseChatRequest(body: unknown): chatv1.ChatRequest {
  const b = validate(chatBody, body);
  const rf = b.response_format;
  return {
    model: b.model,
    messages: b.messages.map(toMessage),
    tools: (b.tools ?? []).map(toTool),
    toolChoice: toToolChoice(b.tool_choice),
    parallelToolCalls: b.parallel_tool_calls,
    responseFormat: rf
      ? {
          type: rf.type,
          jsonSchema: rf.json_schema
            ? { name: rf.json_schema.name, description: rf.json_schema.description, schemaJson: rf.json_schema.schema === undefined ? '' : JSON.stringify(rf.json_schema.schema), strict: opt(rf.json_schema.strict) }
            : undefined,
        }
      : undefined,
    temperature: opt(b.temperature),
    topP: opt(b.top_p),
    stop: b.stop == null ? [] : typeof b.stop === 'string' ? [b.stop] : b.stop,
    maxTokens: opt(b.max_tokens),
    maxCompletionTokens: opt(b.max_completion_tokens),
    n: opt(b.n),
    seed: opt(b.seed),
    logprobs: opt(b.logprobs),
    topLogprobs: opt(b.top_logprobs),
    user: b.user,
    stream: b.stream === true,
    streamOptions: b.stream_options ? { includeUsage: b.stream_options.include_usage === true, extraJson: extraJson(b.stream_options, new Set(['include_usage'])) } : undefined,
    presencePenalty: opt(b.presence_penalty),
    frequencyPenalty: opt(b.frequency_penalty),
    logitBias: b.logit_bias ?? {},
    reasoningEffort: opt(b.reasoning_effort),
    serviceTier: opt(b.service_tier),
    metadata: b.metadata ?? {},
    store: opt(b.store),
    modalities: b.modalities ?? [],
    extraJson: extraJson(b, CHAT_KEYS),
  };
}

function fromPart(p: chatv1.ContentPart): unknown {
  if (p.text !== undefined) return { type: 'text', text: p.text };
  if (p.imageUrl) return { type: 'image_url', image_url: p.imageUrl.detail === undefined ? { url: p.imageUrl.url } : { url: p.imageUrl.url, detail: p.imageUrl.detail } };
  if (p.inputAudio) return { type: 'input_audio', input_audio: { data: p.inputAudio.data, format: p.inputAudio.format } };
  if (p.refusal !== undefined) return { type: 'refusal', refusal: p.refusal };
  return JSON.parse(p.rawJson ?? '{}');
}

function fromMessage(m: chatv1.Message): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role };
  if (m.text !== undefined) out['content'] = m.text;
  else if (m.parts) out['content'] = m.parts.parts.map(fromPart);
  else if (m.contentIsNull) out['content'] = null;
  if (m.name !== undefined) out['name'] = m.name;
  if (m.toolCalls.length > 0) out['tool_calls'] = m.toolCalls.map((c) => ({ id: c.id, type: c.type, function: { name: c.function?.name ?? '', arguments: c.function?.arguments ?? '' } }));
  if (m.toolCallId !== undefined) out['tool_call_id'] = m.toolCallId;
  if (m.refusal !== undefined) out['refusal'] = m.refusal;
  return mergeExtra(out, m.extraJson);
}

function fromTool(t: chatv1.Tool): unknown {
  if (t.rawJson) return JSON.parse(t.rawJson);
  const f = t.function;
  const fn: Record<string, unknown> = { name: f?.name ?? '' };
  if (f?.description !== undefined) fn['description'] = f.description;
  if (f?.parametersJson) fn['parameters'] = JSON.parse(f.parametersJson);
  if (f?.strict !== undefined) fn['strict'] = f.strict;
  return { type: 'function', function: fn };
}

function fromToolChoice(c: chatv1.ToolChoice): unknown {
  if (c.mode !== undefined) return c.mode;
  if (c.functionName !== undefined) return { type: 'function', function: { name: c.functionName } };
  return JSON.parse(c.rawJson ?? '""');
}

/** The canonical request as an OpenAI-compatible provider's body, for its own model name. */
export function toOpenAIChatBody(r: chatv1.ChatRequest, upstreamModel: string): Record<string, unknown> {
  const out: Record<string, unknown> = { model: upstreamModel, messages: r.messages.map(fromMessage) };
  const set = (key: string, value: unknown): void => {
    if (value !== undefined) out[key] = value;
  };
  if (r.tools.length > 0) out['tools'] = r.tools.map(fromTool);
  if (r.toolChoice) out['tool_choice'] = fromToolChoice(r.toolChoice);
  set('parallel_tool_calls', r.parallelToolCalls);
  if (r.responseFormat) {
    const rf: Record<string, unknown> = { type: r.responseFormat.type };
    const js = r.responseFormat.jsonSchema;
    if (js) {
      const schema: Record<string, unknown> = { name: js.name };
      if (js.description !== undefined) schema['description'] = js.description;
      if (js.schemaJson) schema['schema'] = JSON.parse(js.schemaJson);
      if (js.strict !== undefined) schema['strict'] = js.strict;
      rf['json_schema'] = schema;
    }
    out['response_format'] = rf;
  }
  set('temperature', r.temperature);
  set('top_p', r.topP);
  if (r.stop.length > 0) out['stop'] = r.stop;
  set('max_tokens', r.maxTokens);
  set('max_completion_tokens', r.maxCompletionTokens);
  set('n', r.n);
  set('seed', r.seed);
  set('logprobs', r.logprobs);
  set('top_logprobs', r.topLogprobs);
  set('user', r.user);
  if (r.stream) out['stream'] = true;
  if (r.streamOptions) out['stream_options'] = mergeExtra({ include_usage: r.streamOptions.includeUsage }, r.streamOptions.extraJson);
  set('presence_penalty', r.presencePenalty);
  set('frequency_penalty', r.frequencyPenalty);
  if (Object.keys(r.logitBias).length > 0) out['logit_bias'] = r.logitBias;
  set('reasoning_effort', r.reasoningEffort);
  set('service_tier', r.serviceTier);
  if (Object.keys(r.metadata).length > 0) out['metadata'] = r.metadata;
  set('store', r.store);
  if (r.modalities.length > 0) out['modalities'] = r.modalities;
  return mergeExtra(out, r.extraJson);
}
