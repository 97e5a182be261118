import type { GuardrailAction } from '@openrouter/config';
import type { chatv1 } from '@openrouter/contracts';
import { decodeJson, endsInJsonString, inJsonEscape, jsonOffset, jsonPositions, replaceMatches, type CompiledRule, type Match, type RuleMatch } from './guardrail-rules';

/** The finish reason of a choice an `output` rule ended, as OpenAI names a filtered answer's. */
export const CONTENT_FILTER = 'content_filter';

/** Told of each rule that matched an answer: its id, its action and how many matches (never the text). */
export type AnswerMatchListener = (rule: string, action: GuardrailAction, count: number) => void;

/** What screening one text gave: the text to send, and whether a `block` rule cut it there. */
interface Screened {
  text: string;
  blocked: boolean;
}

/**
 * Screens a text whole: cut before the first `block` match (if any), and every `redact` match in
 * what is kept replaced. `json`: the text is JSON (tool-call arguments), a replacement is written
 * as JSON string content.
 */
function screenWhole(rules: readonly CompiledRule[], text: string, json: boolean, onMatch: AnswerMatchListener): Screened {
  const { end, rule: blocking } = blockCut(rules, text, json);
  if (blocking) onMatch(blocking.id, 'block', 1);
  const kept = text.slice(0, end);
  countFlags(rules, kept, onMatch, json);
  return { text: redact(rules, kept, json, onMatch, kept.length), blocked: blocking !== undefined };
}

/**
 * The rule's matches in `text`, read after `before` (the end of what was sent of the same text
 * already, for a rule that looks behind a match: a term is a whole word only when the letter before
 * it is not one), with offsets in `text`. A match starting in `before` was screened with it.
 */
function matchesAfter(rule: CompiledRule, text: string, json: boolean, before: string): Match[] {
  if (before === '') return rule.matches(text, json);
  const shift = before.length;
  return rule
    .matches(before + text, json)
    .filter((m) => m.start >= shift)
    .map((m) => ({ ...m, start: m.start - shift, end: m.end - shift }));
}

/**
 * Where the first `block` match of `text` cuts it (and by which rule); the end of the text when none
 * matches. A `redact` match the cut runs into is cut before too: no part of it is sent unredacted.
 * `open`: more of the text may come, so a match that reaches its end is not one yet (a term may be
 * the start of a longer word: "falcon" in "falconry"); `deferred` gets the first such match.
 */
function blockCut(rules: readonly CompiledRule[], text: string, json: boolean, before = '', open = false): { end: number; rule: CompiledRule | undefined; deferred: Match | undefined } {
  let end = text.length;
  let blocking: CompiledRule | undefined;
  let deferred: Match | undefined;
  for (const rule of rules) {
    if (rule.action !== 'block') continue;
    const [first] = matchesAfter(rule, text, json, before);
    if (!first) continue;
    if (open && first.end >= text.length) {
      if (!deferred || first.start < deferred.start) deferred = first;
    } else if (first.start < end) {
      end = first.start;
      blocking = rule;
    }
  }
  // A match that may yet be one, before the first that is: nothing is cut until it is known.
  if (deferred && deferred.start < end) return { end: text.length, rule: undefined, deferred };
  if (blocking) for (const m of redactMatches(rules, text, json, before).reverse()) if (m.start < end && m.end > end) end = m.start;
  return { end, rule: blocking, deferred };
}

/** Counts the `flag` matches of `text` (the text is left as it is). */
function countFlags(rules: readonly CompiledRule[], text: string, onMatch: AnswerMatchListener, json: boolean, before = ''): void {
  for (const rule of rules) {
    if (rule.action !== 'flag') continue;
    const count = matchesAfter(rule, text, json, before).length;
    if (count > 0) onMatch(rule.id, 'flag', count);
  }
}

/** The `flag` matches of `text`: held whole, like a redaction's, so each is counted once. */
function flagMatches(rules: readonly CompiledRule[], text: string, json: boolean, before = ''): Match[] {
  return rules.filter((r) => r.action === 'flag').flatMap((r) => matchesAfter(r, text, json, before));
}

/**
 * `text` with the `redact` matches that end at or before `upTo` replaced, then cut at `upTo`.
 * Of overlapping matches the earliest (then the longest) wins. `inString`: JSON text that starts
 * inside a string (the rest of streamed arguments).
 */
function redact(rules: readonly CompiledRule[], text: string, json: boolean, onMatch: AnswerMatchListener, upTo: number, inString = false, before = ''): string {
  const spans = redactMatches(rules, text, json, before).filter((m) => m.end <= upTo);
  const { text: out, counts } = replaceMatches(text.slice(0, upTo), spans, json, inString);
  for (const [rule, count] of counts) onMatch(rule, 'redact', count);
  return out;
}

/** The `redact` matches of `text`, in order, none overlapping another. */
function redactMatches(rules: readonly CompiledRule[], text: string, json: boolean, before = ''): RuleMatch[] {
  const spans: RuleMatch[] = [];
  for (const rule of rules) if (rule.action === 'redact') for (const m of matchesAfter(rule, text, json, before)) spans.push({ ...m, rule });
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: RuleMatch[] = [];
  for (const span of spans) if (span.start >= (kept.at(-1)?.end ?? 0)) kept.push(span);
  return kept;
}

