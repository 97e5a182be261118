import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { countAnswerTokens, estimatedThinkingTokens, type ThinkingBlock, thinkingExtra } from '../claude-thinking';

const tokenCount = z.number().int().nonnegative().catch(0);

/** Converse `usage` (also the stream's metadata usage); cache fields only appear with prompt caching. */
export const bedrockUsageSchema = z.looseObject({
  inputTokens: tokenCount.optional(),
  outputTokens: tokenCount.optional(),
  totalTokens: tokenCount.optional(),
  cacheReadInputTokens: tokenCount.optional(),
  cacheWriteInputTokens: tokenCount.optional(),
});
export type BedrockUsage = z.infer<typeof bedrockUsageSchema>;

/** A reasoning block: readable text (with Claude's signature), or Claude's redacted thinking (base64 bytes). */
const reasoningBlock = z.looseObject({
  reasoningText: z.looseObject({ text: z.string().optional(), signature: z.string().optional() }).optional(),
  redactedContent: z.string().optional(),
});
const outputBlock = z.looseObject({
  text: z.string().optional(),
  toolUse: z.looseObject({ toolUseId: z.string(), name: z.string(), input: z.unknown() }).optional(),
  reasoningContent: reasoningBlock.optional(),
});

const converseResponseSchema = z.looseObject({
  output: z.looseObject({ message: z.looseObject({ role: z.string().optional(), content: z.array(outputBlock) }) }),
  stopReason: z.string(),
  usage: bedrockUsageSchema.optional(),
  // The model's own response fields the request asked for by path (any JSON).
  additionalModelResponseFields: z.unknown().optional(),
});

/** Converse stop reasons as OpenAI finish reasons. */
export function finishReason(stopReason: string): string {
  switch (stopReason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'guardrail_intervened':
    case 'content_filtered':
      return 'content_filter';
    default:
      return 'stop';
  }
}

/**
 * The stop sequence that ended an answer (stop reason `stop_sequence`). Converse does not say which;
 * Claude's own `stop_sequence` field does, returned in `additionalModelResponseFields` when the
 * request asked for it. Without it, a request that sent one stop sequence can only have stopped
 * at that one; with several, which is unknown (undefined).
 */
export function matchedStopSequence(stopReason: string, responseFields: unknown, sent: readonly string[]): string | undefined {
  if (stopReason !== 'stop_sequence') return undefined;
  const named = typeof responseFields === 'object' && responseFields !== null ? (responseFields as Record<string, unknown>)['stop_sequence'] : undefined;
  if (typeof named === 'string') return named;
  return sent.length === 1 ? sent[0] : undefined;
}

/** Stop reasons that say the model's output could not be read (AWS's MessageStopEvent lists both). */
const MALFORMED_OUTPUT: ReadonlySet<string> = new Set(['malformed_model_output', 'malformed_tool_use']);

/**
 * An answer that stopped because its output was malformed, with neither text nor a tool call, is
 * a failed generation rather than an empty answer: a 502 `upstream_error` rather than an empty 200,
 * not retryable (it follows from the request, and must not open the deployment's breaker).
 * Undefined for anything else.
 */
export function malformedOutputError(stopReason: string, produced: boolean, provider: string | undefined): GatewayError | undefined {
  if (produced || !MALFORMED_OUTPUT.has(stopReason)) return undefined;
  const who = provider === undefined ? 'The provider' : `The provider "${provider}"`;
  return new GatewayError('upstream_error', `${who} ended the answer without content (stop reason ${stopReason}).`, { provider, retryable: false });
}

/**
 * Bedrock's `inputTokens` leaves out tokens read from or written to the prompt cache; OpenAI's
 * `prompt_tokens` includes them, so they are added back and reported in the details as well.
 * Converse does not tell reasoning tokens apart from `outputTokens`: for Claude they are estimated
 * from its thinking blocks (`thinking`) and the answer's visible tokens (`answerTokens`, asked only
 * when there is thinking), as on Anthropic's API; other models' reasoning counts 0.
 */
