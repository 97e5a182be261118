import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import type { Behaviour } from '../core/behaviour-config';
import { finalizeContent, generateReplyPieces, TOOL_RESULT_OPENING } from '../core/reply-generator';
import type { SeededRandom } from '../core/seeded-random';
import type { PacedFrame } from '../core/stream-pacer';
import { countPromptTokens, splitIntoTokenPieces } from '../core/token-counter';
import { synthesizeToolArguments } from '../core/tool-argument-synthesizer';
import type { ConverseContentBlock, ConverseMessage, ConverseRequest, ConverseTool } from './bedrock-request-schemas';
import { type PlannedReasoning, planReasoning, reasoningContentOf } from './bedrock-thinking';

export type BedrockStopReason = 'end_turn' | 'stop_sequence' | 'max_tokens' | 'tool_use';

export interface ConversePlan {
  /** Text pieces, or fragments of the tool input JSON. */
  pieces: readonly string[];
  text: string | undefined;
  toolUse: { toolUseId: string; name: string; input: Record<string, unknown> } | undefined;
  stopReason: BedrockStopReason;
  inputTokens: number;
  /** Reasoning and answer tokens together, as Bedrock bills them. */
  outputTokens: number;
  /** Claude's reasoning block, first in the answer, when the request turned extended thinking on. */
  reasoning?: PlannedReasoning | undefined;
  /**
   * The model's own response fields the request asked for (`additionalModelResponseFieldPaths`),
   * as Converse returns them in `additionalModelResponseFields`; undefined when none was found.
   */
  responseFields?: Record<string, unknown> | undefined;
}

export type ConversePlanResult = { ok: true; plan: ConversePlan } | { ok: false; message: string };

/** Bedrock's own text for a prompt over the model's context window. */
export const INPUT_TOO_LONG = 'Input is too long for requested model.';

function blockTexts(block: ConverseContentBlock): string[] {
  const texts: string[] = [];
  if (block.text !== undefined) texts.push(block.text);
  if (block.toolUse) texts.push(block.toolUse.name, JSON.stringify(block.toolUse.input));
  if (block.toolResult) for (const c of block.toolResult.content) if (c.text !== undefined) texts.push(c.text);
  return texts;
}

function lastText(messages: readonly ConverseMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role !== 'user') continue;
    const texts = m.content.flatMap((b) => (b.text !== undefined ? [b.text] : []));
    if (texts.length > 0) return texts.join('\n');
  }
  return '';
}

/**
 * The complete answer to a Converse request, before anything is written. It follows the
 * OpenAI planner: forced tools answer with synthesized arguments, a tool result is answered in
 * text, a system prompt asking for a JSON object gets one, stop sequences and maxTokens cut. A
 * Claude model (`anthropic.` in `modelId`) asked to think reasons first, within maxTokens.
 */
export function planConverse(request: ConverseRequest, behaviour: Behaviour, seed: number, ids: SeededRandom, modelId = ''): ConversePlanResult {
  const system = (request.system ?? []).flatMap((s) => (s.text !== undefined ? [s.text] : []));
  const promptTokens = countPromptTokens([...system.map((t) => [t]), ...request.messages.map((m) => m.content.flatMap(blockTexts))]);
  if (promptTokens > behaviour.contextWindow) return { ok: false, message: INPUT_TOO_LONG };

  const last = request.messages[request.messages.length - 1];
  const answeringToolResult = last?.role === 'user' && last.content.some((b) => b.toolResult !== undefined);
  const forced = forcedTool(request);
  if (!forced.ok) return forced;
  const maxTokens = request.inferenceConfig?.maxTokens;
  const claude = /\banthropic\./.test(modelId);

  if (forced.tool && !answeringToolResult) {
    const input = synthesizeToolArguments(forced.tool.toolSpec.inputSchema.json);
    const pieces = splitIntoTokenPieces(JSON.stringify(input)).pieces;
    return {
      ok: true,
      plan: {
        pieces,
        text: undefined,
        toolUse: { toolUseId: `tooluse_${ids.alphanumeric(22)}`, name: forced.tool.toolSpec.name, input },
        stopReason: 'tool_use',
        inputTokens: promptTokens,
        outputTokens: pieces.length,
        responseFields: responseFields(request, claude, null),
      },
    };
  }

  const userText = lastText(request.messages);
  const seedText = answeringToolResult ? `${userText}\u0000${last?.content.flatMap(blockTexts).join('\n') ?? ''}` : userText;
  const reasoning = planReasoning(request, claude, seed, seedText, userText);
  const reasoningTokens = reasoning?.tokens ?? 0;
  let natural = generateReplyPieces(seed, seedText, behaviour.completionTokens, answeringToolResult ? TOOL_RESULT_OPENING : []);
  if (system.some((t) => /\bJSON object\b/i.test(t))) natural = splitIntoTokenPieces(JSON.stringify({ reply: natural.join('') })).pieces;
  const stops = request.inferenceConfig?.stopSequences ?? [];
  const answerTokens = maxTokens === undefined ? undefined : maxTokens - reasoningTokens;
  const content = finalizeContent(natural, { maxTokens: answerTokens, stop: stops });
  const matched = content.stopSequence;
  return {
    ok: true,
    plan: {
      pieces: content.pieces,
      text: content.text,
      toolUse: undefined,
      stopReason: matched !== undefined ? 'stop_sequence' : content.finishReason === 'length' ? 'max_tokens' : 'end_turn',
      inputTokens: promptTokens,
      outputTokens: reasoningTokens + content.completionTokens,
      ...(reasoning ? { reasoning } : {}),
      responseFields: responseFields(request, claude, matched ?? null),
    },
  };
}


