import type { chatv1 } from '@openrouter/contracts';

/** Finish reasons of a complete answer worth repeating; `content_filter` and anything unknown are not stored. */
export const STORABLE_FINISH_REASONS: ReadonlySet<string> = new Set(['stop', 'length', 'tool_calls']);

/** Whether a whole answer may be stored: it has choices, and every one finished for a storable reason. */
export function completionStorable(completion: chatv1.ChatCompletion): boolean {
  return completion.choices.length > 0 && completion.choices.every((c) => STORABLE_FINISH_REASONS.has(c.finishReason));
}

interface ChoiceParts {
  role: string;
  content: string | undefined;
  refusal: string | undefined;
  tools: Map<number, { id: string; type: string; name: string; arguments: string }>;
  finishReason: string | undefined;
  stopSequence: string | undefined;
}

/**
 * A streamed answer gathered into the whole answer it amounts to, so it can be stored and later
 * replayed whole or streamed. Only plain answers are gathered: a chunk with provider-specific
 * fields (reasoning, thinking blocks, audio) or log probabilities makes the answer unstorable,
 * since putting those together is the provider's format, not OpenAI's.
 */
export class StreamedAnswer {
  private readonly choices = new Map<number, ChoiceParts>();
  private id = '';
  private created = 0;
  private model = '';
  private systemFingerprint: string | undefined;
  private serviceTier: string | undefined;
  private unstorable = false;
  /** Bytes of text gathered so far (content, refusals, tool calls). */
  private bytes = 0;

  /**
   * @param maxBytes `cache.maxEntryBytes`: an answer whose text alone is larger could not be stored
   * (its sealed entry is larger still), so it is dropped as soon as it grows past it, not kept to the end.
   */
  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {}

  /** Whether the answer can no longer be stored, whatever comes next (a provider-specific field, or too large). */
  get givenUp(): boolean {
    return this.unstorable;
  }

  add(chunk: chatv1.ChatChunk): void {
    if (this.unstorable) return;
    if (this.outgrown(chunk)) return;
    this.id ||= chunk.id;
    this.created ||= chunk.created;
    this.model ||= chunk.model;
    this.systemFingerprint ??= chunk.systemFingerprint;
    this.serviceTier ??= chunk.serviceTier;
    for (const choice of chunk.choices) {
      if (choice.logprobsJson || choice.delta?.extraJson) {
        this.unstorable = true;
        return;
      }
      let parts = this.choices.get(choice.index);
      if (!parts) {
        parts = { role: 'assistant', content: undefined, refusal: undefined, tools: new Map(), finishReason: undefined, stopSequence: undefined };
        this.choices.set(choice.index, parts);
      }
      const delta = choice.delta;
      if (delta?.role) parts.role = delta.role;
      if (delta?.content !== undefined) parts.content = (parts.content ?? '') + delta.content;
      if (delta?.refusal !== undefined) parts.refusal = (parts.refusal ?? '') + delta.refusal;
      for (const call of delta?.toolCalls ?? []) {
        const tool = parts.tools.get(call.index) ?? { id: '', type: 'function', name: '', arguments: '' };
        if (call.id) tool.id = call.id;
        if (call.type) tool.type = call.type;
        // The first name is the call's: an OpenAI-compatible upstream may repeat it on later deltas,
        // which must not double it (libs/openai-wire's Responses stream keeps the first name too).
        if (call.name && !tool.name) tool.name = call.name;
        if (call.arguments) tool.arguments += call.arguments;
        parts.tools.set(call.index, tool);
      }
      if (choice.finishReason) parts.finishReason = choice.finishReason;
      if (choice.stopSequence !== undefined) parts.stopSequence = choice.stopSequence;
    }
  }

  private outgrown(chunk: chatv1.ChatChunk): boolean {
    for (const { delta } of chunk.choices) {
      if (!delta) continue;
      this.bytes += Buffer.byteLength(delta.content ?? '') + Buffer.byteLength(delta.refusal ?? '');
      for (const call of delta.toolCalls) this.bytes += Buffer.byteLength(call.name ?? '') + Buffer.byteLength(call.arguments ?? '');
    }
    if (this.bytes <= this.maxBytes) return false;
    this.unstorable = true;
    this.choices.clear();
    return true;
  }

  /** The whole answer with `usage`, or undefined when it may not be stored (a choice unfinished, or finished for a reason not stored). */
  whole(usage: chatv1.Usage): chatv1.ChatCompletion | undefined {
    if (this.unstorable || this.choices.size === 0) return undefined;
    const choices: chatv1.Choice[] = [];
    for (const [index, parts] of [...this.choices].sort(([a], [b]) => a - b)) {
      if (!parts.finishReason || !STORABLE_FINISH_REASONS.has(parts.finishReason)) return undefined;
      const toolCalls = [...parts.tools].sort(([a], [b]) => a - b).map(([, t]) => ({ id: t.id, type: t.type, function: { name: t.name, arguments: t.arguments } }));
      choices.push({
        index,
        message: { role: parts.role, content: parts.content, toolCalls, refusal: parts.refusal, extraJson: '' },
        finishReason: parts.finishReason,
        logprobsJson: '',
        stopSequence: parts.stopSequence,
      });
    }
    return { id: this.id, created: this.created, model: this.model, choices, usage, systemFingerprint: this.systemFingerprint, serviceTier: this.serviceTier };
  }
}

/**
 * A whole answer as the chunks of a stream: per choice, one chunk with its whole message (role,
 * content, refusal, tool calls with their indexes, log probabilities), then one that finishes it. The usage chunk is
 * the caller's, as a stream's is.
 */
export function replayChunks(completion: chatv1.ChatCompletion): chatv1.ChatChunk[] {
  const head = { id: completion.id, created: completion.created, model: completion.model, systemFingerprint: completion.systemFingerprint, serviceTier: completion.serviceTier };
  const chunks: chatv1.ChatChunk[] = [];
  for (const choice of completion.choices) {
    const m = choice.message;
    const delta: chatv1.Delta = {
      role: m?.role || 'assistant',
      content: m?.content ?? (m?.toolCalls.length || m?.refusal !== undefined ? undefined : ''),
      refusal: m?.refusal,
      toolCalls: (m?.toolCalls ?? []).map((t, index) => ({ index, id: t.id, type: t.type || 'function', name: t.function?.name ?? '', arguments: t.function?.arguments ?? '' })),
      extraJson: m?.extraJson ?? '',
    };
    // The log probabilities of the whole message, as a stream's chunk carries those of its own text.
    chunks.push({ ...head, choices: [{ index: choice.index, delta, logprobsJson: choice.logprobsJson }] });
    chunks.push({ ...head, choices: [{ index: choice.index, delta: { toolCalls: [], extraJson: '' }, finishReason: choice.finishReason, logprobsJson: '', stopSequence: choice.stopSequence }] });
  }
  return chunks;
}
