import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { StreamedAnswerTokens, thinkingExtra, type ThinkingBlock } from '../claude-thinking';
import { bedrockUsageSchema, finishReason, malformedOutputError, matchedStopSequence, toCanonicalUsage } from './bedrock-response';
import { statusOfErrorType, toGatewayError } from './bedrock-errors';

/** Prelude (total length, headers length, prelude CRC) plus the trailing message CRC. */
const FRAME_OVERHEAD = 16;
/** Bedrock frames are small; a larger length prefix means the stream is corrupt. */
const MAX_FRAME_BYTES = 16 * 1024 * 1024;

function malformed(provider: string, what: string, cause?: unknown): GatewayError {
  return new GatewayError('upstream_error', `The provider "${provider}" sent a malformed event stream (${what}).`, { provider, cause });
}

/**
 * Cuts a byte stream into whole event-stream messages (each starts with its big-endian total
 * length); network chunks may split a message anywhere, including inside a UTF-8 character.
 */
export async function* eventStreamMessages(body: AsyncIterable<Uint8Array>, provider: string): AsyncGenerator<Uint8Array> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const piece of body) {
    pending = pending.length === 0 ? Buffer.from(piece) : Buffer.concat([pending, piece]);
    while (pending.length >= 4) {
      const total = pending.readUInt32BE(0);
      if (total < FRAME_OVERHEAD || total > MAX_FRAME_BYTES) throw malformed(provider, `bad frame length ${total}`);
      if (pending.length < total) break;
      yield new Uint8Array(pending.subarray(0, total));
      pending = pending.subarray(total);
    }
  }
  if (pending.length > 0) throw malformed(provider, 'truncated frame');
}

/** One decoded `:message-type: event` message: its `:event-type` and JSON payload. */
export interface ConverseStreamEvent {
  type: string;
  payload: unknown;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);

function stringHeader(headers: Record<string, { type: string; value: unknown }>, name: string): string | undefined {
  const header = headers[name];
  return header?.type === 'string' && typeof header.value === 'string' ? header.value : undefined;
}

/**
 * Decodes one message with the AWS event-stream codec (CRCs checked). Exception and error
 * messages become the canonical error, thrown, so the caller's stream ends with it.
 */
export function decodeStreamMessage(bytes: Uint8Array, provider: string): ConverseStreamEvent {
  let message;
  try {
    message = codec.decode(bytes);
  } catch (error) {
    throw malformed(provider, 'bad frame', error);
  }
  const headers = message.headers as Record<string, { type: string; value: unknown }>;
  const messageType = stringHeader(headers, ':message-type');
  const bodyText = toUtf8(message.body);
  if (messageType === 'exception') {
    const errorType = stringHeader(headers, ':exception-type');
    const parsed = parseJson(bodyText);
    const text = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)['message'] : undefined;
    throw toGatewayError({ status: statusOfErrorType(errorType) ?? 500, errorType, message: typeof text === 'string' ? text : undefined }, provider);
  }
  if (messageType === 'error') {
    throw toGatewayError({ status: 500, errorType: stringHeader(headers, ':error-code'), message: stringHeader(headers, ':error-message') }, provider);
  }
  const type = stringHeader(headers, ':event-type');
  if (messageType !== 'event' || type === undefined) throw malformed(provider, `unexpected message type "${messageType ?? ''}"`);
  const payload = parseJson(bodyText);
  if (payload === undefined) throw malformed(provider, `unreadable ${type} payload`);
  return { type, payload };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const blockIndex = z.number().int().nonnegative();
const contentBlockStart = z.looseObject({
  contentBlockIndex: blockIndex,
  start: z.looseObject({ toolUse: z.looseObject({ toolUseId: z.string(), name: z.string() }).optional() }).optional(),
});
const contentBlockDelta = z.looseObject({
  contentBlockIndex: blockIndex,
  delta: z.looseObject({
    text: z.string().optional(),
    toolUse: z.looseObject({ input: z.string() }).optional(),
    reasoningContent: z.looseObject({ text: z.string().optional(), signature: z.string().optional(), redactedContent: z.string().optional() }).optional(),
  }),
});
const contentBlockStop = z.looseObject({ contentBlockIndex: blockIndex });
const messageStop = z.looseObject({ stopReason: z.string(), additionalModelResponseFields: z.unknown().optional() });
const metadata = z.looseObject({ usage: bedrockUsageSchema.optional() });

export interface StreamContext {
  id: string;
  created: number;
  model: string;
  includeUsage: boolean;
  jsonTool: string | undefined;
  provider: string;
  /** The stop sequences the request sent (`inferenceConfig.stopSequences`). */
  stopSequences?: readonly string[] | undefined;
}

