import type { Behaviour } from '../core/behaviour-config';
import { choiceSeed, finalizeContent, generateReplyPieces, TOOL_RESULT_OPENING } from '../core/reply-generator';
import { hash32, type SeededRandom } from '../core/seeded-random';
import { countPromptTokens, splitIntoTokenPieces } from '../core/token-counter';
import { synthesizeFromSchema, synthesizeToolArguments } from '../core/tool-argument-synthesizer';
import type { ChatCompletionPlan, ChoicePlan } from './openai-formats';
import type { ChatCompletionRequest, ChatMessage, FunctionTool, RequestProblem } from './openai-request-schemas';

/**
 * A user message holding this string is declined, as OpenAI's models decline a request: the
 * answer's text is the message's `refusal` (whole and streamed), `content` null, finish_reason `stop`.
 */
export const OPENAI_REFUSAL_TRIGGER = 'OPENROUTER_SIMULATOR_TRIGGER_REFUSAL_5B0C3E1A';
const REFUSAL_TEXT = "I'm sorry, but I can't help with that request.";

export type ChatPlanResult =
  | { ok: true; plan: ChatCompletionPlan; stream: boolean; includeUsage: boolean }
  | { ok: false; problem: RequestProblem };

export interface PlannerContext {
  seed: number;
  ids: SeededRandom;
  now?: number;
}

/** Turns a validated request into the complete answer, before anything is written. */
export function planChatCompletion(request: ChatCompletionRequest, behaviour: Behaviour, context: PlannerContext): ChatPlanResult {
  const stream = request.stream === true;
  if (!stream && request.stream_options != null) {
    return fail("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options', 'invalid_value');
  }

  const misplaced = request.messages.findIndex((m) => m.role !== 'user' && Array.isArray(m.content) && m.content.some((part) => part.type === 'image_url'));
  if (misplaced >= 0) {
    // OpenAI's own refusal: images go in user messages only (a tool's screenshot included).
    const role = request.messages[misplaced]?.role ?? '';
    return fail(`Invalid 'messages[${misplaced}]'. Image URLs are only allowed for messages with role 'user', but this message with role '${role}' contains an image URL.`, `messages[${misplaced}]`, 'invalid_value');
  }

  const promptTokens = countPromptTokens(request.messages.map(messageTexts));
  if (promptTokens > behaviour.contextWindow) {
    return fail(
      `This model's maximum context length is ${behaviour.contextWindow} tokens. However, your messages resulted in ${promptTokens} tokens. Please reduce the length of the messages.`,
      'messages',
      'context_length_exceeded',
    );
  }

  const forced = forcedTool(request);
  if (!forced.ok) return forced;
  const lastMessage = request.messages[request.messages.length - 1];
  // A tool result is always answered in text, so a client that keeps tool_choice forced still terminates.
  const answeringToolResult = lastMessage?.role === 'tool' || lastMessage?.role === 'function';
  const tool = answeringToolResult ? undefined : forced.tool;

  const maxTokens = behaviour.ignoreMaxTokens ? undefined : (request.max_completion_tokens ?? request.max_tokens ?? undefined);
  const stop = request.stop == null ? [] : typeof request.stop === 'string' ? [request.stop] : request.stop;
  const lastUserText = lastTextOf(request.messages, 'user');
  const seedText = answeringToolResult ? `${lastUserText}\u0000${joinTexts(lastMessage)}` : lastUserText;

  const choices: ChoicePlan[] = [];
  for (let index = 0; index < (request.n ?? 1); index++) {
    if (tool) {
      choices.push(toolCallChoice(index, tool, context.ids, maxTokens));
      continue;
    }
    const refused = !answeringToolResult && lastUserText.includes(OPENAI_REFUSAL_TRIGGER);
    const natural = refused ? splitIntoTokenPieces(REFUSAL_TEXT).pieces : naturalContent(request, behaviour, choiceSeed(context.seed, index), seedText, answeringToolResult);
    const content = finalizeContent(natural, { maxTokens, stop });
    choices.push({
      index,
      content: content.text,
      ...(refused ? { refusal: true } : {}),
      pieces: content.pieces,
      finishReason: content.finishReason,
      completionTokens: content.completionTokens,
    });
  }

  const plan: ChatCompletionPlan = {
    id: `chatcmpl-${context.ids.alphanumeric(29)}`,
    created: Math.floor((context.now ?? Date.now()) / 1000),
    model: request.model,
    systemFingerprint: systemFingerprint(context.seed),
    promptTokens,
    completionTokens: choices.reduce((sum, choice) => sum + choice.completionTokens, 0),
    choices,
  };
  return { ok: true, plan, stream, includeUsage: stream && !behaviour.ignoreStreamOptions && request.stream_options?.include_usage === true };
}

/** The texts that count towards prompt tokens (see token-counter for the formula). */
export function messageTexts(message: ChatMessage): string[] {
  const texts = contentTexts(message);
  if (message.name !== undefined) texts.push(message.name);
  for (const call of message.tool_calls ?? []) texts.push(call.function.name, call.function.arguments);
  return texts;
}

function contentTexts(message: ChatMessage | undefined): string[] {
  const content = message?.content;
  if (typeof content === 'string') return [content];
  if (!Array.isArray(content)) return [];
  const texts: string[] = [];
  for (const part of content) if (typeof part.text === 'string') texts.push(part.text);
  return texts;
}

function joinTexts(message: ChatMessage | undefined): string {
  return contentTexts(message).join('\n');
}

function lastTextOf(messages: readonly ChatMessage[], role: ChatMessage['role']): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (message?.role === role) return joinTexts(message);
  }
  return '';
}

