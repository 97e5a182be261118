import { alertThresholdsSchema, budgetAmountSchema, budgetEnforcementSchema, budgetSchema, ipRange, checkKeyTagNames } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { paramOf } from '@openrouter/openai-wire';
import { z } from 'zod';
import { AUDIT_ACTIONS, type AuditAction } from '../access/access.repository';

const id = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'must be 1–64 lower-case letters, digits, ., - or _');
const limits = z.strictObject({ rpm: z.int().positive().max(100_000_000).optional(), tpm: z.int().positive().max(10_000_000_000).optional() });
/**
 * A routing policy in the admin API's names: allow lists of provider ids and residency labels, and
 * providers never to use (docs/access.md#routing-policies), input guardrail rule ids to add
 * (docs/guardrails.md), and the client addresses allowed (docs/access.md#network-allow-lists).
 * Each list replaces the stored one whole.
 */
export const policyBody = z.strictObject({
  providers: z.array(z.string().min(1).max(128)).max(256).optional(),
  exclude_providers: z.array(z.string().min(1).max(128)).max(256).optional(),
  residency: z.array(z.string().regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'must be lower-case letters, digits and - (such as eu, us, eu-west)').max(64)).max(64).optional(),
  guardrails: z.array(z.string().min(1).max(128)).max(64).optional(),
  allowed_ips: z.array(ipRange.pipe(z.string().max(64))).max(256).optional(),
  store_responses: z.boolean().optional(),
});
export type PolicyBody = z.infer<typeof policyBody>;

type PolicyFields = { providers?: string[]; excludeProviders?: string[]; residency?: string[]; guardrails?: string[]; allowedIps?: string[]; storeResponses?: boolean };

/** A policy as the configuration and the stored records name its fields. */
export function policyInput(body: PolicyBody | undefined): PolicyFields | undefined {
  if (body === undefined) return undefined;
  return {
    ...(body.providers && { providers: body.providers }),
    ...(body.exclude_providers && { excludeProviders: body.exclude_providers }),
    ...(body.residency && { residency: body.residency }),
    ...(body.guardrails && { guardrails: body.guardrails }),
    ...(body.allowed_ips && { allowedIps: body.allowed_ips }),
    ...(body.store_responses !== undefined && { storeResponses: body.store_responses }),
  };
}

/** A PATCH's policy: `null` removes the stored one, absent leaves it. */
export function policyChange(body: PolicyBody | null | undefined): PolicyFields | null | undefined {
  return body === null ? null : policyInput(body);
}

const labels = z.record(z.string().max(64), z.string().max(256)).refine((r) => Object.keys(r).length <= 32, 'at most 32 entries');
/** A key's tags: added to its requests' tags, so named as tags are (reports group by them). */
const tagLabels = labels.superRefine(checkKeyTagNames);

export const issueKeyBody = z.strictObject({
  name: z.string().max(128).default(''),
  org: id,
  team: id.optional(),
  project: id.optional(),
  app: z.string().max(128).optional(),
  allowed_models: z.array(z.string().min(1).max(256)).max(256).default([]),
  policy: policyBody.optional(),
  limits: limits.default({}),
  expires_at: z.iso.datetime({ offset: true }).optional(),
  metadata: labels.default({}),
  tags: tagLabels.default({}),
});

/** A key change: the issue's rules for each field given; `expires_at: null` removes the expiry. */
export const updateKeyBody = z
  .strictObject({
    name: issueKeyBody.shape.name.unwrap().optional(),
    allowed_models: issueKeyBody.shape.allowed_models.unwrap().optional(),
    policy: policyBody.nullable().optional(),
    limits: limits.optional(),
    expires_at: issueKeyBody.shape.expires_at.unwrap().nullable().optional(),
    metadata: labels.optional(),
    tags: tagLabels.optional(),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), 'give at least one of name, allowed_models, policy, limits, expires_at, metadata, tags');

/** Where a key sits: its usage, budgets and audit trail are recorded there, so it stays. */
const FIXED_KEY_FIELDS = ['org', 'team', 'project', 'app'] as const;

