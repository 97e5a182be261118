import { isChatJson, type ChatJson } from './chat-completion-store';

interface ChoiceParts {
  message: ChatJson;
  /** Tool calls by their delta index. */
  tools: Map<number, ChatJson>;
  logprobs: ChatJson | null;
  finishReason: string | null;
}

/**
 * The chunks of a streamed chat completion, as its client was sent them (OpenAI's
 * `chat.completion.chunk` objects), put together into the `chat.completion` they amount to: each
 * choice's text fields (`content`, `refusal`, `reasoning_content`, …) joined, its tool calls by
 * index with their arguments joined (a name repeated on later deltas kept once), its log
 * probabilities' lists joined, any other field as its last chunk gave it; the usage is the
 * caller's (the client may not have asked for its chunk).
 */
export class StreamedCompletion {
  private readonly choices = new Map<number, ChoiceParts>();
  private head: ChatJson = {};

  add(chunk: unknown): void {
    if (!isChatJson(chunk)) return;
    if (this.head['id'] === undefined) {
      for (const key of ['id', 'created', 'model', 'system_fingerprint', 'service_tier']) if (chunk[key] !== undefined && chunk[key] !== null) this.head[key] = chunk[key];
    }
    const choices = chunk['choices'];
    if (!Array.isArray(choices)) return;
    for (const choice of choices) {
      if (!isChatJson(choice) || typeof choice['index'] !== 'number') continue;
      let parts = this.choices.get(choice['index']);
      if (!parts) {
        parts = { message: { role: 'assistant', content: null, refusal: null }, tools: new Map(), logprobs: null, finishReason: null };
        this.choices.set(choice['index'], parts);
      }
      if (isChatJson(choice['delta'])) addDelta(parts, choice['delta']);
      if (isChatJson(choice['logprobs'])) parts.logprobs = joinLists(parts.logprobs, choice['logprobs']);
      if (typeof choice['finish_reason'] === 'string') parts.finishReason = choice['finish_reason'];
    }
  }

  /** The whole completion with `usage`, or undefined when a choice never finished (or there was none). */
  whole(usage: ChatJson): ChatJson | undefined {
    if (this.choices.size === 0) return undefined;
    const choices: ChatJson[] = [];
    for (const [index, parts] of [...this.choices].sort(([a], [b]) => a - b)) {
      if (parts.finishReason === null) return undefined;
      const message = { ...parts.message };
      if (parts.tools.size > 0) message['tool_calls'] = [...parts.tools].sort(([a], [b]) => a - b).map(([, call]) => call);
      choices.push({ index, message, logprobs: parts.logprobs, finish_reason: parts.finishReason });
    }
    return { id: this.head['id'], object: 'chat.completion', created: this.head['created'], model: this.head['model'], choices, usage, ...pick(this.head, ['system_fingerprint', 'service_tier']) };
  }
}

function addDelta(parts: ChoiceParts, delta: ChatJson): void {
  for (const [key, value] of Object.entries(delta)) {
    if (value === undefined || value === null) continue;
    if (key === 'tool_calls') {
      if (Array.isArray(value)) for (const call of value) if (isChatJson(call)) addToolCall(parts.tools, call);
    } else if (key === 'role') parts.message['role'] = value;
    else if (typeof value === 'string') parts.message[key] = (typeof parts.message[key] === 'string' ? parts.message[key] : '') + value;
    else parts.message[key] = value;
  }
}

function addToolCall(tools: Map<number, ChatJson>, call: ChatJson): void {
  const index = typeof call['index'] === 'number' ? call['index'] : tools.size;
  const tool = tools.get(index) ?? { id: '', type: 'function', function: { name: '', arguments: '' } };
  if (typeof call['id'] === 'string') tool['id'] = call['id'];
  if (typeof call['type'] === 'string') tool['type'] = call['type'];
  const fn = call['function'];
  const into = tool['function'] as { name: string; arguments: string };
  if (isChatJson(fn)) {
    // The first name is the call's: an OpenAI-compatible upstream may repeat it on later deltas,
    // which must not double it (the SDK's own accumulator replaces it rather than appending).
    if (typeof fn['name'] === 'string' && !into.name) into.name = fn['name'];
    if (typeof fn['arguments'] === 'string') into.arguments += fn['arguments'];
  }
  tools.set(index, tool);
}

/** Log probabilities: each list (`content`, `refusal`) joined with the next chunk's. */
function joinLists(so: ChatJson | null, next: ChatJson): ChatJson {
  const out: ChatJson = { ...(so ?? {}) };
  for (const [key, value] of Object.entries(next)) {
    const had = out[key];
    out[key] = Array.isArray(had) && Array.isArray(value) ? [...(had as unknown[]), ...(value as unknown[])] : value;
  }
  return out;
}

function pick(source: ChatJson, keys: readonly string[]): ChatJson {
  const out: ChatJson = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}
