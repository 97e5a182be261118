import { billingv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { TooManyGroupsError, type ArmAggregate, type ReportsRepository, type UsageAggregate, type UsageQuery } from './reports.repository';
import { ReportsService } from './reports.service';

function row(model: string, currency: string, cost: string, requests: number, cache: { hits: number; saved: string } = { hits: 0, saved: '0' }): UsageAggregate {
  return {
    dimensions: [model],
    currency,
    requests,
    errors: 0,
    promptTokens: 10 * requests,
    completionTokens: 5 * requests,
    cachedReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    cost,
    cacheHits: cache.hits,
    cacheSavedCost: cache.saved,
  };
}

const CHARGEBACK = { sharedCostCenters: ['platform'], allocation: 'proportional', fixedShares: {} } as const;

/** A repository that answers every usage query with the given rows (at most the query's limit), and the queries it was asked. */
function reports(rows: UsageAggregate[], maxRows = 100): { service: ReportsService; queries: UsageQuery[] } {
  const queries: UsageQuery[] = [];
  const repository: ReportsRepository = {
    usage: async (query) => {
      queries.push(query);
      return { source: 'events', rows: rows.slice(0, query.limit) };
    },
    experiment: async () => [],
    spend: async () => [],
  };
  return { service: new ReportsService(repository, { chargeback: { ...CHARGEBACK, sharedCostCenters: [...CHARGEBACK.sharedCostCenters] }, reports: { maxRows } }), queries };
}

describe('ReportsService.usage', () => {
  const request = { fromMs: 0, toMs: 86_400_000, groupBy: ['model'], scope: undefined, filter: undefined };

  it('adds up the cost of rows in one currency exactly', async () => {
    const report = await reports([row('a', 'USD', '0.1', 2), row('b', 'USD', '0.2', 3)]).service.usage(request);
    expect(report.total).toMatchObject({ cost: '0.3', requests: 5, promptTokens: 50 });
    expect(report.costByCurrency).toEqual({ USD: '0.3' });
  });

  it('never adds costs in different currencies: the total has none, each currency has its own', async () => {
    const report = await reports([row('a', 'USD', '1.5', 2), row('b', 'EUR', '2.25', 1), row('c', 'USD', '0.5', 1)]).service.usage(request);
    expect(report.total).toMatchObject({ cost: '', requests: 4 });
    expect(report.costByCurrency).toEqual({ USD: '2', EUR: '2.25' });
  });

  it('breaks out cache hits and the spend they avoided per row, summed exactly, apart from the cost', async () => {
    const report = await reports([row('a', 'USD', '0.1', 3, { hits: 2, saved: '0.100000000000000001' }), row('b', 'USD', '0.2', 1, { hits: 1, saved: '0.2' }), row('c', 'USD', '0', 0)]).service.usage(request);
    expect(report.rows.map((r) => [r.dimensions['model'], r.totals?.cacheHits, r.totals?.cacheSavedCost, r.totals?.cost])).toEqual([
      ['a', 2, '0.100000000000000001', '0.1'],
      ['b', 1, '0.2', '0.2'],
      ['c', 0, '0', '0'],
    ]);
    expect(report.total).toMatchObject({ requests: 4, cacheHits: 3, cacheSavedCost: '0.300000000000000001', cost: '0.3' });
    expect(report.cacheSavedCostByCurrency).toEqual({ USD: '0.300000000000000001' });
  });

  it('never adds savings in different currencies: the total has none, each currency has its own', async () => {
    const report = await reports([row('a', 'USD', '1', 2, { hits: 1, saved: '0.5' }), row('b', 'EUR', '2', 2, { hits: 2, saved: '4' })]).service.usage(request);
    expect(report.total).toMatchObject({ cacheHits: 3, cacheSavedCost: '', cost: '' });
    expect(report.cacheSavedCostByCurrency).toEqual({ USD: '0.5', EUR: '4' });
  });
});

describe('ReportsService.invoice cache hits', () => {
  it('shows each line\'s cache hits and the spend they avoided, and bills only what was spent', async () => {
    const { service } = reports([row('gpt-4o', 'USD', '1.5', 4, { hits: 2, saved: '0.75' }), row('gpt-4o-mini', 'USD', '0.25', 1)]);
    const invoice = await service.invoice({ scope: undefined, orgId: 'acme', month: '2025-06' });
    expect(invoice.lines.map((l) => [l.model, l.requests, l.amount, l.cacheHits, l.cacheSavedCost])).toEqual([
      ['gpt-4o', 4, '1.5', 2, '0.75'],
      ['gpt-4o-mini', 1, '0.25', 0, '0'],
    ]);
    expect(invoice.totals).toEqual({ USD: '1.75' });
  });
});

describe('the report size limit (billing.reports.maxRows)', () => {
  const models = (n: number): UsageAggregate[] => Array.from({ length: n }, (_, i) => row(`m${i}`, 'USD', '1', 1));
  const usage = { fromMs: 0, toMs: 86_400_000, groupBy: ['model'], scope: undefined, filter: undefined };

  it('asks the store for one row more than allowed, and answers a report of exactly the limit', async () => {
    const { service, queries } = reports(models(3), 3);
    expect((await service.usage(usage)).rows).toHaveLength(3);
    expect(queries.map((q) => q.limit)).toEqual([4]);
  });

  it.each([
    ['usage report', (s: ReportsService) => s.usage(usage)],
    ['invoice', (s: ReportsService) => s.invoice({ scope: undefined, orgId: 'acme', month: '2025-06' })],
    ['chargeback', (s: ReportsService) => s.chargeback({ scope: undefined, month: '2025-06', orgId: '', allocation: billingv1.Allocation.ALLOCATION_UNSPECIFIED })],
    ['FOCUS export', (s: ReportsService) => s.focus({ scope: undefined, month: '2025-06', orgId: '' })],
  ])('refuses a report with more rows as the caller\'s to narrow (400 report_too_large): %s', async (name, report) => {
    const error: unknown = await report(reports(models(4), 3).service).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ kind: 'bad_request', code: 'report_too_large', message: expect.stringContaining(`The ${name} has more than 3 rows`) });
  });
});

