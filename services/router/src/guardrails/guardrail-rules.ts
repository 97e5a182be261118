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
  /** The spans of `text` the rule matches, in order (never empty ones). */
  matches(text: string): Match[];
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
    matches(text) {
      const found: Match[] = [];
      // matchAll runs on a copy of the expression: the shared one keeps no state between calls.
      for (const m of text.matchAll(pattern)) {
        if (m[0].length === 0 || (valid && !valid(m[0]))) continue;
        found.push({ start: m.index, end: m.index + m[0].length });
      }
      return found;
    },
  };
}