/** A key change, with a 400 explaining why for a field that places the key. */
export function updateKeyInput(body: unknown): z.infer<typeof updateKeyBody> {
  if (typeof body === 'object' && body !== null) {
    const fixed = FIXED_KEY_FIELDS.find((field) => field in body);
    if (fixed) {
      throw new GatewayError(
        'bad_request',
        `A key's ${fixed} cannot be changed: its usage, budgets and audit trail are recorded under it. Issue a new key there instead; only name, allowed_models, policy, limits, expires_at, metadata and tags can be changed.`,
        { param: fixed, code: 'immutable_field' },
      );
    }
    if ('key' in body || 'id' in body) {
      const field = 'key' in body ? 'key' : 'id';
      throw new GatewayError('bad_request', `A key's ${field} cannot be changed; to give it a new secret, rotate it (POST /admin/v1/keys/{id}/rotate).`, { param: field, code: 'immutable_field' });
    }
  }
  return parseInput(updateKeyBody, body);
}

export const rotateKeyBody = z.strictObject({
  grace_seconds: z.int().min(0).max(604_800).default(86_400).describe('How long the replaced secret keeps working (s); 0: refused at once'),
});

export const tenantBody = z.strictObject({
  id,
  name: z.string().max(128).optional(),
  cost_center: z.string().min(1).max(128).optional(),
  limits: limits.optional(),
  /** Each end user's requests and tokens per minute within the tenant's traffic (docs/access.md#end-user-limits). */
  end_user_limits: limits.optional(),
  policy: policyBody.optional(),
});

/** A tenant change: the creation's rules for each field; `null` clears one (an inherited cost centre, the default limits). */
export const tenantPatchBody = z
  .strictObject({
    name: tenantBody.shape.name.unwrap().nullable().optional(),
    cost_center: tenantBody.shape.cost_center.unwrap().nullable().optional(),
    limits: limits.nullable().optional(),
    end_user_limits: limits.nullable().optional(),
    policy: policyBody.nullable().optional(),
  })
  .refine((body) => Object.values(body).some((v) => v !== undefined), 'give at least one of name, cost_center, limits, end_user_limits, policy');

/** A tenant change, with a 400 explaining why for its id, which everything recorded names it by. */
export function tenantPatchInput(body: unknown): z.infer<typeof tenantPatchBody> {
  if (typeof body === 'object' && body !== null && 'id' in body) {
    throw new GatewayError(
      'bad_request',
      "A tenant's id cannot be changed: keys, budgets, rate-limit counters and recorded usage name it. Change its name instead, or create a new one; only name, cost_center, limits, end_user_limits and policy can be changed.",
      { param: 'id', code: 'immutable_field' },
    );
  }
  return parseInput(tenantPatchBody, body);
}

/** Whose request a route explanation is for: an issued key's, or a tenant's (by default the caller's own scope). */
export const explainQuery = z
  .strictObject({ key: z.string().min(1).max(128).optional(), org: id.optional(), team: id.optional(), project: id.optional() })
  .refine((q) => q.key === undefined || (q.org === undefined && q.team === undefined && q.project === undefined), 'give either key, or org (with team, project), not both');

/** `GET /admin/v1/keys/{id}/network?ip=`: the client address to check against the key's allow lists. */
export const networkCheckQuery = z.strictObject({ ip: ipRange.refine((v) => !v.includes('/'), 'must be one IP address, not a range') });

// Strict like the report queries: a filter the route does not have (`?team=`) is a 400, not all rows.
export const keyListQuery = z.strictObject({
  org: id.optional(),
  project: id.optional(),
  // Paginated as OpenAI's lists are: a page of `limit`, and the next one after its `last_id`.
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.string().min(1).max(128).optional(),
});
/** An audit entry's id as the API shows it (`audit_123`), read as its number; `audit_0` is before the first entry. */
const auditCursor = z
  .string()
  .regex(/^audit_(0|[1-9]\d{0,14})$/, 'must be the id of an audit entry, such as audit_123')
  .transform((v) => Number(v.slice('audit_'.length)));
/** An ISO 8601 instant with a zone, or a date (midnight UTC); read as ms since the epoch. */
const auditTime = z
  .string()
  .refine((v) => z.iso.date().safeParse(v).success || z.iso.datetime({ offset: true }).safeParse(v).success, 'must be an ISO 8601 instant with a zone (2025-06-01T12:00:00Z) or a date (2025-06-01, midnight UTC)')
  .transform((v) => Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v));
/** `action=a&action=b` or `action=a,b`: each one of the actions the log records (a typo would match nothing). */
const auditActions = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((a) => a.split(',')).map((a) => a.trim()).filter(Boolean))
  .superRefine((actions, ctx) => {
    const unknown = actions.find((a) => !(AUDIT_ACTIONS as readonly string[]).includes(a));
    if (unknown !== undefined) ctx.addIssue({ code: 'custom', message: `"${unknown.slice(0, 64)}" is not an audit action; the actions are ${AUDIT_ACTIONS.join(', ')}` });
    if (actions.length > AUDIT_ACTIONS.length) ctx.addIssue({ code: 'custom', message: `at most ${AUDIT_ACTIONS.length} actions` });
  })
  .transform((actions) => actions as AuditAction[]);
