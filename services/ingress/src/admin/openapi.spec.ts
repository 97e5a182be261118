import { RequestMethod } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { billingv1 } from '@openrouter/contracts';
import type { BillingClient } from '../billing.client';
import { INTERCEPTORS_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { accountAt, forecastOf } from '@openrouter/budgets';
import { budgetSchema } from '@openrouter/config';
import { alertView, alertViewSchema, AlertsHttpController } from './alerts.http.controller';
import { adminBatchView, adminBatchViewSchema, AdminBatchesHttpController } from './batches.http.controller';
import type { BatchRecord } from '../batches/batch-record';
import { BudgetsHttpController, budgetView, budgetViewSchema } from './budgets.http.controller';
import { apiKeyViewSchema, KeysHttpController, view as keyView } from './keys.http.controller';
import { AUDIT_ACTIONS } from '../access/access.repository';
import { auditQuery } from './admin-input';
import { IdempotencyInterceptor } from './idempotency.interceptor';
import { ADMIN_OPENAPI, IDEMPOTENCY_KEY_PARAMETER } from './openapi';
import { EndUsersHttpController } from './end-users.http.controller';
import { ReportsHttpController } from './reports.http.controller';
import { ResponsesPurgeHttpController } from './responses-purge.http.controller';
import { RoutingHttpController } from './routing.http.controller';
import { AdminStatusHttpController } from './status.http.controller';
import { TenantsHttpController } from './tenants.http.controller';

const ROLES = 'openrouter:admin-roles';
const CONTROLLERS = [ResponsesPurgeHttpController, AdminBatchesHttpController, KeysHttpController, TenantsHttpController, BudgetsHttpController, ReportsHttpController, AdminStatusHttpController, AlertsHttpController, RoutingHttpController, EndUsersHttpController];

/** The admin routes that replay with an Idempotency-Key, as Nest serves them. */
function idempotentRoutes(): string[] {
  const out: string[] = [];
  for (const controller of CONTROLLERS) {
    const base = String(Reflect.getMetadata(PATH_METADATA, controller));
    for (const name of Object.getOwnPropertyNames(controller.prototype)) {
      const handler = (controller.prototype as unknown as Record<string, unknown>)[name];
      if (typeof handler !== 'function' || name === 'constructor') continue;
      const interceptors = (Reflect.getMetadata(INTERCEPTORS_METADATA, handler) as unknown[] | undefined) ?? [];
      if (!interceptors.includes(IdempotencyInterceptor)) continue;
      const path = String(Reflect.getMetadata(PATH_METADATA, handler));
      const method = String(RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as number]).toLowerCase();
      out.push(`${method} /${[base, path].map((p) => p.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/')}`.replace(/:([a-z]+)/g, '{$1}'));
    }
  }
  return out.sort();
}

/** Every admin route as Nest serves it: `get /admin/v1/keys/{id}` → the roles its guard lets through (`admin` always). */
function routes(): Map<string, string[] | undefined> {
  const out = new Map<string, string[] | undefined>();
  for (const controller of CONTROLLERS) {
    const base = String(Reflect.getMetadata(PATH_METADATA, controller));
    const classRoles = Reflect.getMetadata(ROLES, controller) as string[] | undefined;
    for (const name of Object.getOwnPropertyNames(controller.prototype)) {
      const handler = (controller.prototype as unknown as Record<string, unknown>)[name];
      if (typeof handler !== 'function' || name === 'constructor') continue;
      const path = Reflect.getMetadata(PATH_METADATA, handler) as string | undefined;
      if (path === undefined) continue;
      const method = String(RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as number]).toLowerCase();
      const full = `/${[base, path].map((p) => p.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/')}`.replace(/:([a-z]+)/g, '{$1}');
      const roles = (Reflect.getMetadata(ROLES, handler) as string[] | undefined) ?? classRoles;
      out.set(`${method} ${full}`, roles && [...new Set(['admin', ...roles])].sort());
    }
  }
  return out;
}

/** Every operation the OpenAPI document describes, with its `x-roles`. */
function documented(): Map<string, string[] | undefined> {
  const out = new Map<string, string[] | undefined>();
  for (const [path, operations] of Object.entries(ADMIN_OPENAPI.paths as Record<string, Record<string, { 'x-roles'?: string[] }>>)) {
    for (const [method, operation] of Object.entries(operations)) out.set(`${method} ${path}`, operation['x-roles'] && [...operation['x-roles']].sort());
  }
  return out;
}

