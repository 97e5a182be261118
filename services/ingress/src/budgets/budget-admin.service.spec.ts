import { budgetSchema, type BudgetConfig } from '@openrouter/config';
import { accountAt, BudgetCatalog, MemoryBudgetLedger, MemoryBudgetStore, type BudgetAudit, type BudgetEventPublisher, type BudgetLedger, type BudgetStore } from '@openrouter/budgets';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { PriceBook } from '@openrouter/usage';
import type { Actor } from '../access/access.service';
import type { PublicApiKey } from '../access/key-record';
import { TenantDirectory } from '../access/tenant-directory';
import { budgetBody, budgetPatchInput, parseInput } from '../admin/admin-input';
import { budgetView } from '../admin/budgets.http.controller';
import { ingressTestConfig } from '../test-config.testing';
import { BudgetAdminService, type BudgetScopeDirectory } from './budget-admin.service';
import { BudgetService } from './budget.service';

const NOW = Date.parse('2025-06-14T12:00:00Z');
const admin: Actor = { id: 'ops', role: 'admin' };
const acmeAdmin: Actor = { id: 'acme-ops', role: 'admin', org: 'acme' };
const searchAdmin: Actor = { id: 'search-ops', role: 'admin', org: 'acme', project: 'search' };
const tenant = { orgId: 'acme', teamId: 't', projectId: 'search', keyId: 'k1' };
// Model `m`: 1 micro-unit per input token, 2 per output token. "hi" pads to 22 prompt tokens: with
// max_tokens 100 the worst case is 222 micro-units.
const chat = { model: 'm', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };

function budget(fields: Record<string, unknown>): BudgetConfig {
  return budgetSchema.parse({ period: 'daily', amount: '1', ...fields });
}

// The tenants budgets name: acme's search and ads in the platform team, vision in labs.
const orgs = [{ id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }] }, { id: 'labs', projects: [{ id: 'vision' }] }] }, { id: 'initech' }, { id: 'other' }];
// A key from the configuration that names only its project (its team is the project's), and keys issued at run time.
const configKeys = [
  { id: 'search-config', hash: 'a'.repeat(64), org: 'acme', project: 'search' },
  { id: 'ads-config', hash: 'b'.repeat(64), org: 'acme', project: 'ads' },
  { id: 'initech-config', hash: 'c'.repeat(64), org: 'initech' },
];
const issued: PublicApiKey[] = [
  { id: 'key_search', prefix: '', name: '', orgId: 'acme', teamId: 'platform', projectId: 'search', appId: '', allowedModels: [], limits: {}, metadata: {}, tags: {}, createdAt: '', source: 'issued' },
  { id: 'key_initech', prefix: '', name: '', orgId: 'initech', teamId: '', projectId: '', appId: '', allowedModels: [], limits: {}, metadata: {}, tags: {}, createdAt: '', source: 'issued' },
  { id: 'key_revoked', prefix: '', name: '', orgId: 'acme', teamId: 'platform', projectId: 'search', appId: '', allowedModels: [], limits: {}, metadata: {}, tags: {}, createdAt: '', source: 'issued', revokedAt: '2026-01-01T00:00:00.000Z' },
  { id: 'key_expired', prefix: '', name: '', orgId: 'acme', teamId: 'platform', projectId: 'search', appId: '', allowedModels: [], limits: {}, metadata: {}, tags: {}, createdAt: '', source: 'issued', expiresAt: '2026-01-01T00:00:00.000Z' },
];

/** The access service as budgets see it: the tenants, and the issued keys (404 as the access service answers one). */
function directoryOf(tenants: TenantDirectory, reloadTenants: () => Promise<boolean> = async () => true): BudgetScopeDirectory {
  return {
    tenants,
    reloadTenants,
    getKey: async (_actor, id) => {
      const key = issued.find((k) => k.id === id);
      if (!key) throw new GatewayError('not_found', `No key has the id "${id}".`, { param: 'id' });
      return key;
    },
  };
}

function setup(
  options: { ledger?: BudgetLedger; models?: unknown[]; budgets?: Record<string, unknown>; store?: MemoryBudgetStore; audit?: BudgetAudit[]; view?: (store: BudgetStore) => BudgetStore; clock?: () => number; events?: BudgetEventPublisher } = {},
) {
  const configured = [{ id: 'acme-monthly', scope: { org: 'acme' }, period: 'monthly', amount: '100', enforcement: 'soft' }];
  const config = ingressTestConfig({ access: { orgs, keys: configKeys }, budgets: { list: configured, ...options.budgets }, ...(options.models ? { models: options.models } : {}) });
  const audit: BudgetAudit[] = options.audit ?? [];
  const shared = options.store ?? new MemoryBudgetStore((entry) => audit.push(entry));
  // What this replica sees of the shared store (`view`: e.g. one whose announcements never reach it).
  const store = options.view ? options.view(shared) : shared;
  const catalog = new BudgetCatalog(config.budgets.list, store);
  const events: BudgetEventPublisher = options.events ?? { publish: async () => undefined, close: async () => undefined };
  const clock = options.clock ?? (() => NOW);
  const ledger = options.ledger ?? new MemoryBudgetLedger(clock);
  const logger = createLogger('test', 'silent');
  const budgets = new BudgetService(config, PriceBook.fromModels(config.models), ledger, events, logger, clock, undefined, catalog);
  const service = new BudgetAdminService(budgets, store, config, logger, clock, [0, 0]);
  service.checkScopesIn(directoryOf(new TenantDirectory(config.access.orgs)));
  return { service, budgets, catalog, store: shared, audit, ledger, logger };
}