/**
 * The fields `additionalModelResponseFieldPaths` asks for, found in the model's own response: a
 * Claude model's has `stop_sequence` (the sequence that ended the answer, or null). A path the
 * response does not have is left out, as Converse ignores it; undefined when nothing was found.
 */
function responseFields(request: ConverseRequest, claude: boolean, stopSequence: string | null): Record<string, unknown> | undefined {
  const paths = request.additionalModelResponseFieldPaths ?? [];
  if (!claude || !paths.includes('/stop_sequence')) return undefined;
  return { stop_sequence: stopSequence };
}

type ForcedTool = { ok: true; tool: ConverseTool | undefined } | { ok: false; message: string };

function forcedTool(request: ConverseRequest): ForcedTool {
  const config = request.toolConfig;
  const choice = config?.toolChoice;
  if (!config || !choice || 'auto' in choice) return { ok: true, tool: undefined };
  if ('any' in choice) return { ok: true, tool: config.tools[0] };
  const named = config.tools.find((t) => t.toolSpec.name === choice.tool.name);
  if (!named) return { ok: false, message: `The tool "${choice.tool.name}" named in toolChoice is not defined in toolConfig.tools.` };
  return { ok: true, tool: named };
}

function usage(plan: ConversePlan): Record<string, number> {
  return { inputTokens: plan.inputTokens, outputTokens: plan.outputTokens, totalTokens: plan.inputTokens + plan.outputTokens };
}

export function converseBody(plan: ConversePlan, latencyMs: number): unknown {
  const answer = plan.toolUse ? { toolUse: plan.toolUse } : { text: plan.text ?? '' };
  const content = plan.reasoning ? [{ reasoningContent: reasoningContentOf(plan.reasoning) }, answer] : [answer];
  const body: Record<string, unknown> = { output: { message: { role: 'assistant', content } }, stopReason: plan.stopReason, usage: usage(plan), metrics: { latencyMs } };
  if (plan.responseFields) body['additionalModelResponseFields'] = plan.responseFields;
  return body;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const PADDING = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0';

/** Bytes travel through the text-based stream pacer as latin1 strings (one char per byte). */
export function frameText(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** One `:message-type: event` message; like Bedrock, each payload carries a `p` padding field. */
export function eventFrame(eventType: string, payload: Record<string, unknown>, padTo = 0): Uint8Array {
  const body = { ...payload, p: PADDING.slice(0, Math.max(1, padTo % PADDING.length)) };
  return codec.encode({
    headers: {
      ':event-type': { type: 'string', value: eventType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'event' },
    },
    body: fromUtf8(JSON.stringify(body)),
  });
}

/** One `:message-type: exception` message, as Bedrock sends a failure after the stream began. */
export function exceptionFrame(exceptionType: string, message: string): Uint8Array {
  return codec.encode({
    headers: {
      ':exception-type': { type: 'string', value: exceptionType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'exception' },
    },
    body: fromUtf8(JSON.stringify({ message })),
  });
}

/**
 * The whole ConverseStream answer: text answers have no contentBlockStart, tool uses do. Claude's
 * reasoning comes first, at index 0 without a start: one text delta per token, then the signature
 * in one delta (or the redacted bytes in one delta); the answer follows at index 1, its token
 * steps after the reasoning's, so pacing spends the thinking time even when its text is omitted.
 */
export function converseStreamFrames(plan: ConversePlan, latencyMs: number): PacedFrame[] {
  const frames: PacedFrame[] = [{ text: frameText(eventFrame('messageStart', { role: 'assistant' }, 7)) }];
  const reasoning = plan.reasoning;
  if (reasoning) frames.push(...reasoningFrames(reasoning));
  const index = reasoning ? 1 : 0;
  const firstStep = reasoning?.tokens ?? 0;
  if (plan.toolUse) {
    frames.push({ text: frameText(eventFrame('contentBlockStart', { contentBlockIndex: index, start: { toolUse: { toolUseId: plan.toolUse.toolUseId, name: plan.toolUse.name } } }, 11)) });
  }
  plan.pieces.forEach((piece, at) => {
    const delta = plan.toolUse ? { toolUse: { input: piece } } : { text: piece };
    const step = firstStep + at;
    frames.push({ text: frameText(eventFrame('contentBlockDelta', { contentBlockIndex: index, delta }, step)), tokenStep: step });
  });
  frames.push({ text: frameText(eventFrame('contentBlockStop', { contentBlockIndex: index }, 5)) });
  const stop = plan.responseFields ? { stopReason: plan.stopReason, additionalModelResponseFields: plan.responseFields } : { stopReason: plan.stopReason };
  frames.push({ text: frameText(eventFrame('messageStop', stop, 9)) });
  frames.push({ text: frameText(eventFrame('metadata', { usage: usage(plan), metrics: { latencyMs } }, 3)) });
  return frames;
}

function reasoningFrames(reasoning: PlannedReasoning): PacedFrame[] {
  const delta = (reasoningContent: Record<string, unknown>, padTo: number): string => frameText(eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent } }, padTo));
  const frames: PacedFrame[] =
    reasoning.type === 'redacted'
      ? [{ text: delta({ redactedContent: reasoning.data }, 13) }]
      : [...reasoning.pieces.map((piece, step) => ({ text: delta({ text: piece }, step), tokenStep: step })), { text: delta({ signature: reasoning.signature }, 13) }];
  frames.push({ text: frameText(eventFrame('contentBlockStop', { contentBlockIndex: 0 }, 5)) });
  return frames;
}

