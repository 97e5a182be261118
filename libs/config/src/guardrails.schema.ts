import { createHash } from 'node:crypto';
import { z } from 'zod';
import { strictObject } from './primitives';

/** The built-in detectors a rule may name (`detect`); their exact rules are in docs/guardrails.md. */
export const GUARDRAIL_DETECTORS = ['email', 'phone', 'credit_card', 'iban', 'us_ssn', 'ipv4', 'secret'] as const;
export type GuardrailDetector = (typeof GUARDRAIL_DETECTORS)[number];

/** What a rule screens: the request a client sends, or the answer a provider gives. */
export const GUARDRAIL_STAGES = ['input', 'output'] as const;
export type GuardrailStage = (typeof GUARDRAIL_STAGES)[number];

/**
 * What a match does: refuse the request (in an answer: end the choice), replace the matched text,
 * or only count it (`flag`: a rule watched before it is enforced).
 */
export const GUARDRAIL_ACTIONS = ['block', 'redact', 'flag'] as const;
export type GuardrailAction = (typeof GUARDRAIL_ACTIONS)[number];

/** The message roles a rule may be limited to (`roles`). */
export const GUARDRAIL_ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

/** The flags a rule's `pattern` is compiled with: every match, Unicode-aware. */
export const GUARDRAIL_PATTERN_FLAGS = 'gu';

export const guardrailRuleId = z.string().regex(/^[a-z0-9_-]+$/, 'lower-case letters, digits, _ and -');

/**
 * One input guardrail: what it looks for in a request's text (exactly one of a built-in detector, a
 * JavaScript regular expression, or whole words matched without regard to case) and what a match
 * does: refuse the request (`block`) or replace the matched text before any provider sees it
 * (`redact`). Patterns are trusted configuration: they run on every request.
 */
export const guardrailRuleSchema = strictObject({
  id: guardrailRuleId,
  detect: z.enum(GUARDRAIL_DETECTORS).optional(),
  pattern: z
    .string()
    .min(1)
    .superRefine((source, ctx) => {
      try {
        new RegExp(source, GUARDRAIL_PATTERN_FLAGS);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `not a valid regular expression (flags ${GUARDRAIL_PATTERN_FLAGS}): ${(error as Error).message}` });
      }
    })
    .optional(),
  terms: z.array(z.string().trim().min(1)).min(1).optional(),
  action: z.enum(GUARDRAIL_ACTIONS),
  /** What a `redact` match is replaced with; default `[REDACTED:<id>]`. */
  replacement: z.string().optional(),
  /**
   * What the rule screens: what clients send (`input`), the answers providers give (`output`), or
   * both. In an answer, `block` ends the choice with finish reason `content_filter`.
   */
  screen: z.array(z.enum(GUARDRAIL_STAGES)).min(1).default(['input']),
  /**
   * In requests, only the messages of these roles are screened by the rule (embeddings inputs
   * count as `user`); unset: every role. Answers are screened whatever it says.
   */
  roles: z.array(z.enum(GUARDRAIL_ROLES)).min(1).optional(),
}).superRefine((rule, ctx) => {
  const given = (['detect', 'pattern', 'terms'] as const).filter((k) => rule[k] !== undefined);
  if (given.length !== 1) ctx.addIssue({ code: 'custom', message: `give exactly one of detect, pattern, terms (${given.length === 0 ? 'none given' : `given: ${given.join(', ')}`})` });
});

export type GuardrailRuleConfig = z.infer<typeof guardrailRuleSchema>;

export const guardrailsSchema = strictObject({
  rules: z.array(guardrailRuleSchema).default([]),
  /** Rule ids applied to every request, whatever its tenant. */
  default: z.array(z.string().min(1)).default([]),
  /**
   * In a streamed answer screened by `output` rules, how many characters of each text are held
   * back until more has come (or the text ends): a match no longer than this is found whole before
   * any of it is sent. 0: each chunk is screened alone.
   */
  outputHoldbackChars: z.number().int().min(0).max(4096).default(128),
}).superRefine((guardrails, ctx) => {
  const first = new Map<string, number>();
  guardrails.rules.forEach((rule, i) => {
    const at = first.get(rule.id);
    if (at === undefined) first.set(rule.id, i);
    else ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate rule id "${rule.id}": it is rules[${at}] too (rule ids must be unique)` });
  });
  guardrails.default.forEach((id, i) => {
    if (!first.has(id)) ctx.addIssue({ code: 'custom', path: ['default', i], message: unknownRuleMessage(id, [...first.keys()]) });
  });
});

export type GuardrailsConfig = z.infer<typeof guardrailsSchema>;
/** Guardrails as written (defaults not applied yet). */
export type GuardrailsInput = z.input<typeof guardrailsSchema>;

export function unknownRuleMessage(id: string, known: readonly string[]): string {
  return `unknown guardrail rule "${id}": name a rule id (guardrails.rules: ${known.join(', ') || 'none'})`;
}

/** A rule's replacement text: its own, else `[REDACTED:<id>]`. */
export function guardrailReplacement(rule: Pick<GuardrailRuleConfig, 'id' | 'replacement'>): string {
  return rule.replacement ?? `[REDACTED:${rule.id}]`;
}

/**
 * The rule ids applied to a request: the configured default, then each of `lists` (a tenant level's
 * or the key's), without repeats. Levels only add rules.
 */
export function effectiveGuardrails(guardrails: Pick<GuardrailsConfig, 'default'> | undefined, lists: ReadonlyArray<readonly string[] | undefined>): string[] {
  return [...new Set([...(guardrails?.default ?? []), ...lists.flatMap((l) => l ?? [])])];
}

/**
 * How the router's rules read text, as a version: raised when a change makes the same rule match
 * text it did not (2: JSON escapes in tool-call arguments decoded, any white space between a
 * term's words). It is part of the digest, so an answer cached before such a change is not served
 * to a request the rules now refuse.
 */
const GUARDRAIL_MATCHING_VERSION = 2;

/**
 * A digest (SHA-256, hex) of the definitions of the rules `ids` names, in id order, and of how rules
 * match (`GUARDRAIL_MATCHING_VERSION`): two requests with the same digest are screened alike. Empty
 * when no rule applies.
 */
export function guardrailsDigest(guardrails: Pick<GuardrailsConfig, 'rules'>, ids: readonly string[]): string {
  if (ids.length === 0) return '';
  const byId = new Map(guardrails.rules.map((r) => [r.id, r]));
  const definitions = [...new Set(ids)].sort().map((id) => {
    const rule = byId.get(id);
    // An id no rule has (refused at start-up and by the admin API) is part of the digest by name.
    return rule ? [rule.id, rule.detect ?? null, rule.pattern ?? null, rule.terms ?? null, rule.action, guardrailReplacement(rule), rule.screen, rule.roles ?? null] : [id, 'unknown'];
  });
  return createHash('sha256').update(JSON.stringify({ matching: GUARDRAIL_MATCHING_VERSION, definitions })).digest('hex');
}
