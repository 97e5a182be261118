import type { Behaviour } from '../core/behaviour-config';
import { finalizeContent, generateReplyPieces, TOOL_RESULT_OPENING } from '../core/reply-generator';
import type { CacheTtl, PromptCache } from '../core/prompt-cache';
import type { SeededRandom } from '../core/seeded-random';
import { countPromptTokens, splitIntoTokenPieces } from '../core/token-counter';
import { synthesizeFromSchema, synthesizeToolArguments } from '../core/tool-argument-synthesizer';
import { type AnthropicMessage, type AnthropicTool, blocksOf, type ContentBlock, type MessagesRequest } from './anthropic-request-schemas';
import { checkThinking, type PlannedThinking, planThinking } from './anthropic-thinking';

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use';

export type PlannedBlock =
  | { type: 'text'; text: string; pieces: readonly string[] }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown>; pieces: readonly string[] };

export interface MessagePlan {
  id: string;
  model: string;
  /** The thinking block that comes before the answer when extended thinking is on. */
  thinking: PlannedThinking | undefined;
  block: PlannedBlock;
  stopReason: StopReason;
  stopSequence: string | null;
  inputTokens: number;
  /** Of `inputTokens`, those read from the prompt cache, and those written to it (by how long they are kept). */
  cache: PromptCacheUse;
  /** Thinking and answer tokens together, as Anthropic bills them. */
  outputTokens: number;
}

export interface PromptCacheUse {
  readTokens: number;
  write5mTokens: number;
  write1hTokens: number;
}

/** The fewest tokens a prefix needs to be cached (Anthropic's for its Sonnet and Opus models): shorter ones are not. */
export const MIN_CACHEABLE_TOKENS = 1024;

/** An answer the simulator refuses, in Anthropic's terms. */
export interface MessageProblem {
  status: number;
  type: string;
  message: string;
}

export type MessagePlanResult = { ok: true; plan: MessagePlan } | { ok: false; problem: MessageProblem };

export interface PlannerContext {
  seed: number;
  ids: SeededRandom;
  /** Where prefixes marked with `cache_control` are cached; none: nothing is. */
  promptCache?: PromptCache;
}

/** The answer block with how it ended, before thinking is put in front of it. */
type PlannedAnswer = Pick<MessagePlan, 'block' | 'stopReason' | 'stopSequence' | 'outputTokens'>;

/** What the turn answers: the last user text, and the tool results when the turn closes a tool call. */
interface Turn {
  answeringToolResult: boolean;
  lastUserText: string;
  seedText: string;
}

/**
 * Turns a validated Messages request into the complete answer before anything is written:
 * checks the rules the real service enforces beyond the schema (tool_use/tool_result pairing,
 * extended thinking, known forced tool, context window), then plans the thinking block if
 * thinking is on and either a forced tool_use or a text reply within what thinking left of
 * `max_tokens`.
 */
export function planMessage(request: MessagesRequest, behaviour: Behaviour, context: PlannerContext): MessagePlanResult {
  const problem = checkToolPairing(request) ?? checkThinking(request);
  if (problem) return fail(problem);

  const inputTokens = countPromptTokens(promptTexts(request));
  if (inputTokens > behaviour.contextWindow) return fail(`prompt is too long: ${inputTokens} tokens > ${behaviour.contextWindow} maximum`);

  const forced = forcedTool(request);
  if (typeof forced === 'string') return fail(forced);

  const id = `msg_01${context.ids.alphanumeric(22)}`;
  const turn = turnOf(request.messages);
  const thinking = planThinking(request, context.seed, turn.seedText, turn.lastUserText);
  const thinkingTokens = thinking?.tokens ?? 0;
  const maxTokens = request.max_tokens - thinkingTokens;
  const answer = forced ? planToolUse(forced, maxTokens, context) : planText(request, behaviour, context, turn, maxTokens);
  const cache = useCache(request, inputTokens, context.promptCache);
  return { ok: true, plan: { id, model: request.model, inputTokens, cache, thinking, ...answer, outputTokens: thinkingTokens + answer.outputTokens } };
}

/**
 * Prompt caching as Anthropic does it: the prompt up to the last block marked `cache_control` is
 * read from the cache when a request began with it within its time, else written (kept five
 * minutes, or an hour with `ttl: "1h"`). A prefix shorter than MIN_CACHEABLE_TOKENS is not cached.
 */