/** The store as a replica sees it whose announcements are lost: it learns of changes only by reloading. */
function deaf(store: BudgetStore): BudgetStore {
  return {
    ready: (ms) => store.ready(ms),
    list: () => store.list(),
    update: (id, change, audit) => store.update(id, change, audit),
    version: () => store.version(),
    publish: () => store.publish(),
    onChange: () => undefined,
    close: () => store.close(),
  };
}

async function failure(promise: Promise<unknown>): Promise<GatewayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof GatewayError)) throw new Error(`expected a GatewayError, got ${String(error)}`);
  return error;
}

function thrown(run: () => unknown): GatewayError {
  try {
    run();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a GatewayError');
}

describe('BudgetAdminService', () => {
  it('creates a budget that enforcement applies at once, shows where it stands, and audits the change', async () => {
    const { service, budgets, audit } = setup();
    const created = await service.create(admin, budget({ id: 'search-daily', scope: { org: 'acme', project: 'search' }, amount: '0.0005' }));
    expect(budgetView(created)).toMatchObject({
      object: 'budget',
      id: 'search-daily',
      source: 'api',
      scope: { org: 'acme', team: null, project: 'search', key: null },
      amount: '0.0005',
      currency: 'USD',
      enforcement: 'hard',
      alert_thresholds: [50, 80, 100],
      current_period: { key: '2025-06-14', start: '2025-06-14T00:00:00.000Z', end: '2025-06-15T00:00:00.000Z' },
      spent: '0',
      reserved: '0',
      remaining: '0.0005',
      created_at: '2025-06-14T12:00:00.000Z',
    });
    expect(audit).toEqual([expect.objectContaining({ actor: 'ops', action: 'budget.create', target: 'search-daily', details: expect.objectContaining({ org: 'acme', project: 'search', amount: '0.0005', role: 'admin' }) })]);
    // 500 micro-units hold two worst cases of 222: the third is refused.
    const first = await budgets.reserve({ requestId: 'a', tenant, body: { ...chat } });
    await budgets.reserve({ requestId: 'b', tenant, body: { ...chat } });
    await expect(budgets.reserve({ requestId: 'c', tenant, body: { ...chat } })).rejects.toMatchObject({ kind: 'budget_exceeded' });
    await first?.settle('0.0001');
    expect(budgetView(await service.get(admin, 'search-daily'))).toMatchObject({ spent: '0.0001', reserved: '0.000222', remaining: '0.000178' });
  });

  it('applies a raised amount to the next request, keeps the period spend, and records what changed', async () => {
    const { service, budgets, audit } = setup();
    await service.create(admin, budget({ id: 'tight', scope: { org: 'acme' }, amount: '0.0003' }));
    const held = await budgets.reserve({ requestId: 'a', tenant, body: { ...chat } });
    await held?.settle('0.0002');
    await expect(budgets.reserve({ requestId: 'b', tenant, body: { ...chat } })).rejects.toMatchObject({ kind: 'budget_exceeded' });
    const raised = await service.update(admin, 'tight', { amount: '0.01', alertThresholds: [90, 10, 90] });
    expect(budgetView(raised)).toMatchObject({ amount: '0.01', spent: '0.0002', remaining: '0.0098', alert_thresholds: [10, 90], created_at: '2025-06-14T12:00:00.000Z' });
    await expect(budgets.reserve({ requestId: 'c', tenant, body: { ...chat } })).resolves.toBeDefined();
    expect(audit.at(-1)).toMatchObject({ action: 'budget.update', target: 'tight', details: { org: 'acme', changes: { amount: { from: '0.0003', to: '0.01' }, alert_thresholds: { from: [50, 80, 100], to: [10, 90] } } } });
    // Soft: counted, never refused.
    await service.update(admin, 'tight', { amount: '0.0001', enforcement: 'soft' });
    await expect(budgets.reserve({ requestId: 'd', tenant, body: { ...chat } })).resolves.toBeDefined();
  });

  it('deletes a created budget: requests stop counting against it, and the deletion is audited', async () => {
    const { service, budgets, catalog, audit } = setup();
    await service.create(admin, budget({ id: 'gone', scope: { org: 'acme' }, amount: '0.0001' }));
    await expect(budgets.reserve({ requestId: 'a', tenant, body: { ...chat } })).rejects.toMatchObject({ kind: 'budget_exceeded' });
    await expect(service.remove(admin, 'gone')).resolves.toEqual({ id: 'gone' });
    expect(catalog.entry('gone')).toBeUndefined();
    // Only the configured soft budget is left.
    expect((await budgets.reserve({ requestId: 'b', tenant, body: { ...chat } }))?.accounts.map((a) => a.budget.id)).toEqual(['acme-monthly']);
    expect(audit.at(-1)).toMatchObject({ action: 'budget.delete', target: 'gone', details: { org: 'acme' } });
    expect(await failure(service.get(admin, 'gone'))).toMatchObject({ kind: 'not_found', code: 'not_found', param: 'id' });
    expect(await failure(service.remove(admin, 'gone'))).toMatchObject({ kind: 'not_found', code: 'not_found' });
  });

  it('refuses to change or delete a configured budget, saying where it is changed', async () => {
    const { service, audit } = setup();
    for (const attempt of [service.update(admin, 'acme-monthly', { amount: '5' }), service.remove(admin, 'acme-monthly')]) {
      const error = await failure(attempt);
      expect(error).toMatchObject({ kind: 'permission_denied', code: 'budget_in_configuration' });
      expect(error.message).toContain('configuration file');
    }
    expect(audit).toEqual([]);
  });

  it('keeps ids unique across the configuration and the API', async () => {
    const { service } = setup();
    expect(await failure(service.create(admin, budget({ id: 'acme-monthly', scope: { org: 'acme' } })))).toMatchObject({ kind: 'conflict', code: 'already_exists', param: 'id' });
    await service.create(admin, budget({ id: 'once', scope: { org: 'acme' } }));
    expect(await failure(service.create(admin, budget({ id: 'once', scope: { org: 'other' } })))).toMatchObject({ code: 'already_exists' });
  });

  it('starts a budget created again under a deleted id from nothing, in another org or the same, and gives a taken id one answer wherever it is taken', async () => {
    const { service, budgets, ledger } = setup();
    const initech = { orgId: 'initech', teamId: 't', projectId: 'p', keyId: 'k9' };
    await service.create(admin, budget({ id: 'team-daily', scope: { org: 'acme' }, amount: '0.01' }));
    const spent = await budgets.reserve({ requestId: 'a', tenant, body: { ...chat } });
    await spent?.settle('0.004');
    expect(budgetView(await service.get(admin, 'team-daily'))).toMatchObject({ spent: '0.004' });

    // Another org takes the id over once acme deleted it: none of acme's spend is shown or counted.
    await service.remove(admin, 'team-daily');
    const taken = await service.create({ id: 'initech-ops', role: 'admin', org: 'initech' }, budget({ id: 'team-daily', scope: { org: 'initech' }, amount: '0.0003' }));
    expect(budgetView(taken)).toMatchObject({ scope: { org: 'initech' }, spent: '0', remaining: '0.0003' });
    // 300 micro-units hold one worst case of 222: acme's 4,000 spent would have refused it.
    await expect(budgets.reserve({ requestId: 'b', tenant: initech, body: { ...chat } })).resolves.toBeDefined();

    // Deleted and created again by its own org: a new budget, from nothing, with crossings of its own.
    await service.remove(admin, 'team-daily');
    const again = await service.create(admin, budget({ id: 'team-daily', scope: { org: 'acme' }, amount: '0.01' }));
    expect(budgetView(again)).toMatchObject({ spent: '0', reserved: '0' });
    expect(again.account.line.account).toMatch(/^team-daily~[0-9a-f]{16}:2025-06-14$/);
    // The acme spend of the first one stays where it was, under that creation's own account.
    expect((await ledger.read([again.account.line.account]))[0]?.spentMicros).toBe(0);
    // A configured budget keeps its account, and its running spend across the upgrade.
    expect(accountAt(budget({ id: 'acme-monthly', scope: { org: 'acme' }, period: 'monthly' }), NOW).line.account).toBe('acme-monthly:2025-06');

    // The id is taken, by a budget the caller cannot see or by one it can: one answer, naming no scope.
    const outside = await failure(service.create({ id: 'initech-ops', role: 'admin', org: 'initech' }, budget({ id: 'team-daily', scope: { org: 'initech' } })));
    const inside = await failure(service.create(acmeAdmin, budget({ id: 'team-daily', scope: { org: 'acme' } })));
    expect(outside).toMatchObject({ kind: 'conflict', code: 'already_exists', param: 'id' });
    expect([outside.kind, outside.code, outside.param, outside.message]).toEqual([inside.kind, inside.code, inside.param, inside.message]);
    expect(outside.message).not.toContain('acme');
    expect(await failure(service.get({ id: 'initech-ops', role: 'admin', org: 'initech' }, 'team-daily'))).toMatchObject({ kind: 'not_found', code: 'not_found' });
  });

  it("changes or deletes through a replica whose catalog is stale only the budget its scope check saw, and audits what was stored", async () => {
    const audit: BudgetAudit[] = [];
    const store = new MemoryBudgetStore((entry) => audit.push(entry));
    const a = setup({ store, audit });
    // Replica b hears no announcement: it knows only what it loaded itself.
    const b = setup({ store, audit, view: deaf });
    await a.service.create(admin, budget({ id: 'shared-id', scope: { org: 'acme' }, amount: '1' }));
    await b.catalog.reload();
    expect(b.catalog.entry('shared-id')?.budget.scope).toEqual({ org: 'acme' });

    // Deleted, then taken by initech, on replica a: b still holds acme's.
    await a.service.remove(admin, 'shared-id');
    await a.service.create(admin, budget({ id: 'shared-id', scope: { org: 'initech' }, amount: '7' }));
    expect(b.catalog.entry('shared-id')?.budget.scope).toEqual({ org: 'acme' });
    const written = audit.length;
    expect(await failure(b.service.update(acmeAdmin, 'shared-id', { amount: '0.0001' }))).toMatchObject({ kind: 'not_found', code: 'not_found', param: 'id' });
    expect(await failure(b.service.remove(acmeAdmin, 'shared-id'))).toMatchObject({ kind: 'not_found', code: 'not_found', param: 'id' });
    expect(await store.list()).toEqual([expect.objectContaining({ id: 'shared-id', scope: { org: 'initech' }, amount: '7' })]);
    expect(audit).toHaveLength(written);

    // Changed on a, b's copy stale: b's change records the amount stored, not the one it last loaded.
    await a.service.create(admin, budget({ id: 'acme-weekly', scope: { org: 'acme' }, amount: '1' }));
    await b.catalog.reload();
    await a.service.update(admin, 'acme-weekly', { amount: '5' });
    expect(b.catalog.entry('acme-weekly')?.budget.amount).toBe('1');
    const changed = await b.service.update(acmeAdmin, 'acme-weekly', { amount: '9' });
    expect(changed.entry.budget.amount).toBe('9');
    expect(audit.at(-1)).toMatchObject({ action: 'budget.update', details: { org: 'acme', changes: { amount: { from: '5', to: '9' } } } });
    await a.service.update(admin, 'acme-weekly', { amount: '3' });
    await b.service.remove(acmeAdmin, 'acme-weekly');
    expect(audit.at(-1)).toMatchObject({ action: 'budget.delete', details: { org: 'acme', amount: '3' } });
  });

  it('finds a budget created on another replica before this one heard of it: GET, PATCH and DELETE reload the catalog once before a 404', async () => {
    const store = new MemoryBudgetStore(() => undefined);
    const a = setup({ store });
    // Replica b hears no announcement, and its periodic check has not come round yet.
    const b = setup({ store, view: deaf });
    await a.service.create(admin, budget({ id: 'fresh', scope: { org: 'acme' }, amount: '1' }));
    expect(b.catalog.entry('fresh')).toBeUndefined();
    expect((await b.service.get(acmeAdmin, 'fresh')).entry.budget.amount).toBe('1');

    await a.service.create(admin, budget({ id: 'fresh-patch', scope: { org: 'acme' }, amount: '1' }));
    expect((await b.service.update(acmeAdmin, 'fresh-patch', { amount: '2' })).entry.budget.amount).toBe('2');

    await a.service.create(admin, budget({ id: 'fresh-delete', scope: { org: 'acme' }, amount: '1' }));
    await expect(b.service.remove(acmeAdmin, 'fresh-delete')).resolves.toEqual({ id: 'fresh-delete' });
    expect((await store.list()).map((s) => s.id).sort()).toEqual(['fresh', 'fresh-patch']);

    // Still missing after the reload, or out of the actor's scope: 404 as before.
    expect(await failure(b.service.get(acmeAdmin, 'never-made'))).toMatchObject({ kind: 'not_found', code: 'not_found', param: 'id' });
    await a.service.create(admin, budget({ id: 'initech-fresh', scope: { org: 'initech' }, amount: '1' }));
    expect(await failure(b.service.update(acmeAdmin, 'initech-fresh', { amount: '2' }))).toMatchObject({ kind: 'not_found', code: 'not_found', param: 'id' });
  });

  it('answers 503 rather than 404 for a budget it has not loaded while the store cannot be read', async () => {
    const store = new MemoryBudgetStore(() => undefined);
    const { service } = setup({ store, view: (shared) => ({ ...deaf(shared), list: () => Promise.reject(new Error('connection lost')) }) });
    expect(await failure(service.get(admin, 'somewhere'))).toMatchObject({ kind: 'unavailable', code: 'budget_store_unavailable' });
  });

  it('refuses a scope no request can come from, naming the field: each field is matched exactly, so the budget would never apply', async () => {
    const { service, store } = setup();
    const refused = async (scope: Record<string, string>) => failure(service.create(admin, budget({ id: 'never', scope })));
    expect(await refused({ org: 'nosuchorg' })).toMatchObject({ kind: 'bad_request', code: 'invalid_value', param: 'scope.org', message: 'Invalid scope.org: the organisation "nosuchorg" does not exist.' });
    expect(await refused({ org: 'acme', project: 'serach' })).toMatchObject({ code: 'invalid_value', param: 'scope.project', message: 'Invalid scope.project: unknown project "serach" in "acme".' });
    expect(await refused({ org: 'acme', team: 'labs', project: 'search' })).toMatchObject({ code: 'invalid_value', param: 'scope.project' });
    expect(await refused({ org: 'acme', team: 'lab' })).toMatchObject({ code: 'invalid_value', param: 'scope.team' });
    expect(await refused({ org: 'acme', key: 'key_doesnotexist' })).toMatchObject({ code: 'invalid_value', param: 'scope.key', message: 'Invalid scope.key: the key "key_doesnotexist" does not exist.' });
    expect(await refused({ org: 'acme', key: 'key_initech' })).toMatchObject({ param: 'scope.key', message: expect.stringContaining('belongs to the organisation "initech"') });
    expect(await refused({ org: 'acme', project: 'ads', key: 'key_search' })).toMatchObject({ param: 'scope.key', message: expect.stringContaining('belongs to the project "search"') });
    expect(await refused({ org: 'acme', team: 'labs', key: 'search-config' })).toMatchObject({ param: 'scope.key', message: expect.stringContaining('belongs to the team "platform"') });
    // A scoped admin key learns nothing of a configured key outside its scope: it does not exist.
    const notThere = (key: string) => ({ param: 'scope.key', message: `Invalid scope.key: the key "${key}" does not exist.` });
    expect(await failure(service.create(acmeAdmin, budget({ id: 'never', scope: { org: 'acme', key: 'initech-config' } })))).toMatchObject(notThere('initech-config'));
    expect(await failure(service.create(searchAdmin, budget({ id: 'never', scope: { org: 'acme', project: 'search', key: 'ads-config' } })))).toMatchObject(notThere('ads-config'));
    expect(await failure(service.create(searchAdmin, budget({ id: 'never', scope: { org: 'acme', project: 'search', key: 'dev' } })))).toMatchObject(notThere('dev'));
    expect(await refused({ org: 'acme', project: 'search', key: 'ads-config' })).toMatchObject({ param: 'scope.key', message: expect.stringContaining('belongs to the project "ads"') });
    // A key that can make no more requests: revoked, or past its expiry.
    expect(await refused({ org: 'acme', key: 'key_revoked' })).toMatchObject({ code: 'invalid_value', param: 'scope.key', message: 'Invalid scope.key: the key "key_revoked" is revoked: no request can come from it, so the budget would never apply.' });
    expect(await refused({ org: 'acme', key: 'key_expired' })).toMatchObject({ code: 'invalid_value', param: 'scope.key', message: expect.stringContaining('the key "key_expired" has expired') });
    expect(await store.list()).toEqual([]);

    // A project without its team, a team alone, issued and configured keys where they sit, the development key's bare org.
    for (const [i, scope] of [
      { org: 'acme', project: 'search' },
      { org: 'acme', team: 'labs' },
      { org: 'acme', team: 'platform', project: 'search', key: 'key_search' },
      { org: 'acme', team: 'platform', key: 'search-config' },
      { org: 'default', key: 'dev' },
    ].entries()) {
      await expect(service.create(admin, budget({ id: `ok-${i}`, scope }))).resolves.toBeDefined();
    }
  });

  it('looks again after reloading the tenants before refusing a scope: an org added a moment ago on another replica', async () => {
    const { service } = setup();
    // This replica's directory has not heard of "globex" yet; reloading the tenants brings it.
    const configured = ingressTestConfig({ access: { orgs: [...orgs, { id: 'globex' }] } }).access.orgs;
    let tenants = new TenantDirectory(configured.filter((o) => o.id !== 'globex'));
    const reloaded = new TenantDirectory(configured);
    const directory = directoryOf(tenants, async () => {
      tenants = reloaded;
      return true;
    });
    service.checkScopesIn({ ...directory, get tenants() { return tenants; } });
    await expect(service.create(admin, budget({ id: 'globex-monthly', scope: { org: 'globex' } }))).resolves.toBeDefined();
  });

  it('answers a change as made when it was stored but its announcement failed, and announces it again in the background', async () => {
    let failures = 2;
    let published = 0;
    const flaky = (store: BudgetStore): BudgetStore => ({
      ...deaf(store),
      onChange: (listener) => store.onChange(listener),
      publish: async () => {
        if (failures > 0) {
          failures--;
          throw new GatewayError('unavailable', 'The budget store (Redis) cannot be reached right now. Please retry.', { code: 'budget_store_unavailable' });
        }
        published++;
        await store.publish();
      },
    });
    const { service, budgets, audit, catalog } = setup({ view: flaky });
    const created = await service.create(admin, budget({ id: 'late-news', scope: { org: 'acme' }, amount: '0.0001' }));
    expect(budgetView(created)).toMatchObject({ id: 'late-news', spent: '0', remaining: '0.0001' });
    expect(audit.at(-1)).toMatchObject({ action: 'budget.create', target: 'late-news' });
    // This replica enforces it at once.
    expect(catalog.entry('late-news')).toBeDefined();
    await expect(budgets.reserve({ requestId: 'a', tenant, body: { ...chat } })).rejects.toMatchObject({ kind: 'budget_exceeded' });
    // The first announcement and its first retry fail; the second retry gets through.
    for (let i = 0; i < 20 && published === 0; i++) await new Promise((done) => setTimeout(done, 5));
    expect(published).toBe(1);
    // A retried POST is what the client would have sent after a 503: the budget is there.
    expect(await failure(service.create(admin, budget({ id: 'late-news', scope: { org: 'acme' } })))).toMatchObject({ code: 'already_exists' });
    service.close();
  });

  it('caps the budgets one org may create (budgets.maxPerOrg), naming the limit; configured budgets do not count', async () => {
    const { service } = setup({ budgets: { maxPerOrg: 2 } });
    await service.create(admin, budget({ id: 'one', scope: { org: 'acme' } }));
    await service.create(acmeAdmin, budget({ id: 'two', scope: { org: 'acme', project: 'search' } }));
    const error = await failure(service.create(acmeAdmin, budget({ id: 'three', scope: { org: 'acme' } })));
    expect(error).toMatchObject({ kind: 'bad_request', code: 'budget_limit_reached', param: 'scope.org' });
    expect(error.message).toContain('budgets.maxPerOrg allows 2');
    // Another org has room of its own; a deletion makes room again.
    await expect(service.create(admin, budget({ id: 'theirs', scope: { org: 'initech' } }))).resolves.toBeDefined();
    await service.remove(admin, 'one');
    await expect(service.create(acmeAdmin, budget({ id: 'three', scope: { org: 'acme' } }))).resolves.toBeDefined();
  });

  it('refuses a budget in another currency than the prices, naming the field', async () => {
    const { service } = setup();
    const error = await failure(service.create(admin, budget({ id: 'euro', scope: { org: 'acme' }, currency: 'EUR' })));
    expect(error).toMatchObject({ kind: 'bad_request', param: 'currency', code: 'invalid_value' });
    expect(error.message).toContain('priced in USD');
  });

  it('a ledger that cannot be read is the budget store being unavailable (503), not an internal error', async () => {
    const ledger = new MemoryBudgetLedger(() => NOW);
    ledger.standing = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379'));
    const { service } = setup({ ledger });
    const error = await failure(service.get(admin, 'acme-monthly'));
    expect(error).toMatchObject({ kind: 'unavailable', code: 'budget_store_unavailable' });
    expect(error.message).toContain('budget store');
  });

  describe('forecasts', () => {
    // A budget of 1 a day for acme, created at midnight; the day is counted from its creation.
    const DAY = 86_400_000;
    const MIDNIGHT = Date.parse('2025-06-14T00:00:00Z');

    it('shows no forecast before budgets.forecast.minElapsedFraction of the period has passed, then the projection of the settled spend', async () => {
      const clock = { now: MIDNIGHT };
      const { service, budgets } = setup({ clock: () => clock.now, budgets: { forecast: { minElapsedFraction: 0.25 } } });
      await service.create(admin, budget({ id: 'daily', scope: { org: 'acme' }, amount: '0.001', forecastThresholds: [100] }));
      clock.now = MIDNIGHT + DAY / 8;
      const held = await budgets.reserve({ requestId: 'a', tenant, body: { ...chat } });
      await held?.settle('0.0002');
      // An eighth of the day: too early to project.
      expect(budgetView(await service.get(admin, 'daily'))).toMatchObject({ spent: '0.0002', forecast: null, forecast_thresholds: [100] });
      // A quarter: 0.0002 in six hours is 0.0008 a day, under the amount.
      clock.now = MIDNIGHT + DAY / 4;
      expect(budgetView(await service.get(admin, 'daily')).forecast).toEqual({ spend: '0.0008', exceeds: false, exceeds_at: null });
      // The amount lowered to 0.0005: reached at 15:00 on the run rate.
      await service.update(admin, 'daily', { amount: '0.0005' });
      expect(budgetView(await service.get(admin, 'daily')).forecast).toEqual({ spend: '0.0008', exceeds: true, exceeds_at: '2025-06-14T15:00:00.000Z' });
      // The list shows it too, and the configured monthly budget, which counted the same spend from
      // its period start: 0.0002 over 13.25 days of 30 is 0.000452830…, rounded up.
      const listed = (await service.list(admin, { limit: 10 })).data.map(budgetView);
      expect(listed.map((b) => [b.id, b.forecast])).toEqual([
        ['acme-monthly', { spend: '0.000453', exceeds: false, exceeds_at: null }],
        ['daily', { spend: '0.0008', exceeds: true, exceeds_at: '2025-06-14T15:00:00.000Z' }],
      ]);
    });

    it('shows a forecast of nothing for a budget nothing was spent against', async () => {
      const clock = { now: MIDNIGHT };
      const { service } = setup({ clock: () => clock.now });
      await service.create(admin, budget({ id: 'idle', scope: { org: 'acme' } }));
      clock.now = MIDNIGHT + DAY / 2;
      expect(budgetView(await service.get(admin, 'idle')).forecast).toEqual({ spend: '0', exceeds: false, exceeds_at: null });
    });

    it('publishes a forecast crossing when a settle brings the projection to a forecast threshold', async () => {
      const clock = { now: MIDNIGHT };
      const published: string[] = [];
      const { service, budgets } = setup({ clock: () => clock.now, events: { publish: async (e) => void published.push(`${e.eventId} ${e.projected ?? ''}`), close: async () => undefined } });
      await service.create(admin, budget({ id: 'daily', scope: { org: 'acme' }, amount: '0.001', alertThresholds: [], forecastThresholds: [100, 50] }));
      clock.now = MIDNIGHT + DAY / 4;
      const held = await budgets.reserve({ requestId: 'a', tenant, body: { ...chat } });
      await held?.settle('0.0002');
      const creation = (await service.get(admin, 'daily')).entry.budget.creation?.id ?? '';
      expect(published).toEqual([`daily~${creation}/2025-06-14/forecast-50 0.0008`]);
      const more = await budgets.reserve({ requestId: 'b', tenant, body: { ...chat } });
      await more?.settle('0.00005');
      expect(published).toEqual([`daily~${creation}/2025-06-14/forecast-50 0.0008`, `daily~${creation}/2025-06-14/forecast-100 0.001`]);
    });

    it('sets and changes forecast thresholds as alert thresholds are, and audits the change', async () => {
      const { service, audit } = setup();
      const created = await service.create(admin, budget({ id: 'f', scope: { org: 'acme' }, forecastThresholds: [100, 90, 100] }));
      expect(budgetView(created).forecast_thresholds).toEqual([90, 100]);
      const changed = await service.update(admin, 'f', { forecastThresholds: [120, 80] });
      expect(budgetView(changed).forecast_thresholds).toEqual([80, 120]);
      expect(audit.at(-1)).toMatchObject({ action: 'budget.update', target: 'f', details: { changes: { forecast_thresholds: { from: [90, 100], to: [80, 120] } } } });
      // None at all: a budget created without them shows an empty list.
      expect(budgetView(await service.create(admin, budget({ id: 'plain', scope: { org: 'acme' } }))).forecast_thresholds).toEqual([]);
      expect(budgetView(await service.update(admin, 'f', { forecastThresholds: [] })).forecast_thresholds).toEqual([]);
    });
  });

  describe('scoped admin keys', () => {
    async function seeded() {
      const s = setup();
      await s.service.create(admin, budget({ id: 'search-daily', scope: { org: 'acme', project: 'search' } }));
      await s.service.create(admin, budget({ id: 'ads-daily', scope: { org: 'acme', project: 'ads' } }));
      await s.service.create(admin, budget({ id: 'platform-daily', scope: { org: 'acme', team: 'platform' } }));
      await s.service.create(admin, budget({ id: 'initech-daily', scope: { org: 'initech' } }));
      return s;
    }
    const ids = async (service: BudgetAdminService, actor: Actor, filter: Record<string, string> = {}) => (await service.list(actor, { limit: 100, ...filter })).data.map((s) => s.entry.budget.id);

    it('see only the budgets inside their scope: an org key its org, a project key its project', async () => {
      const { service } = await seeded();
      expect(await ids(service, admin)).toEqual(['acme-monthly', 'ads-daily', 'initech-daily', 'platform-daily', 'search-daily']);
      expect(await ids(service, acmeAdmin)).toEqual(['acme-monthly', 'ads-daily', 'platform-daily', 'search-daily']);
      // Not the org's or a team's budget: they count more than its project.
      expect(await ids(service, searchAdmin)).toEqual(['search-daily']);
      expect(await ids(service, { id: 'fin', role: 'finance' }, { source: 'config' })).toEqual(['acme-monthly']);
      expect(await failure(service.get(searchAdmin, 'acme-monthly'))).toMatchObject({ kind: 'not_found', code: 'not_found' });
      expect(await failure(service.get(acmeAdmin, 'initech-daily'))).toMatchObject({ kind: 'not_found', code: 'not_found' });
      expect(await failure(service.list(searchAdmin, { limit: 10, project: 'ads' }))).toMatchObject({ kind: 'not_found', code: 'not_found' });
      expect(await failure(service.list(acmeAdmin, { limit: 10, org: 'initech' }))).toMatchObject({ kind: 'not_found', code: 'not_found' });
    });

    it('create, change and delete only inside their scope; a project key creates for its own project', async () => {
      const { service } = await seeded();
      expect(await failure(service.create(acmeAdmin, budget({ id: 'theirs', scope: { org: 'initech' } })))).toMatchObject({ kind: 'not_found', code: 'not_found' });
      expect(await failure(service.create(searchAdmin, budget({ id: 'theirs', scope: { org: 'acme', project: 'ads' } })))).toMatchObject({ kind: 'not_found', code: 'not_found' });
      const own = await service.create(searchAdmin, budget({ id: 'mine', scope: { org: 'acme' } }));
      expect(own.entry.budget.scope).toEqual({ org: 'acme', project: 'search' });
      expect(await failure(service.update(searchAdmin, 'ads-daily', { amount: '9' }))).toMatchObject({ kind: 'not_found', code: 'not_found' });
      expect(await failure(service.remove(acmeAdmin, 'initech-daily'))).toMatchObject({ kind: 'not_found', code: 'not_found' });
      await expect(service.update(acmeAdmin, 'ads-daily', { amount: '9' })).resolves.toBeDefined();
    });

    it('page by id: limit, then after the last id', async () => {
      const { service } = await seeded();
      const first = await service.list(admin, { limit: 2 });
      expect(first.data.map((s) => s.entry.budget.id)).toEqual(['acme-monthly', 'ads-daily']);
      expect(first.hasMore).toBe(true);
      const last = await service.list(admin, { limit: 3, after: 'ads-daily' });
      expect(last.data.map((s) => s.entry.budget.id)).toEqual(['initech-daily', 'platform-daily', 'search-daily']);
      expect(last.hasMore).toBe(false);
    });
  });
});

describe('budget input', () => {
  const valid = { id: 'b1', scope: { org: 'acme' }, period: 'monthly', amount: '250.00' };

  it('is held to the configuration rules, each refusal naming its field', () => {
    expect(parseInput(budgetBody, valid)).toMatchObject({ timezone: 'UTC', currency: 'USD', enforcement: 'hard', alert_thresholds: [50, 80, 100] });
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ amount: 250 }, 'amount'],
      [{ amount: '0' }, 'amount'],
      [{ amount: '9007199254.740992' }, 'amount'],
      [{ timezone: 'Mars/Olympus' }, 'timezone'],
      [{ alert_thresholds: [0] }, 'alert_thresholds[0]'],
      [{ alert_thresholds: [50, 1001] }, 'alert_thresholds[1]'],
      [{ forecast_thresholds: [0] }, 'forecast_thresholds[0]'],
      [{ forecast_thresholds: [100, 1001] }, 'forecast_thresholds[1]'],
      [{ forecast_thresholds: [80.5] }, 'forecast_thresholds[0]'],
      [{ forecast_thresholds: '100' }, 'forecast_thresholds'],
      [{ period: 'hourly' }, 'period'],
      [{ currency: 'usd' }, 'currency'],
      [{ scope: { team: 'x' } }, 'scope.org'],
      [{ id: 'Not An Id' }, 'id'],
    ];
    for (const [change, param] of cases) {
      expect(thrown(() => parseInput(budgetBody, { ...valid, ...change }))).toMatchObject({ kind: 'bad_request', param, code: 'invalid_value' });
    }
    expect(thrown(() => parseInput(budgetBody, { ...valid, amount: 250 })).message).toContain('decimal string');
    expect(thrown(() => parseInput(budgetBody, { ...valid, amount: '9007199254.740992' })).message).toContain('at most 9007199254.740991');
  });

  it('changes only amount, enforcement and thresholds, and says why the rest cannot change', () => {
    expect(budgetPatchInput({ amount: '5', enforcement: 'soft', alert_thresholds: [80, 50] })).toEqual({ amount: '5', enforcement: 'soft', alert_thresholds: [50, 80] });
    for (const field of ['scope', 'period', 'timezone', 'currency', 'id']) {
      const error = thrown(() => budgetPatchInput({ amount: '5', [field]: 'x' }));
      expect(error).toMatchObject({ kind: 'bad_request', param: field, code: 'immutable_field' });
      expect(error.message).toContain("orphan the current period's spend");
    }
    expect(budgetPatchInput({ forecast_thresholds: [100, 80, 100] })).toEqual({ forecast_thresholds: [80, 100] });
    expect(thrown(() => budgetPatchInput({ forecast_thresholds: [1001] }))).toMatchObject({ kind: 'bad_request', param: 'forecast_thresholds[0]', code: 'invalid_value' });
    expect(thrown(() => budgetPatchInput({ amount: '-1' }))).toMatchObject({ param: 'amount' });
    expect(thrown(() => budgetPatchInput({ limit: '5' }))).toMatchObject({ param: 'limit' });
  });
});