/** One text of a streamed choice: its content, or one tool call's arguments; what came and is not sent yet. */
interface Held {
  choice: number;
  /** The tool call's index; undefined for the content. */
  tool: number | undefined;
  text: string;
  /** Tool-call arguments: what was sent ends inside a JSON string. */
  inString: boolean;
  /** The content: the last character sent of it, which the rules read the rest after ('' before any). */
  before: string;
}

/**
 * The `output` rules applied to one answer (docs/guardrails.md#answers). A whole answer is screened
 * whole. A streamed one is screened as it comes: of each text (a choice's content, each tool call's
 * arguments) the last `holdback` characters are held back until more has come or the text ends, so
 * a match no longer than that is found whole before any of it is sent; a `redact` match is sent
 * replaced, and a `block` match ends its choice there with finish reason `content_filter` (what
 * came before it is sent, what comes after is not). Once every choice has ended and one was cut,
 * the rest of the provider's answer is not needed (`done`).
 */
export class AnswerScreen {
  private readonly held = new Map<string, Held>();
  private readonly cut = new Set<number>();
  private readonly ended = new Set<number>();
  /** The last chunk seen: what a chunk made at the end (`flush`) is dated and named by. */
  private last: chatv1.ChatChunk | undefined;

  constructor(
    private readonly rules: readonly CompiledRule[],
    private readonly holdback: number,
    /** How many choices the answer has (the request's `n`). */
    private readonly choices: number,
    private readonly onMatch: AnswerMatchListener,
  ) {}

  /** Every choice has ended and one was cut by a `block` rule: the provider's answer can be stopped. */
  get done(): boolean {
    return this.cut.size > 0 && this.ended.size >= this.choices;
  }

  completion(completion: chatv1.ChatCompletion): chatv1.ChatCompletion {
    return {
      ...completion,
      choices: completion.choices.map((choice) => {
        const message = choice.message;
        if (!message) return choice;
        let blocked = false;
        let content = message.content;
        if (content !== undefined) {
          const screened = screenWhole(this.rules, content, false, this.onMatch);
          content = screened.text;
          blocked = screened.blocked;
        }
        const toolCalls: chatv1.ToolCall[] = [];
        for (const call of message.toolCalls) {
          if (blocked) break;
          if (!call.function) {
            toolCalls.push(call);
            continue;
          }
          const screened = screenWhole(this.rules, call.function.arguments, true, this.onMatch);
          // A tool call cut short is no call: it and the ones after it are not sent.
          if (screened.blocked) blocked = true;
          else toolCalls.push({ ...call, function: { ...call.function, arguments: screened.text } });
        }
        return { ...choice, message: { ...message, ...(content !== undefined && { content }), toolCalls }, ...(blocked && { finishReason: CONTENT_FILTER }) };
      }),
    };
  }

  /** A streamed chunk as the client may get it: the text it carries less what is held back, plus what it releases. */
  chunk(chunk: chatv1.ChatChunk): chatv1.ChatChunk {
    this.last = chunk;
    const choices: chatv1.ChunkChoice[] = [];
    for (const choice of chunk.choices) {
      if (this.cut.has(choice.index)) continue;
      const delta = choice.delta;
      const ending = choice.finishReason !== undefined && choice.finishReason !== '';
      if (delta?.content !== undefined) this.add(choice.index, undefined, delta.content);
      for (const call of delta?.toolCalls ?? []) if (call.arguments !== undefined) this.add(choice.index, call.index, call.arguments);
      const released = this.release(choice.index, ending);
      if (released.blocked) {
        this.cut.add(choice.index);
        this.ended.add(choice.index);
        choices.push({ ...choice, delta: this.deltaWith(delta, released.texts), finishReason: CONTENT_FILTER });
        continue;
      }
      if (ending) this.ended.add(choice.index);
      choices.push({ ...choice, delta: this.deltaWith(delta, released.texts) });
    }
    return { ...chunk, choices };
  }

  /** What is still held when the provider's stream ended without ending its choices: a last chunk carrying it, screened whole. */
  flush(): chatv1.ChatChunk | undefined {
    const open = [...new Set([...this.held.values()].map((h) => h.choice))].filter((c) => !this.cut.has(c));
    if (!this.last || open.length === 0) return undefined;
    const choices = open.map((index): chatv1.ChunkChoice => {
      const released = this.release(index, true);
      return { index, delta: this.deltaWith(undefined, released.texts), logprobsJson: '', ...(released.blocked && { finishReason: CONTENT_FILTER }) };
    });
    return { ...this.last, choices, usage: undefined };
  }

  private add(choice: number, tool: number | undefined, text: string): void {
    const key = `${choice}:${tool ?? ''}`;
    const held = this.held.get(key);
    if (held) held.text += text;
    else this.held.set(key, { choice, tool, text, inString: false, before: '' });
  }