interface ToolBlock {
  /** Position among the answer's tool calls (OpenAI's `tool_calls[].index`). */
  index: number;
  /** The json_schema answer tool: its input streams as content. */
  isAnswer: boolean;
  /** Set once a non-empty input fragment went out, so a call without arguments still ends with `{}`. */
  hasInput: boolean;
}

/** A reasoning block as its deltas arrive: Claude's signature or redacted content completes it. */
interface ReasoningBlock {
  text: string;
  signature: string;
  redacted: string;
}

/**
 * ConverseStream events as OpenAI-shaped chunks: a role chunk, content and tool-call deltas
 * (id and name first, then argument fragments, indexed by position), `reasoning_content` deltas
 * and, for Claude, at each signed or redacted reasoning block's stop a `thinking_blocks` delta with
 * all the blocks so far, a finish chunk on messageStop, and a usage chunk with no choices when the
 * request asked for usage.
 */
export class ConverseStreamTranslator {
  private readonly tools = new Map<number, ToolBlock>();
  private readonly reasoning = new Map<number, ReasoningBlock>();
  /** Claude's whole reasoning blocks so far, in order: each `thinking_blocks` delta carries them all. */
  private readonly thinking: ThinkingBlock[] = [];
  /** The answer's visible tokens, for Claude's reasoning estimate in the usage chunk. */
  private readonly answerTokens = new StreamedAnswerTokens();
  private toolCount = 0;
  private answeredByJsonTool = false;
  private started = false;
  private stopped = false;
  private usageSeen = false;
  /** Whether text or a tool call went out: a malformed-output stop without either is a failure. */
  private produced = false;

  constructor(private readonly ctx: StreamContext) {}

  get finished(): boolean {
    return this.stopped;
  }

  accept(event: ConverseStreamEvent): chatv1.ChatChunk[] {
    switch (event.type) {
      case 'messageStart':
        if (this.started) return [];
        this.started = true;
        return [this.chunk({ role: 'assistant', content: '' })];
      case 'contentBlockStart':
        return this.onBlockStart(this.parse(contentBlockStart, event));
      case 'contentBlockDelta':
        return this.onBlockDelta(this.parse(contentBlockDelta, event));
      case 'contentBlockStop':
        return this.onBlockStop(this.parse(contentBlockStop, event));
      case 'messageStop': {
        const stop = this.parse(messageStop, event);
        // Only the role chunk has gone out when nothing was produced, so the router can still fail over.
        const failed = malformedOutputError(stop.stopReason, this.produced, this.ctx.provider);
        if (failed) throw failed;
        this.stopped = true;
        let finish = finishReason(stop.stopReason);
        if (finish === 'tool_calls' && this.answeredByJsonTool && this.toolCount === 0) finish = 'stop';
        const stopSequence = matchedStopSequence(stop.stopReason, stop.additionalModelResponseFields, this.ctx.stopSequences ?? []);
        return [...this.ensureStarted(), this.chunk({}, finish, stopSequence)];
      }
      case 'metadata': {
        const meta = this.parse(metadata, event);
        if (!meta.usage || this.usageSeen) return [];
        this.usageSeen = true;
        if (!this.ctx.includeUsage) return [];
        return [{ ...this.envelope(), choices: [], usage: toCanonicalUsage(meta.usage, this.thinking, () => this.answerTokens.count()) }];
      }
      default:
        // Event types added later carry nothing a chunk needs.
        return [];
    }
  }

  private onBlockStart(e: z.infer<typeof contentBlockStart>): chatv1.ChatChunk[] {
    const toolUse = e.start?.toolUse;
    if (!toolUse) return [];
    this.produced = true;
    this.answerTokens.endPart();
    this.answerTokens.add(toolUse.name);
    this.answerTokens.endPart();
    const isAnswer = this.ctx.jsonTool !== undefined && toolUse.name === this.ctx.jsonTool;
    if (isAnswer) {
      this.answeredByJsonTool = true;
      this.tools.set(e.contentBlockIndex, { index: -1, isAnswer, hasInput: false });
      return this.ensureStarted();
    }
    const index = this.toolCount++;
    this.tools.set(e.contentBlockIndex, { index, isAnswer, hasInput: false });
    return [...this.ensureStarted(), this.chunk({ toolCalls: [{ index, id: toolUse.toolUseId, type: 'function', name: toolUse.name, arguments: '' }] })];
  }

