import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { countAnswerTokens, estimatedThinkingTokens, type ThinkingBlock, thinkingExtra } from '../claude-thinking';

const count = z
  .number()
  .nullish()
  .transform((v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.trunc(v) : 0));

/** Anthropic's usage object; the stream's message_delta sends the same fields, all cumulative. */
export const anthropicUsageSchema = z.looseObject({
  input_tokens: count,
  output_tokens: count,
  cache_creation_input_tokens: count,
  cache_read_input_tokens: count,
  /** How the cache writes split by how long they are kept (`cache_control.ttl`): an hour's cost more. */
  cache_creation: z.looseObject({ ephemeral_1h_input_tokens: count }).nullish(),
  output_tokens_details: z.looseObject({ thinking_tokens: count }).nullish(),
  /** The tier that served the request: `standard` or `priority` (`batch` for the Batches API). */
  service_tier: z.string().nullish(),
});
export type AnthropicUsage = z.infer<typeof anthropicUsageSchema>;

/**
 * The tier Anthropic says served the request, as OpenAI names it (`standard` is `default`):
 * ingress prices the usage record at the tier that served it, and a request that asked for
 * priority may have been served at the standard tier. Undefined for any other value.
 */
export function servedTier(usage: Pick<AnthropicUsage, 'service_tier'> | null | undefined): string | undefined {
  switch (usage?.service_tier) {
    case 'standard':
      return 'default';
    case 'priority':
      return 'priority';
    default:
      return undefined;
  }
}

const contentBlock = z.looseObject({
  type: z.string(),
  text: z.string().optional(),
  id: z.string().optional(),
  name: z.string().optional(),
  input: z.unknown().optional(),
  thinking: z.string().optional(),
  signature: z.string().optional(),
  data: z.string().optional(),
});

/** A thinking block as a client hands it back (`thinking_blocks`); undefined for any other block. */
export function thinkingBlockOf(block: z.infer<typeof contentBlock>): ThinkingBlock | undefined {
  if (block.type === 'thinking') return { type: 'thinking', thinking: block.thinking ?? '', signature: block.signature ?? '' };
  if (block.type === 'redacted_thinking') return { type: 'redacted_thinking', data: block.data ?? '' };
  return undefined;
}

export const anthropicMessageSchema = z.looseObject({
  id: z.string(),
  type: z.literal('message').optional(),
  role: z.literal('assistant').optional(),
  model: z.string().default(''),
  content: z.array(contentBlock),
  stop_reason: z.string().nullish(),
  stop_sequence: z.string().nullish(),
  usage: anthropicUsageSchema.nullish(),
});

/**
 * Usage as OpenAI counts it: cache reads and writes are part of the prompt and also reported apart.
 * Reasoning tokens are Anthropic's when it tells them apart, else estimated from the answer's
 * thinking blocks and its visible tokens (`answerTokens`, asked only when there is thinking); they
 * are inside the output tokens either way, which alone are billed.
 */
export function toCanonicalUsage(u: AnthropicUsage, thinking: readonly ThinkingBlock[] = [], answerTokens: () => number = () => 0): chatv1.Usage {
  const promptTokens = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
  return {
    promptTokens,
    completionTokens: u.output_tokens,
    totalTokens: promptTokens + u.output_tokens,
    cachedReadTokens: u.cache_read_input_tokens,
    cacheWriteTokens: u.cache_creation_input_tokens,
    reasoningTokens: u.output_tokens_details ? u.output_tokens_details.thinking_tokens : estimatedThinkingTokens(thinking, u.output_tokens, answerTokens),
    estimated: false,
    // Priced apart (cacheWrite1h); never more than the writes they are part of.
    ...(u.cache_creation?.ephemeral_1h_input_tokens ? { cacheWrite1hTokens: Math.min(u.cache_creation.ephemeral_1h_input_tokens, u.cache_creation_input_tokens) } : {}),
  };
}

/**
 * Anthropic's stop_reason as OpenAI's finish_reason. A turn that ended by calling only the JSON
 * answer tool finished normally, so it is `stop`.
 */
export function toFinishReason(stopReason: string | null | undefined, calledClientTools: boolean): string {
  switch (stopReason) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return calledClientTools ? 'tool_calls' : 'stop';
    case 'refusal':
      return 'content_filter';
    default:
      // end_turn, stop_sequence, pause_turn (a server tool paused; the answer so far is complete).
      return calledClientTools ? 'tool_calls' : 'stop';
  }
}

/** The stop sequence Anthropic says ended the answer (`stop_sequence` with `stop_reason: "stop_sequence"`). */
export function matchedStopSequence(stopReason: string | null | undefined, stopSequence: string | null | undefined): string | undefined {
  return stopReason === 'stop_sequence' && typeof stopSequence === 'string' ? stopSequence : undefined;
}

export interface TranslationContext {
  /** The tool a JSON answer was forced through, if any. */
  responseTool: string | undefined;
  provider: string;
  /** Seconds since the epoch; Anthropic sends no creation time. */
  now?: number;
}

function malformed(provider: string, what: string, cause?: unknown): GatewayError {
  return new GatewayError('upstream_error', `The provider "${provider}" returned a malformed ${what}.`, { provider, cause });
}

const inputText = (input: unknown): string => JSON.stringify(input ?? {});

/** A Messages API response as the canonical completion. */
export function parseAnthropicMessage(json: unknown, ctx: TranslationContext): chatv1.ChatCompletion {
  const parsed = anthropicMessageSchema.safeParse(json);
  if (!parsed.success) throw malformed(ctx.provider, 'message', parsed.error);
  const m = parsed.data;
  let text = '';
  let reasoning = '';
  const thinking: ThinkingBlock[] = [];
  const toolCalls: chatv1.ToolCall[] = [];
  // What the answer shows (text, each tool's name and input), counted only when it has thinking.
  const visible: string[] = [];
  for (const block of m.content) {
    const thought = thinkingBlockOf(block);
    if (block.type === 'text') {
      text += block.text ?? '';
      visible.push(block.text ?? '');
    } else if (block.type === 'tool_use') {
      visible.push(block.name ?? '', inputText(block.input));
      if (block.name === ctx.responseTool) text += inputText(block.input);
      else toolCalls.push({ id: block.id ?? '', type: 'function', function: { name: block.name ?? '', arguments: inputText(block.input) } });
    } else if (thought) {
      thinking.push(thought);
      if (thought.type === 'thinking') reasoning += thought.thinking;
    }
    // Server tool blocks have no OpenAI counterpart and are left out.
  }
  return {
    id: m.id,
    created: ctx.now ?? Math.floor(Date.now() / 1000),
    model: m.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          // OpenAI sends null content beside tool calls when the model said nothing.
          content: text === '' && toolCalls.length > 0 ? undefined : text,
          toolCalls,
          refusal: undefined,
          extraJson: thinkingExtra(reasoning, thinking),
        },
        finishReason: toFinishReason(m.stop_reason, toolCalls.length > 0),
        logprobsJson: '',
        stopSequence: matchedStopSequence(m.stop_reason, m.stop_sequence),
      },
    ],
    usage: m.usage ? toCanonicalUsage(m.usage, thinking, () => countAnswerTokens(visible)) : undefined,
    systemFingerprint: undefined,
    serviceTier: servedTier(m.usage),
  };
}
