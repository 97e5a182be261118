import { randomBytes } from 'node:crypto';
import { billingSchema, clickhouseSchema } from '@openrouter/config';
import { billingv1, usagev1 } from '@openrouter/contracts';
import { createClickHouse, emptyUsageEvent, migrate, USAGE_MIGRATIONS, WITHOUT_OUTPUT_SETTINGS, type ClickHouseTarget } from '@openrouter/usage';
import { ClickHouseUsageEventRepository } from '../usage/usage-event.repository';
import { ClickHouseReportsRepository, TooManyGroupsError } from './reports.repository';
import { ReportsService } from './reports.service';

function event(id: string, costCenter: string, cost: string): usagev1.UsageEvent {
  const e = emptyUsageEvent(id, Date.parse('2025-04-07T10:00:00Z'));
  e.completedAtMs = e.receivedAtMs + 30;
  e.tenant = { orgId: 'acme', projectId: 'search', teamId: 't', appId: 'a', costCenter, keyId: 'k1', endUser: '', tags: {} };
  e.servedModel = 'gpt-4o';
  e.provider = 'openai';
  e.tokens = { prompt: 10, completion: 5, cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: false };
  e.cost = { amount: cost, currency: 'USD', priceVersion: 'v1' };
  e.status = usagev1.Status.STATUS_OK;
  e.httpStatus = 200;
  return e;
}

describe('the daily rollup and the raw events answer alike (chDB)', () => {
  let store: ClickHouseTarget;
  let repository: ClickHouseReportsRepository;
  let service: ReportsService;
  const april = { fromMs: Date.parse('2025-04-01T00:00:00Z'), toMs: Date.parse('2025-05-01T00:00:00Z') };

  beforeAll(async () => {
    store = createClickHouse(clickhouseSchema.parse({ embedded: { path: ':memory:' }, database: `rollup_${randomBytes(6).toString('hex')}` }), '.');
    await migrate(store.client, store.database, USAGE_MIGRATIONS);
    const events = new ClickHouseUsageEventRepository(store.client, store.database, store.kind);
    await events.insertRows([event('e1', 'cc-search', '0.25'), event('e2', 'cc-gone', '0.5'), event('e3', 'cc-ads', '1'), event('e4', 'cc-mail', '2')].map((e) => events.encode(e)));
    // The raw event of cc-gone is no longer there (stored again with other values, or deleted), and
    // the rollup reconciliation has taken its group off the day: the group's sums are all zero.
    await store.client.command({ query: `ALTER TABLE ${store.database}.usage_events DELETE WHERE event_id = 'e2'`, clickhouse_settings: { mutations_sync: '1' } });
    await store.client.insert({
      table: `${store.database}.usage_daily`,
      values: [
        {
          day: '2025-04-07',
          org_id: 'acme',
          project_id: 'search',
          team_id: 't',
          app_id: 'a',
          cost_center: 'cc-gone',
          key_id: 'k1',
          served_model: 'gpt-4o',
          provider: 'openai',
          currency: 'USD',
          requests: -1,
          errors: 0,
          cancelled: 0,
          prompt_tokens: -10,
          completion_tokens: -5,
          cached_read_tokens: 0,
          cache_write_tokens: 0,
          reasoning_tokens: 0,
          cost: '-0.5',
          latency_ms_sum: 0,
        },
      ],
      format: 'JSONEachRow',
      clickhouse_settings: WITHOUT_OUTPUT_SETTINGS,
    });
    repository = new ClickHouseReportsRepository(store.client, store.database);
    service = new ReportsService(repository, billingSchema.parse({ http: { port: 0 } }));
  }, 60_000);

  afterAll(async () => store?.client.close());

  it('leaves out a rollup group whose corrections add up to nothing, as the raw events have no row for it', async () => {
    const byCostCenter = [{ kind: 'dimension', name: 'cost_center' }] as const;
    const rollup = await repository.usage({ ...april, groupBy: byCostCenter, filters: [] });
    const events = await repository.usage({ ...april, fromMs: april.fromMs + 1, groupBy: byCostCenter, filters: [] });
    expect(rollup.source).toBe('rollup');
    expect(events.source).toBe('events');
    expect(rollup.rows).toEqual(events.rows);
    expect(rollup.rows.map((r) => r.dimensions)).toEqual([['cc-ads'], ['cc-mail'], ['cc-search']]);
  });

  it('lists no chargeback line and no FOCUS row for such a group', async () => {
    const chargeback = await service.chargeback({ scope: undefined, month: '2025-04', orgId: '', allocation: billingv1.Allocation.ALLOCATION_PROPORTIONAL });
    expect(chargeback.lines.map((l) => l.costCenter)).toEqual(['cc-ads', 'cc-mail', 'cc-search']);
    expect(chargeback.totals).toEqual({ USD: '3.25' });
    const focus = await service.focus({ scope: undefined, month: '2025-04', orgId: '' });
    expect(focus.rows.map((r) => r.tags['openrouter/cost-center'])).toEqual(['cc-ads', 'cc-mail', 'cc-search']);
  });

  it.each([
    ['rollup', april],
    ['events', { ...april, fromMs: april.fromMs + 1 }],
  ])('stops aggregating once a report holds more groups than its limit, rather than holding them all (%s)', async (source, range) => {
    const byCostCenter = [{ kind: 'dimension', name: 'cost_center' }] as const;
    await expect(repository.usage({ ...range, groupBy: byCostCenter, filters: [], limit: 1 })).rejects.toBeInstanceOf(TooManyGroupsError);
    // Within the limit: answered, from where it was asked.
    expect(await repository.usage({ ...range, groupBy: byCostCenter, filters: [], limit: 4 })).toMatchObject({ source, rows: [{ dimensions: ['cc-ads'] }, { dimensions: ['cc-mail'] }, { dimensions: ['cc-search'] }] });
  });
});