function useCache(request: MessagesRequest, inputTokens: number, cache: PromptCache | undefined): PromptCacheUse {
  const none = { readTokens: 0, write5mTokens: 0, write1hTokens: 0 };
  const marked = cachedPrefix(request);
  if (!cache || !marked) return none;
  const tokens = Math.min(countPromptTokens(marked.texts), inputTokens);
  if (tokens < MIN_CACHEABLE_TOKENS) return none;
  if (cache.use(`${request.model}\u0000${JSON.stringify(marked.texts)}`, marked.ttl) === 'read') return { ...none, readTokens: tokens };
  return marked.ttl === '1h' ? { ...none, write1hTokens: tokens } : { ...none, write5mTokens: tokens };
}

/** The prompt's texts (as `promptTexts` reads them) up to and including the last block marked `cache_control`, and its ttl. */
function cachedPrefix(request: MessagesRequest): { texts: string[][]; ttl: CacheTtl } | undefined {
  const out: string[][] = [];
  let marked: { texts: string[][]; ttl: CacheTtl } | undefined;
  const mark = (control: unknown): void => {
    if (!control) return;
    const ttl = (control as { ttl?: unknown }).ttl === '1h' ? '1h' : '5m';
    marked = { texts: out.map((texts) => [...texts]), ttl };
  };
  const system = request.system;
  if (typeof system === 'string') out.push([system]);
  else if (system !== undefined) {
    const texts: string[] = [];
    out.push(texts);
    for (const b of system) {
      texts.push(b.text);
      mark(b.cache_control);
    }
  }
  for (const message of request.messages) {
    const texts: string[] = [];
    out.push(texts);
    for (const block of blocksOf(message)) {
      texts.push(...blockTexts(block));
      mark(block.cache_control);
    }
  }
  return marked;
}

function blockTexts(block: ContentBlock): string[] {
  if (block.type === 'text') return [block.text];
  if (block.type === 'tool_use') return [block.name, JSON.stringify(block.input)];
  if (block.type === 'tool_result') return resultTexts(block);
  return [];
}

function turnOf(messages: readonly AnthropicMessage[]): Turn {
  const last = messages[messages.length - 1];
  const answeringToolResult = last !== undefined && last.role === 'user' && blocksOf(last).some((b) => b.type === 'tool_result');
  const lastUserText = lastTextOf(messages);
  const seedText = answeringToolResult ? `${lastUserText}\u0000${toolResultTexts(last).join('\n')}` : lastUserText;
  return { answeringToolResult, lastUserText, seedText };
}

/** A call of the forced tool with schema-complete input; cut short by `max_tokens`, the input is `{}`. */
function planToolUse(tool: AnthropicTool, maxTokens: number, context: PlannerContext): PlannedAnswer {
  const fullInput = synthesizeToolArguments(tool.input_schema);
  const content = finalizeContent(splitIntoTokenPieces(JSON.stringify(fullInput)).pieces, { maxTokens });
  const truncated = content.finishReason === 'length';
  return {
    block: { type: 'tool_use', id: `toolu_01${context.ids.alphanumeric(22)}`, name: tool.name, input: truncated ? {} : fullInput, pieces: content.pieces },
    stopReason: truncated ? 'max_tokens' : 'tool_use',
    stopSequence: null,
    outputTokens: content.completionTokens,
  };
}

/** A text reply (or JSON for `output_config.format`), limited by `max_tokens` and stop sequences. */
function planText(request: MessagesRequest, behaviour: Behaviour, context: PlannerContext, turn: Turn, maxTokens: number): PlannedAnswer {
  const schema = request.output_config?.format?.schema;
  const natural = schema
    ? splitIntoTokenPieces(JSON.stringify(synthesizeFromSchema(schema))).pieces
    : generateReplyPieces(context.seed, turn.seedText, behaviour.completionTokens, turn.answeringToolResult ? TOOL_RESULT_OPENING : []);
  const stops = request.stop_sequences ?? [];
  const content = finalizeContent(natural, { maxTokens, stop: stops });
  const stopSequence = content.stopSequence;
  return {
    block: { type: 'text', text: content.text, pieces: content.pieces },
    stopReason: stopSequence !== undefined ? 'stop_sequence' : content.finishReason === 'length' ? 'max_tokens' : 'end_turn',
    stopSequence: stopSequence ?? null,
    outputTokens: content.completionTokens,
  };
}