describe('a report whose store stops at more groups than the limit', () => {
  it('is refused as the caller\'s to narrow (400 report_too_large)', async () => {
    const repository: ReportsRepository = {
      usage: async (query) => Promise.reject(new TooManyGroupsError(query.limit ?? 0)),
      experiment: async () => [],
      spend: async () => [],
    };
    const service = new ReportsService(repository, { chargeback: { ...CHARGEBACK, sharedCostCenters: [] }, reports: { maxRows: 3 } });
    const error: unknown = await service.focus({ scope: undefined, month: '2025-06', orgId: '' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ kind: 'bad_request', code: 'report_too_large', message: expect.stringContaining('The FOCUS export has more than 3 rows') });
  });
});

describe('ReportsService.chargeback requests', () => {
  const line = (org: string, costCenter: string, cost: string, requests: number): UsageAggregate => ({ ...row('', 'USD', cost, requests), dimensions: [org, costCenter] });
  const month = { scope: undefined, month: '2025-06', orgId: '' };

  it('counts each cost centre\'s own requests only: an allocated pool\'s money is split, its requests are not', async () => {
    const { service } = reports([line('acme', '', '1', 5), line('acme', 'cc-ads', '1', 3), line('acme', 'cc-search', '3', 7), line('acme', 'platform', '3', 11)]);
    const report = await service.chargeback({ ...month, allocation: billingv1.Allocation.ALLOCATION_PROPORTIONAL });
    expect(report.lines.map((l) => [l.costCenter, l.allocated, l.requests])).toEqual([
      ['cc-ads', '1', 3],
      ['cc-search', '3', 7],
    ]);
    expect(report.unallocated).toEqual([]);
    expect(report.totals).toEqual({ USD: '8' });
  });

  it('gives a pool left unallocated its own requests, so the month\'s requests all appear', async () => {
    const { service } = reports([line('other', '', '2', 5), line('other', 'platform', '1', 4)]);
    const report = await service.chargeback({ ...month, allocation: billingv1.Allocation.ALLOCATION_PROPORTIONAL });
    expect(report.lines).toEqual([]);
    expect(report.unallocated).toEqual([expect.objectContaining({ orgId: 'other', costCenter: '', total: '3', requests: 9 })]);
  });

  it('gives each cost centre its own cache hits and savings, never allocating the pool\'s', async () => {
    const hits = (org: string, costCenter: string, cost: string, requests: number, cache: { hits: number; saved: string }): UsageAggregate => ({ ...row('', 'USD', cost, requests, cache), dimensions: [org, costCenter] });
    const allocated = await reports([hits('acme', '', '1', 5, { hits: 1, saved: '0.5' }), hits('acme', 'cc-ads', '1', 3, { hits: 2, saved: '0.25' }), hits('acme', 'cc-ads', '0', 1, { hits: 1, saved: '0.125' }), hits('acme', 'cc-search', '3', 7, { hits: 0, saved: '0' })]).service.chargeback({
      ...month,
      allocation: billingv1.Allocation.ALLOCATION_PROPORTIONAL,
    });
    expect(allocated.lines.map((l) => [l.costCenter, l.requests, l.cacheHits, l.cacheSavedCost, l.total])).toEqual([
      ['cc-ads', 4, 3, '0.375', '1.25'],
      ['cc-search', 7, 0, '0', '3.75'],
    ]);
    expect(allocated.totals).toEqual({ USD: '5' });
    const pool = await reports([hits('other', 'platform', '1', 4, { hits: 1, saved: '0.5' })]).service.chargeback({ ...month, allocation: billingv1.Allocation.ALLOCATION_PROPORTIONAL });
    expect(pool.unallocated).toEqual([expect.objectContaining({ costCenter: '', requests: 4, cacheHits: 1, cacheSavedCost: '0.5' })]);
  });

  it('keeps the unallocated line of a pool that spent nothing, its requests all answered from the cache, so its hits and savings still appear', async () => {
    const hits = (org: string, costCenter: string, cost: string, requests: number, cache: { hits: number; saved: string }): UsageAggregate => ({ ...row('', 'USD', cost, requests, cache), dimensions: [org, costCenter] });
    const report = await reports([hits('acme', '', '0', 3, { hits: 3, saved: '0.75' }), hits('acme', 'cc-ads', '2', 4, { hits: 0, saved: '0' }), hits('other', 'platform', '0', 2, { hits: 2, saved: '0.5' })]).service.chargeback({
      ...month,
      allocation: billingv1.Allocation.ALLOCATION_PROPORTIONAL,
    });
    expect(report.lines.map((l) => [l.orgId, l.costCenter, l.total, l.requests, l.cacheHits])).toEqual([['acme', 'cc-ads', '2', 4, 0]]);
    expect(report.unallocated.map((l) => [l.orgId, l.direct, l.allocated, l.total, l.requests, l.cacheHits, l.cacheSavedCost])).toEqual([
      ['acme', '0', '0', '0', 3, 3, '0.75'],
      ['other', '0', '0', '0', 2, 2, '0.5'],
    ]);
    expect(report.totals).toEqual({ USD: '2' });
  });

  it('adds no unallocated line for a pool with no requests', async () => {
    const report = await reports([line('acme', 'cc-ads', '2', 4)]).service.chargeback({ ...month, allocation: billingv1.Allocation.ALLOCATION_PROPORTIONAL });
    expect(report.unallocated).toEqual([]);
  });
});

