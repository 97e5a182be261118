import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';

const count = z.number().int().nonnegative().optional();

export const usageMetadataSchema = z.looseObject({
  promptTokenCount: count,
  candidatesTokenCount: count,
  totalTokenCount: count,
  cachedContentTokenCount: count,
  thoughtsTokenCount: count,
  toolUsePromptTokenCount: count,
});
export type UsageMetadata = z.infer<typeof usageMetadataSchema>;

const partSchema = z.looseObject({
  text: z.string().optional(),
  thought: z.boolean().optional(),
  functionCall: z.looseObject({ id: z.string().optional(), name: z.string(), args: z.record(z.string(), z.unknown()).nullish() }).optional(),
});
export type ResponsePart = z.infer<typeof partSchema>;

const logprobCandidate = z.looseObject({ token: z.string().optional(), logProbability: z.number().optional() });
const logprobsResultSchema = z.looseObject({
  topCandidates: z.array(z.looseObject({ candidates: z.array(logprobCandidate).optional() })).optional(),
  chosenCandidates: z.array(logprobCandidate).optional(),
});
export type LogprobsResult = z.infer<typeof logprobsResultSchema>;

const candidateSchema = z.looseObject({
  index: z.number().int().nonnegative().optional(),
  content: z.looseObject({ role: z.string().optional(), parts: z.array(partSchema).optional() }).nullish(),
  finishReason: z.string().optional(),
  finishMessage: z.string().optional(),
  logprobsResult: logprobsResultSchema.optional(),
});
export type ResponseCandidate = z.infer<typeof candidateSchema>;

/** One GenerateContentResponse: the whole answer, or one event of a stream. */
export const generateContentResponseSchema = z.looseObject({
  candidates: z.array(candidateSchema).optional(),
  promptFeedback: z.looseObject({ blockReason: z.string().optional(), blockReasonMessage: z.string().optional() }).optional(),
  usageMetadata: usageMetadataSchema.optional(),
  modelVersion: z.string().optional(),
  responseId: z.string().optional(),
});
export type GenerateContentResponse = z.infer<typeof generateContentResponseSchema>;