describe('cache hits and the spend they avoided (chDB)', () => {
  let store: ClickHouseTarget;
  let repository: ClickHouseReportsRepository;
  let service: ReportsService;
  const april = { fromMs: Date.parse('2025-04-01T00:00:00Z'), toMs: Date.parse('2025-05-01T00:00:00Z') };

  /** A request of `project` answered from the response cache: cost 0, and what its first answer cost. */
  function hit(id: string, project: string, currency: string, saved: string): usagev1.UsageEvent {
    const e = event(id, '', '0');
    e.tenant = { ...e.tenant!, projectId: project };
    e.cost = { amount: '0', currency, priceVersion: 'v1' };
    e.cacheHit = true;
    e.cacheSavedCost = saved;
    return e;
  }

  beforeAll(async () => {
    store = createClickHouse(clickhouseSchema.parse({ embedded: { path: ':memory:' }, database: `cache_${randomBytes(6).toString('hex')}` }), '.');
    await migrate(store.client, store.database, USAGE_MIGRATIONS);
    const events = new ClickHouseUsageEventRepository(store.client, store.database, store.kind);
    const paid = (id: string, project: string, currency: string, cost: string) => {
      const e = event(id, '', cost);
      e.tenant = { ...e.tenant!, projectId: project };
      e.cost = { amount: cost, currency, priceVersion: 'v1' };
      return e;
    };
    await events.insertRows(
      [
        paid('p1', 'search', 'USD', '0.25'),
        hit('h1', 'search', 'USD', '0.25'),
        hit('h2', 'search', 'USD', '0.100000000000000001'),
        paid('p2', 'chat', 'USD', '1'),
        paid('p3', 'chat', 'EUR', '2'),
        hit('h3', 'chat', 'EUR', '2'),
      ].map((e) => events.encode(e)),
    );
    repository = new ClickHouseReportsRepository(store.client, store.database);
    service = new ReportsService(repository, billingSchema.parse({ http: { port: 0 } }));
  }, 60_000);

  afterAll(async () => store?.client.close());

  it('counts hits and sums their savings exactly per group, alike from the rollup and the raw events, with the cost what was spent', async () => {
    const byProject = [{ kind: 'dimension', name: 'project' }] as const;
    const rollup = await repository.usage({ ...april, groupBy: byProject, filters: [] });
    const events = await repository.usage({ ...april, fromMs: april.fromMs + 1, groupBy: byProject, filters: [] });
    expect(rollup.source).toBe('rollup');
    expect(events.source).toBe('events');
    expect(rollup.rows).toEqual(events.rows);
    expect(rollup.rows.map((r) => [r.dimensions[0], r.currency, r.requests, r.cost, r.cacheHits, r.cacheSavedCost])).toEqual([
      ['chat', 'EUR', 2, '2', 1, '2'],
      ['chat', 'USD', 1, '1', 0, '0'],
      ['search', 'USD', 3, '0.25', 2, '0.350000000000000001'],
    ]);
  });

  it('breaks them out in the usage report, the invoice and the chargeback, never in what is billed', async () => {
    const usage = await service.usage({ scope: undefined, ...april, groupBy: ['project'], filter: undefined });
    expect(usage.total).toMatchObject({ requests: 6, cacheHits: 3, cost: '', cacheSavedCost: '' });
    expect(usage.cacheSavedCostByCurrency).toEqual({ EUR: '2', USD: '0.350000000000000001' });
    const invoice = await service.invoice({ scope: undefined, orgId: 'acme', month: '2025-04' });
    expect(invoice.lines.map((l) => [l.currency, l.requests, l.amount, l.cacheHits, l.cacheSavedCost])).toEqual([
      ['EUR', 2, '2', 1, '2'],
      ['USD', 4, '1.25', 2, '0.350000000000000001'],
    ]);
    expect(invoice.totals).toEqual({ EUR: '2', USD: '1.25' });
    const chargeback = await service.chargeback({ scope: undefined, month: '2025-04', orgId: 'acme', allocation: billingv1.Allocation.ALLOCATION_PROPORTIONAL });
    expect(chargeback.unallocated.map((l) => [l.currency, l.requests, l.total, l.cacheHits, l.cacheSavedCost])).toEqual([
      ['EUR', 2, '2', 1, '2'],
      ['USD', 4, '1.25', 2, '0.350000000000000001'],
    ]);
  });
});