type ForcedTool = { ok: true; tool: FunctionTool | undefined } | { ok: false; problem: RequestProblem };

function forcedTool(request: ChatCompletionRequest): ForcedTool {
  const choice = request.tool_choice;
  if (choice === undefined || choice === 'none' || choice === 'auto') return { ok: true, tool: undefined };
  const tools = request.tools ?? [];
  if (tools.length === 0) {
    return fail("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", 'tool_choice', 'invalid_value');
  }
  if (choice === 'required') return { ok: true, tool: tools[0] };
  const named = tools.find((tool) => tool.function.name === choice.function.name);
  if (named === undefined) {
    return fail(`Invalid value for 'tool_choice': no function named '${choice.function.name}' was specified in 'tools'.`, 'tool_choice', 'invalid_value');
  }
  return { ok: true, tool: named };
}

function toolCallChoice(index: number, tool: FunctionTool, ids: SeededRandom, maxTokens: number | undefined): ChoicePlan {
  const fullArguments = JSON.stringify(synthesizeToolArguments(tool.function.parameters));
  const content = finalizeContent(splitIntoTokenPieces(fullArguments).pieces, { maxTokens });
  return {
    index,
    content: null,
    toolCall: { id: `call_${ids.alphanumeric(24)}`, name: tool.function.name, arguments: content.text },
    pieces: content.pieces,
    finishReason: content.finishReason === 'length' ? 'length' : 'tool_calls',
    completionTokens: content.completionTokens,
  };
}

function naturalContent(
  request: ChatCompletionRequest,
  behaviour: Behaviour,
  seed: number,
  seedText: string,
  answeringToolResult: boolean,
): string[] {
  const format = request.response_format;
  if (format?.type === 'json_schema') {
    const value = synthesizeFromSchema(format.json_schema.schema ?? { type: 'object' });
    return splitIntoTokenPieces(JSON.stringify(value)).pieces;
  }
  const words = generateReplyPieces(seed, seedText, behaviour.completionTokens, answeringToolResult ? TOOL_RESULT_OPENING : []);
  if (format?.type === 'json_object') return splitIntoTokenPieces(JSON.stringify({ reply: words.join('') })).pieces;
  return words;
}

function systemFingerprint(seed: number): string {
  return `fp_${hash32('provider-simulator', seed).toString(16).padStart(8, '0')}sm`;
}

function fail(message: string, param: string | null, code: string | null): { ok: false; problem: RequestProblem } {
  return { ok: false, problem: { message, param, code } };
}