/** The error type Bedrock uses for an HTTP status (faults name a status, Bedrock answers with a type). */
export function errorTypeForStatus(status: number): string {
  switch (status) {
    case 400:
      return 'ValidationException';
    case 401:
      return 'UnrecognizedClientException';
    case 403:
      return 'AccessDeniedException';
    case 404:
      return 'ResourceNotFoundException';
    case 408:
      return 'ModelTimeoutException';
    case 424:
      return 'ModelErrorException';
    case 429:
      return 'ThrottlingException';
    case 503:
      return 'ServiceUnavailableException';
    default:
      return status >= 500 ? 'InternalServerException' : 'ValidationException';
  }
}

export function defaultErrorMessage(errorType: string, model: string | undefined): string {
  switch (errorType) {
    case 'ThrottlingException':
      return 'Too many requests, please wait before trying again.';
    case 'ServiceUnavailableException':
      return 'Bedrock is unable to process your request.';
    case 'InternalServerException':
      return 'The system encountered an unexpected error during processing. Try your request again.';
    case 'AccessDeniedException':
      return "You don't have access to the model with the specified model ID.";
    case 'ResourceNotFoundException':
      return `The model ${model ?? ''} could not be found.`.replace('  ', ' ');
    case 'ModelTimeoutException':
      return 'The model timed out while processing the request (simulated).';
    case 'ModelErrorException':
      return 'The model returned an error (simulated).';
    case 'ModelNotReadyException':
      return 'The model is not ready to serve inference requests; retry shortly.';
    case 'UnrecognizedClientException':
      return 'The security token included in the request is invalid.';
    default:
      return 'Malformed input request, please reformat your input and try again.';
  }
}

/** The stream exception name (lower camel case) for an HTTP error type. */
export function streamExceptionName(errorType: string): string {
  const known: Readonly<Record<string, string>> = {
    ThrottlingException: 'throttlingException',
    ValidationException: 'validationException',
    ServiceUnavailableException: 'serviceUnavailableException',
    InternalServerException: 'internalServerException',
    ModelErrorException: 'modelStreamErrorException',
  };
  return known[errorType] ?? `${errorType.charAt(0).toLowerCase()}${errorType.slice(1)}`;
}

const EMBEDDING_DEFAULTS: readonly [RegExp, number][] = [
  [/^amazon\.titan-embed-text-v2/, 1024],
  [/^amazon\.titan-embed-text-v1/, 1536],
  [/^cohere\.embed-(english|multilingual)-v3/, 1024],
  [/^cohere\.embed/, 1536],
];

/** The vector size a Bedrock embedding model returns when the request does not choose one. */
export function defaultEmbeddingDimensions(modelId: string): number | undefined {
  const bare = modelId.replace(/^(?:us|eu|apac|global)\./, '');
  return EMBEDDING_DEFAULTS.find(([pattern]) => pattern.test(bare))?.[1];
}
