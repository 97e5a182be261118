import { GUARDRAIL_PATTERN_FLAGS, guardrailReplacement, type GuardrailAction, type GuardrailRuleConfig } from '@openrouter/config';
import { DETECTORS } from './detectors';

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
   * (tool-call arguments), its escape sequences (`\n`, `\"`) count as spaces, so `\nsk-…` is a key
   * after a line break, not a word `nsk-…`.
   */
  matches(text: string, json?: boolean): Match[];
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Compiles a rule as the configuration (already validated) describes it. */
export function compileRule(rule: Omit<GuardrailRuleConfig, 'screen'>): CompiledRule {
  let pattern: RegExp;
  let valid: ((match: string) => boolean) | undefined;
  if (rule.detect !== undefined) {
    const detector = DETECTORS[rule.detect];
    pattern = detector.pattern;
    valid = 'valid' in detector ? detector.valid : undefined;
  } else if (rule.pattern !== undefined) {
    pattern = new RegExp(rule.pattern, GUARDRAIL_PATTERN_FLAGS);
  } else {
    // Whole words, case aside: not inside a longer word (Unicode letters, digits, _).
    const terms = [...(rule.terms ?? [])].sort((a, b) => b.length - a.length).map(escape);
    pattern = new RegExp(String.raw`(?<![\p{L}\p{N}_])(?:${terms.join('|')})(?![\p{L}\p{N}_])`, 'giu');
  }
  return {
    id: rule.id,
    action: rule.action,
    replacement: guardrailReplacement(rule),
    matches(text, json = false) {
      const found: Match[] = [];
      // Same length: the spans found are the spans of `text`.
      const screened = json ? text.replace(/\\(?:u[0-9A-Fa-f]{4}|[\s\S])/g, (escape) => ' '.repeat(escape.length)) : text;
      // matchAll runs on a copy of the expression: the shared one keeps no state between calls.
      for (const m of screened.matchAll(pattern)) {
        if (m[0].length === 0 || (valid && !valid(m[0]))) continue;
        found.push({ start: m.index, end: m.index + m[0].length });
      }
      return found;
    },
  };
}

/** A match of a `redact` rule. */
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

/** Whether position `i` of JSON text is inside an escape sequence (no place to cut it or start a replacement). */
export const inJsonEscape = (at: Uint8Array, i: number): boolean => at[i] === IN_ESCAPE;

/** Whether JSON text ends inside a string, given whether it starts in one. */
export const endsInJsonString = (text: string, inString: boolean): boolean => jsonPositions(text, inString)[text.length] !== OUTSIDE;

/**
 * `text` with the matches `spans` (in order; one starting inside the one before is skipped) replaced by
 * their rules' replacements, and how many each rule replaced. In JSON text (`json`, starting inside a
 * string when `inString`) a replacement is written as JSON so the text stays valid: in a string as its
 * content, the match moved out of escape sequences and cut at the string's end; outside a string (a
 * number) as a string of its own.
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
