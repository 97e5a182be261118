import type { GuardrailAction } from '@openrouter/config';
import type { chatv1 } from '@openrouter/contracts';
import { decodeJson, endsInJsonString, inJsonEscape, inJsonNumber, jsonOffset, jsonPositions, replaceMatches, type CompiledRule, type Match, type RuleMatch } from './guardrail-rules';

/** The finish reason of a choice an `output` rule ended, as OpenAI names a filtered answer's. */
export const CONTENT_FILTER = 'content_filter';

/**
 * The longest match a streamed answer holds back whole while it may still change (a `block` match
 * that reaches the end of what came, a `redact` or `flag` match that runs into the holdback), when
 * the holdback is shorter. A longer one is taken as it is: holding it on would hold, and read again
 * with each chunk, the rest of an answer of any length (a PEM block, a key, run on).
 */
const LONGEST_HELD_MATCH = 256;

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
 * it is not one, a card number not when a decimal point is), with offsets in `text`. A match
 * starting in `before` was screened with it.
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
 * `hold`: more of the text may come, so a match that reaches its end and is no longer than this is
 * not one yet (a term may be the start of a longer word: "falcon" in "falconry"); `deferred` gets
 * the first such match. A longer one cuts the text: it is taken as it is (0: the text is whole).
 */