  /**
   * What the choice's texts release now: all of each when the choice ends, else each but its last
   * `holdback` characters (and not the start of a `redact` match that runs into them, nor half a
   * character or JSON escape). A `block` match in any of them cuts the choice: what came before the
   * match is released (the texts before the cut one whole), nothing after.
   */
  private release(choice: number, ending: boolean): { texts: Map<number | undefined, string>; blocked: boolean } {
    const texts = new Map<number | undefined, string>();
    // The content first, then the tool calls in order: a cut drops what follows it.
    const mine = [...this.held].filter(([, held]) => held.choice === choice).sort(([, a], [, b]) => (a.tool ?? -1) - (b.tool ?? -1));
    const cuts = mine.map(([, held]) => blockCut(this.rules, held.text, held.tool !== undefined, held.before, !ending));
    const first = cuts.findIndex((cut) => cut.rule !== undefined);
    const blocked = first !== -1;
    mine.forEach(([key, held], i) => {
      const json = held.tool !== undefined;
      const cut = cuts[i];
      if (blocked && i >= first) {
        this.held.delete(key);
        if (i > first || !cut?.rule) return;
        this.onMatch(cut.rule.id, 'block', 1);
        // A tool call's arguments cut short are not sent; the content is, up to the match.
        if (!json) countFlags(this.rules, held.text.slice(0, cut.end), this.onMatch, json, held.before);
        texts.set(held.tool, json ? '' : redact(this.rules, held.text, json, this.onMatch, cut.end, false, held.before));
        return;
      }
      const whole = ending || blocked;
      let upTo = whole ? held.text.length : this.holdbackStart(held.text, json);
      if (!whole) {
        // A block match that may yet turn out to be none (it reaches the end of what came) is held whole, whatever the holdback.
        const deferred = cut?.deferred;
        if (deferred && deferred.start < upTo) upTo = deferred.start;
        // Latest first: moving the cut back before one match can only make an earlier one run into it.
        const spans = [...redactMatches(this.rules, held.text, json, held.before), ...flagMatches(this.rules, held.text, json, held.before)].sort((x, y) => y.start - x.start);
        for (const m of spans) if (m.start < upTo && m.end > upTo) upTo = m.start;
        // Never half a JSON escape sequence, nor half a surrogate pair.
        const at = json ? jsonPositions(held.text, held.inString) : undefined;
        while (at && upTo > 0 && inJsonEscape(at, upTo)) upTo--;
        if (upTo > 0 && isHighSurrogate(held.text.charCodeAt(upTo - 1)) && isLowSurrogate(held.text.charCodeAt(upTo))) upTo--;
      }
      countFlags(this.rules, held.text.slice(0, upTo), this.onMatch, json, held.before);
      texts.set(held.tool, redact(this.rules, held.text, json, this.onMatch, upTo, held.inString, held.before));
      if (json) held.inString = endsInJsonString(held.text.slice(0, upTo), held.inString);
      // The content's rules read on after its last character sent (tool-call arguments, JSON, after nothing).
      else if (upTo > 0) held.before = lastCharacter(held.text.slice(0, upTo));
      held.text = held.text.slice(upTo);
      if (whole) this.held.delete(key);
    });
    return { texts, blocked };
  }

  /**
   * Where the last `holdback` characters of a held text start. In tool-call arguments they are
   * counted as the rules read them (an escape sequence is one character): a match written with
   * `\u` escapes, six characters each in the JSON text, is held whole like one written plainly.
   */
  private holdbackStart(text: string, json: boolean): number {
    if (!json) return Math.max(0, text.length - this.holdback);
    const decoded = decodeJson(text);
    let start = Math.max(0, decoded.text.length - this.holdback);
    // Nor half of a character written as the two escapes of a surrogate pair.
    if (start > 0 && isHighSurrogate(decoded.text.charCodeAt(start - 1)) && isLowSurrogate(decoded.text.charCodeAt(start))) start--;
    return jsonOffset(decoded, start);
  }

  /** `delta` with its content and tool-call arguments replaced by what is released (a tool call released only now gets a delta of its own). */
  private deltaWith(delta: chatv1.Delta | undefined, texts: ReadonlyMap<number | undefined, string>): chatv1.Delta {
    const content = texts.get(undefined);
    const calls = (delta?.toolCalls ?? []).map((call) => ({ ...call, arguments: texts.get(call.index) ?? (call.arguments === undefined ? undefined : '') }));
    for (const [tool, text] of texts) if (tool !== undefined && text !== '' && !calls.some((c) => c.index === tool)) calls.push({ index: tool, arguments: text });
    return {
      extraJson: '',
      ...delta,
      ...(content !== undefined || delta?.content !== undefined ? { content: content ?? '' } : {}),
      toolCalls: calls,
    };
  }
}

/** The last character of `text` (both halves of a surrogate pair). */
function lastCharacter(text: string): string {
  const at = text.length >= 2 && isLowSurrogate(text.charCodeAt(text.length - 1)) && isHighSurrogate(text.charCodeAt(text.length - 2)) ? text.length - 2 : text.length - 1;
  return text.slice(at);
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff;
