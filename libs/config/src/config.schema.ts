import { z } from 'zod';
import { accessReferenceIssues, accessSchema } from './access.schema';
import { billingSchema, budgetsSchema } from './budgets.schema';
import { modelSchema, routingReferenceIssues, routingSchema } from './catalog.schema';
import { grpcAuthSchema, grpcTlsSchema } from './grpc.schema';
import { observabilitySchema } from './observability.schema';
import { address, flag, host, identifier, listenSchema, port, strictObject } from './primitives';
import { providerSchema } from './providers.schema';
import { usageSchema } from './usage.schema';

export * from './access.schema';
export * from './budgets.schema';
export * from './catalog.schema';
export * from './grpc.schema';
export * from './observability.schema';
export * from './pricing.schema';
export * from './primitives';
export * from './providers.schema';
export * from './usage.schema';

const httpOnly = strictObject({ http: listenSchema });

export const configSchema = strictObject({
  version: z.literal(1),
  gateway: strictObject({
    dataDir: z.string().min(1).default('.data'),
    simulator: strictObject({ enabled: flag.default(false), host, port: port.default(0), apiKey: z.string().default('') })
      .default({ enabled: false, host: '127.0.0.1', port: 0, apiKey: '' }),
  }).default({ dataDir: '.data', simulator: { enabled: false, host: '127.0.0.1', port: 0, apiKey: '' } }),
  log: strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
  ingress: strictObject({
    http: listenSchema,
    /**
     * A second listener for the internal network: `/health`, `/ready` and `/metrics`. Set, the
     * public listener (`http`) no longer serves `/metrics` (usage and cost figures of every tenant).
     */
    internalHttp: listenSchema.optional(),
    router: address,
    /** Billing's gRPC address, for the report endpoints of the admin API; unset: they answer 503. */
    billing: address.optional(),
    /** Development traffic key (embedded mode); empty means generate one at start-up, `disabled` none. */
    devKey: z.string().default(''),
    limits: strictObject({
      bodyBytes: z.number().int().positive().default(10 * 1024 * 1024),
      /** Deepest nesting of arrays and objects accepted in a JSON body or the x-openrouter-route header. */
      jsonDepth: z.number().int().positive().default(128),
      shutdownGraceMs: z.number().int().nonnegative().default(10_000),
    }).default({ bodyBytes: 10 * 1024 * 1024, jsonDepth: 128, shutdownGraceMs: 10_000 }),
  }),
  router: strictObject({
    grpc: listenSchema,
    http: listenSchema,
    /** Provider id → adapter address; `default` serves every provider not listed. */
    adapters: z.record(z.string(), address).refine((m) => Object.keys(m).length > 0, 'name at least one adapter address'),
  }),
  adapter: strictObject({
    grpc: listenSchema,
    http: listenSchema,
    /** Provider ids this instance serves; empty means all. */
    providers: z.array(z.string()).default([]),
    /**
     * Image URLs the adapter fetches itself (Gemini, Bedrock, Anthropic's http://): only public
     * addresses by default, so a client cannot make it call loopback, the private network or a
     * cloud metadata endpoint.
     */
    imageFetch: strictObject({
      /** Also fetch from loopback, private, link-local and other non-public addresses (tests, labs). */
      allowPrivateNetworks: flag.default(false),
      /** Host names fetched from whatever address they resolve to, e.g. an internal image store. */
      allowedHosts: z.array(z.string().min(1).transform((h) => h.toLowerCase())).default([]),
    }).prefault({}),
  }),
  billing: billingSchema,
  alerting: httpOnly,
  grpc: strictObject({
    /**
     * How long a gRPC server (router, adapter, billing) lets calls in flight finish at shutdown
     * before it cuts them: just under the orchestrator's grace (compose: stop_grace_period 20s).
     */
    shutdownGraceMs: z.number().int().nonnegative().default(15_000),
    /** Deadline of a unary call to the router (model list, embeddings, explain, health). */
    callTimeoutMs: z.number().int().positive().default(5_000),
    /** Deadline of a report call to billing: reports scan the usage store. */
    reportTimeoutMs: z.number().int().positive().default(60_000),
    auth: grpcAuthSchema,
    tls: grpcTlsSchema,
  }).prefault({}),
  providers: z.record(identifier, providerSchema),
  models: z.array(modelSchema).min(1),
  routing: routingSchema.prefault({}),
  usage: usageSchema.prefault({}),
  access: accessSchema.prefault({}),
  budgets: budgetsSchema.prefault({}),
  observability: observabilitySchema.prefault({}),
})
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    // Deployment ids name breakers, live stats, limits and price overrides, so they must be unique;
    // a deployment without an id is `<model id>#<index>`.
    const deploymentIds = new Map<string, string>();
    const adapters = config.router.adapters;
    config.models.forEach((model, i) => {
      if (seen.has(model.id)) ctx.addIssue({ code: 'custom', path: ['models', i, 'id'], message: `duplicate model id "${model.id}"` });
      seen.add(model.id);
      model.deployments.forEach((d, j) => {
        if (!(d.provider in config.providers)) {
          ctx.addIssue({ code: 'custom', path: ['models', i, 'deployments', j, 'provider'], message: `unknown provider "${d.provider}"` });
        } else if (!(d.provider in adapters) && !('default' in adapters)) {
          ctx.addIssue({ code: 'custom', path: ['models', i, 'deployments', j, 'provider'], message: `no adapter serves provider "${d.provider}": add router.adapters.${d.provider} or router.adapters.default` });
        }
        const id = d.id ?? `${model.id}#${j}`;
        const where = `models[${i}].deployments[${j}]`;
        const first = deploymentIds.get(id);
        if (first !== undefined) {
          const what = d.id === undefined ? `the default id "${id}" of this deployment` : `deployment id "${id}"`;
          ctx.addIssue({ code: 'custom', path: d.id === undefined ? ['models', i, 'deployments', j] : ['models', i, 'deployments', j, 'id'], message: `${what} is already used by ${first}; deployment ids must be unique` });
        } else deploymentIds.set(id, where);
      });
      // A price override under a name that is not one of the model's deployments would silently not apply.
      const own = model.deployments.map((d, j) => d.id ?? `${model.id}#${j}`);
      for (const key of Object.keys(model.pricing.deployments)) {
        if (!own.includes(key)) ctx.addIssue({ code: 'custom', path: ['models', i, 'pricing', 'deployments', key], message: `"${key}" is not a deployment of model "${model.id}" (its deployments: ${own.join(', ')})` });
      }
    });
    for (const id of config.adapter.providers) {
      if (!(id in config.providers)) ctx.addIssue({ code: 'custom', path: ['adapter', 'providers'], message: `unknown provider "${id}"` });
    }
    for (const issue of accessReferenceIssues(config.access)) ctx.addIssue({ code: 'custom', ...issue });
    for (const issue of routingReferenceIssues(config.routing, config.models, Object.keys(config.providers))) ctx.addIssue({ code: 'custom', ...issue });
    for (const issue of budgetCurrencyIssues(config.budgets.list, config.models)) ctx.addIssue({ code: 'custom', ...issue });
    const rollup = config.billing.rollup;
    if (rollup.reconcileIntervalMs > 0 && config.usage.clickhouse.retentionDays <= rollup.lookbackDays) {
      // The reconciliation compares each day with its raw events: once they expire it would erase the day's rollup.
      ctx.addIssue({
        code: 'custom',
        path: ['billing', 'rollup', 'lookbackDays'],
        message: `must be less than usage.clickhouse.retentionDays (${config.usage.clickhouse.retentionDays}): the rollup reconciliation needs each day's raw events, which are deleted after retentionDays`,
      });
    }
  });

