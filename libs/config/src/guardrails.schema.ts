import { createHash } from 'node:crypto';
import { z } from 'zod';
import { MAX_TIMER_MS, strictObject, TIMER_TOO_LONG } from './primitives';

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
 * The categories moderation models judge (`results[].categories`): OpenAI's, then Mistral's (its
 * `/v1/moderations` answers in OpenAI's shape with names of its own). A rule's `categories` must
 * name some of them, since a misspelt one would never be hit and the rule never act.
 */
export const GUARDRAIL_MODERATION_CATEGORIES = [
  'harassment',
  'harassment/threatening',
  'hate',
  'hate/threatening',
  'illicit',
  'illicit/violent',
  'self-harm',
  'self-harm/intent',
  'self-harm/instructions',
  'sexual',
  'sexual/minors',
  'violence',
  'violence/graphic',
  'hate_and_discrimination',
  'violence_and_threats',
  'dangerous_and_criminal_content',
  'selfharm',
  'health',
  'financial',
  'law',
  'pii',
] as const;

/** What a moderation failure does to the requests its rules screen: refused (`closed`) or served unscreened by them (`open`). */
export const GUARDRAIL_MODERATION_FAIL_MODES = ['closed', 'open'] as const;

/**
 * A rule that asks a moderation model (a model with the `moderation` capability) about the
 * request's texts: a hit is one of `categories` (unset: any) the model flags, by its own verdict or,
 * with `threshold`, by a category score at or above it.
 */
export const guardrailModerationSchema = strictObject({
  /** The id of a model with the `moderation` capability and no input price (the call is not billed to the request). */
  model: z.string().min(1),
  /** The categories that count as a hit; unset: any category the model flags. */
  categories: z
    .array(z.string().min(1))
    .min(1)
    .superRefine((categories, ctx) => {
      categories.forEach((category, i) => {
        if (!(GUARDRAIL_MODERATION_CATEGORIES as readonly string[]).includes(category)) {
          ctx.addIssue({ code: 'custom', path: [i], message: `unknown moderation category "${category}": name one of ${GUARDRAIL_MODERATION_CATEGORIES.join(', ')}` });
        }
      });
    })
    .optional(),
  /** A category is hit when its score is at least this; unset: when the model's own verdict (`categories[c]`) is true. */
  threshold: z.number().min(0).max(1).optional(),
});
export type GuardrailModerationConfig = z.infer<typeof guardrailModerationSchema>;

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
  /** Ask a moderation model about the request's texts (docs/guardrails.md, "Moderation models"). */
  moderation: guardrailModerationSchema.optional(),
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
  const given = (['detect', 'pattern', 'terms', 'moderation'] as const).filter((k) => rule[k] !== undefined);
  if (given.length !== 1) ctx.addIssue({ code: 'custom', message: `give exactly one of detect, pattern, terms, moderation (${given.length === 0 ? 'none given' : `given: ${given.join(', ')}`})` });
  if (rule.moderation === undefined) return;
  // A moderation model says whether a text is unsafe, not where: there is nothing to replace.
  if (rule.action === 'redact') ctx.addIssue({ code: 'custom', path: ['action'], message: 'a moderation rule cannot redact (a moderation model judges a whole text, it does not say where): use block or flag' });
  if (rule.screen.includes('output')) ctx.addIssue({ code: 'custom', path: ['screen'], message: 'a moderation rule screens requests only: set screen to [input] (answers are not sent to moderation models)' });
  if (rule.replacement !== undefined) ctx.addIssue({ code: 'custom', path: ['replacement'], message: 'a moderation rule replaces nothing: remove replacement' });
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
  /**
   * When a moderation rule's model cannot answer (no deployment, a provider error, a timeout):
   * `closed` refuses the request (503 guardrails_unavailable), `open` serves it unscreened by that
   * rule (logged and counted).
   */
  moderationFailMode: z.enum(GUARDRAIL_MODERATION_FAIL_MODES).default('closed'),
  /**
   * How long a request waits for a moderation rule's model, every attempt of the call together
   * (routing.retry.deadlineMs at most); past it the model has not answered, and `moderationFailMode`
   * applies. Short, since the request is held until the model answers, before it is even routed.
   */
  moderationTimeoutMs: z.number().int().positive().max(MAX_TIMER_MS, TIMER_TOO_LONG).default(10_000),
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
 * term's words; 3: a card number followed by more digit groups found within them, digits after a
 * decimal point never a card). It is part of the digest, so an answer cached before such a change is not served
 * to a request the rules now refuse.
 */
