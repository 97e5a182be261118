import { z } from 'zod';
import { decimal, MAX_TIMER_MS, strictObject, TIMER_TOO_LONG } from './primitives';
import { pricingSchema } from './pricing.schema';

export const CAPABILITIES = ['chat', 'tools', 'vision', 'json_object', 'json_schema', 'embeddings', 'completions', 'moderation', 'images', 'transcription', 'speech'] as const;

/** The provider types whose adapters serve OpenAI's Moderations API (`/v1/moderations`). */
export const MODERATION_PROVIDER_TYPES: readonly string[] = ['openai'];

/** The provider types whose adapters serve OpenAI's Images API (`/v1/images/generations`). */
export const IMAGE_PROVIDER_TYPES: readonly string[] = ['openai', 'azure'];

/**
 * The provider types whose adapters serve OpenAI's Audio API: transcriptions and translations
 * (`transcription`), speech (`speech`).
 */
export const AUDIO_PROVIDER_TYPES: readonly string[] = ['openai', 'azure'];
export type Capability = (typeof CAPABILITIES)[number];

/** What a chat request is about, as the router's task classifier recognises it. */
export const TASK_TYPES = ['code', 'math', 'reasoning', 'creative', 'extraction', 'summarization', 'translation', 'chat'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

export const ROUTE_STRATEGIES = ['cost', 'latency', 'quality', 'balanced'] as const;
export type RouteStrategy = (typeof ROUTE_STRATEGIES)[number];

export const BALANCING_METHODS = ['weighted', 'least_outstanding', 'p2c'] as const;
export type BalancingMethod = (typeof BALANCING_METHODS)[number];

/** The reserved model name that lets the router choose among every chat model (or the configured set). */
export const AUTO_MODEL = 'auto';

const unit = z.number().min(0).max(1);
const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
/** Durations waited for with a timer (a deadline, a backoff, a sync interval): at most MAX_TIMER_MS. */
const positiveMs = positiveInt.max(MAX_TIMER_MS, TIMER_TOO_LONG);
const nonNegativeMs = nonNegativeInt.max(MAX_TIMER_MS, TIMER_TOO_LONG);
/**
 * A name the gateway sends back in response headers (`x-openrouter-model`, `-deployment`,
 * `-experiment`, `-route-reason`): a header value takes no character outside visible ASCII, so a
 * name with one would fail the response after the provider had answered.
 */
const name = z.string().regex(/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/, 'must be printable ASCII, not starting or ending with a space (it is sent in response headers)');

export const deploymentSchema = strictObject({
  id: name.optional(),
  provider: z.string().min(1),
  /** The model name the provider knows. */
  model: z.string().min(1),
  /** Relative share among the model's deployments when the load balancer draws one. */
  weight: z.number().positive().default(1),
  /** Requests per minute this deployment may receive from this router process; unset means unlimited. */
  rpm: positiveInt.optional(),
  /** Tokens per minute (prompt estimate + max tokens); unset means unlimited. */
  tpm: positiveInt.optional(),
  /** Prior for latency-aware routing until live measurements exist (time to first token, ms). */
  expectedLatencyMs: nonNegativeInt.optional(),
});
export type DeploymentConfig = z.infer<typeof deploymentSchema>;

/** Quality per task type, 0–1; `default` covers task types not listed. */
export const qualitySchema = strictObject({
  default: unit.optional(),
  code: unit.optional(),
  math: unit.optional(),
  reasoning: unit.optional(),
  creative: unit.optional(),
  extraction: unit.optional(),
  summarization: unit.optional(),
  translation: unit.optional(),
  chat: unit.optional(),
});
export type QualityScores = z.infer<typeof qualitySchema>;

/**
 * The most prompt tokens one image part of a request costs on the model, as its provider bills it.
 * Budgets reserve a request's images at this (see `services/ingress/src/access/prompt-tokens.ts`
 * for the cost of a model that declares none).
 */
export const imageTokensSchema = strictObject({
  /** Any image, at any `detail` (`auto` lets the provider choose `high`). */
  max: positiveInt,
  /**
   * An image sent with `detail: "low"`, for a model whose provider bills that at a fixed cost
   * whatever the image (OpenAI's tile-priced models); unset: `max`, as for any other image.
   */
  low: positiveInt.optional(),
}).refine((t) => t.low === undefined || t.low <= t.max, { message: '`low` must be at most `max`', path: ['low'] });
export type ImageTokens = z.infer<typeof imageTokensSchema>;

/**
 * A point in time a model's lifecycle names: a date (`2026-03-01`, midnight UTC) or a date-time
 * with its offset (`2026-03-01T12:00:00Z`). A date-time without an offset would be read in the
 * process's local time zone, so that form is refused.
 */
const lifecycleInstant = z.union([z.iso.date(), z.iso.datetime({ offset: true })], { error: 'must be an ISO 8601 date (2026-03-01) or date-time with an offset (2026-03-01T12:00:00Z)' });

/** When a model is deprecated and retired, and what takes its requests once it is retired (docs/routing.md "Model lifecycle"). */
export const modelLifecycleSchema = strictObject({
  /** From then on, answers naming the model carry `Deprecation` (and `Sunset`, replacement) headers; routing is unchanged. */
  deprecatedAt: lifecycleInstant.optional(),
  /** From then on, the model is out of every alias and `auto`, and requests naming it go to `replacement` (else 404). */
  retiresAt: lifecycleInstant.optional(),
  /** The model id that serves requests naming this one after `retiresAt`. */
  replacement: name.optional(),
});
export type ModelLifecycle = z.infer<typeof modelLifecycleSchema>;

export const modelSchema = strictObject({
  id: name,
  ownedBy: z.string().default('open-router'),
  created: z.number().int().nonnegative().default(0),
  capabilities: z.array(z.enum(CAPABILITIES)).default(['chat']),
  contextWindow: z.number().int().positive().default(128_000),
  /**
   * Embedding models: the most tokens one input may hold (a longer one is refused with 400
   * `context_length_exceeded`); unset: the known limit of the deployments' upstream models
   * (`embeddingInputTokenLimit`), else none.
   */
  maxInputTokens: positiveInt.optional(),
  /** What an image part costs in prompt tokens at most; unset: the gateway's default. */
  imageTokens: imageTokensSchema.optional(),
  pricing: pricingSchema.prefault({}),
  /** Quality scores per task type, 0–1 (unset: 0.5). */
  quality: qualitySchema.default({}),
  /** Prior for latency-aware routing of every deployment without its own (ms to first token). */
  expectedLatencyMs: nonNegativeInt.optional(),
  /** Models to try, in order, when every deployment of this one failed and the request allows fallbacks. */
  fallbacks: z.array(name).default([]),
  /** Left out of `auto` (still callable by id or through an alias). */
  excludeFromAuto: z.boolean().default(false),
  /** Deprecation, retirement and replacement (unset: the model stays as it is). */
  lifecycle: modelLifecycleSchema.optional(),
  deployments: z.array(deploymentSchema).min(1),
});
export type ModelConfig = z.infer<typeof modelSchema>;

const providerPreferences = strictObject({
  /** Providers to try first, in this order. */
  order: z.array(name).optional(),
  /** Only these providers. */
  only: z.array(name).optional(),
  /** Never these providers. */
  ignore: z.array(name).optional(),
});

/** Maximum price per 1M tokens: one decimal for both directions, or prompt/completion separately. */
export const maxPriceSchema = z.union([decimal, strictObject({ prompt: decimal.optional(), completion: decimal.optional() })]);

/** Route settings as configuration writes them; requests write the same in snake_case. */
export const routeSettingsSchema = strictObject({
  strategy: z.enum(ROUTE_STRATEGIES).optional(),
  minQuality: unit.optional(),
  maxPrice: maxPriceSchema.optional(),
  latencySensitive: z.boolean().optional(),
  allowFallbacks: z.boolean().optional(),
  providers: providerPreferences.optional(),
});
export type RouteSettings = z.infer<typeof routeSettingsSchema>;

export const ROUTE_OVERRIDABLE_FIELDS = ['models', 'strategy', 'minQuality', 'maxPrice', 'latencySensitive', 'allowFallbacks', 'providers'] as const;
export type RouteOverridableField = (typeof ROUTE_OVERRIDABLE_FIELDS)[number];

export const aliasSchema = strictObject({
  /** Models (ids) the alias may choose among. */
  models: z.array(name).min(1),
  /** Defaults applied when a request names the alias. */
  route: routeSettingsSchema.default({}),
  description: z.string().default(''),
});
export type AliasConfig = z.infer<typeof aliasSchema>;

export const policySchema = strictObject({
  id: name,
  /**
   * Who the policy applies to: an organisation, a project of an organisation (a project id is unique
   * only within its organisation, so `project` needs `org`), or everyone when unset. The most
   * specific matching policy wins.
   */
  match: strictObject({ org: name.optional(), project: name.optional() }).default({}),
  /** Defaults for requests that match. */
  route: routeSettingsSchema.default({}),
  /** Which per-request controls may change the defaults: `true` all, `false` none, or a list. */
  allowOverrides: z.union([z.boolean(), z.array(z.enum(ROUTE_OVERRIDABLE_FIELDS))]).default(true),
});
export type PolicyConfig = z.infer<typeof policySchema>;

/** Whether a request may set `field` under `policy` (no policy: it may set everything). */
export function overridable(policy: PolicyConfig | undefined, field: RouteOverridableField): boolean {
  if (!policy) return true;
  return policy.allowOverrides === true || (Array.isArray(policy.allowOverrides) && policy.allowOverrides.includes(field));
}

/**
 * The most specific routing policy for a caller: its organisation's project, then its organisation,
 * then the catch-all. A project is matched with its organisation, as the pair: project ids are
 * unique only within an organisation, so `search` alone would name every organisation's `search`
 * (configuration refuses a `project` without an `org`; such a policy matches no one here).
 */
export function policyFor(policies: readonly PolicyConfig[], tenant: { orgId: string; projectId: string }): PolicyConfig | undefined {
  let best: { policy: PolicyConfig; specificity: number } | undefined;
  for (const policy of policies) {
    const { org, project } = policy.match;
    if (org !== undefined && org !== tenant.orgId) continue;
    if (project !== undefined && (org === undefined || project !== tenant.projectId)) continue;
    const specificity = project !== undefined ? 2 : org !== undefined ? 1 : 0;
    if (!best || specificity > best.specificity) best = { policy, specificity };
  }
  return best?.policy;
}

export const experimentSchema = strictObject({
  /** At most 128 characters: the admin API's experiment report takes it in its path. */
  id: name.max(128, 'at most 128 characters (the experiment report takes it in its URL)'),
  /** The model id or alias clients name; requests for it are split between the arms. */
  target: name,
  arms: z
    .array(strictObject({ name, model: name, weight: z.number().positive() }))
    .min(2)
    .refine((arms) => new Set(arms.map((a) => a.name)).size === arms.length, 'arm names must be unique'),
  /** What keeps a caller on its arm: the end user (`user`, falling back to the key), the API key, or nothing. */
  stickiness: z.enum(['user', 'key', 'request']).default('user'),
  enabled: z.boolean().default(true),
});
export type ExperimentConfig = z.infer<typeof experimentSchema>;


export const grayReleaseSchema = strictObject({
  id: name,
  /** The model id or alias clients name. */
  target: name,
  /** What serves the target today, and the model taking over. */
  baseline: name,
  canary: name,
  /**
   * When the first step starts; unset means when the router starts. A date or a date-time with an
   * offset, as model lifecycles take: one without would be read in each replica's own time zone.
   */
  startAt: lifecycleInstant.optional(),
  /** The canary's share in percent, each step starting `afterMinutes` after `startAt`. */
  steps: z
    .array(strictObject({ afterMinutes: z.number().nonnegative(), percent: z.number().min(0).max(100) }))
    .min(1)
    .refine((steps) => steps.every((s, i) => i === 0 || s.afterMinutes > (steps[i - 1]?.afterMinutes ?? -1)), 'steps must be in increasing `afterMinutes` order'),
  rollback: strictObject({
    /** Roll back when the canary's error rate exceeds the baseline's by more than this (absolute, 0–1). */
    errorRateMargin: unit.default(0.05),
    /** Roll back when the canary's p95 latency exceeds the baseline's by more than this fraction (0.5 = +50%). */
    p95LatencyMargin: z.number().nonnegative().default(0.5),
    /** Calls of each arm needed in the window before a verdict. */
    minRequests: positiveInt.default(20),
    windowMs: positiveMs.default(300_000),
  }).prefault({}),
});
export type GrayReleaseConfig = z.infer<typeof grayReleaseSchema>;

export const breakerSchema = strictObject({
  /** Consecutive failures that open the circuit. */
  consecutiveFailures: positiveInt.default(5),
  /** Error rate over the window that opens the circuit, once `minRequests` were seen. */
  errorRate: unit.default(0.5),
  minRequests: positiveInt.default(20),
  windowMs: positiveMs.default(30_000),
  /** How long an open circuit stays open before one probe is let through. */
  cooldownMs: positiveMs.default(30_000),
}).prefault({});
export type BreakerSettings = z.infer<typeof breakerSchema>;

export const retrySchema = strictObject({
  /** Calls per request, the first included. */
  maxAttempts: positiveInt.default(4),
  /** Time budget to get a first answer event, across every attempt and backoff: no attempt starts after it. */
  deadlineMs: positiveMs.default(60_000),
  /** Time one streamed attempt may take to produce its first answer event. */
  attemptTimeoutMs: positiveMs.default(30_000),
  /**
   * Time one non-streamed attempt may take to return its whole answer (its only event). Not cut
   * short by `deadlineMs`, which only stops new attempts: a long generation is not abandoned
   * and paid for twice.
   */
  completionTimeoutMs: positiveMs.default(300_000),
  /** Full-jitter exponential backoff between attempts. */
  baseDelayMs: nonNegativeMs.default(50),
  maxDelayMs: nonNegativeMs.default(2_000),
  /** A Retry-After longer than this takes the deployment out of rotation instead of being waited for. */
  maxRetryAfterMs: nonNegativeMs.default(10_000),
}).prefault({});
export type RetrySettings = z.infer<typeof retrySchema>;

/** Aliases, strategies, experiments and policies: how a request's model becomes a deployment. */
export const routingSchema = strictObject({
  /** Settings for every request unless an alias, a policy or the request itself says otherwise. */
  defaults: routeSettingsSchema.default({}),
  /** Named groups of models (`smart`, `cheap`); `auto` may be declared here to narrow it. */
  aliases: z.record(name, aliasSchema).default({}),
  /** Weights of the balanced strategy (normalised). */
  balanced: strictObject({ quality: z.number().nonnegative().default(0.5), cost: z.number().nonnegative().default(0.3), latency: z.number().nonnegative().default(0.2) })
    .refine((w) => w.quality + w.cost + w.latency > 0, 'at least one of quality, cost and latency must be above 0')
    .prefault({}),
  /** How the load balancer orders equivalent deployments of one model. */
  balancing: z.enum(BALANCING_METHODS).default('p2c'),
  /** Weight of a new latency sample in the moving averages (0–1). */
  latencyEwmaAlpha: z.number().gt(0).max(1).default(0.2),
  retry: retrySchema,
  breaker: breakerSchema,
  /** On `context_length_exceeded`, try a model with a larger context window. */
  contextFallback: z.boolean().default(true),
  policies: z
    .array(policySchema)
    .superRefine((policies, ctx) => {
      policies.forEach((policy, i) => {
        const earlier = policies.slice(0, i);
        if (earlier.some((p) => p.id === policy.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate policy id "${policy.id}"` });
        // Project ids are unique only within an organisation: alone, one would match that project of every organisation.
        if (policy.match.project !== undefined && policy.match.org === undefined) {
          ctx.addIssue({ code: 'custom', path: [i, 'match', 'org'], message: `required with match.project: project ids are unique only within an organisation, so name the organisation of "${policy.match.project}"` });
        }
        // policyFor keeps the first of the most specific matches: a later one with the same match would never apply.
        const same = earlier.find((p) => p.match.org === policy.match.org && p.match.project === policy.match.project);
        if (same) ctx.addIssue({ code: 'custom', path: [i, 'match'], message: `matches the same callers as the policy "${same.id}": of two policies as specific, only the first would ever apply` });
      });
    })
    .default([]),
  experiments: z.array(experimentSchema).default([]),
  grayReleases: z.array(grayReleaseSchema).default([]),
  /**
   * How often a router reads the gray releases' kept state (a rollback made by another replica);
   * with `access.redis` set the state is shared there, else kept in `<gateway.dataDir>/router`.
   */
  grayReleaseSyncMs: positiveMs.default(2_000),
  /** Seed of the router's random draws (load balancing, jitter); unset means a random seed per process. */
  seed: z.number().int().optional(),
});
export type RoutingConfig = z.infer<typeof routingSchema>;

interface ReferenceIssue {
  path: (string | number)[];
  message: string;
}

/** The kinds of request a replacement must take as well as the model it replaces: anything else would fail them. */
const REPLACED_CAPABILITIES: readonly Capability[] = ['chat', 'completions', 'embeddings', 'moderation', 'images', 'transcription', 'speech'];

/**
 * The lifecycle of every model: `retiresAt` not before `deprecatedAt`; a `replacement` that is
 * another configured model, able to take the same kinds of request, and not leading back to the
 * model through the replacements' own replacements. A replacement retired itself when it would be
 * used is followed to its own replacement at request time, so chains are allowed.
 */
export function lifecycleIssues(models: readonly ModelConfig[]): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  const byId = new Map(models.map((m) => [m.id, m]));
  models.forEach((model, i) => {
    const lifecycle = model.lifecycle;
    if (!lifecycle) return;
    const path = ['models', i, 'lifecycle'];
    const { deprecatedAt, retiresAt, replacement } = lifecycle;
    if (deprecatedAt !== undefined && retiresAt !== undefined && Date.parse(retiresAt) < Date.parse(deprecatedAt)) {
      issues.push({ path: [...path, 'retiresAt'], message: `${retiresAt} is before deprecatedAt (${deprecatedAt}): a model is retired after it is deprecated` });
    }
    if (replacement === undefined) return;
    const target = byId.get(replacement);
    if (replacement === model.id) issues.push({ path: [...path, 'replacement'], message: `a model cannot replace itself ("${model.id}")` });
    else if (!target) issues.push({ path: [...path, 'replacement'], message: `unknown model "${replacement}"` });
    else {
      const missing = REPLACED_CAPABILITIES.filter((c) => model.capabilities.includes(c) && !target.capabilities.includes(c));
      if (missing.length > 0) issues.push({ path: [...path, 'replacement'], message: `"${replacement}" does not support ${missing.join(', ')}, which requests for "${model.id}" use` });
      // Reported once, at the first model of the loop in file order.
      const chain = [model.id];
      for (let next: ModelConfig | undefined = target; next; next = next.lifecycle?.replacement !== undefined ? byId.get(next.lifecycle.replacement) : undefined) {
        if (next.id === model.id) {
          if (chain.every((id) => models.findIndex((m) => m.id === id) >= i)) issues.push({ path: [...path, 'replacement'], message: `replacements form a cycle: ${[...chain, model.id].join(' → ')}` });
          break;
        }
        if (chain.includes(next.id)) break;
        chain.push(next.id);
      }
    }
  });
  return issues;
}

/** Cross-references of the routing section to models and providers, once the shape is valid. */
export function routingReferenceIssues(routing: RoutingConfig, models: readonly ModelConfig[], providers: readonly string[]): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  const modelIds = new Set(models.map((m) => m.id));
  const aliasNames = new Set(Object.keys(routing.aliases));
  const nameable = (n: string): boolean => modelIds.has(n) || aliasNames.has(n) || n === AUTO_MODEL;
  const providerIds = new Set(providers);
  const checkProviders = (settings: RouteSettings, path: (string | number)[]): void => {
    for (const key of ['order', 'only', 'ignore'] as const) {
      (settings.providers?.[key] ?? []).forEach((p, i) => {
        if (!providerIds.has(p)) issues.push({ path: [...path, 'providers', key, i], message: `unknown provider "${p}"` });
      });
    }
  };
  models.forEach((model, i) => {
    // Requests naming it would get the automatic choice among the models, never this one.
    if (model.id === AUTO_MODEL) issues.push({ path: ['models', i, 'id'], message: `"${AUTO_MODEL}" is reserved for the gateway's choice among the models (routing.aliases.${AUTO_MODEL} narrows it): give the model another id` });
    model.fallbacks.forEach((f, j) => {
      if (!modelIds.has(f)) issues.push({ path: ['models', i, 'fallbacks', j], message: `unknown model "${f}"` });
    });
  });
  issues.push(...lifecycleIssues(models));
  checkProviders(routing.defaults, ['routing', 'defaults']);
  for (const [alias, config] of Object.entries(routing.aliases)) {
    if (modelIds.has(alias)) issues.push({ path: ['routing', 'aliases', alias], message: `alias "${alias}" has the id of a model` });
    config.models.forEach((m, j) => {
      if (!modelIds.has(m)) issues.push({ path: ['routing', 'aliases', alias, 'models', j], message: `unknown model "${m}"` });
    });
    checkProviders(config.route, ['routing', 'aliases', alias, 'route']);
  }
  routing.policies.forEach((policy, i) => checkProviders(policy.route, ['routing', 'policies', i, 'route']));
  const experimentIds = new Set<string>();
  const targets = new Set<string>();
  const claimTarget = (target: string, path: (string | number)[]): void => {
    if (!nameable(target)) issues.push({ path, message: `unknown model or alias "${target}"` });
    else if (targets.has(target)) issues.push({ path, message: `"${target}" is already the target of another experiment or gray release` });
    targets.add(target);
  };
  const claimId = (id: string, path: (string | number)[]): void => {
    if (experimentIds.has(id)) issues.push({ path, message: `duplicate experiment or gray release id "${id}"` });
    experimentIds.add(id);
  };
  routing.experiments.forEach((experiment, i) => {
    claimId(experiment.id, ['routing', 'experiments', i, 'id']);
    claimTarget(experiment.target, ['routing', 'experiments', i, 'target']);
    experiment.arms.forEach((arm, j) => {
      if (!nameable(arm.model)) issues.push({ path: ['routing', 'experiments', i, 'arms', j, 'model'], message: `unknown model or alias "${arm.model}"` });
    });
  });
  routing.grayReleases.forEach((release, i) => {
    claimId(release.id, ['routing', 'grayReleases', i, 'id']);
    claimTarget(release.target, ['routing', 'grayReleases', i, 'target']);
    for (const key of ['baseline', 'canary'] as const) {
      if (!nameable(release[key])) issues.push({ path: ['routing', 'grayReleases', i, key], message: `unknown model or alias "${release[key]}"` });
    }
    if (release.baseline === release.canary) issues.push({ path: ['routing', 'grayReleases', i, 'canary'], message: `the canary is the baseline ("${release.canary}"): a gray release moves traffic to a different model or alias` });
  });
  return issues;
}
