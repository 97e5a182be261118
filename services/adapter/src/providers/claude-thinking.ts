import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { countTextTokens } from './text-tokens';

/**
 * Claude's extended thinking as Anthropic's Messages API and Bedrock's Converse both carry it:
 * how `reasoning_effort` turns it on, and the thinking blocks an answer carries and a client
 * hands back on its next tool turn. Each wire has its own places for them; the rules are Claude's.
 */

/** A block of thinking, as an answer carries it (`thinking_blocks`) and a client hands it back. */
export const thinkingBlockSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('thinking'), thinking: z.string(), signature: z.string().min(1) }),
  z.strictObject({ type: z.literal('redacted_thinking'), data: z.string().min(1) }),
]);
export type ThinkingBlock = z.infer<typeof thinkingBlockSchema>;

/** How `reasoning_effort` turns thinking on: `adaptive` (Claude 4.6 and later) or a fixed `budget` (4.5 and earlier). */
export type ThinkingStyle = 'adaptive' | 'budget';

/** The smallest thinking budget Claude accepts. */
export const MIN_THINKING_BUDGET = 1024;
/** With thinking on, Claude refuses `top_p` below this (and any temperature but 1, and top_k). */
export const MIN_THINKING_TOP_P = 0.95;
/** `reasoning_effort` as a thinking budget (budget style), the levels Google's OpenAI-compatible endpoint also uses. */
export const THINKING_BUDGETS: Readonly<Record<string, number>> = { minimal: 1024, low: 1024, medium: 8192, high: 24576 };
/** `reasoning_effort` as Claude's `output_config.effort` (adaptive style). */
const THINKING_EFFORTS: Readonly<Record<string, string>> = { minimal: 'low', low: 'low', medium: 'medium', high: 'high', xhigh: 'xhigh', max: 'max' };

/** Claude's `thinking` parameter from `reasoning_effort`, with what else it changes. */
export interface EffortThinking {
  thinking: { type: 'adaptive' } | { type: 'enabled'; budget_tokens: number };
  /** The output limit to send when the client set none: room for the answer on top of the budget. */
  maxTokens: number | undefined;
  /** `output_config.effort`, in adaptive style. */
  effort: string | undefined;
}

/**
 * `reasoning_effort` as Claude's thinking; undefined for `none`, for no effort, and (budget style)
 * when the limit the client set is too small for the smallest budget. Budget style: the effort's
 * budget, cut to fit under a limit the client set (it bounds thinking and answer together, as
 * OpenAI's `max_completion_tokens` does), or on top of `answerTokens` when it set none.
 */
export function thinkingForEffort(effort: string | undefined, style: ThinkingStyle, limit: number | undefined, answerTokens: number): EffortThinking | undefined {
  const level = effortLevel(effort);
  if (effort === undefined || level === undefined) return undefined;
  if (style === 'adaptive') return { thinking: { type: 'adaptive' }, maxTokens: undefined, effort: level };
  const wanted = THINKING_BUDGETS[effort] ?? THINKING_BUDGETS['high'] ?? MIN_THINKING_BUDGET;
  const budget = budgetWithin(wanted, limit, false);
  if (budget === undefined) return undefined;
  return { thinking: { type: 'enabled', budget_tokens: budget }, maxTokens: limit === undefined ? answerTokens + budget : undefined, effort: undefined };
}

/**
 * A thinking budget under an output limit, which bounds thinking and answer together. Without a
 * limit the budget stands (the caller adds room for the answer). Under one, a budget the client
 * chose stands when it fits; otherwise, and for an effort's budget, thinking takes at most half
 * the limit (at least the smallest budget), so the answer keeps room: a limit the client did not
 * set itself (a hard budget's ceiling) must not starve the answer. Undefined when even the
 * smallest budget leaves no room.
 */
export function budgetWithin(wanted: number, limit: number | undefined, chosenByClient: boolean): number | undefined {
  if (limit === undefined) return wanted;
  const budget = chosenByClient && wanted < limit ? wanted : Math.min(wanted, Math.max(MIN_THINKING_BUDGET, Math.floor(limit / 2)));
  return budget >= MIN_THINKING_BUDGET && budget < limit ? budget : undefined;
}

/** A conversation turn as both wires hold it: a role and its blocks. */
interface Turn<B> {
  role: 'user' | 'assistant';
  content: B[];
}