const GUARDRAIL_MATCHING_VERSION = 3;

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
    if (!rule) return [id, 'unknown'];
    const definition: unknown[] = [rule.id, rule.detect ?? null, rule.pattern ?? null, rule.terms ?? null, rule.action, guardrailReplacement(rule), rule.screen, rule.roles ?? null];
    // Appended only when set, so the digests of the other rules (and the answers cached under them) stay as they were.
    if (rule.moderation) definition.push({ model: rule.moderation.model, categories: rule.moderation.categories ?? null, threshold: rule.moderation.threshold ?? null });
    return definition;
  });
  return createHash('sha256').update(JSON.stringify({ matching: GUARDRAIL_MATCHING_VERSION, definitions })).digest('hex');
}

/** What the start-up check needs of a model: its id, capabilities and prices. */
interface PricedModel {
  id: string;
  capabilities: readonly string[];
  pricing: {
    input: string;
    perRequest: string;
    changes: ReadonlyArray<{ input?: string | undefined; perRequest?: string | undefined }>;
    deployments: Readonly<Record<string, { input?: string | undefined; perRequest?: string | undefined; changes: ReadonlyArray<{ input?: string | undefined; perRequest?: string | undefined }> }>>;
  };
}

const isZero = (amount: string | undefined): boolean => amount === undefined || /^0+(\.0+)?$/.test(amount);

/**
 * The first input or per-request price of `pricing` that is not 0, where it is set
 * (`pricing.input 0.5`, `pricing.deployments.sim.changes[0].input 0.1`), or undefined when the
 * model is free.
 */
function firstPrice(pricing: PricedModel['pricing']): string | undefined {
  const prices: Array<[string, { input?: string | undefined; perRequest?: string | undefined }]> = [
    ['pricing', pricing],
    ...pricing.changes.map((c, i): [string, typeof c] => [`pricing.changes[${i}]`, c]),
    ...Object.entries(pricing.deployments).flatMap(([id, d]) => [[`pricing.deployments.${id}`, d] as [string, typeof d], ...d.changes.map((c, i): [string, typeof c] => [`pricing.deployments.${id}.changes[${i}]`, c])]),
  ];
  for (const [where, price] of prices) {
    if (!isZero(price.input)) return `${where}.input ${price.input}`;
    if (!isZero(price.perRequest)) return `${where}.perRequest ${price.perRequest}`;
  }
  return undefined;
}

/**
 * The moderation rules whose model cannot serve them, each with its path: a model id no model has,
 * a model without the `moderation` capability, or a priced one (the guardrail's call is not billed
 * to the request, so its price would be spent without being metered).
 */
export function guardrailModelIssues(guardrails: Pick<GuardrailsConfig, 'rules'>, models: readonly PricedModel[]): Array<{ path: Array<string | number>; message: string }> {
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  const byId = new Map(models.map((m) => [m.id, m]));
  guardrails.rules.forEach((rule, i) => {
    if (!rule.moderation) return;
    const path = ['guardrails', 'rules', i, 'moderation', 'model'];
    const name = rule.moderation.model;
    const model = byId.get(name);
    if (!model) {
      const moderation = models.filter((m) => m.capabilities.includes('moderation')).map((m) => m.id);
      issues.push({ path, message: `unknown model "${name}": name the id of a model with the moderation capability (models: ${moderation.join(', ') || 'none has it'})` });
    } else if (!model.capabilities.includes('moderation')) {
      issues.push({ path, message: `model "${name}" has no moderation capability (its capabilities: ${model.capabilities.join(', ')}): name a model with capabilities [moderation]` });
    } else {
      const price = firstPrice(model.pricing);
      if (price !== undefined) {
        issues.push({
          path,
          message: `model "${name}" is priced (${price}): a guardrail's moderation call is not billed to the request, so a priced model would be spent without being metered; use a free moderation model (OpenAI's are free) with input and per-request prices 0`,
        });
      }
    }
  });
  return issues;
}