function blockCut(rules: readonly CompiledRule[], text: string, json: boolean, before = '', hold = 0): { end: number; rule: CompiledRule | undefined; deferred: Match | undefined } {
  let end = text.length;
  let blocking: CompiledRule | undefined;
  let deferred: Match | undefined;
  for (const rule of rules) {
    if (rule.action !== 'block') continue;
    const [first] = matchesAfter(rule, text, json, before);
    if (!first) continue;
    if (first.end >= text.length && first.end - first.start <= hold) {
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
function flagMatches(rules: readonly CompiledRule[], text: string, json: boolean, before = ''): RuleMatch[] {
  return rules.filter((r) => r.action === 'flag').flatMap((rule) => matchesAfter(rule, text, json, before).map((m) => ({ ...m, rule })));
}

/**
 * `text` with the `redact` matches that start before `upTo` replaced, then cut at `upTo`; one that
 * runs past it (a match too long to hold, see `AnswerScreen.swallow`) is replaced as far as it.
 * Of overlapping matches the earliest (then the longest) wins. `inString`: JSON text that starts
 * inside a string (the rest of streamed arguments).
 */
function redact(rules: readonly CompiledRule[], text: string, json: boolean, onMatch: AnswerMatchListener, upTo: number, inString = false, before = ''): string {
  // Overlapping ones included: replaceMatches skips those that start inside the one replaced before,
  // as far as it replaced it (in JSON text, to the end of its string: a match after that is replaced too).
  const spans = redactSpans(rules, text, json, before)
    .filter((m) => m.start < upTo)
    .map((m) => ({ ...m, end: Math.min(m.end, upTo) }));
  const { text: out, counts } = replaceMatches(text.slice(0, upTo), spans, json, inString);
  for (const [rule, count] of counts) onMatch(rule, 'redact', count);
  return out;
}

/** The `redact` matches of `text`, the earliest (then the longest) first, overlapping ones included. */
function redactSpans(rules: readonly CompiledRule[], text: string, json: boolean, before = ''): RuleMatch[] {
  const spans: RuleMatch[] = [];
  for (const rule of rules) if (rule.action === 'redact') for (const m of matchesAfter(rule, text, json, before)) spans.push({ ...m, rule });
  return spans.sort((a, b) => a.start - b.start || b.end - a.end);
}

/** The `redact` matches of `text`, in order, none overlapping another. */
function redactMatches(rules: readonly CompiledRule[], text: string, json: boolean, before = ''): RuleMatch[] {
  const kept: RuleMatch[] = [];
  for (const span of redactSpans(rules, text, json, before)) if (span.start >= (kept.at(-1)?.end ?? 0)) kept.push(span);
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
  /**
   * The last characters sent of it (`lastCharacters`), which the rules read the rest after ('' before any).
   */
  before: string;
  /** A `redact` match too long to hold, replaced already: what is held starts with the rest of it. */
  swallowing: Swallowing | undefined;
}

/** A long `redact` match whose replacement was sent: the rest of it is dropped as it comes (`AnswerScreen.swallow`). */
interface Swallowing {
  rule: CompiledRule;
  /** Its start, which the rule reads on from to find where it ends, and the characters before that. */
  head: string;
  before: string;
  /** How much of what is held is known to be the match (kept for the rule to read on through). */
  kept: number;
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
  /** The longest match held back whole (see `LONGEST_HELD_MATCH`). */
  private readonly longest: number;

  constructor(
    private readonly rules: readonly CompiledRule[],
    private readonly holdback: number,
    /** How many choices the answer has (the request's `n`). */
    private readonly choices: number,
    private readonly onMatch: AnswerMatchListener,
  ) {
    this.longest = Math.max(holdback, LONGEST_HELD_MATCH);
  }

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
    else this.held.set(key, { choice, tool, text, inString: false, before: '', swallowing: undefined });
  }

  /**
   * What the choice's texts release now: all of each when the choice ends, else each but its last
   * `holdback` characters (and not the start of a `redact` match that runs into them, nor half a
   * character, JSON escape or JSON number). A `block` match in any of them cuts the choice: what came
   * before the match is released (the texts before the cut one whole), nothing after. A match longer
   * than `longest` is not held whole: a `block` one cuts at once, a `redact` one is replaced and the
   * rest of it dropped as it comes (`swallow`), a `flag` one is counted as far as it is sent.
   */
  private release(choice: number, ending: boolean): { texts: Map<number | undefined, string>; blocked: boolean } {
    const texts = new Map<number | undefined, string>();
    // The content first, then the tool calls in order: a cut drops what follows it.
    const mine = [...this.held].filter(([, held]) => held.choice === choice).sort(([, a], [, b]) => (a.tool ?? -1) - (b.tool ?? -1));
    const swallowing = mine.map(([, held]) => this.swallow(held, ending));
    const cuts = mine.map(([, held], i) => (swallowing[i] ? undefined : blockCut(this.rules, held.text, held.tool !== undefined, held.before, ending ? 0 : this.longest)));
    const first = cuts.findIndex((cut) => cut?.rule !== undefined);
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
      if (swallowing[i]) {
        // All that is held is the rest of a match already replaced: nothing of it is sent.
        texts.set(held.tool, '');
        if (blocked) this.held.delete(key);
        return;
      }
      const whole = ending || blocked;
      let upTo = whole ? held.text.length : this.holdbackStart(held.text, json);
      let long: RuleMatch | undefined;
      if (!whole) {
        // A block match that may yet turn out to be none (it reaches the end of what came) is held whole, whatever the holdback (blockCut took a longer one as it is).
        const deferred = cut?.deferred;
        if (deferred && deferred.start < upTo) upTo = deferred.start;
        // Latest first: moving the cut back before one match can only make an earlier one run into it.
        // One too long to hold is not: a redaction is replaced (below), a flag counted as far as it is sent.
        const spans = [...redactMatches(this.rules, held.text, json, held.before), ...flagMatches(this.rules, held.text, json, held.before)].sort((x, y) => y.start - x.start);
        for (const m of spans) {
          if (m.start >= upTo || m.end <= upTo) continue;
          if (m.end - m.start <= this.longest) upTo = m.start;
          else if (m.rule.action === 'redact') {
            long = m;
            break;
          }
        }
        const at = json ? jsonPositions(held.text, held.inString) : undefined;
        if (long) {
          // Sent replaced, as far as its first `longest` characters, which the rule reads on from;
          // whole if it is in JSON text and its string ends before (it is replaced no further).
          upTo = long.start + this.longest;
          const end = at ? stringEnd(held.text, at, long.start + 1, upTo) : upTo;
          if (end < upTo) {
            upTo = end;
            long = undefined;
          }
        } else {
          // Nor inside a JSON number: a redaction in one replaces the whole number.
          const floor = upTo - this.longest;
          while (at && upTo > 0 && upTo > floor && inJsonNumber(at, held.text, upTo)) upTo--;
        }
        // Never half a JSON escape sequence, nor half a surrogate pair.
        while (at && upTo > 0 && inJsonEscape(at, upTo)) upTo--;
        if (upTo > 0 && isHighSurrogate(held.text.charCodeAt(upTo - 1)) && isLowSurrogate(held.text.charCodeAt(upTo))) upTo--;
      }
      countFlags(this.rules, held.text.slice(0, upTo), this.onMatch, json, held.before);
      texts.set(held.tool, redact(this.rules, held.text, json, this.onMatch, upTo, held.inString, held.before));
      if (long) {
        const before = lastCharacters(held.before + held.text.slice(0, long.start), json);
        held.swallowing = { rule: long.rule, head: held.text.slice(long.start, upTo), before, kept: long.end - upTo };
      }
      if (json) held.inString = endsInJsonString(held.text.slice(0, upTo), held.inString);
      if (upTo > 0) held.before = lastCharacters(held.before + held.text.slice(0, upTo), json);
      held.text = held.text.slice(upTo);
      if (whole) this.held.delete(key);
    });
    return { texts, blocked };
  }

  /**
   * Drops the rest of a long `redact` match already replaced (`Held.swallowing`), as far as its rule,
   * reading on from the match's start, finds it going on (and never past the end of its JSON string).
   * Of what may still be the match only the last `longest` characters are kept, so an end split over
   * chunks (a PEM block's END line) is found, and no more is read again with each chunk. True while
   * the match may go on (nothing held is sent); false once it has ended, what is held being the text
   * after it.
   */
  private swallow(held: Held, ending: boolean): boolean {
    const swallowing = held.swallowing;
    if (!swallowing) return false;
    const json = held.tool !== undefined;
    const [match] = matchesAfter(swallowing.rule, swallowing.head + held.text, json, swallowing.before);
    // One the rule no longer finds from where it started (it reads on differently) ends with what was known of it.
    let end = match?.start === 0 ? Math.max(0, match.end - swallowing.head.length) : Math.min(swallowing.kept, held.text.length);
    const at = json ? jsonPositions(held.text, held.inString) : undefined;
    if (at) {
      end = stringEnd(held.text, at, 0, end);
      while (end < held.text.length && inJsonEscape(at, end)) end++;
    }
    if (end < held.text.length || ending) {
      this.drop(held, end, json);
      held.swallowing = undefined;
      return false;
    }
    let keep = Math.max(0, held.text.length - this.longest);
    while (at && keep > 0 && inJsonEscape(at, keep)) keep--;
    if (keep > 0 && isHighSurrogate(held.text.charCodeAt(keep - 1)) && isLowSurrogate(held.text.charCodeAt(keep))) keep--;
    this.drop(held, keep, json);
    swallowing.kept = held.text.length;
    return true;
  }

  /** Drops the first `end` characters held, unsent: the rest is read after them. */
  private drop(held: Held, end: number, json: boolean): void {
    if (end === 0) return;
    const dropped = held.text.slice(0, end);
    if (json) held.inString = endsInJsonString(dropped, held.inString);
    held.before = lastCharacters(held.before + dropped, json);
    held.text = held.text.slice(end);
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

/** How many of the last characters sent of a text its rules read the rest after (at most). */
const CHARACTERS_BEFORE = 16;

/**
 * The last `CHARACTERS_BEFORE` characters of `text` (never half a surrogate pair), which the rules
 * read the rest of its text after. `json`: counted as the rules read JSON text, an escape sequence
 * one character (and taken whole).
 */
function lastCharacters(text: string, json: boolean): string {
  const decoded = json ? decodeJson(text) : undefined;
  const units = decoded?.text ?? text;
  let start = Math.max(0, units.length - CHARACTERS_BEFORE);
  if (start > 0 && isLowSurrogate(units.charCodeAt(start)) && isHighSurrogate(units.charCodeAt(start - 1))) start--;
  return text.slice(decoded ? jsonOffset(decoded, start) : start);
}

/** Where the JSON string ends (its closing quote) that JSON text `text` is in from `from`, if before `to`; else `to`. */
function stringEnd(text: string, at: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) if (text[i] === '"' && !inJsonEscape(at, i)) return i;
  return to;
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff;
