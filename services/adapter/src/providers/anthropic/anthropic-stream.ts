import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { chunkCarriesAnswer } from '@openrouter/openai-wire';
import { anthropicStreamError } from './anthropic-errors';
import { StreamedAnswerTokens, thinkingExtra, type ThinkingBlock } from '../claude-thinking';
import { countTextTokens } from '../text-tokens';
import { anthropicUsageSchema, type AnthropicUsage, matchedStopSequence, servedTier, toCanonicalUsage, toFinishReason } from './anthropic-response';

const messageStart = z.looseObject({
  type: z.literal('message_start'),
  message: z.looseObject({ id: z.string(), model: z.string().default(''), usage: anthropicUsageSchema.nullish() }),
});
const blockStart = z.looseObject({
  type: z.literal('content_block_start'),
  index: z.number().int().min(0),
  content_block: z.looseObject({ type: z.string(), text: z.string().optional(), id: z.string().optional(), name: z.string().optional(), data: z.string().optional() }),
});
const blockDelta = z.looseObject({
  type: z.literal('content_block_delta'),
  index: z.number().int().min(0),
  delta: z.looseObject({ type: z.string(), text: z.string().optional(), partial_json: z.string().optional(), thinking: z.string().optional(), signature: z.string().optional() }),
});
const blockStop = z.looseObject({ type: z.literal('content_block_stop'), index: z.number().int().min(0) });
const messageDelta = z.looseObject({
  type: z.literal('message_delta'),
  delta: z.looseObject({ stop_reason: z.string().nullish(), stop_sequence: z.string().nullish() }),
  usage: anthropicUsageSchema.partial().nullish(),
});
const streamEvent = z.discriminatedUnion('type', [
  messageStart,
  blockStart,
  blockDelta,
  messageDelta,
  blockStop,
  z.looseObject({ type: z.literal('message_stop') }),
  z.looseObject({ type: z.literal('ping') }),
  z.looseObject({ type: z.literal('error') }),
]);

export interface StreamOptions {
  /** The tool a JSON answer was forced through, if any: its input streams as content. */
  responseTool: string | undefined;
  /** End with a usage-only chunk (`choices: []`), as OpenAI does for `stream_options.include_usage`. */
  includeUsage: boolean;
  provider: string;
  now?: number;
}

/** `hasInput` is set once a non-empty input fragment went out, so a call without arguments still ends with `{}`. */
type Block =
  | { kind: 'text' }
  | { kind: 'answer'; hasInput: boolean }
  | { kind: 'tool'; toolIndex: number; hasInput: boolean }
  | { kind: 'thinking'; text: string; signature: string }
  | { kind: 'other' };

/**
 * Turns Anthropic's event stream (message_start, content_block_start/delta/stop, message_delta,
 * message_stop, ping, error) into OpenAI-shaped chunks: an opening role chunk, content and tool
 * call deltas (tool calls numbered in order of appearance, id and name on their first delta),
 * thinking as `reasoning_content` deltas and, at each thinking block's end, a `thinking_blocks`
 * delta with all the blocks so far, one chunk with the finish_reason, then the usage chunk when
 * asked for.
 */
export class AnthropicStreamTranslator {
  private id = '';
  private model = '';
  /** The tier message_start says serves the request, on every chunk as OpenAI sends it. */
  private serviceTier: string | undefined;
  private created: number;
  private started = false;
  private finished = false;
  private done = false;
  private readonly blocks = new Map<number, Block>();
  private toolCalls = 0;
  /** The answer's thinking blocks so far, in order: each `thinking_blocks` delta carries them all. */
  private readonly thinking: ThinkingBlock[] = [];
  /** The answer's visible tokens, for the reasoning estimate in the usage chunk. */
  private readonly answerTokens = new StreamedAnswerTokens();
  private usage: AnthropicUsage = { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, cache_creation: undefined, output_tokens_details: undefined };
  private stopReason: string | null | undefined;
  private stopSequence: string | null | undefined;
  /** Set once a chunk that commits the router to this provider went out (`chunkCarriesAnswer`). */
  private answered = false;
  /** Set once a message_delta counted the output: until then message_start's placeholder (1) stands. */
  private outputCounted = false;

  constructor(private readonly options: StreamOptions) {
    this.created = options.now ?? Math.floor(Date.now() / 1000);
  }

  /** True once message_stop has arrived; anything after it is ignored. */
  get complete(): boolean {
    return this.done;
  }

  /** The chunks one event's data produces (often none). Throws GatewayError for error events and malformed data. */
  accept(data: string): chatv1.ChatChunk[] {
    const out = this.translate(data);
    this.answered ||= out.some(chunkCarriesAnswer);
    return out;
  }