  private onBlockDelta(e: z.infer<typeof contentBlockDelta>): chatv1.ChatChunk[] {
    const d = e.delta;
    if (d.text !== undefined) {
      if (d.text === '') return [];
      this.produced = true;
      this.answerTokens.add(d.text);
      return [...this.ensureStarted(), this.chunk({ content: d.text })];
    }
    if (d.toolUse) {
      const tool = this.tools.get(e.contentBlockIndex);
      if (!tool) throw malformed(this.ctx.provider, 'tool input for a block that never started');
      if (d.toolUse.input === '') return [];
      tool.hasInput = true;
      this.answerTokens.add(d.toolUse.input);
      return [this.inputChunk(tool, d.toolUse.input)];
    }
    if (d.reasoningContent) {
      const r = d.reasoningContent;
      const block = this.reasoning.get(e.contentBlockIndex) ?? { text: '', signature: '', redacted: '' };
      this.reasoning.set(e.contentBlockIndex, block);
      if (r.signature) block.signature += r.signature;
      if (r.redactedContent) block.redacted += r.redactedContent;
      if (!r.text) return [];
      block.text += r.text;
      return [...this.ensureStarted(), this.chunk({ extraJson: thinkingExtra(r.text, []) })];
    }
    return [];
  }

  /**
   * A reasoning block is whole (text and signature, or redacted content) at its stop: Claude's joins
   * `thinking_blocks`, to be handed back on a tool turn. Other models' reasoning has no signature
   * and went out as text only.
   */
  private reasoningStop(block: ReasoningBlock): chatv1.ChatChunk[] {
    if (block.redacted !== '') return [...this.ensureStarted(), this.thinkingChunk({ type: 'redacted_thinking', data: block.redacted })];
    if (block.signature !== '') return [...this.ensureStarted(), this.thinkingChunk({ type: 'thinking', thinking: block.text, signature: block.signature })];
    return [];
  }

  /**
   * A delta with every block so far, this one last. Clients keep the latest value of a field the
   * OpenAI wire does not know (the OpenAI SDK's stream helper assigns it over the last), so the list
   * must be whole each time: one block per delta would leave them the last block only, and Claude
   * refuses a tool turn whose thinking comes back shortened.
   */
  private thinkingChunk(block: ThinkingBlock): chatv1.ChatChunk {
    this.thinking.push(block);
    this.answerTokens.thinkingSeen();
    return this.chunk({ extraJson: thinkingExtra('', this.thinking) });
  }

  /** A tool called without arguments streams no input; the non-streamed answer has `{}` for it, so the stream does too. */
  private onBlockStop(e: z.infer<typeof contentBlockStop>): chatv1.ChatChunk[] {
    this.answerTokens.endPart();
    const thought = this.reasoning.get(e.contentBlockIndex);
    if (thought) {
      this.reasoning.delete(e.contentBlockIndex);
      return this.reasoningStop(thought);
    }
    const tool = this.tools.get(e.contentBlockIndex);
    if (!tool || tool.hasInput) return [];
    tool.hasInput = true;
    this.answerTokens.add('{}');
    this.answerTokens.endPart();
    return [this.inputChunk(tool, '{}')];
  }

  private inputChunk(tool: ToolBlock, json: string): chatv1.ChatChunk {
    if (tool.isAnswer) return this.chunk({ content: json });
    return this.chunk({ toolCalls: [{ index: tool.index, id: undefined, type: undefined, name: undefined, arguments: json }] });
  }

  /** A role chunk when the provider skipped messageStart, so clients always see one first. */
  private ensureStarted(): chatv1.ChatChunk[] {
    if (this.started) return [];
    this.started = true;
    return [this.chunk({ role: 'assistant', content: '' })];
  }

  private parse<T>(schema: z.ZodType<T>, event: ConverseStreamEvent): T {
    const parsed = schema.safeParse(event.payload);
    if (!parsed.success) throw malformed(this.ctx.provider, `unreadable ${event.type} event`, parsed.error);
    return parsed.data;
  }

  private envelope(): Omit<chatv1.ChatChunk, 'choices'> {
    return { id: this.ctx.id, created: this.ctx.created, model: this.ctx.model, usage: undefined, systemFingerprint: undefined, serviceTier: undefined };
  }

  private chunk(delta: Partial<chatv1.Delta>, finish?: string, stopSequence?: string): chatv1.ChatChunk {
    return {
      ...this.envelope(),
      choices: [{ index: 0, delta: { role: undefined, content: undefined, toolCalls: [], refusal: undefined, extraJson: '', ...delta }, finishReason: finish, logprobsJson: '', stopSequence }],
    };
  }
}