/** The finish reasons of an answer a filter stopped (`MODEL_ARMOR`: Vertex's Model Armor blocked it). */
const CONTENT_FILTER = new Set(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY', 'IMAGE_PROHIBITED_CONTENT', 'IMAGE_RECITATION', 'MODEL_ARMOR']);

/** Gemini's finishReason as OpenAI's finish_reason; a turn that called functions ends in tool_calls. */
export function finishReason(reason: string, hasToolCalls: boolean): string {
  if (reason === 'MAX_TOKENS') return 'length';
  if (CONTENT_FILTER.has(reason)) return 'content_filter';
  return hasToolCalls ? 'tool_calls' : 'stop';
}

/** Longest part of Gemini's finishMessage quoted in an error. */
const MAX_FINISH_MESSAGE = 500;

/**
 * A candidate that ended with neither text nor a function call for a reason other than STOP,
 * MAX_TOKENS or a content filter (MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL,
 * TOO_MANY_TOOL_CALLS, LANGUAGE, OTHER, FINISH_REASON_UNSPECIFIED, reasons added later…) is a
 * failed generation, not an empty answer: a 502 `upstream_error` rather than an empty 200. Not
 * retryable: these follow from the request (its tools, its language), so another deployment of
 * the model would most likely fail alike, and counting them against the deployment's breaker
 * would let one tenant's requests open it for everyone. Undefined for a candidate that is an answer.
 */
export function failedCandidateError(reason: string, finishMessage: string | undefined, produced: boolean, provider: string): GatewayError | undefined {
  if (produced || reason === 'STOP' || reason === 'MAX_TOKENS' || CONTENT_FILTER.has(reason)) return undefined;
  const detail = finishMessage?.trim() ? `: ${finishMessage.trim().slice(0, MAX_FINISH_MESSAGE)}` : '.';
  return new GatewayError('upstream_error', `The provider "${provider}" ended the answer without content (finish reason ${reason})${detail}`, { provider, retryable: false });
}

/**
 * Gemini's usage as canonical usage: OpenAI counts thinking inside completion tokens (and reports
 * it again as reasoning tokens) where Gemini counts candidates and thoughts apart; tokens of
 * tool-use prompts are prompt tokens.
 */
export function toCanonicalUsage(u: UsageMetadata): chatv1.Usage {
  const thoughts = u.thoughtsTokenCount ?? 0;
  const promptTokens = (u.promptTokenCount ?? 0) + (u.toolUsePromptTokenCount ?? 0);
  const completionTokens = (u.candidatesTokenCount ?? 0) + thoughts;
  return {
    promptTokens,
    completionTokens,
    totalTokens: u.totalTokenCount || promptTokens + completionTokens,
    cachedReadTokens: u.cachedContentTokenCount ?? 0,
    cacheWriteTokens: 0,
    reasoningTokens: thoughts,
    estimated: false,
  };
}

/**
 * A stable OpenAI-style id for a function call Gemini gave no id: the same response, candidate
 * and position always give the same id, so a replayed or re-read answer keeps its ids.
 */
export function toolCallId(responseKey: string, candidate: number, position: number, name: string): string {
  const digest = createHash('sha256').update(`${responseKey}\u0000${candidate}\u0000${position}\u0000${name}`).digest('base64url');
  return `call_${digest.replace(/[-_]/g, '').slice(0, 24)}`;
}

/** Gemini's log probabilities as OpenAI's `logprobs` object text; empty when there are none. */
export function logprobsJson(result: LogprobsResult | undefined): string {
  const chosen = result?.chosenCandidates;
  if (!chosen || chosen.length === 0) return '';
  const entry = (c: z.infer<typeof logprobCandidate>) => {
    const token = c.token ?? '';
    return { token, logprob: c.logProbability ?? 0, bytes: [...Buffer.from(token, 'utf8')] };
  };
  const content = chosen.map((c, i) => ({ ...entry(c), top_logprobs: (result?.topCandidates?.[i]?.candidates ?? []).map(entry) }));
  return JSON.stringify({ content, refusal: null });
}

export function malformed(provider: string, what: string, cause?: unknown): GatewayError {
  return new GatewayError('upstream_error', `The provider "${provider}" returned a malformed ${what}.`, { provider, cause });
}

export function parseGenerateContentResponse(json: unknown, provider: string, what = 'response'): GenerateContentResponse {
  const parsed = generateContentResponseSchema.safeParse(json);
  if (!parsed.success) throw malformed(provider, what, parsed.error);
  return parsed.data;
}

/** A prompt Gemini refused to answer at all. */
export function blockedPromptError(response: GenerateContentResponse, provider: string): GatewayError | undefined {
  const reason = response.promptFeedback?.blockReason;
  if (!reason || (response.candidates?.length ?? 0) > 0) return undefined;
  const detail = response.promptFeedback?.blockReasonMessage;
  return new GatewayError('content_filtered', `The provider "${provider}" blocked the prompt (${reason})${detail ? `: ${detail}` : '.'}`, { provider, code: 'content_filter' });
}

export interface CompletionContext {
  /** Used for the completion id and tool call ids when Gemini sends no responseId. */
  requestId: string;
  created: number;
  upstreamModel: string;
  provider: string;
  /** Stands in for usage when Gemini reports none. */
  estimateUsage: (completionText: string) => chatv1.Usage;
  /** The function a JSON answer was forced through, if any: its call is the answer text. */
  answerTool?: string | undefined;
}

export interface CandidateParts {
  text: string | undefined;
  reasoning: string | undefined;
  toolCalls: chatv1.ToolCall[];
}

/**
 * The visible text, thought summary and function calls of one candidate's parts. A call of
 * `answerTool` is a forced JSON answer: its arguments are text, not a tool call.
 */
export function splitParts(parts: readonly ResponsePart[], idOf: (position: number, name: string) => string, firstPosition = 0, answerTool?: string): CandidateParts {
  let text: string | undefined;
  let reasoning: string | undefined;
  const toolCalls: chatv1.ToolCall[] = [];
  for (const part of parts) {
    if (part.functionCall && answerTool !== undefined && part.functionCall.name === answerTool) {
      text = (text ?? '') + JSON.stringify(part.functionCall.args ?? {});
    } else if (part.functionCall) {
      const call = part.functionCall;
      const id = call.id || idOf(firstPosition + toolCalls.length, call.name);
      toolCalls.push({ id, type: 'function', function: { name: call.name, arguments: JSON.stringify(call.args ?? {}) } });
    } else if (part.text !== undefined) {
      if (part.thought === true) reasoning = (reasoning ?? '') + part.text;
      else text = (text ?? '') + part.text;
    }
  }
  return { text, reasoning, toolCalls };
}

/** A complete generateContent response as the canonical completion. */
export function fromGeminiResponse(json: unknown, ctx: CompletionContext): chatv1.ChatCompletion {
  const response = parseGenerateContentResponse(json, ctx.provider);
  const blocked = blockedPromptError(response, ctx.provider);
  if (blocked) throw blocked;
  const candidates = response.candidates ?? [];
  if (candidates.length === 0) throw malformed(ctx.provider, 'response (no candidates)');
  const key = response.responseId ?? ctx.requestId;
  let allText = '';
  const split = candidates.map((c, position) => splitParts(c.content?.parts ?? [], (at, name) => toolCallId(key, c.index ?? position, at, name), 0, ctx.answerTool));
  // A candidate that failed empty fails the answer only when no candidate answered (n > 1 keeps the others).
  const anyProduced = split.some((parts) => !!parts.text || parts.toolCalls.length > 0);
  const choices = candidates.map((c, position): chatv1.Choice => {
    const index = c.index ?? position;
    const parts = split[position] ?? splitParts([], () => '', 0, ctx.answerTool);
    const failed = failedCandidateError(c.finishReason ?? 'STOP', c.finishMessage, anyProduced, ctx.provider);
    if (failed) throw failed;
    allText += (parts.text ?? '') + parts.toolCalls.map((t) => t.function?.arguments ?? '').join('');
    const finish = finishReason(c.finishReason ?? 'STOP', parts.toolCalls.length > 0);
    const content = parts.text ?? (parts.toolCalls.length > 0 || finish === 'content_filter' ? undefined : '');
    return {
      index,
      message: { role: 'assistant', content, toolCalls: parts.toolCalls, refusal: undefined, extraJson: parts.reasoning ? JSON.stringify({ reasoning_content: parts.reasoning }) : '' },
      finishReason: finish,
      logprobsJson: logprobsJson(c.logprobsResult),
    };
  });
  choices.sort((a, b) => a.index - b.index);
  return {
    id: `chatcmpl-${key}`,
    created: ctx.created,
    model: response.modelVersion ?? ctx.upstreamModel,
    choices,
    usage: response.usageMetadata ? toCanonicalUsage(response.usageMetadata) : ctx.estimateUsage(allText),
    systemFingerprint: undefined,
    serviceTier: undefined,
  };
}