/**
 * The assistant turn a request continues when it answers tool results: the first assistant
 * message after the user's last own words (a tool loop's later steps are the same turn to
 * Claude). With thinking on, that turn must start with the thinking it was given. Undefined when
 * the request does not answer tool results.
 */
export function toolLoopOpening<B>(turns: readonly Turn<B>[], isToolResult: (b: B) => boolean): Turn<B> | undefined {
  const last = turns[turns.length - 1];
  if (last?.role !== 'user' || !last.content.some(isToolResult)) return undefined;
  let opening: Turn<B> | undefined;
  for (let i = turns.length - 2; i >= 0; i--) {
    const turn = turns[i] as Turn<B>;
    if (turn.role === 'assistant') opening = turn;
    else if (!turn.content.some(isToolResult)) break;
  }
  return opening;
}

/**
 * Whether a request may keep thinking on. With thinking on, Claude wants the assistant turn a
 * request continues to start with its thinking: a final assistant message (a prefill, which Claude
 * only takes as plain text with thinking off) or the turn that opened the tool loop it answers. A
 * request ending in the user's own words continues no turn and keeps it.
 */
export function continuationKeepsThinking<B>(turns: readonly Turn<B>[], isToolResult: (b: B) => boolean, isThinking: (b: B) => boolean): boolean {
  const last = turns[turns.length - 1];
  if (last === undefined || (last.role === 'user' && !last.content.some(isToolResult))) return true;
  const first = (last.role === 'assistant' ? last : toolLoopOpening(turns, isToolResult))?.content[0];
  return first !== undefined && isThinking(first);
}

/**
 * Adds a message's blocks to the turns, joining neighbours of one role (both wires want user and
 * assistant to alternate); in a joined assistant turn, thinking stays first, as Claude wrote it.
 */
export function pushTurn<B>(turns: Turn<B>[], role: Turn<B>['role'], content: B[], isThinking: (b: B) => boolean): void {
  if (content.length === 0) return;
  const last = turns[turns.length - 1];
  if (last?.role !== role) {
    turns.push({ role, content });
    return;
  }
  last.content.push(...content);
  if (role === 'assistant' && content.some(isThinking)) last.content = [...last.content.filter(isThinking), ...last.content.filter((b) => !isThinking(b))];
}

/**
 * `reasoning_effort` as Claude's `output_config.effort` level; undefined for `none` and for no
 * effort. Any other value is a 400, also when the client's own thinking object turns thinking on
 * (the effort still steers it), so it is checked before anything is sent.
 */
export function effortLevel(effort: string | undefined): string | undefined {
  if (effort === undefined || effort === 'none') return undefined;
  // Own entries only: `constructor` or `__proto__` names no effort (read as one, it reached Claude as none, or as an object).
  const level = Object.hasOwn(THINKING_EFFORTS, effort) ? THINKING_EFFORTS[effort] : undefined;
  if (level === undefined) {
    throw new GatewayError('bad_request', `"reasoning_effort" must be one of none, ${Object.keys(THINKING_EFFORTS).join(', ')} for this model.`, { param: 'reasoning_effort', code: 'invalid_value' });
  }
  return level;
}

/** A message's `thinking_blocks` (an extra field: OpenAI has no slot for them), checked. */
export function handedBackThinking(m: chatv1.Message, param: string): ThinkingBlock[] {
  const value = m.extraJson ? objectOf(m.extraJson)?.['thinking_blocks'] : undefined;
  if (value === undefined || value === null) return [];
  const parsed = z.array(thinkingBlockSchema).safeParse(value);
  if (!parsed.success) {
    throw new GatewayError(
      'bad_request',
      '"thinking_blocks" must be the list of thinking blocks an answer of this model carried: {type: "thinking", thinking, signature} or {type: "redacted_thinking", data}, unchanged.',
      { param: `${param}.thinking_blocks`, code: 'invalid_value' },
    );
  }
  return parsed.data;
}

/** Claude refuses thinking together with a tool choice that forces a call, which JSON mode may use too. */
export function forcedToolsWithThinking(source: string, jsonAnswer: boolean): GatewayError {
  const what = jsonAnswer ? '"response_format" (a JSON answer)' : 'a "tool_choice" that forces a tool call';
  return new GatewayError('bad_request', `Extended thinking ("${source}") cannot be combined with ${what} on this model.`, { param: source, code: 'unsupported_parameter' });
}

