import { GUARDRAIL_PATTERN_FLAGS, guardrailReplacement, type GuardrailAction, type GuardrailRuleConfig } from '@openrouter/config';
import { DETECTORS, type Detector } from './detectors';

/** A span of a text a rule matched. */
export interface Match {
  start: number;
  end: number;
}

/** A configured rule, ready to run. */
export interface CompiledRule {
  readonly id: string;
  readonly action: GuardrailAction;
  readonly replacement: string;
  /**
   * The spans of `text` the rule matches, in order (never empty ones). `json`: the text is JSON
   * (tool-call arguments): the rule reads it with its escape sequences decoded (`\n` a line break,
   * `\u0040` an `@`), so neither `\nsk-…` (a key after a line break) nor `alice\u0040example.com`
   * hides from it, and each span covers whole escape sequences of `text`.
   */
  matches(text: string, json?: boolean): Match[];
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Compiles a rule as the configuration (already validated) describes it. */
export function compileRule(rule: Omit<GuardrailRuleConfig, 'screen'>): CompiledRule {
  // A moderation rule matches no span of text: its model judges whole texts (Guardrails.moderateChat).
  if (rule.moderation !== undefined) return { id: rule.id, action: rule.action, replacement: guardrailReplacement(rule), matches: () => [] };
  let pattern: RegExp;
  let valid: Detector['valid'];
  let within: Detector['within'];
  if (rule.detect !== undefined) {
    const detector: Detector = DETECTORS[rule.detect];
    pattern = detector.pattern;
    valid = detector.valid;
    within = detector.within;
  } else if (rule.pattern !== undefined) {
    pattern = new RegExp(rule.pattern, GUARDRAIL_PATTERN_FLAGS);
  } else {
    // Whole words, case aside: not inside a longer word (Unicode letters, digits, _). The space
    // between a phrase's words is any run of white space (tabs, line breaks, no-break spaces), so
    // "project falcon" is not dodged by writing it "project\tfalcon".
    const terms = [...(rule.terms ?? [])].sort((a, b) => b.length - a.length).map((term) => term.trim().split(/\s+/u).map(escape).join(String.raw`\s+`));
    pattern = new RegExp(String.raw`(?<![\p{L}\p{N}_])(?:${terms.join('|')})(?![\p{L}\p{N}_])`, 'giu');
  }
  return {
    id: rule.id,
    action: rule.action,
    replacement: guardrailReplacement(rule),
    matches(text, json = false) {
      const decoded = json ? decodeJson(text) : undefined;
      const found: Match[] = [];
      // matchAll runs on a copy of the expression: the shared one keeps no state between calls.
      const source = decoded?.text ?? text;
      for (const m of source.matchAll(pattern)) {
        if (m[0].length === 0 || (valid && !valid(m[0]))) continue;
        const spans = within ? within(source, m.index, m.index + m[0].length) : [{ start: m.index, end: m.index + m[0].length }];
        for (const { start, end } of spans) found.push(decoded ? { start: jsonOffset(decoded, start), end: jsonOffset(decoded, end) } : { start, end });
      }
      return found;
    },
  };
}

/**
 * JSON text as the rules read it: each escape sequence decoded (`\n` a line break, `\"` a quote,
 * `\u0040` an `@`; the two escapes of a surrogate pair one character), the rest as it is.
 * `at[i]` is where the decoded text's UTF-16 unit `i` starts in the JSON text, `at[text.length]`
 * the JSON text's length: unit `i` is the JSON text from `at[i]` to `at[i + 1]`, one character or
 * one whole escape sequence, so a span of the decoded text is a span of the JSON text that never
 * cuts an escape sequence.
 */
export interface DecodedJson {
  readonly text: string;
  readonly at: Uint32Array;
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** The last text decoded: each rule of a text reads it, so it is decoded once, not once a rule. */
let lastDecoded: { json: string; decoded: DecodedJson } | undefined;

/**
 * The decoded form of JSON text `json` ({@link DecodedJson}). Escapes are decoded wherever they
 * are (valid JSON has them only in strings), so text that starts inside a string (the rest of
 * streamed arguments) reads the same. Lenient, as the text may be any model's or client's: an
 * escape JSON does not have (`\a`) reads as its character, a `\u` without four hex digits as a
 * space, and one cut off at the end of the text as a space covering the rest.
 */
export function decodeJson(json: string): DecodedJson {
  if (lastDecoded?.json === json) return lastDecoded.decoded;
  const at = new Uint32Array(json.length + 1);
  const parts: string[] = [];
  let units = 0;
  for (let i = 0; i < json.length; ) {
    const slash = json.indexOf('\\', i);
    const plain = slash === -1 ? json.length : slash;
    if (plain > i) {
      parts.push(json.slice(i, plain));
      for (let k = i; k < plain; k++) at[units++] = k;
      i = plain;
      continue;
    }
    // An escape sequence: one unit of the decoded text. Its length is the one `jsonPositions` gives it.
    const code = json[i + 1];
    const length = code === 'u' ? 6 : 2;
    let unit = ' ';
    if (i + length <= json.length) {
      if (code === 'u') {
        const hex = json.slice(i + 2, i + 6);
        if (/^[0-9A-Fa-f]{4}$/.test(hex)) unit = String.fromCharCode(Number.parseInt(hex, 16));
      } else if (code !== undefined) {
        unit = SHORT_ESCAPES[code] ?? code;
      }
    }
    parts.push(unit);
    at[units++] = i;
    i = Math.min(i + length, json.length);
  }
  at[units] = json.length;
  const decoded = { text: parts.join(''), at: at.subarray(0, units + 1) };
  lastDecoded = { json, decoded };
  return decoded;
}

/** Where position `i` (0 to its length) of the decoded text is in the JSON text. */
export function jsonOffset(decoded: DecodedJson, i: number): number {
  return decoded.at[i] ?? decoded.at[decoded.at.length - 1] ?? 0;
}

/** A match and the rule that made it. */
export type RuleMatch = Match & { rule: CompiledRule };

/** Where a position of JSON text is: outside a string, in one at a character's start, or inside an escape sequence (`\n`, `\u00e9`). */
const OUTSIDE = 0;
const IN_STRING = 1;
const IN_ESCAPE = 2;

/** Where each position of JSON text `text` (and its end) is; `inString`: the text starts inside a string. */
export function jsonPositions(text: string, inString: boolean): Uint8Array {
  const at = new Uint8Array(text.length + 1);
  let open = inString;
  for (let i = 0; i <= text.length; ) {
    at[i] = open ? IN_STRING : OUTSIDE;
    const c = text[i];
    if (open && c === '\\') {
      const length = text[i + 1] === 'u' ? 6 : 2;
      for (let k = 1; k < length && i + k <= text.length; k++) at[i + k] = IN_ESCAPE;
      i += length;
      continue;
    }
    if (c === '"') open = !open;
    i++;
  }
  return at;
}

/** A character of a JSON number (`-12.5e+3`). */
const isNumberCharacter = (c: string | undefined): boolean => c !== undefined && /[-+.\deE]/.test(c);

/** Whether position `i` of JSON text is inside an escape sequence (no place to cut it or start a replacement). */
export const inJsonEscape = (at: Uint8Array, i: number): boolean => at[i] === IN_ESCAPE;

/** Whether position `i` of JSON text `text` is inside a number (no place to cut it: a redaction in it replaces it whole). */
export const inJsonNumber = (at: Uint8Array, text: string, i: number): boolean => at[i] === OUTSIDE && isNumberCharacter(text[i - 1]) && isNumberCharacter(text[i]);

/** Whether JSON text ends inside a string, given whether it starts in one. */
export const endsInJsonString = (text: string, inString: boolean): boolean => jsonPositions(text, inString)[text.length] !== OUTSIDE;

/**
 * `text` with the matches `spans` (in order; one starting inside the one before is skipped) replaced by
 * their rules' replacements, and how many each rule replaced. In JSON text (`json`, starting inside a
 * string when `inString`) a replacement is written as JSON so the text stays valid: in a string as its
 * content, the match moved out of escape sequences and cut at the string's end; outside a string (a
 * number) as a string of its own, in place of the whole number.
 */
export function replaceMatches(text: string, spans: readonly RuleMatch[], json: boolean, inString = false): { text: string; counts: Map<string, number> } {
  const at = json ? jsonPositions(text, inString) : undefined;
  const counts = new Map<string, number>();
  let out = '';
  let last = 0;
  for (const span of spans) {
    if (span.start < last) continue;
    let { start, end } = span;
    let replacement = span.rule.replacement;
    if (at) {
      if (at[start] === OUTSIDE && text[start] === '"') start++;
      while (start < end && at[start] === IN_ESCAPE) start++;
      if (at[start] === OUTSIDE) {
        const quote = text.indexOf('"', start);
        if (quote !== -1 && quote < end) end = quote;
        // A match in a number takes the whole number: a string stands for no part of one (`-"…"`, `"…".5`).
        while (start > last && isNumberCharacter(text[start - 1])) start--;
        while (end < text.length && at[end] === OUTSIDE && isNumberCharacter(text[end])) end++;
        replacement = JSON.stringify(replacement);
      } else {
        for (let i = start; i < end; i++) if (at[i] === IN_STRING && text[i] === '"') end = i;
        while (end < text.length && at[end] === IN_ESCAPE) end++;
        replacement = JSON.stringify(replacement).slice(1, -1);
      }
      if (start >= end) continue;
    }
    out += text.slice(last, start) + replacement;
    last = end;
    counts.set(span.rule.id, (counts.get(span.rule.id) ?? 0) + 1);
  }
  return { text: out + text.slice(last), counts };
}