  /**
   * The usage of a stream that fails once its answer has begun (an error event such as
   * overloaded_error, a malformed event, a dropped connection), as a chunk: what Anthropic bills
   * for it. The prompt side is message_start's count, cache reads and writes apart, which ingress
   * cannot know: without this chunk it would price a prompt read from the cache at the full input
   * price. The output is message_delta's count when one came; before it, message_start's count is
   * a placeholder, so the thinking and answer streamed so far, counted by the gateway's tokenizer,
   * stand in (`estimated`). None before the answer began (the router may still fail over, and a
   * usage chunk would commit the request to this provider), once the stream completed, or when the
   * request did not ask for usage.
   */
  usageSoFar(): chatv1.ChatChunk[] {
    if (!this.answered || this.done || !this.options.includeUsage) return [];
    if (this.outputCounted) return [this.usageChunk(toCanonicalUsage(this.usage, this.thinking, () => this.answerTokens.count()))];
    let thought = 0;
    for (const block of this.blocks.values()) if (block.kind === 'thinking') thought += countTextTokens(block.text);
    const completionTokens = Math.max(this.usage.output_tokens, thought + this.answerTokens.count());
    const reported = toCanonicalUsage(this.usage);
    return [
      this.usageChunk({
        ...reported,
        completionTokens,
        totalTokens: reported.promptTokens + completionTokens,
        reasoningTokens: this.usage.output_tokens_details ? reported.reasoningTokens : thought,
        estimated: true,
      }),
    ];
  }

  private translate(data: string): chatv1.ChatChunk[] {
    if (this.done) return [];
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch (error) {
      throw this.malformed(error);
    }
    const parsed = streamEvent.safeParse(json);
    if (!parsed.success) {
      // Event types added to the API later are skipped, as Anthropic's versioning policy asks of clients.
      if (typeof json === 'object' && json !== null && typeof (json as { type?: unknown }).type === 'string' && !KNOWN.has((json as { type: string }).type)) return [];
      throw this.malformed(parsed.error);
    }
    const event = parsed.data;
    switch (event.type) {
      case 'message_start':
        return this.start(event);
      case 'content_block_start':
        return this.blockStart(event);
      case 'content_block_delta':
        return this.blockDelta(event);
      case 'message_delta':
        return this.messageDelta(event);
      case 'message_stop':
        return this.stop();
      case 'error':
        throw anthropicStreamError(json, this.options.provider);
      case 'content_block_stop':
        return this.blockStop(event);
      case 'ping':
        return [];
    }
  }

  private start(event: z.infer<typeof messageStart>): chatv1.ChatChunk[] {
    if (this.started) return [];
    this.started = true;
    this.id = event.message.id;
    this.model = event.message.model;
    if (event.message.usage) this.usage = event.message.usage;
    this.serviceTier = servedTier(event.message.usage);
    return [this.chunk({ role: 'assistant', content: '' })];
  }

  private blockStart(event: z.infer<typeof blockStart>): chatv1.ChatChunk[] {
    this.requireStarted();
    const b = event.content_block;
    if (b.type === 'text') {
      this.blocks.set(event.index, { kind: 'text' });
      if (b.text) this.answerTokens.add(b.text);
      return b.text ? [this.chunk({ content: b.text })] : [];
    }
    if (b.type === 'tool_use') {
      this.answerTokens.add(b.name ?? '');
      this.answerTokens.endPart();
    }
    if (b.type === 'tool_use' && b.name === this.options.responseTool) {
      this.blocks.set(event.index, { kind: 'answer', hasInput: false });
      return [];
    }
    if (b.type === 'tool_use') {
      const toolIndex = this.toolCalls++;
      this.blocks.set(event.index, { kind: 'tool', toolIndex, hasInput: false });
      return [this.chunk({ toolCalls: [{ index: toolIndex, id: b.id ?? '', type: 'function', name: b.name ?? '', arguments: '' }] })];
    }
    if (b.type === 'thinking') {
      this.blocks.set(event.index, { kind: 'thinking', text: '', signature: '' });
      return [];
    }
    this.blocks.set(event.index, { kind: 'other' });
    // Redacted thinking comes whole at its start; server tool blocks have no OpenAI counterpart.
    if (b.type === 'redacted_thinking' && b.data) return [this.thinkingChunk({ type: 'redacted_thinking', data: b.data })];
    return [];
  }

  private blockDelta(event: z.infer<typeof blockDelta>): chatv1.ChatChunk[] {
    this.requireStarted();
    const block = this.blocks.get(event.index);
    const d = event.delta;
    if (!block) throw this.malformed(new Error(`delta for unopened content block ${event.index}`));
    if (block.kind === 'text' && d.type === 'text_delta' && d.text) {
      this.answerTokens.add(d.text);
      return [this.chunk({ content: d.text })];
    }
    if (block.kind === 'thinking' && d.type === 'thinking_delta' && d.thinking) {
      block.text += d.thinking;
      return [this.chunk({ extraJson: thinkingExtra(d.thinking, []) })];
    }
    if (block.kind === 'thinking' && d.type === 'signature_delta' && d.signature) block.signature += d.signature;
    if ((block.kind === 'answer' || block.kind === 'tool') && d.type === 'input_json_delta' && d.partial_json) {
      block.hasInput = true;
      this.answerTokens.add(d.partial_json);
      return [this.inputChunk(block, d.partial_json)];
    }
    return [];
  }

