import { z } from 'zod';
import type { Limits } from '@openrouter/config';
import { accountAt, type Budget } from '@openrouter/budgets';
import type { routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import type { AccessService } from '../access/access.service';
import { publicView, type ApiKeyRecord } from '../access/key-record';
import type { NetworkLevel } from '../access/network';
import type { ApplicableLimit, LimitScope } from '../access/rate-limiter';
import { budgetView, budgetViewSchema, type BudgetView } from '../admin/budgets.http.controller';
import { view as adminKeyView } from '../admin/keys.http.controller';
import { policyView, policyViewSchema } from '../admin/policy-view';
import type { BudgetService } from '../budgets/budget.service';

/*
 * What a traffic key can read of itself (`GET /v1/key`), in the admin API's snake_case names and
 * money format (its key, policy and budget views are reused). Never the key's hashes or secret,
 * and nothing of another key: only the caller's own record, its tenants' effective policy and
 * limits, and the budgets its requests are counted against.
 */

const perMinute = z.number().int().nullable();
const selfBudgetSchema = z.strictObject({
  id: z.string(),
  scope: budgetViewSchema.shape.scope,
  level: z.enum(['org', 'team', 'project', 'key']).describe('The narrowest field of the scope: whose spend the budget counts'),
  period: budgetViewSchema.shape.period,
  amount: budgetViewSchema.shape.amount,
  currency: z.string(),
  enforcement: budgetViewSchema.shape.enforcement,
  spent: budgetViewSchema.shape.spent.nullable().describe('null: the budget store cannot be read right now (unavailable)'),
  reserved: budgetViewSchema.shape.reserved.nullable(),
  remaining: budgetViewSchema.shape.remaining.nullable(),
  forecast: budgetViewSchema.shape.forecast.describe("The current period's spend projected to its end; null until enough of the period has passed, or while the budget store cannot be read"),
  resets_at: z.string().describe('When the current period ends and the budget starts from nothing again'),
  unavailable: z.boolean().describe('true: where the budget stands cannot be read right now (the budget store is unreachable)'),
});
export type SelfBudgetView = z.infer<typeof selfBudgetSchema>;

export const keySelfViewSchema = z.strictObject({
  object: z.literal('api_key'),
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  org: z.string(),
  team: z.string().nullable(),
  project: z.string().nullable(),
  app: z.string().nullable(),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  secret_expires_at: z.string().nullable().describe('When the secret presented stops being accepted: the end of a rotation grace for a replaced secret, else the key expiry'),
  allowed_models: z.array(z.string()),
  limits: z.strictObject({
    rpm: perMinute.describe('The tightest requests-per-minute limit its requests are charged to; null: none'),
    tpm: perMinute.describe('The tightest tokens-per-minute limit its requests are charged to; null: none'),
    scopes: z.array(z.strictObject({ scope: z.enum(['key', 'project', 'team', 'org']), rpm: perMinute, tpm: perMinute })),
    end_user: z
      .strictObject({ rpm: perMinute, tpm: perMinute })
      .nullable()
      .describe('What each end user (x-openrouter-user, else the body\'s user) may use within its project, on top of the limits above; null: no end-user limit'),
  }),
  policy: policyViewSchema
    .unwrap()
    .omit({ allowed_ips: true, store_responses: true })
    .nullable()
    .describe("The effective routing policy of its requests (its tenants' and its own, with guardrails.default); null: unrestricted"),
  store_responses: z
    .strictObject({
      allowed: z.boolean().describe('Whether the Responses API keeps its responses (when a request does not say store: false)'),
      off_at: z.enum(['org', 'team', 'project', 'key']).nullable().describe('The first of its levels whose policy turned storing off (policy.store_responses false); null: none did'),
    })
    .describe('Whether its Responses API requests may be stored, by its tenants\' and its own policy (docs/responses-api.md#stored-responses)'),
  network: z.strictObject({
    client_ip: z.string().nullable().describe('The address this request came from, as the gateway tells it (past the trusted proxies, ingress.trustedProxies)'),
    allowed_ips: z
      .array(z.strictObject({ level: z.enum(['org', 'team', 'project', 'key']), ranges: z.array(z.string()) }))
      .describe('The allow lists its requests must each pass, by the level that set them; empty: any address'),
  }),
  budgets: z.array(selfBudgetSchema),
});
export type KeySelfView = z.infer<typeof keySelfViewSchema>;

/** A budget with where it stands, or undefined when the ledger could not be read. */
export interface SelfBudget {
  view: BudgetView;
  unavailable: boolean;
}

/** Everything `GET /v1/key` shows, gathered: the key, its request context, its limits and budgets. */
export interface KeySelf {
  record: ApiKeyRecord;
  context: routerv1.RequestContext;
  limits: readonly ApplicableLimit[];
  /** Each end user's limits in its traffic (empty: none). */
  endUserLimits: Limits;
  budgets: readonly SelfBudget[];
  secretExpiresAt: Date | undefined;
  /** The address the request came from, and the allow lists of the key's levels. */
  address: string | undefined;
  network: readonly NetworkLevel[];
  /** The first of its levels whose policy turned storing responses off; undefined: none did. */
  responsesUnstoredBy: NetworkLevel['level'] | undefined;
}

/**
 * Gathers what a key sees of itself. Reads only: it charges no rate limit and reserves no budget.
 * The budgets are read from the ledger enforcement uses; when it cannot be read (Redis away), the
 * budgets that apply are still listed, marked unavailable.
 */
export class KeySelfService {
  constructor(
    private readonly access: AccessService,
    private readonly budgets: BudgetService,
    /** The budget service's clock, which places the budgets' periods. */
    private readonly clock: () => number = Date.now,
  ) {}

  async describe(record: ApiKeyRecord, presented: string, requestId: string, address: string | undefined): Promise<KeySelf> {
    // The request context a request of this key gets (no traffic attributes: they are per request).
    const context = await this.access.contextOf(record, requestId, {});
    // No model: model limits depend on the model a request names, not on the key.
    const limits = this.access.applicableLimits(record, context, '');
    const graceEnd = this.access.keys.graceEnd(presented, record);
    const expires = record.expiresAt === undefined ? undefined : new Date(record.expiresAt);
    const secretExpiresAt = graceEnd && expires ? new Date(Math.min(graceEnd.getTime(), expires.getTime())) : (graceEnd ?? expires);
    return { record, context, limits, endUserLimits: this.access.endUserLimits(record), budgets: await this.budgetsOf(context), secretExpiresAt, address, network: await this.access.networkOf(record), responsesUnstoredBy: await this.access.responsesUnstoredBy(record) };
  }

  private async budgetsOf(context: routerv1.RequestContext): Promise<SelfBudget[]> {
    const catalog = this.budgets.catalog;
    const applicable = catalog.book.applicable(context);
    const entryOf = (budget: Budget) => catalog.entry(budget.id) ?? { budget, source: 'config' as const };
    try {
      const standings = await this.budgets.standing(applicable);
      return applicable.flatMap((budget, i) => {
        const standing = standings[i];
        return standing ? [{ view: budgetView({ entry: entryOf(budget), account: standing.account, state: standing.state, forecast: standing.forecast }), unavailable: false }] : [];
      });
    } catch (error) {
      if (!(error instanceof GatewayError) || error.kind !== 'unavailable') throw error;
      // The budgets still apply and are still enforced (budgets.failMode): shown without their standing.
      const now = this.clock();
      return applicable.map((budget) => ({ view: budgetView({ entry: entryOf(budget), account: accountAt(budget, now), state: { spentMicros: 0, reservedMicros: 0 }, forecast: undefined }), unavailable: true }));
    }
  }
}

/** The answer of `GET /v1/key`. Built field by field: nothing of the record passes through unnamed. */
export function keySelfView(self: KeySelf): KeySelfView {
  const key = adminKeyView(publicView(self.record));
  const { context } = self;
  return {
    object: 'api_key',
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    org: key.org,
    // Where its requests are placed: a key naming only its project belongs to that project's team.
    team: context.teamId || null,
    project: context.projectId || null,
    app: key.app,
    created_at: key.created_at,
    expires_at: key.expires_at,
    secret_expires_at: self.secretExpiresAt?.toISOString() ?? null,
    allowed_models: key.allowed_models,
    limits: limitsView(self.limits, self.endUserLimits),
    policy: effectivePolicyView(context.policy),
    network: { client_ip: self.address ?? null, allowed_ips: self.network.map((l) => ({ level: l.level, ranges: [...l.ranges.ranges] })) },
    store_responses: { allowed: self.responsesUnstoredBy === undefined, off_at: self.responsesUnstoredBy ?? null },
    budgets: self.budgets.map(selfBudgetView),
  };
}

const SCOPES = ['key', 'project', 'team', 'org'] as const;

function limitsView(limits: readonly ApplicableLimit[], endUser: Limits): KeySelfView['limits'] {
  const of = (scope: LimitScope, kind: ApplicableLimit['kind']): number | null => limits.find((l) => l.scope === scope && l.kind === kind)?.perMinute ?? null;
  const tightest = (kind: ApplicableLimit['kind']): number | null => {
    const values = limits.filter((l) => l.kind === kind && l.scope !== 'model').map((l) => l.perMinute);
    return values.length > 0 ? Math.min(...values) : null;
  };
  return {
    rpm: tightest('requests'),
    tpm: tightest('tokens'),
    scopes: SCOPES.filter((scope) => limits.some((l) => l.scope === scope)).map((scope) => ({ scope, rpm: of(scope, 'requests'), tpm: of(scope, 'tokens') })),
    end_user: endUser.rpm || endUser.tpm ? { rpm: endUser.rpm ?? null, tpm: endUser.tpm ?? null } : null,
  };
}

/** The effective policy of a request context in the admin API's names (its guardrail digest is internal). */
export function effectivePolicyView(policy: routerv1.TenantPolicy | undefined): KeySelfView['policy'] {
  const view = policy
    ? policyView({
        ...(policy.providers && { providers: policy.providers.values }),
        excludeProviders: policy.excludeProviders,
        ...(policy.residency && { residency: policy.residency.values }),
        guardrails: policy.guardrails,
      })
    : null;
  if (!view) return null;
  // Addresses and storing are not routing matters: the levels' allow lists are under `network`, storing under `store_responses`.
  const { allowed_ips: _addresses, store_responses: _storing, ...routing } = view;
  return routing;
}

function selfBudgetView({ view, unavailable }: SelfBudget): SelfBudgetView {
  const scope = view.scope;
  return {
    id: view.id,
    scope,
    level: scope.key !== null ? 'key' : scope.project !== null ? 'project' : scope.team !== null ? 'team' : 'org',
    period: view.period,
    amount: view.amount,
    currency: view.currency,
    enforcement: view.enforcement,
    spent: unavailable ? null : view.spent,
    reserved: unavailable ? null : view.reserved,
    remaining: unavailable ? null : view.remaining,
    forecast: unavailable ? null : view.forecast,
    resets_at: view.current_period.end,
    unavailable,
  };
}