describe('usage reports that read the raw events, which are kept for usage.clickhouse.retentionDays', () => {
  const now = Date.parse('2026-06-15T12:00:00Z');
  const day = 86_400_000;
  const retention = (rows: UsageAggregate[]) => {
    const queries: UsageQuery[] = [];
    const repository: ReportsRepository = {
      usage: async (query) => {
        queries.push(query);
        return { source: 'events', rows };
      },
      experiment: async () => [],
      spend: async () => [],
    };
    const service = new ReportsService(repository, { chargeback: { ...CHARGEBACK, sharedCostCenters: [] }, reports: { maxRows: 100 } }, { retentionDays: 400, clock: () => now });
    return { service, queries };
  };
  const request = { groupBy: ['model'], scope: undefined, filter: undefined };

  it('refuses a range that starts before the oldest raw event kept, rather than answering less than was spent', async () => {
    const { service, queries } = retention([row('a', 'USD', '1', 1)]);
    const from = now - 401 * day;
    const error: unknown = await service.usage({ ...request, fromMs: from, toMs: now }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ kind: 'bad_request', param: 'from', code: 'invalid_value', message: expect.stringContaining('kept for 400 days (usage.clickhouse.retentionDays), so this report, which reads them, cannot start before 2025-05-11T12:00:00.000Z') });
    // Grouped by what only the raw events have, over whole days: refused too.
    const tagged = await service.usage({ ...request, groupBy: ['tag:env'], fromMs: Math.floor(from / day) * day, toMs: Math.floor(now / day) * day }).catch((e: unknown) => e);
    expect(tagged).toMatchObject({ param: 'from', code: 'invalid_value' });
    expect(queries).toEqual([]);
  });

  it('answers a raw-event range within the retention, and any range the daily rollup answers', async () => {
    const { service, queries } = retention([row('a', 'USD', '1', 1)]);
    expect((await service.usage({ ...request, fromMs: now - 399 * day, toMs: now })).rows).toHaveLength(1);
    // Whole UTC days grouped by a dimension the rollup keeps: the rollup holds every day.
    expect((await service.usage({ ...request, fromMs: Date.parse('2020-01-01T00:00:00Z'), toMs: Date.parse('2026-06-01T00:00:00Z') })).rows).toHaveLength(1);
    expect(queries).toHaveLength(2);
  });
});