export type GatewayConfig = z.infer<typeof configSchema>;

/**
 * A budget counts spend in its own currency and any model may be charged to it (budgets scope
 * callers, not models), so every price must be in that currency: the ledger adds costs without
 * converting, and the reconciliation reads the budget's currency only. Budgets created through the
 * admin API are checked by the same rule.
 */
export function budgetCurrencyIssues(
  budgets: ReadonlyArray<{ id: string; currency: string }>,
  models: ReadonlyArray<{ id: string; pricing: { currency: string; changes: ReadonlyArray<{ currency?: string | undefined }>; deployments: Record<string, { currency?: string | undefined; changes: ReadonlyArray<{ currency?: string | undefined }> }> } }>,
): Array<{ path: Array<string | number>; message: string }> {
  const priced = new Map<string, string>();
  for (const model of models) {
    const { pricing } = model;
    const currencies = [pricing.currency, ...pricing.changes.map((c) => c.currency), ...Object.values(pricing.deployments).flatMap((d) => [d.currency, ...d.changes.map((c) => c.currency)])];
    for (const currency of currencies) if (currency !== undefined && !priced.has(currency)) priced.set(currency, model.id);
  }
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  budgets.forEach((budget, i) => {
    for (const [currency, model] of priced) {
      if (currency === budget.currency) continue;
      issues.push({
        path: ['budgets', 'list', i, 'currency'],
        message: `budget "${budget.id}" is in ${budget.currency} but model "${model}" is priced in ${currency}: every price must be in the currency of the budgets, which add costs without converting them`,
      });
      break;
    }
  });
  return issues;
}
