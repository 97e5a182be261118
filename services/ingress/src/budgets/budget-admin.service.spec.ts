import { budgetSchema, type BudgetConfig } from '@openrouter/config';
import { BudgetCatalog, MemoryBudgetLedger, MemoryBudgetStore, type BudgetAudit, type BudgetEventPublisher, type BudgetLedger } from '@openrouter/budgets';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { PriceBook } from '@openrouter/usage';
import type { Actor } from '../access/access.service';
import { budgetBody, budgetPatchInput, parseInput } from '../admin/admin-input';
import { budgetView } from '../admin/budgets.http.controller';
import { ingressTestConfig } from '../test-config.testing';
import { BudgetAdminService } from './budget-admin.service';
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

function setup(options: { ledger?: BudgetLedger; models?: unknown[] } = {}) {
  const configured = [{ id: 'acme-monthly', scope: { org: 'acme' }, period: 'monthly', amount: '100', enforcement: 'soft' }];
  const config = ingressTestConfig({ budgets: { list: configured }, ...(options.models ? { models: options.models } : {}) });
  const audit: BudgetAudit[] = [];
  const store = new MemoryBudgetStore((entry) => audit.push(entry));
  const catalog = new BudgetCatalog(config.budgets.list, store);
  const events: BudgetEventPublisher = { publish: async () => undefined, close: async () => undefined };
  const ledger = options.ledger ?? new MemoryBudgetLedger(() => NOW);
  const logger = createLogger('test', 'silent');
  const budgets = new BudgetService(config, PriceBook.fromModels(config.models), ledger, events, logger, () => NOW, undefined, catalog);
  const service = new BudgetAdminService(budgets, store, config.models, logger, () => NOW);
  return { service, budgets, catalog, store, audit, ledger };
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
    expect(await failure(service.get(admin, 'gone'))).toMatchObject({ kind: 'not_found', param: 'id' });
    expect(await failure(service.remove(admin, 'gone'))).toMatchObject({ kind: 'not_found' });
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
    expect(await failure(service.create(admin, budget({ id: 'acme-monthly', scope: { org: 'acme' } })))).toMatchObject({ kind: 'bad_request', code: 'already_exists', param: 'id' });
    await service.create(admin, budget({ id: 'once', scope: { org: 'acme' } }));
    expect(await failure(service.create(admin, budget({ id: 'once', scope: { org: 'other' } })))).toMatchObject({ code: 'already_exists' });
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
      expect(await failure(service.get(searchAdmin, 'acme-monthly'))).toMatchObject({ kind: 'not_found' });
      expect(await failure(service.get(acmeAdmin, 'initech-daily'))).toMatchObject({ kind: 'not_found' });
      expect(await failure(service.list(searchAdmin, { limit: 10, project: 'ads' }))).toMatchObject({ kind: 'not_found' });
      expect(await failure(service.list(acmeAdmin, { limit: 10, org: 'initech' }))).toMatchObject({ kind: 'not_found' });
    });

    it('create, change and delete only inside their scope; a project key creates for its own project', async () => {
      const { service } = await seeded();
      expect(await failure(service.create(acmeAdmin, budget({ id: 'theirs', scope: { org: 'initech' } })))).toMatchObject({ kind: 'not_found' });
      expect(await failure(service.create(searchAdmin, budget({ id: 'theirs', scope: { org: 'acme', project: 'ads' } })))).toMatchObject({ kind: 'not_found' });
      const own = await service.create(searchAdmin, budget({ id: 'mine', scope: { org: 'acme' } }));
      expect(own.entry.budget.scope).toEqual({ org: 'acme', project: 'search' });
      expect(await failure(service.update(searchAdmin, 'ads-daily', { amount: '9' }))).toMatchObject({ kind: 'not_found' });
      expect(await failure(service.remove(acmeAdmin, 'initech-daily'))).toMatchObject({ kind: 'not_found' });
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
    expect(thrown(() => budgetPatchInput({ amount: '-1' }))).toMatchObject({ param: 'amount' });
    expect(thrown(() => budgetPatchInput({ limit: '5' }))).toMatchObject({ param: 'limit' });
  });
});