describe('the admin OpenAPI document', () => {
  it('describes every admin route, and nothing else, with the roles that may call it', () => {
    const served = routes();
    // The document itself needs no key.
    served.delete('get /admin/v1/openapi.json');
    expect([...documented().keys()].sort()).toEqual([...served.keys()].sort());
    for (const [operation, roles] of served) expect([operation, documented().get(operation)]).toEqual([operation, roles]);
  });

  it('lists the budget routes', () => {
    expect([...routes().keys()].filter((r) => r.includes('/budgets')).sort()).toEqual([
      'delete /admin/v1/budgets/{id}',
      'get /admin/v1/budgets',
      'get /admin/v1/budgets/{id}',
      'patch /admin/v1/budgets/{id}',
      'post /admin/v1/budgets',
    ]);
  });

  it('describes a key as the API shows it, in every answer about keys', () => {
    const shownRecord = () => ({ id: 'key_1', prefix: 'sk-or-v1-abcde', name: 'ci', orgId: 'acme', teamId: '', projectId: 'search', appId: '', allowedModels: ['gpt-4o-mini'], limits: { rpm: 60 }, metadata: { owner: 'ci' }, tags: { env: 'prod' }, createdAt: '2025-06-14T12:00:00.000Z', revokedAt: '2025-06-15T12:00:00.000Z', source: 'issued' as const });
    const shown = keyView(shownRecord());
    expect(shown).toMatchObject({ object: 'api_key', team: null, project: 'search', app: null, expires_at: null, status: 'revoked' });
    expect(apiKeyViewSchema.safeParse({ ...shown, key: 'sk-or-v1-secret' }).success).toBe(true);
    const properties = Object.keys(ADMIN_OPENAPI.components.schemas.ApiKey.properties ?? {});
    expect(properties).toEqual([...Object.keys(shown), 'previous_key_expires_at', 'last_used_at', 'key']);
    // With when it was last used (never: null), as the key answers show it.
    expect(keyView({ ...shownRecord(), revokedAt: undefined }, Date.parse('2025-06-14T13:00:00.000Z'))).toMatchObject({ last_used_at: '2025-06-14T13:00:00.000Z' });
    expect(keyView(shownRecord(), null)).toMatchObject({ last_used_at: null });
    expect(apiKeyViewSchema.safeParse(keyView(shownRecord(), null)).success).toBe(true);
    // During a rotation's grace the view says until when the replaced secret works; never after it, nor once revoked.
    const rotated = { ...shown, id: 'key_1', prefix: 'sk-or-v1-abcde', name: 'ci', orgId: 'acme', teamId: '', projectId: 'search', appId: '', allowedModels: [], policy: undefined, limits: {}, metadata: {}, tags: {}, createdAt: '2025-06-14T12:00:00.000Z', source: 'issued' as const };
    const until = new Date(Date.now() + 60_000).toISOString();
    expect(keyView({ ...rotated, previousExpiresAt: until })).toMatchObject({ status: 'active', previous_key_expires_at: until });
    expect(keyView({ ...rotated, previousExpiresAt: '2025-06-14T12:00:00.000Z' })).not.toHaveProperty('previous_key_expires_at');
    expect(keyView({ ...rotated, previousExpiresAt: until, revokedAt: until })).not.toHaveProperty('previous_key_expires_at');
    for (const path of ['/admin/v1/keys', '/admin/v1/keys/{id}', '/admin/v1/keys/{id}/revoke', '/admin/v1/keys/{id}/rotate']) {
      const operations = Object.values((ADMIN_OPENAPI.paths as Record<string, Record<string, unknown>>)[path] ?? {});
      for (const operation of operations) expect(JSON.stringify(operation)).toContain('#/components/schemas/ApiKey');
    }
  });

  it('describes a budget as the API shows it, money as decimal strings', () => {
    const budget = budgetSchema.parse({ id: 'b', scope: { org: 'acme', key: 'k1' }, period: 'weekly', timezone: 'Europe/Berlin', amount: '2500.50', enforcement: 'soft' });
    const at = Date.parse('2025-06-14T12:00:00Z');
    const account = accountAt(budget, at);
    const view = budgetView({ entry: { budget, source: 'config' }, account, state: { spentMicros: 1_250_000, reservedMicros: 3 }, forecast: forecastOf(account, 1_250_000, at) });
    expect(view).toMatchObject({
      scope: { org: 'acme', team: null, project: null, key: 'k1' },
      amount: '2500.5',
      // The week from Monday 9 June, midnight in Berlin.
      current_period: { key: '2025-06-09', start: '2025-06-08T22:00:00.000Z', end: '2025-06-15T22:00:00.000Z' },
      spent: '1.25',
      reserved: '0.000003',
      remaining: '2499.249997',
      forecast_thresholds: [],
      // 5 days 14 hours of the week gone (134 of 168 hours): 1.25 × 168 / 134, rounded up.
      forecast: { spend: '1.567165', exceeds: false, exceeds_at: null },
      created_at: null,
    });
    expect(budgetViewSchema.safeParse(view).success).toBe(true);
    const schemas = ADMIN_OPENAPI.components.schemas;
    expect(Object.keys(schemas.Budget.properties ?? {})).toEqual(Object.keys(view));
    expect(Object.keys(schemas.CreateBudget.properties ?? {})).toEqual(['id', 'scope', 'period', 'timezone', 'amount', 'currency', 'enforcement', 'alert_thresholds', 'forecast_thresholds']);
    expect(Object.keys(schemas.BudgetChange.properties ?? {})).toEqual(['amount', 'enforcement', 'alert_thresholds', 'forecast_thresholds']);
    expect(JSON.stringify(ADMIN_OPENAPI.paths['/admin/v1/budgets'])).toContain('#/components/schemas/Budget');
  });

  it('describes a batch as the admin API shows it, whose it is and its usage', () => {
    const batch: BatchRecord = {
      id: 'batch_1',
      owner: 'acme/search',
      keyId: 'key_1',
      endpoint: '/v1/chat/completions',
      inputFileId: 'file-1',
      completionWindow: '24h',
      status: 'failed',
      createdAt: 1_700_000_000,
      expiresAt: 1_700_086_400,
      failedAt: 1_700_000_000,
      errors: [{ code: 'invalid_url', message: 'm', param: 'url', line: 3 }],
      requestCounts: { total: 2, completed: 1, failed: 1 },
      usage: { input: 10, cached: 2, output: 5, reasoning: 1 },
      metadata: { job: 'nightly' },
      tags: {},
    };
    const view = adminBatchView(batch);
    expect(view).toMatchObject({ id: 'batch_1', object: 'batch', org: 'acme', project: 'search', key_id: 'key_1', usage: { total_tokens: 15 } });
    expect(adminBatchViewSchema.safeParse(view).success).toBe(true);
    expect(Object.keys(ADMIN_OPENAPI.components.schemas.Batch.properties ?? {}).sort()).toEqual(Object.keys(view).sort());
    expect(adminBatchView({ ...batch, owner: 'acme/key:key_1' })).toMatchObject({ org: 'acme', project: null });
  });

  it('describes an alert as the API answers it', () => {
    const answered = alertView({
      at: '2026-12-05T10:00:00.000Z',
      alertId: 'circuits|deployment=mini-a',
      ruleId: 'circuits',
      ruleKind: 'circuit_open',
      severity: 'critical',
      status: 'firing',
      labels: { deployment: 'mini-a', provider: 'openai' },
      value: 1,
      threshold: 0,
      summary: 'Circuit open on 1 of 2 router replicas',
      startedAt: '2026-12-05T10:00:00.000Z',
      notified: true,
      channels: ['ops'],
    });
    expect(alertViewSchema.safeParse(answered).success).toBe(true);
    expect(Object.keys(ADMIN_OPENAPI.components.schemas.Alert.properties ?? {})).toEqual(Object.keys(answered));
    expect(JSON.stringify(ADMIN_OPENAPI.paths['/admin/v1/alerts'])).toContain('#/components/schemas/AlertList');
  });

  it('describes every field of an experiment report\'s arm and every column of its CSV, and which are null', async () => {
    const arm: billingv1.ExperimentArm = {
      arm: 'control',
      requests: 1,
      errors: 0,
      errorRate: '0',
      latencyP50Ms: 1,
      latencyP95Ms: 1,
      ttftP50Ms: 1,
      ttftP95Ms: 1,
      promptTokensPerRequest: '1',
      completionTokensPerRequest: '1',
      cost: '0.1',
      costPerRequest: '0.1',
      currency: 'USD',
      costs: [{ currency: 'USD', requests: 1, cost: '0.1', costPerRequest: '0.1' }],
    };
    const billing = { experiment: async (r: billingv1.ExperimentReportRequest) => ({ experiment: r.experiment, fromMs: 0, arms: [arm] }) } as unknown as BillingClient;
    const admin = { admin: { id: 'admin', role: 'admin' } } as unknown as FastifyRequest;
    const reply = { header: () => reply } as unknown as FastifyReply;
    const controller = new ReportsHttpController(billing);
    const json = (await controller.experiment(admin, 'exp-1', {}, reply)) as { arms: Array<Record<string, unknown>> };
    const csv = (await controller.experiment(admin, 'exp-1', { format: 'csv' }, reply)) as string;
    const operation = (ADMIN_OPENAPI.paths as Record<string, { get: { parameters: Array<{ name: string; description?: string }>; responses: Record<string, { description: string }> } }>)['/admin/v1/experiments/{id}/report']!.get;
    const described = operation.responses['200']?.description ?? '';
    const fields = [...Object.keys(json), ...Object.keys(json.arms[0] ?? {}), ...Object.keys((json.arms[0]?.cost_by_currency as Record<string, object>).USD ?? {}), ...(csv.split('\r\n')[0] ?? '').split(',')];
    for (const field of new Set(fields)) expect([field, described.includes(`\`${field}\``)]).toEqual([field, true]);
    expect(described).toMatch(/`currency`, `cost` and `cost_per_request` are `null`/);
    expect(operation.parameters.find((p) => p.name === 'from')?.description).toContain('usage.clickhouse.retentionDays');
  });

  it('lists every query parameter of the audit log, and the actions its filter accepts', () => {
    const operation = (ADMIN_OPENAPI.paths as Record<string, { get: { parameters: Array<{ name: string; schema: { items?: { enum?: string[] } } }> } }>)['/admin/v1/audit']!.get;
    expect(operation.parameters.map((p) => p.name).sort()).toEqual(Object.keys(auditQuery.shape).sort());
    expect(operation.parameters.find((p) => p.name === 'action')?.schema.items?.enum).toEqual([...AUDIT_ACTIONS]);
  });

  it('takes an Idempotency-Key on every creating write, rotation and PATCH, and documents it with its answers there only', () => {
    // A rotation creates a new secret: replayed like the creating writes, answered 200 (the key exists); so is a PATCH.
    const creating = ['/admin/v1/budgets', '/admin/v1/keys', '/admin/v1/keys/{id}/rotate', '/admin/v1/tenants', '/admin/v1/tenants/{org}/teams', '/admin/v1/tenants/{org}/teams/{team}/projects'].map((p) => `post ${p}`);
    const changing = ['/admin/v1/budgets/{id}', '/admin/v1/keys/{id}', '/admin/v1/tenants/{org}', '/admin/v1/tenants/{org}/teams/{team}', '/admin/v1/tenants/{org}/teams/{team}/projects/{project}'].map((p) => `patch ${p}`);
    const replaying = [...creating, ...changing].sort();
    expect(idempotentRoutes()).toEqual(replaying);
    // Every PATCH the API has replays.
    expect([...routes().keys()].filter((r) => r.startsWith('patch ')).sort()).toEqual([...changing].sort());
    const paths = ADMIN_OPENAPI.paths as Record<string, Record<string, { parameters?: unknown[]; responses: Record<string, unknown> }>>;
    for (const [path, operations] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const replays = replaying.includes(`${method} ${path}`);
        expect([path, method, (operation.parameters ?? []).includes(IDEMPOTENCY_KEY_PARAMETER)]).toEqual([path, method, replays]);
        if (replays) expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining([method === 'post' && !path.endsWith('/rotate') ? '201' : '200', '409', '422']));
      }
    }
  });
});
