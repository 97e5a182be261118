import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const ASSISTANT_KEYS = new Set(['role', 'content', 'tool_calls', 'refusal']);
const DELTA_KEYS = new Set(['role', 'content', 'tool_calls', 'refusal']);

function object(json: unknown, what: string): Obj {
  if (!isObj(json)) throw new GatewayError('upstream_error', `The provider returned a malformed ${what}.`);
  return json;
}

function extra(source: Obj, known: ReadonlySet<string>): string {
  const rest: Obj = {};
  let any = false;
  for (const [k, v] of Object.entries(source)) {
    if (!known.has(k) && v !== undefined && v !== null) {
      rest[k] = v;
      any = true;
    }
  }
  return any ? JSON.stringify(rest) : '';
}

export function parseOpenAIUsage(json: unknown): chatv1.Usage | undefined {
  if (!isObj(json)) return undefined;
  const prompt = isObj(json['prompt_tokens_details']) ? json['prompt_tokens_details'] : {};
  const completion = isObj(json['completion_tokens_details']) ? json['completion_tokens_details'] : {};
  return {
    promptTokens: num(json['prompt_tokens']),
    completionTokens: num(json['completion_tokens']),
    totalTokens: num(json['total_tokens']) || num(json['prompt_tokens']) + num(json['completion_tokens']),
    cachedReadTokens: num(prompt['cached_tokens']),
    cacheWriteTokens: num(prompt['cache_write_tokens']),
    reasoningTokens: num(completion['reasoning_tokens']),
    estimated: false,
  };
}

function toolCalls(v: unknown): chatv1.ToolCall[] {
  if (!Array.isArray(v)) return [];
  return v.filter(isObj).map((c) => {
    const f = isObj(c['function']) ? c['function'] : {};
    return { id: str(c['id']) ?? '', type: str(c['type']) ?? 'function', function: { name: str(f['name']) ?? '', arguments: str(f['arguments']) ?? '' } };
  });
}

const logprobs = (v: unknown): string => (v === undefined || v === null ? '' : JSON.stringify(v));

/** A provider's chat.completion object as the canonical completion. */
export function parseOpenAICompletion(json: unknown): chatv1.ChatCompletion {
  const c = object(json, 'completion');
  if (!Array.isArray(c['choices'])) throw new GatewayError('upstream_error', 'The provider returned a completion without choices.');
  return {
    id: str(c['id']) ?? '',
    created: num(c['created']),
    model: str(c['model']) ?? '',
    choices: c['choices'].filter(isObj).map((ch, i) => {
      const m = isObj(ch['message']) ? ch['message'] : {};
      return {
        index: typeof ch['index'] === 'number' ? ch['index'] : i,
        message: { role: str(m['role']) ?? 'assistant', content: str(m['content']), toolCalls: toolCalls(m['tool_calls']), refusal: str(m['refusal']), extraJson: extra(m, ASSISTANT_KEYS) },
        finishReason: str(ch['finish_reason']) ?? '',
        logprobsJson: logprobs(ch['logprobs']),
      };
    }),
    usage: parseOpenAIUsage(c['usage']),
    systemFingerprint: str(c['system_fingerprint']),
    serviceTier: str(c['service_tier']),
  };
}

/** A provider's chat.completion.chunk as the canonical chunk. */
export function parseOpenAIChunk(json: unknown): chatv1.ChatChunk {
  const c = object(json, 'stream chunk');
  const choices = Array.isArray(c['choices']) ? c['choices'].filter(isObj) : [];
  return {
    id: str(c['id']) ?? '',
    created: num(c['created']),
    model: str(c['model']) ?? '',
    choices: choices.map((ch, i) => {
      const d = isObj(ch['delta']) ? ch['delta'] : {};
      const calls = Array.isArray(d['tool_calls']) ? d['tool_calls'].filter(isObj) : [];
      return {
        index: typeof ch['index'] === 'number' ? ch['index'] : i,
        delta: {
          role: str(d['role']),
          content: str(d['content']),
          refusal: str(d['refusal']),
          toolCalls: calls.map((t, j) => {
            const f = isObj(t['function']) ? t['function'] : {};
            return { index: typeof t['index'] === 'number' ? t['index'] : j, id: str(t['id']), type: str(t['type']), name: str(f['name']), arguments: str(f['arguments']) };
          }),
          extraJson: extra(d, DELTA_KEYS),
        },
        finishReason: str(ch['finish_reason']),
        logprobsJson: logprobs(ch['logprobs']),
      };
    }),
    usage: parseOpenAIUsage(c['usage']),
    systemFingerprint: str(c['system_fingerprint']),
    serviceTier: str(c['service_tier']),
  };
}