export function toCanonicalUsage(u: BedrockUsage, thinking: readonly ThinkingBlock[] = [], answerTokens: () => number = () => 0): chatv1.Usage {
  const cachedReadTokens = u.cacheReadInputTokens ?? 0;
  const cacheWriteTokens = u.cacheWriteInputTokens ?? 0;
  const promptTokens = (u.inputTokens ?? 0) + cachedReadTokens + cacheWriteTokens;
  const completionTokens = u.outputTokens ?? 0;
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedReadTokens, cacheWriteTokens, reasoningTokens: estimatedThinkingTokens(thinking, completionTokens, answerTokens), estimated: false };
}

export interface ResponseContext {
  id: string;
  created: number;
  model: string;
  /** The forced tool that carries a json_schema answer (its input becomes the text). */
  jsonTool: string | undefined;
  /** Named in errors. */
  provider?: string | undefined;
  /** The stop sequences the request sent (`inferenceConfig.stopSequences`). */
  stopSequences?: readonly string[] | undefined;
}

/**
 * A reasoning block's text (added to `reasoning`) and, for Claude, the block to hand back: signed
 * text, or redacted content. Other models' reasoning has no signature and is text only.
 */
function reasoningOf(block: z.infer<typeof reasoningBlock>, reasoning: string[]): ThinkingBlock[] {
  const text = block.reasoningText;
  if (text) {
    if (text.text !== undefined) reasoning.push(text.text);
    return text.signature ? [{ type: 'thinking', thinking: text.text ?? '', signature: text.signature }] : [];
  }
  return block.redactedContent ? [{ type: 'redacted_thinking', data: block.redactedContent }] : [];
}

/** A Converse response as the canonical completion. */
export function fromConverseResponse(json: unknown, ctx: ResponseContext): chatv1.ChatCompletion {
  const parsed = converseResponseSchema.safeParse(json);
  if (!parsed.success) throw new GatewayError('upstream_error', 'The provider returned a malformed Converse response.', { cause: parsed.error });
  const r = parsed.data;
  const texts: string[] = [];
  const reasoning: string[] = [];
  const thinking: ThinkingBlock[] = [];
  const toolCalls: chatv1.ToolCall[] = [];
  // What the answer shows (text, each tool's name and input), counted only when it has thinking.
  const visible: string[] = [];
  let answeredByJsonTool = false;
  for (const block of r.output.message.content) {
    if (block.text !== undefined) {
      texts.push(block.text);
      visible.push(block.text);
    } else if (block.toolUse) {
      const args = JSON.stringify(block.toolUse.input ?? {});
      visible.push(block.toolUse.name, args);
      if (ctx.jsonTool !== undefined && block.toolUse.name === ctx.jsonTool) {
        texts.push(args);
        answeredByJsonTool = true;
      } else toolCalls.push({ id: block.toolUse.toolUseId, type: 'function', function: { name: block.toolUse.name, arguments: args } });
    } else if (block.reasoningContent) thinking.push(...reasoningOf(block.reasoningContent, reasoning));
  }
  const content = texts.length > 0 ? texts.join('') : toolCalls.length > 0 ? undefined : '';
  const failed = malformedOutputError(r.stopReason, !!content || toolCalls.length > 0, ctx.provider);
  if (failed) throw failed;
  let finish = finishReason(r.stopReason);
  if (finish === 'tool_calls' && toolCalls.length === 0 && answeredByJsonTool) finish = 'stop';
  return {
    id: ctx.id,
    created: ctx.created,
    model: ctx.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, toolCalls, refusal: undefined, extraJson: thinkingExtra(reasoning.join(''), thinking) },
        finishReason: finish,
        logprobsJson: '',
        stopSequence: matchedStopSequence(r.stopReason, r.additionalModelResponseFields, ctx.stopSequences ?? []),
      },
    ],
    usage: r.usage ? toCanonicalUsage(r.usage, thinking, () => countAnswerTokens(visible)) : undefined,
    systemFingerprint: undefined,
    serviceTier: undefined,
  };
}