export const auditQuery = z
  .strictObject({
    // Paginated as OpenAI's lists are: newest first, the next page after the last one's `last_id`.
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    after: auditCursor.optional(),
    before: auditCursor.optional(),
    action: auditActions.optional(),
    actor: z.string().min(1).max(200).optional(),
    target: z.string().min(1).max(256).optional(),
    since: auditTime.optional(),
    until: auditTime.optional(),
    org: id.optional(),
    project: id.optional(),
  })
  .superRefine((query, ctx) => {
    if (query.after !== undefined && query.before !== undefined) ctx.addIssue({ code: 'custom', path: ['before'], message: 'give after (older entries) or before (newer entries), not both' });
    if (query.since !== undefined && query.until !== undefined && query.until <= query.since) ctx.addIssue({ code: 'custom', path: ['until'], message: 'must be after since' });
  });

// Budgets: the configuration's rules for each field (budgets.schema in libs/config), in the API's names.
/** Money travels as a decimal string, never a JSON number (a float). */
const budgetAmount = z
  .string({ error: 'must be a decimal string such as "250.00"' })
  .superRefine((value, ctx) => {
    for (const issue of budgetAmountSchema.safeParse(value).error?.issues ?? []) ctx.addIssue({ code: 'custom', message: issue.message });
  })
  .describe('The most that may be spent in one period, in the currency: a decimal string above 0, at most "9007199254.740991"');
export const budgetBody = z.strictObject({
  id,
  scope: budgetSchema.shape.scope,
  period: budgetSchema.shape.period,
  timezone: budgetSchema.shape.timezone,
  amount: budgetAmount,
  currency: budgetSchema.shape.currency,
  enforcement: budgetSchema.shape.enforcement,
  alert_thresholds: budgetSchema.shape.alertThresholds,
  forecast_thresholds: budgetSchema.shape.forecastThresholds,
});
export const budgetPatchBody = z.strictObject({
  amount: budgetAmount.optional(),
  enforcement: budgetEnforcementSchema.optional(),
  alert_thresholds: alertThresholdsSchema.optional(),
  forecast_thresholds: alertThresholdsSchema.optional(),
});
export const budgetListQuery = z.strictObject({
  org: id.optional(),
  team: id.optional(),
  project: id.optional(),
  key: z.string().min(1).max(128).optional(),
  source: z.enum(['config', 'api']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.string().min(1).max(128).optional(),
});

/**
 * A budget's spend is counted per budget id and period, in the budget's zone, for its scope's
 * traffic, in its currency: changing any of these would leave the period's spend behind (the budget
 * would start again from nothing, or count spend of other traffic or another currency).
 */
const FIXED_BUDGET_FIELDS = ['id', 'scope', 'period', 'timezone', 'currency'] as const;

/** A budget change: the fields it may touch, and a 400 explaining why for one that keys its spend. */
export function budgetPatchInput(body: unknown): z.infer<typeof budgetPatchBody> {
  if (typeof body === 'object' && body !== null) {
    const fixed = FIXED_BUDGET_FIELDS.find((field) => field in body);
    if (fixed) {
      throw new GatewayError(
        'bad_request',
        `A budget's ${fixed} cannot be changed: its spend is counted for its id, scope, period, time zone and currency, so changing ${fixed} would orphan the current period's spend (the budget would start again from nothing). Create a new budget and delete this one instead; only amount, enforcement, alert_thresholds and forecast_thresholds can be changed.`,
        { param: fixed, code: 'immutable_field' },
      );
    }
  }
  return parseInput(budgetPatchBody, body);
}

/** Parses admin input; the first problem becomes a 400 naming the parameter. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue?.path.length ? paramOf(issue.path) : undefined;
  const message = issue ? (issue.code === 'unrecognized_keys' ? `Unrecognized parameter(s): ${issue.keys.join(', ')}.` : `Invalid ${param ?? 'body'}: ${issue.message}.`) : 'Invalid request.';
  throw new GatewayError('bad_request', message, { param: issue?.code === 'unrecognized_keys' ? issue.keys[0] : param, code: 'invalid_value' });
}