export function toOpenAIUsage(u: chatv1.Usage): Obj {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.totalTokens,
    prompt_tokens_details: { cached_tokens: u.cachedReadTokens },
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens },
  };
}

function withExtra(target: Obj, json: string): Obj {
  return json ? { ...(JSON.parse(json) as Obj), ...target } : target;
}

function toolCallJson(c: chatv1.ToolCall): Obj {
  return { id: c.id, type: c.type, function: { name: c.function?.name ?? '', arguments: c.function?.arguments ?? '' } };
}

/** The canonical completion as OpenAI's chat.completion object, under the public model id. */
export function toOpenAICompletion(c: chatv1.ChatCompletion, model: string): Obj {
  const out: Obj = {
    id: c.id,
    object: 'chat.completion',
    created: c.created || Math.floor(Date.now() / 1000),
    model,
    choices: c.choices.map((ch) => {
      const m = ch.message;
      const message: Obj = { role: m?.role ?? 'assistant', content: m?.content ?? null, refusal: m?.refusal ?? null };
      if (m && m.toolCalls.length > 0) message['tool_calls'] = m.toolCalls.map(toolCallJson);
      return { index: ch.index, message: withExtra(message, m?.extraJson ?? ''), logprobs: ch.logprobsJson ? JSON.parse(ch.logprobsJson) : null, finish_reason: ch.finishReason || null };
    }),
    usage: c.usage ? toOpenAIUsage(c.usage) : undefined,
    system_fingerprint: c.systemFingerprint ?? null,
  };
  if (c.serviceTier !== undefined) out['service_tier'] = c.serviceTier;
  return out;
}

/** The canonical chunk as OpenAI's chat.completion.chunk object, under the public model id. */
export function toOpenAIChunk(c: chatv1.ChatChunk, model: string): Obj {
  const out: Obj = {
    id: c.id,
    object: 'chat.completion.chunk',
    created: c.created || Math.floor(Date.now() / 1000),
    model,
    choices: c.choices.map((ch) => {
      const d = ch.delta;
      const delta: Obj = {};
      if (d?.role !== undefined) delta['role'] = d.role;
      if (d?.content !== undefined) delta['content'] = d.content;
      if (d?.refusal !== undefined) delta['refusal'] = d.refusal;
      if (d && d.toolCalls.length > 0) {
        delta['tool_calls'] = d.toolCalls.map((t) => {
          const call: Obj = { index: t.index };
          if (t.id !== undefined) call['id'] = t.id;
          if (t.type !== undefined) call['type'] = t.type;
          const fn: Obj = {};
          if (t.name !== undefined) fn['name'] = t.name;
          if (t.arguments !== undefined) fn['arguments'] = t.arguments;
          call['function'] = fn;
          return call;
        });
      }
      return { index: ch.index, delta: withExtra(delta, d?.extraJson ?? ''), logprobs: ch.logprobsJson ? JSON.parse(ch.logprobsJson) : null, finish_reason: ch.finishReason ?? null };
    }),
    system_fingerprint: c.systemFingerprint ?? null,
  };
  if (c.usage) out['usage'] = toOpenAIUsage(c.usage);
  if (c.serviceTier !== undefined) out['service_tier'] = c.serviceTier;
  return out;
}