describe('the experiment report (chDB)', () => {
  let store: ClickHouseTarget;
  let service: ReportsService;
  const queries: string[] = [];
  const april = { fromMs: Date.parse('2025-04-01T00:00:00Z'), toMs: Date.parse('2025-05-01T00:00:00Z') };

  /** One request of `arm`, priced in `currency`. */
  function armEvent(id: string, arm: string, currency: string, cost: string, latencyMs: number, ttftMs: number, failed = false): usagev1.UsageEvent {
    const e = event(id, '', cost);
    e.experiment = 'exp-1';
    e.experimentArm = arm;
    e.cost = { amount: cost, currency, priceVersion: 'v1' };
    e.latencyMs = latencyMs;
    e.ttftMs = ttftMs;
    if (failed) {
      e.status = usagev1.Status.STATUS_ERROR;
      e.httpStatus = 503;
    }
    return e;
  }

  beforeAll(async () => {
    store = createClickHouse(clickhouseSchema.parse({ embedded: { path: ':memory:' }, database: `experiment_${randomBytes(6).toString('hex')}` }), '.');
    await migrate(store.client, store.database, USAGE_MIGRATIONS);
    const events = new ClickHouseUsageEventRepository(store.client, store.database, store.kind);
    await events.insertRows(
      [
        // control: three requests priced in USD, two in EUR, of which one failed before any call (cost 0).
        armEvent('c1', 'control', 'USD', '0.1', 100, 40),
        armEvent('c2', 'control', 'USD', '0.1', 100, 40),
        armEvent('c3', 'control', 'USD', '0.100000000000000001', 100, 40),
        armEvent('c4', 'control', 'EUR', '0.2', 300, 90),
        armEvent('c5', 'control', 'EUR', '0', 300, 0, true),
        armEvent('t1', 'treatment', 'USD', '0.3', 200, 50),
        armEvent('t2', 'treatment', 'USD', '0.5', 200, 50),
      ].map((e) => events.encode(e)),
    );
    const client = new Proxy(store.client, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (property !== 'query' || typeof value !== 'function') return value;
        return (params: { query: string }) => {
          queries.push(params.query);
          return (value as (p: unknown) => unknown).call(target, params);
        };
      },
    });
    service = new ReportsService(new ClickHouseReportsRepository(client, store.database), billingSchema.parse({ http: { port: 0 } }));
  }, 60_000);

  afterAll(async () => store?.client.close());

  it('reports each arm once, over all its requests, with its cost per currency never added across currencies', async () => {
    const report = await service.experiment({ scope: undefined, experiment: 'exp-1', ...april });
    expect(report.arms.map((a) => a.arm)).toEqual(['control', 'treatment']);
    const [control, treatment] = report.arms;
    // The arm's own figures: its failed EUR request counts in its error rate and latency.
    expect(control).toMatchObject({ requests: 5, errors: 1, errorRate: '0.2', latencyP50Ms: 100, latencyP95Ms: 300, promptTokensPerRequest: '10', completionTokensPerRequest: '5' });
    // Time to first token of the requests that produced one (four of five).
    expect(control?.ttftP50Ms).toBeGreaterThanOrEqual(40);
    expect(control?.ttftP95Ms).toBe(90);
    // Two currencies: no single cost; each currency's cost over the requests priced in it, exactly.
    expect(control).toMatchObject({ currency: '', cost: '', costPerRequest: '' });
    expect(control?.costs).toEqual([
      { currency: 'EUR', requests: 2, cost: '0.2', costPerRequest: '0.1' },
      { currency: 'USD', requests: 3, cost: '0.300000000000000001', costPerRequest: '0.1' },
    ]);
    expect(treatment).toMatchObject({ requests: 2, errors: 0, errorRate: '0', latencyP50Ms: 200, latencyP95Ms: 200, currency: 'USD', cost: '0.8', costPerRequest: '0.4' });
    expect(treatment?.costs).toEqual([{ currency: 'USD', requests: 2, cost: '0.8', costPerRequest: '0.4' }]);
  });

  it('computes latency percentiles with a bounded-memory quantile function, not an exact one', async () => {
    queries.length = 0;
    await service.experiment({ scope: undefined, experiment: 'exp-1', ...april });
    expect(queries).toHaveLength(1);
    expect(queries[0]).not.toMatch(/quantileExact|quantilesExact/);
    expect(queries[0]).toMatch(/quantilesTDigest/);
  });
});