describe('the experiment report, which always reads the raw events', () => {
  const now = Date.parse('2026-06-15T12:00:00Z');
  const day = 86_400_000;
  const arm = (name: string, costs: ArmAggregate['costs']): ArmAggregate => ({
    arm: name,
    requests: costs.reduce((n, c) => n + c.requests, 0),
    errors: 1,
    latencyP50: 100,
    latencyP95: 300,
    ttftP50: 40,
    ttftP95: 90,
    promptTokens: 30,
    completionTokens: 15,
    costs,
  });
  const experiments = (arms: ArmAggregate[], { retentionDays }: { retentionDays?: number } = { retentionDays: 400 }) => {
    const asked: Array<[number, number]> = [];
    const repository: ReportsRepository = {
      usage: async () => ({ source: 'events', rows: [] }),
      experiment: async (_experiment, fromMs, toMs) => {
        asked.push([fromMs, toMs]);
        return arms;
      },
      spend: async () => [],
    };
    const service = new ReportsService(repository, { chargeback: { ...CHARGEBACK, sharedCostCenters: [] }, reports: { maxRows: 100 } }, { retentionDays, clock: () => now });
    return { service, asked };
  };

  it('refuses a range that starts before the oldest raw event kept, as a 400 on from, without reading', async () => {
    const { service, asked } = experiments([]);
    const error: unknown = await service.experiment({ scope: undefined, experiment: 'exp-1', fromMs: now - 401 * day, toMs: now }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({
      kind: 'bad_request',
      param: 'from',
      code: 'invalid_value',
      message: 'Raw usage events are kept for 400 days (usage.clickhouse.retentionDays), so the experiment report, which reads them, cannot start before 2025-05-11T12:00:00.000Z. Ask for a later `from`.',
    });
    expect(asked).toEqual([]);
    // Within the retention: read.
    await service.experiment({ scope: undefined, experiment: 'exp-1', fromMs: now - 399 * day, toMs: now });
    expect(asked).toEqual([[now - 399 * day, now]]);
  });

  it('reads the 30 days before `to` when the request gives no `from`, and answers the start it read from', async () => {
    const { service, asked } = experiments([]);
    const report = await service.experiment({ scope: undefined, experiment: 'exp-1', toMs: now });
    expect(asked).toEqual([[now - 30 * day, now]]);
    expect(report.fromMs).toBe(now - 30 * day);
    // An explicit `from` is read as it is, and answered back.
    expect((await service.experiment({ scope: undefined, experiment: 'exp-1', fromMs: now - 45 * day, toMs: now })).fromMs).toBe(now - 45 * day);
    // Without a retention to keep to, never before 1970.
    const unbounded = experiments([], {});
    expect((await unbounded.service.experiment({ scope: undefined, experiment: 'exp-1', toMs: 10 * day })).fromMs).toBe(0);
    expect(unbounded.asked).toEqual([[0, 10 * day]]);
  });

  it('starts a default window at the oldest raw event kept when the retention is shorter than 30 days, yet refuses an explicit `from` before it', async () => {
    const { service, asked } = experiments([], { retentionDays: 7 });
    const report = await service.experiment({ scope: undefined, experiment: 'exp-1', toMs: now });
    expect(asked).toEqual([[now - 7 * day, now]]);
    expect(report.fromMs).toBe(now - 7 * day);
    // A `to` in the past moves the default start back only as far as the retention allows.
    await service.experiment({ scope: undefined, experiment: 'exp-1', toMs: now - 2 * day });
    expect(asked[1]).toEqual([now - 7 * day, now - 2 * day]);
    const explicit: unknown = await service.experiment({ scope: undefined, experiment: 'exp-1', fromMs: now - 8 * day, toMs: now }).catch((e: unknown) => e);
    expect(explicit).toMatchObject({ kind: 'bad_request', param: 'from', code: 'invalid_value', message: expect.stringContaining('kept for 7 days (usage.clickhouse.retentionDays)') });
    expect(asked).toHaveLength(2);
  });

  it('refuses a default window whose `to` is not after the oldest raw event kept, on `to`', async () => {
    const { service, asked } = experiments([], { retentionDays: 7 });
    const error: unknown = await service.experiment({ scope: undefined, experiment: 'exp-1', toMs: now - 7 * day }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({
      kind: 'bad_request',
      param: 'to',
      code: 'invalid_value',
      message: 'Raw usage events are kept for 7 days (usage.clickhouse.retentionDays), so the experiment report, which reads them, cannot start before 2026-06-08T12:00:00.000Z. Ask for a later `to`.',
    });
    expect(asked).toEqual([]);
  });

  it('gives an arm in one currency its cost, and one in several its cost per currency only', async () => {
    const { service } = experiments([
      arm('control', [
        { currency: 'EUR', requests: 1, cost: '0.2' },
        { currency: 'USD', requests: 2, cost: '0.3' },
      ]),
      arm('treatment', [{ currency: 'USD', requests: 3, cost: '1' }]),
    ]);
    const report = await service.experiment({ scope: undefined, experiment: 'exp-1', fromMs: now - day, toMs: now });
    expect(report.arms[0]).toMatchObject({ arm: 'control', requests: 3, errorRate: '0.333333', promptTokensPerRequest: '10', currency: '', cost: '', costPerRequest: '' });
    expect(report.arms[0]?.costs).toEqual([
      { currency: 'EUR', requests: 1, cost: '0.2', costPerRequest: '0.2' },
      { currency: 'USD', requests: 2, cost: '0.3', costPerRequest: '0.15' },
    ]);
    expect(report.arms[1]).toMatchObject({ arm: 'treatment', currency: 'USD', cost: '1', costPerRequest: '0.333333333333333333', costs: [{ currency: 'USD', requests: 3, cost: '1', costPerRequest: '0.333333333333333333' }] });
  });
});