  /**
   * A tool called without arguments streams only empty fragments; the non-streamed answer has
   * `{}` for it, so the stream ends the call with `{}` too.
   */
  private blockStop(event: z.infer<typeof blockStop>): chatv1.ChatChunk[] {
    this.requireStarted();
    const block = this.blocks.get(event.index);
    this.answerTokens.endPart();
    // A thinking block is whole (text and signature) at its stop, to be handed back.
    if (block?.kind === 'thinking') return [this.thinkingChunk({ type: 'thinking', thinking: block.text, signature: block.signature })];
    if ((block?.kind !== 'answer' && block?.kind !== 'tool') || block.hasInput) return [];
    block.hasInput = true;
    this.answerTokens.add('{}');
    this.answerTokens.endPart();
    return [this.inputChunk(block, '{}')];
  }

  /**
   * A delta with every thinking block so far, this one last. Clients keep the latest value of a
   * field the OpenAI wire does not know (the OpenAI SDK's stream helper assigns it over the last),
   * so the list must be whole each time: one block per delta would leave them the last block only,
   * and Claude refuses a tool turn whose thinking comes back shortened.
   */
  private thinkingChunk(block: ThinkingBlock): chatv1.ChatChunk {
    this.thinking.push(block);
    this.answerTokens.thinkingSeen();
    return this.chunk({ extraJson: thinkingExtra('', this.thinking) });
  }

  private inputChunk(block: Extract<Block, { kind: 'answer' | 'tool' }>, json: string): chatv1.ChatChunk {
    if (block.kind === 'answer') return this.chunk({ content: json });
    return this.chunk({ toolCalls: [{ index: block.toolIndex, id: undefined, type: undefined, name: undefined, arguments: json }] });
  }

  private messageDelta(event: z.infer<typeof messageDelta>): chatv1.ChatChunk[] {
    this.requireStarted();
    if (event.delta.stop_reason !== undefined) this.stopReason = event.delta.stop_reason;
    if (event.delta.stop_sequence !== undefined) this.stopSequence = event.delta.stop_sequence;
    const u = event.usage;
    if (u) {
      // message_delta counts are cumulative; input counts appear here only when they changed.
      if (u.output_tokens !== undefined) {
        this.usage.output_tokens = u.output_tokens;
        this.outputCounted = true;
      }
      if (u.input_tokens) this.usage.input_tokens = u.input_tokens;
      if (u.cache_creation_input_tokens) this.usage.cache_creation_input_tokens = u.cache_creation_input_tokens;
      if (u.cache_read_input_tokens) this.usage.cache_read_input_tokens = u.cache_read_input_tokens;
      if (u.cache_creation) this.usage.cache_creation = u.cache_creation;
      if (u.output_tokens_details) this.usage.output_tokens_details = u.output_tokens_details;
    }
    return this.stopReason && !this.finished ? [this.finish()] : [];
  }

  private stop(): chatv1.ChatChunk[] {
    this.requireStarted();
    this.done = true;
    const out: chatv1.ChatChunk[] = [];
    if (!this.finished) out.push(this.finish());
    if (this.options.includeUsage) out.push(this.usageChunk(toCanonicalUsage(this.usage, this.thinking, () => this.answerTokens.count())));
    return out;
  }

  private usageChunk(usage: chatv1.Usage): chatv1.ChatChunk {
    return { ...this.envelope(), choices: [], usage };
  }

  /** The one chunk with finish_reason; a repeated message_delta only updates usage. */
  private finish(): chatv1.ChatChunk {
    this.finished = true;
    return {
      ...this.envelope(),
      choices: [
        {
          index: 0,
          delta: { toolCalls: [], extraJson: '' },
          finishReason: toFinishReason(this.stopReason, this.toolCalls > 0),
          logprobsJson: '',
          stopSequence: matchedStopSequence(this.stopReason, this.stopSequence),
        },
      ],
    };
  }

  private chunk(delta: Partial<chatv1.Delta>): chatv1.ChatChunk {
    return { ...this.envelope(), choices: [{ index: 0, delta: { toolCalls: [], extraJson: '', ...delta }, finishReason: undefined, logprobsJson: '' }] };
  }

  private envelope(): Omit<chatv1.ChatChunk, 'choices'> {
    return { id: this.id, created: this.created, model: this.model, usage: undefined, systemFingerprint: undefined, serviceTier: this.serviceTier };
  }

  private requireStarted(): void {
    if (!this.started) throw this.malformed(new Error('event before message_start'));
  }

  private malformed(cause: unknown): GatewayError {
    const provider = this.options.provider;
    return new GatewayError('upstream_error', `The provider "${provider}" sent a malformed stream event.`, { provider, cause });
  }
}

const KNOWN: ReadonlySet<string> = new Set(['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop', 'ping', 'error']);