/**
 * The extra message or delta fields thinking travels in: `reasoning_content` (its text, as
 * OpenAI-compatible reasoning servers send it) and `thinking_blocks` (the blocks with their
 * signatures, which the client hands back on its next tool turn).
 */
export function thinkingExtra(reasoning: string, blocks: readonly ThinkingBlock[]): string {
  if (reasoning === '' && blocks.length === 0) return '';
  const extra: Record<string, unknown> = {};
  if (reasoning !== '') extra['reasoning_content'] = reasoning;
  if (blocks.length > 0) extra['thinking_blocks'] = blocks;
  return JSON.stringify(extra);
}

/**
 * Claude's reasoning tokens, which its usage counts inside the output tokens without telling them
 * apart: an estimate, 0 for an answer without thinking. With thinking (signed or redacted), the
 * larger of its text's tokens and the output tokens beyond the visible answer (`answerTokens`: its
 * text, and each tool call's name and input), at most the output tokens. The second is what
 * counts on Claude 4, which returns only a summary of its thinking while billing the whole of it,
 * and for redacted thinking, which is encrypted. Counts are the gateway's tokenizer's; the output
 * tokens, which are billed, are the provider's own. `answerTokens` is asked only with thinking, so
 * an answer without it never loads the tokenizer.
 */
export function estimatedThinkingTokens(blocks: readonly ThinkingBlock[], outputTokens: number, answerTokens: () => number): number {
  if (blocks.length === 0 || outputTokens <= 0) return 0;
  let thought = 0;
  for (const b of blocks) {
    if (b.type === 'thinking') thought += countTextTokens(b.thinking);
    if (thought >= outputTokens) return outputTokens;
  }
  return Math.min(outputTokens, Math.max(thought, outputTokens - answerTokens()));
}

/** Tokens of an answer's visible parts (text blocks, tool names, tool inputs as JSON), each counted apart. */
export function countAnswerTokens(parts: readonly string[]): number {
  let tokens = 0;
  for (const part of parts) tokens += countTextTokens(part);
  return tokens;
}

/** Held text is counted once it is this long (characters), at a whitespace, so a long part is not kept whole. */
const COUNT_AT = 8192;

/**
 * A streamed answer's visible tokens, for `estimatedThinkingTokens`: text deltas, and each tool
 * call's name and input fragments, a part at a time (`add` appends to the part, `endPart` closes
 * it). Until thinking turns up the parts are held, as an answer without thinking needs no count
 * (and no tokenizer); from then on they are counted as they come, at most a few kilobytes held.
 * Claude thinks before it answers, so in practice nothing is held by then.
 */
export class StreamedAnswerTokens {
  private readonly held: string[] = [];
  private part = '';
  private tokens = 0;
  private counting = false;

  add(text: string): void {
    this.part += text;
    if (this.counting && this.part.length >= COUNT_AT) this.countPart(false);
  }

  endPart(): void {
    if (this.part === '') return;
    if (this.counting) this.countPart(true);
    else {
      this.held.push(this.part);
      this.part = '';
    }
  }

  /** The answer has thinking: its parts will be asked for, so they are counted from now on. */
  thinkingSeen(): void {
    if (this.counting) return;
    this.counting = true;
    this.tokens += countAnswerTokens(this.held);
    this.held.length = 0;
    if (this.part.length >= COUNT_AT) this.countPart(false);
  }

  /** The visible tokens so far, the open part included. */
  count(): number {
    this.thinkingSeen();
    return this.tokens + countTextTokens(this.part);
  }

  /** Counts the open part, whole or (mid-part) up to its last whitespace, keeping the rest. */
  private countPart(whole: boolean): void {
    let cut = this.part.length;
    if (!whole) {
      const space = Math.max(this.part.lastIndexOf(' '), this.part.lastIndexOf('\n'));
      // Without whitespace, cut anywhere but inside a surrogate pair.
      if (space > 0) cut = space;
      else if (/[\uD800-\uDBFF]/.test(this.part.charAt(cut - 1))) cut -= 1;
    }
    this.tokens += countTextTokens(this.part.slice(0, cut));
    this.part = this.part.slice(cut);
  }
}

function objectOf(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