/** The texts that count towards input tokens: the system prompt as one message, then every turn. */
function promptTexts(request: MessagesRequest): string[][] {
  const out: string[][] = [];
  const system = request.system;
  if (system !== undefined) out.push(typeof system === 'string' ? [system] : system.map((b) => b.text));
  for (const message of request.messages) {
    out.push(blocksOf(message).flatMap(blockTexts));
  }
  return out;
}

function resultTexts(block: Extract<ContentBlock, { type: 'tool_result' }>): string[] {
  if (typeof block.content === 'string') return [block.content];
  return (block.content ?? []).flatMap((b) => (b.type === 'text' ? [b.text] : []));
}

function toolResultTexts(message: AnthropicMessage | undefined): string[] {
  if (!message) return [];
  return blocksOf(message).flatMap((b) => (b.type === 'tool_result' ? resultTexts(b) : []));
}

function lastTextOf(messages: readonly AnthropicMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (message?.role !== 'user') continue;
    const texts = blocksOf(message).flatMap((b) => (b.type === 'text' ? [b.text] : []));
    if (texts.length > 0) return texts.join('\n');
  }
  return '';
}

/**
 * Every tool_use must be answered by a tool_result in the very next (user) message, and every
 * tool_result must answer a tool_use of the message before it; tools must be declared whenever
 * either appears. Returns the real service's wording for the first violation.
 */
function checkToolPairing(request: MessagesRequest): string | undefined {
  const messages = request.messages;
  let usesTools = false;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as AnthropicMessage;
    const blocks = blocksOf(message);
    const results = blocks.filter((b) => b.type === 'tool_result');
    if (results.length > 0 || blocks.some((b) => b.type === 'tool_use')) usesTools = true;
    const previous = i > 0 ? messages[i - 1] : undefined;
    const offered = new Set(previous?.role === 'assistant' ? blocksOf(previous).flatMap((b) => (b.type === 'tool_use' ? [b.id] : [])) : []);
    const stray = results.filter((r) => !offered.has(r.tool_use_id));
    if (message.role === 'assistant' && results.length > 0) return `messages.${i}: tool_result blocks are only allowed in user messages`;
    if (stray.length > 0) {
      return `messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${stray.map((r) => r.tool_use_id).join(', ')}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
    }
    if (message.role !== 'assistant' || i === messages.length - 1) continue;
    const next = messages[i + 1] as AnthropicMessage;
    const answered = new Set(next.role === 'user' ? blocksOf(next).flatMap((b) => (b.type === 'tool_result' ? [b.tool_use_id] : [])) : []);
    const missing = blocks.flatMap((b) => (b.type === 'tool_use' && !answered.has(b.id) ? [b.id] : []));
    if (missing.length > 0) {
      return `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`;
    }
  }
  if (usesTools && (request.tools ?? []).length === 0) return 'Requests which include `tool_use` or `tool_result` blocks must define tools.';
  return undefined;
}

/**
 * The tool a forced tool_choice makes the model call: the named one, or for `any` the first tool
 * (the last one when answering a tool result, so an agent loop can finish through a final tool).
 */
function forcedTool(request: MessagesRequest): AnthropicTool | undefined | string {
  const choice = request.tool_choice;
  const tools = request.tools ?? [];
  if (choice === undefined || choice.type === 'auto' || choice.type === 'none') return undefined;
  if (tools.length === 0) return 'tool_choice may only be specified while providing tools.';
  if (choice.type === 'tool') return tools.find((t) => t.name === choice.name) ?? `Tool '${choice.name}' not found in provided tools`;
  const last = request.messages[request.messages.length - 1];
  const answeringToolResult = last !== undefined && blocksOf(last).some((b) => b.type === 'tool_result');
  return answeringToolResult ? tools[tools.length - 1] : tools[0];
}


function fail(message: string): { ok: false; problem: MessageProblem } {
  return { ok: false, problem: { status: 400, type: 'invalid_request_error', message } };
}
