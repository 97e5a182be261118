import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { accountAt, BudgetCatalog, InProcessBudgetBus, RedisBudgetLedger, RedisBudgetStore, ThresholdAlerts } from '@openrouter/budgets';
import { budgetSchema, clickhouseSchema } from '@openrouter/config';
import { usagev1 } from '@openrouter/contracts';
import { createLogger, createMetricsRegistry, ReconciliationMetrics } from '@openrouter/observability';
import { applyRetention, createClickHouse, emptyUsageEvent, migrate, USAGE_MIGRATIONS, type ClickHouseClient, type ClickHouseTarget } from '@openrouter/usage';
import { BudgetReconciler } from '../budgets/budget-reconciler';
import { ClickHouseReportsRepository } from '../reports/reports.repository';
import { ClickHouseUsageEventRepository } from '../usage/usage-event.repository';
import { RedisLease } from '@openrouter/service-runtime';
import { RollupReconciler, type DayReconciliation } from './rollup-reconciler';

const logger = createLogger('test', 'silent');

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error('OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest\'s integration project');
  return url;
}

/** Polls `condition` until it holds, failing after `timeoutMs`. */
async function eventually(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}
const DAY = '2025-03-10';
const DAY_START = Date.parse(`${DAY}T00:00:00Z`);
const NOW = Date.parse('2025-03-12T09:00:00Z');

function event(id: string, at: number, project: string, cost: string, status = usagev1.Status.STATUS_OK, org = 'acme'): usagev1.UsageEvent {
  const e = emptyUsageEvent(id, at);
  e.completedAtMs = at + 40;
  e.latencyMs = 40;
  e.tenant = { orgId: org, projectId: project, teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k1', endUser: '', tags: {} };
  e.servedModel = 'gpt-4o-mini';
  e.provider = 'openai';
  e.tokens = { prompt: 100, completion: 20, cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: false };
  e.cost = { amount: cost, currency: 'USD', priceVersion: 'v1' };
  e.status = status;
  e.httpStatus = status === usagev1.Status.STATUS_OK ? 200 : 502;
  return e;
}

async function rows<T>(store: ClickHouseTarget, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const result = await store.client.query({ query, query_params: { db: store.database, ...params }, format: 'JSONEachRow' });
  return result.json<T>();
}

/** The day per project from the rollup and from the raw events, as reports read them. */
async function dayTotals(store: ClickHouseTarget, day: string): Promise<{ rollup: unknown[]; raw: unknown[] }> {
  const rollup = await rows(
    store,
    'SELECT project_id, toString(sum(requests)) AS requests, toString(sum(errors)) AS errors, toString(sum(prompt_tokens)) AS prompt, toString(sum(cost)) AS cost, toString(sum(latency_ms_sum)) AS latency FROM {db:Identifier}.usage_daily WHERE day = {day:Date} GROUP BY project_id ORDER BY project_id',
    { day },
  );
  const raw = await rows(
    store,
    "SELECT project_id, toString(count()) AS requests, toString(countIf(status = 'error')) AS errors, toString(sum(prompt_tokens)) AS prompt, toString(sum(cost)) AS cost, toString(sum(latency_ms)) AS latency FROM {db:Identifier}.usage_events FINAL WHERE toDate(received_at) = {day:Date} GROUP BY project_id ORDER BY project_id",
    { day },
  );
  return { rollup, raw };
}

/** `client`, but `afterRead` runs after its `count`th query, before that query's answer is given back. */
function pausedAfterRead(client: ClickHouseClient, count: number, afterRead: () => Promise<void>): ClickHouseClient {
  let reads = 0;
  return new Proxy(client, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop !== 'query') return value.bind(target);
      return async (...args: unknown[]) => {
        const result: unknown = await value.apply(target, args);
        if (++reads === count) await afterRead();
        return result;
      };
    },
  });
}

/** A request answered from the response cache: cost 0, and what its first answer cost. */
function cacheHit(id: string, at: number, project: string, saved: string): usagev1.UsageEvent {
  const e = event(id, at, project, '0');
  e.cacheHit = true;
  e.cacheSavedCost = saved;
  return e;
}

/** The day's cache hits and the spend they avoided per project, from the rollup and from the raw events. */
async function dayCacheTotals(store: ClickHouseTarget, day: string): Promise<{ rollup: unknown[]; raw: unknown[] }> {
  const rollup = await rows(
    store,
    'SELECT project_id, toString(sum(requests)) AS requests, toString(sum(cache_hits)) AS hits, toString(sum(cache_saved_cost)) AS saved FROM {db:Identifier}.usage_daily WHERE day = {day:Date} GROUP BY project_id ORDER BY project_id',
    { day },
  );
  const raw = await rows(
    store,
    'SELECT project_id, toString(count()) AS requests, toString(countIf(cache_hit)) AS hits, toString(sum(cache_saved_cost)) AS saved FROM {db:Identifier}.usage_events FINAL WHERE toDate(received_at) = {day:Date} GROUP BY project_id ORDER BY project_id',
    { day },
  );
  return { rollup, raw };
}

describe('reconciliation (chDB, redis-server)', () => {
  let store: ClickHouseTarget;
  let repository: ClickHouseUsageEventRepository;
  const redises: Redis[] = [];
  const redis = (): Redis => {
    const r = new Redis(redisUrl());
    redises.push(r);
    return r;
  };

  beforeAll(async () => {
    store = createClickHouse(clickhouseSchema.parse({ embedded: { path: ':memory:' }, database: `recon_${randomBytes(6).toString('hex')}` }), '.');
    await migrate(store.client, store.database, USAGE_MIGRATIONS);
    repository = new ClickHouseUsageEventRepository(store.client, store.database, store.kind);
  }, 60_000);

  afterAll(async () => {
    redises.forEach((r) => r.disconnect());
    await store.client.close();
  });

  describe('the daily rollup', () => {
    it('takes off what a batch stored twice added, once, and leaves a consistent day alone', async () => {
      const batch = [event('a1', DAY_START + 1_000, 'search', '0.25'), event('a2', DAY_START + 2_000, 'search', '0.5'), event('a3', DAY_START + 3_000, 'chat', '1.125', usagev1.Status.STATUS_ERROR)];
      await repository.insertRows(batch.map((e) => repository.encode(e)));
      // Two consumers in a rebalance race store the same batch: the raw table forgives it (FINAL), the rollup does not.
      await repository.insertRows(batch.slice(0, 2).map((e) => repository.encode(e)));
      await repository.insertRows([repository.encode(event('b1', DAY_START + 86_399_999, 'chat', '2'))]);
      const before = await dayTotals(store, DAY);
      expect(before.raw).toEqual([
        { project_id: 'chat', requests: '2', errors: '1', prompt: '200', cost: '3.125', latency: '80' },
        { project_id: 'search', requests: '2', errors: '0', prompt: '200', cost: '0.75', latency: '80' },
      ]);
      expect(before.rollup).toEqual([
        { project_id: 'chat', requests: '2', errors: '1', prompt: '200', cost: '3.125', latency: '80' },
        { project_id: 'search', requests: '4', errors: '0', prompt: '400', cost: '1.5', latency: '160' },
      ]);

      const registry = createMetricsRegistry('billing', { processMetrics: false });
      const metrics = new ReconciliationMetrics(registry);
      const reconciler = new RollupReconciler(store.client, store.database, { lookbackDays: 3, settleMs: 10 }, logger, { clock: () => NOW, metrics });
      const results = await reconciler.reconcileIfLeased();
      expect(results).toEqual([
        { day: '2025-03-09', outcome: 'consistent', groups: 0, requests: 0 },
        { day: DAY, outcome: 'corrected', groups: 1, requests: -2 },
        { day: '2025-03-11', outcome: 'consistent', groups: 0, requests: 0 },
      ]);
      const after = await dayTotals(store, DAY);
      expect(after.rollup).toEqual(after.raw);
      expect(after.raw).toEqual(before.raw);
      const exposition = await registry.metrics();
      expect(exposition).toContain('openrouter_billing_reconciliation_runs_total{job="rollup",outcome="ran",service="billing"} 1');
      expect(exposition).toContain('openrouter_billing_reconciliation_corrections_total{job="rollup",service="billing"} 1');
      // Corrected once: the next run finds nothing.
      expect(await reconciler.reconcileDay(DAY)).toEqual({ day: DAY, outcome: 'consistent', groups: 0, requests: 0 });
      // A whole-month report reads the rollup, and now agrees with the events.
      const report = new ClickHouseReportsRepository(store.client, store.database);
      const month = await report.usage({ fromMs: Date.parse('2025-03-01T00:00:00Z'), toMs: Date.parse('2025-04-01T00:00:00Z'), groupBy: [], filters: [['org', 'acme']] });
      expect(month.source).toBe('rollup');
      expect(month.rows.map((r) => ({ requests: r.requests, cost: r.cost }))).toEqual([{ requests: 4, cost: '3.875' }]);
      await reconciler.close();
    });

    it('never compares a day whose raw events may have expired', async () => {
      // Retention of 2 days at NOW: of a 3-day look-back only the day wholly inside it is compared.
      const reconciler = new RollupReconciler(store.client, store.database, { lookbackDays: 3, settleMs: 0, retentionDays: 2 }, logger, { clock: () => NOW });
      const days = await reconciler.reconcileWindow();
      expect(days.map((d) => d.day)).toEqual(['2025-03-11']);
      await reconciler.close();
    });

    it('after a raise of the retention, never compares a day whose raw events expired under the earlier one', async () => {
      // A database of its own on the same engine: its retention changes are its own.
      const own: ClickHouseTarget = { ...store, database: `raised_${randomBytes(4).toString('hex')}` };
      await migrate(own.client, own.database, USAGE_MIGRATIONS);
      const ownRepository = new ClickHouseUsageEventRepository(own.client, own.database);
      // A day 40 days back, in the rollup; its raw events have gone (a retention of 30 days).
      const old = NOW - 40 * 86_400_000;
      await ownRepository.insertRows([ownRepository.encode(event('gone-1', old, 'search', '10')), ownRepository.encode(event('gone-2', old, 'search', '15'))]);
      const oldDay = new Date(old).toISOString().slice(0, 10);
      await own.client.command({ query: 'ALTER TABLE {db:Identifier}.usage_events DELETE WHERE 1', query_params: { db: own.database }, clickhouse_settings: { mutations_sync: '1' } });
      // The retention was 30 days, and is raised to 90 (with a look-back of 60) at NOW.
      await applyRetention(own.client, own.database, 30, () => NOW - 400 * 86_400_000);
      await applyRetention(own.client, own.database, 90, () => NOW);
      const reconciler = new RollupReconciler(own.client, own.database, { lookbackDays: 60, settleMs: 0, retentionDays: 90 }, logger, { clock: () => NOW });
      const days = await reconciler.reconcileWindow();
      await reconciler.close();
      // Only the days since NOW − 30 days are compared; the day of 40 days back keeps its invoice figures.
      expect(days.map((d) => d.day)[0]).toBe(new Date(NOW - 29 * 86_400_000).toISOString().slice(0, 10));
      expect(days.map((d) => d.day)).not.toContain(oldDay);
      expect(days.every((d) => d.outcome === 'consistent')).toBe(true);
      const [kept] = await rows<{ requests: string; cost: string }>(own, 'SELECT toString(sum(requests)) AS requests, toString(sum(cost)) AS cost FROM {db:Identifier}.usage_daily WHERE day = {day:Date}', { day: oldDay });
      expect(kept).toEqual({ requests: '2', cost: '25' });
    });

    it('adds what the rollup missed, and corrects a day only with the lease', async () => {
      const day = '2025-03-11';
      await repository.insertRows([repository.encode(event('c1', Date.parse(`${day}T08:00:00Z`), 'search', '0.1'))]);
      // A rollup row lost (a part dropped by hand, a failed view): the raw event has no rollup.
      await store.client.command({ query: 'ALTER TABLE {db:Identifier}.usage_daily DELETE WHERE day = {day:Date}', query_params: { db: store.database, day }, clickhouse_settings: { mutations_sync: '1' } });
      const key = `recon-${randomBytes(4).toString('hex')}:billing:lease:rollup-reconciliation`;
      const replicas = [0, 1].map(() => new RollupReconciler(store.client, store.database, { lookbackDays: 1, settleMs: 10 }, logger, { lease: new RedisLease(redis(), key, 60_000), clock: () => NOW }));
      const results = await Promise.all(replicas.map((r) => r.reconcileIfLeased()));
      expect(results.filter((r) => r === undefined)).toHaveLength(1);
      expect(results.find((r) => r !== undefined)).toEqual([{ day, outcome: 'corrected', groups: 1, requests: 1 }]);
      const totals = await dayTotals(store, day);
      expect(totals.rollup).toEqual(totals.raw);
      expect(totals.raw).toEqual([{ project_id: 'search', requests: '1', errors: '0', prompt: '100', cost: '0.1', latency: '40' }]);
      await Promise.all(replicas.map((r) => r.close()));
    });

    it('leaves a day alone while events for it are arriving, and corrects it once they stop', async () => {
      const day = '2025-03-09';
      const at = Date.parse(`${day}T12:00:00Z`);
      const first = event('f1', at, 'search', '0.3');
      await repository.insertRows([repository.encode(first)]);
      await repository.insertRows([repository.encode(first)]); // counted twice in the rollup
      let arriving = true;
      // Between the day's two reads, a late event of that day is stored (an outbox replayed).
      const reconciler = new RollupReconciler(store.client, store.database, { lookbackDays: 1, settleMs: 0 }, logger, {
        clock: () => NOW,
        sleep: async () => {
          if (arriving) await repository.insertRows([repository.encode(event(`late-${Date.now()}`, at + 1, 'search', '0.2'))]);
        },
      });
      expect(await reconciler.reconcileDay(day)).toEqual({ day, outcome: 'unsettled', groups: 0, requests: 0 });
      arriving = false;
      expect(await reconciler.reconcileDay(day)).toEqual({ day, outcome: 'corrected', groups: 1, requests: -1 });
      const totals = await dayTotals(store, day);
      expect(totals.rollup).toEqual(totals.raw);
      expect(totals.raw).toEqual([{ project_id: 'search', requests: '2', errors: '0', prompt: '200', cost: '0.5', latency: '80' }]);
      await reconciler.close();
    });
    it('rebuilds the cache hits and savings too: takes off a hit stored twice, adds one the rollup never counted', async () => {
      const day = '2025-03-05';
      const at = Date.parse(`${day}T10:00:00Z`);
      // A hit stored before the rollup kept cache hits (migration 8): the view counted its request only.
      await repository.insertRows([repository.encode(cacheHit('old-hit', at, 'search', '0.3'))]);
      await store.client.command({
        query: 'ALTER TABLE {db:Identifier}.usage_daily UPDATE cache_hits = 0, cache_saved_cost = 0 WHERE day = {day:Date}',
        query_params: { db: store.database, day },
        clickhouse_settings: { mutations_sync: '1' },
      });
      // Two consumers in a rebalance race store the same batch of hits.
      const batch = [cacheHit('hit-1', at + 1, 'search', '0.4'), cacheHit('hit-2', at + 2, 'search', '0.500000000000000001'), event('miss-1', at + 3, 'search', '0.25')];
      await repository.insertRows(batch.map((e) => repository.encode(e)));
      await repository.insertRows(batch.slice(0, 2).map((e) => repository.encode(e)));
      const before = await dayCacheTotals(store, day);
      expect(before.raw).toEqual([{ project_id: 'search', requests: '4', hits: '3', saved: '1.200000000000000001' }]);
      expect(before.rollup).toEqual([{ project_id: 'search', requests: '6', hits: '4', saved: '1.800000000000000002' }]);

      const reconciler = new RollupReconciler(store.client, store.database, { lookbackDays: 1, settleMs: 0 }, logger, { clock: () => NOW });
      expect(await reconciler.reconcileDay(day)).toEqual({ day, outcome: 'corrected', groups: 1, requests: -2 });
      const after = await dayCacheTotals(store, day);
      expect(after.rollup).toEqual(after.raw);
      expect(await reconciler.reconcileDay(day)).toEqual({ day, outcome: 'consistent', groups: 0, requests: 0 });
      // A whole-day report reads the rollup, and agrees with the raw events on hits and savings.
      const reports = new ClickHouseReportsRepository(store.client, store.database);
      const range = { fromMs: Date.parse(`${day}T00:00:00Z`), toMs: Date.parse(`${day}T00:00:00Z`) + 86_400_000, groupBy: [], filters: [['project', 'search']] as Array<['project', string]> };
      const rollup = await reports.usage(range);
      const raw = await reports.usage({ ...range, fromMs: range.fromMs + 1 });
      expect(rollup.source).toBe('rollup');
      expect(raw.source).toBe('events');
      expect(rollup.rows.map((r) => ({ requests: r.requests, cost: r.cost, cacheHits: r.cacheHits, cacheSavedCost: r.cacheSavedCost }))).toEqual([{ requests: 4, cost: '0.25', cacheHits: 3, cacheSavedCost: '1.200000000000000001' }]);
      expect(raw.rows).toEqual(rollup.rows);
      await reconciler.close();
    });
  });

  describe('the lease', () => {
    it('fails a run, counted and correcting nothing, when Redis cannot be reached', async () => {
      const day = '2025-03-08';
      const e = event('g1', Date.parse(`${day}T06:00:00Z`), 'search', '0.4');
      await repository.insertRows([repository.encode(e)]);
      await repository.insertRows([repository.encode(e)]); // counted twice in the rollup
      // Nothing listens on port 1; no reconnection, so the command fails at once.
      const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      down.on('error', () => undefined);
      redises.push(down);
      const registry = createMetricsRegistry('billing', { processMetrics: false });
      const reconciler = new RollupReconciler(store.client, store.database, { lookbackDays: 1, settleMs: 0 }, logger, {
        lease: new RedisLease(down, 'never-held', 60_000),
        clock: () => Date.parse('2025-03-09T01:00:00Z'),
        metrics: new ReconciliationMetrics(registry),
      });
      await expect(reconciler.reconcileIfLeased()).rejects.toThrow();
      expect(await registry.metrics()).toContain('openrouter_billing_reconciliation_runs_total{job="rollup",outcome="failed",service="billing"} 1');
      const totals = await dayTotals(store, day);
      expect(totals.raw).toEqual([{ project_id: 'search', requests: '1', errors: '0', prompt: '100', cost: '0.4', latency: '40' }]);
      expect(totals.rollup).toEqual([{ project_id: 'search', requests: '2', errors: '0', prompt: '200', cost: '0.8', latency: '80' }]);
      await reconciler.close();
    });

    // A run that outlives its lease (a long look-back, a slow ClickHouse) or loses it in a Redis
    // failover: another replica takes the lease and corrects the day the first one has read, and
    // is about to correct by the same difference.
    it.each([
      ['the new holder still holds it', '2025-03-03', false],
      ['it lapsed again since (the lease was free when the first replica looked)', '2025-03-02', true],
    ])('corrects a day once when a run loses the lease between reading the day and correcting it: %s', async (_case, day, lapsedAgain) => {
      const e = event(`lapse-${day}`, Date.parse(`${day}T06:00:00Z`), 'search', '0.4');
      await repository.insertRows([repository.encode(e)]);
      await repository.insertRows([repository.encode(e)]); // counted twice in the rollup
      const key = `recon-${randomBytes(4).toString('hex')}:billing:lease:rollup-reconciliation`;
      const settings = { lookbackDays: 1, settleMs: 0 };
      const clock = (): number => Date.parse(`${day}T00:00:00Z`) + 86_400_000 + 3_600_000;
      const watcher = redis();
      const other = new RollupReconciler(store.client, store.database, settings, logger, { lease: new RedisLease(redis(), key, 60_000), clock });
      let othersRun: DayReconciliation[] | undefined;
      // The first replica's lease lives 300 ms: once it has read the day twice (four queries), its
      // lease is let lapse, and the other replica takes it and runs, before the first one goes on.
      const client = pausedAfterRead(store.client, 4, async () => {
        await eventually(async () => (await watcher.exists(key)) === 0, 5_000, 'the first lease to lapse');
        othersRun = await other.reconcileIfLeased();
        if (lapsedAgain) await watcher.del(key);
      });
      const first = new RollupReconciler(client, store.database, settings, logger, { lease: new RedisLease(redis(), key, 300), clock });
      const firstRun = await first.reconcileIfLeased();
      expect(othersRun).toEqual([{ day, outcome: 'corrected', groups: 1, requests: -1 }]);
      expect(firstRun).toEqual([{ day, outcome: 'lease_lost', groups: 0, requests: 0 }]);
      const totals = await dayTotals(store, day);
      expect(totals.raw).toEqual([{ project_id: 'search', requests: '1', errors: '0', prompt: '100', cost: '0.4', latency: '40' }]);
      expect(totals.rollup).toEqual(totals.raw);
      await Promise.all([first.close(), other.close()]);
    });

    it('is held by one holder, renewed by it, handed over on release or expiry', async () => {
      const key = `lease-${randomBytes(4).toString('hex')}`;
      const a = new RedisLease(redis(), key, 300);
      const b = new RedisLease(redis(), key, 300);
      expect(await a.hold()).toBe(true);
      expect(await b.hold()).toBe(false);
      expect(await a.hold()).toBe(true);
      await b.release(); // not b's to give up
      expect(await b.hold()).toBe(false);
      await a.release();
      expect(await b.hold()).toBe(true);
      // b stops renewing (its replica died): the lease expires and a takes it.
      await eventually(() => a.hold(), 5_000, 'the lease to expire');
      expect(await b.hold()).toBe(false);
    });
  });

  describe('budget spend, with two billing replicas', () => {
    it('raises a ledger that missed spend once, not once per replica', async () => {
      const now = Date.parse('2025-03-20T12:00:00Z');
      const budget = budgetSchema.parse({ id: 'acme-month', scope: { org: 'acme-two' }, period: 'monthly', amount: '100' });
      await repository.insertRows([repository.encode(event('d1', Date.parse('2025-03-05T10:00:00Z'), 'search', '1.5', usagev1.Status.STATUS_OK, 'acme-two'))]);
      const prefix = `recon-${randomBytes(4).toString('hex')}:`;
      const line = accountAt(budget, now).line;
      const ledgers = [0, 1].map(() => new RedisBudgetLedger(redis(), prefix));
      await ledgers[0]?.settle('r1', [line], 1_000_000);
      const store2 = new ClickHouseReportsRepository(store.client, store.database);
      const replicas = ledgers.map((ledger) => new BudgetReconciler([budget], ledger, store2, async () => 0, logger, { clock: () => now, lease: new RedisLease(redis(), `${prefix}billing:lease:budget-reconciliation`, 60_000) }));
      const results = await Promise.all(replicas.map((r) => r.reconcileIfLeased()));
      const holder = results.findIndex((r) => r !== undefined);
      expect(results.filter((r) => r === undefined)).toHaveLength(1);
      expect(results[holder]).toMatchObject([{ ledgerMicros: 1_000_000, storedMicros: 1_500_000, correctionMicros: 500_000 }]);
      expect((await ledgers[1]?.read([line.account]))?.[0]?.spentMicros).toBe(1_500_000);
      // The holder keeps the job and finds the ledger right; the other replica still skips.
      expect(await replicas[holder]?.reconcileIfLeased()).toMatchObject([{ correctionMicros: 0 }]);
      expect(await replicas[1 - holder]?.reconcileIfLeased()).toBeUndefined();
      await Promise.all(replicas.map((r) => r.close()));
    });

    it('reconciles a budget created through the admin API, which its catalog reads from Redis, from its creation on', async () => {
      const now = Date.parse('2025-03-20T12:00:00Z');
      const org = 'acme-api';
      // Spent before the budget was created (06:00): not its own, as its ledger account started at nothing.
      await repository.insertRows([repository.encode(event('p0', Date.parse('2025-03-20T05:00:00Z'), 'search', '2', usagev1.Status.STATUS_OK, org))]);
      await repository.insertRows([repository.encode(event('p1', Date.parse('2025-03-20T08:00:00Z'), 'search', '0.75', usagev1.Status.STATUS_OK, org))]);
      const prefix = `recon-${randomBytes(4).toString('hex')}:`;
      const catalog = new BudgetCatalog([], new RedisBudgetStore(redis(), redis(), prefix));
      await catalog.start();
      const ledger = new RedisBudgetLedger(redis(), prefix);
      const reconciler = new BudgetReconciler(catalog, ledger, new ClickHouseReportsRepository(store.client, store.database), async () => 0, logger, { clock: () => now });
      expect(await reconciler.reconcile()).toEqual([]);
      // Created on an ingress replica (its settle never ran: the ledger missed the request).
      const ingress = new RedisBudgetStore(redis(), redis(), prefix);
      const budget = budgetSchema.parse({ id: 'acme-api-daily', scope: { org }, period: 'daily', amount: '10' });
      const createdAt = '2025-03-20T06:00:00.000Z';
      await ingress.update(budget.id, () => ({ ...budget, createdAt, updatedAt: createdAt, creationId: 'c0ffee' }));
      await ingress.publish();
      expect(await reconciler.reconcile()).toMatchObject([{ budget: 'acme-api-daily', account: 'acme-api-daily~c0ffee:2025-03-20', ledgerMicros: 0, storedMicros: 750_000, correctionMicros: 750_000 }]);
      const created = catalog.entry(budget.id)?.budget;
      if (!created) throw new Error('the created budget is not in the catalog');
      // The account ingress enforces it with.
      expect((await ledger.read([accountAt(created, now).line.account]))[0]?.spentMicros).toBe(750_000);
      await reconciler.close();
      await ingress.close();
    });

    it('counts a batch stored twice once: the rollup\'s duplicate never raises a UTC budget', async () => {
      const now = Date.parse('2025-03-20T12:00:00Z');
      const org = 'acme-dup';
      const budget = budgetSchema.parse({ id: 'acme-dup-month', scope: { org }, period: 'monthly', timezone: 'UTC', amount: '100' });
      const batch = [event('h1', Date.parse('2025-03-20T08:00:00Z'), 'search', '2', usagev1.Status.STATUS_OK, org), event('h2', Date.parse('2025-03-20T08:00:01Z'), 'search', '3', usagev1.Status.STATUS_OK, org)];
      // Two consumers in a rebalance race store the same batch today: the rollup counts it twice,
      // and the rollup's reconciliation corrects only closed days.
      await repository.insertRows(batch.map((e) => repository.encode(e)));
      await repository.insertRows(batch.map((e) => repository.encode(e)));
      const reports = new ClickHouseReportsRepository(store.client, store.database);
      const window = accountAt(budget, now).window;
      const rollup = await reports.usage({ fromMs: window.startMs, toMs: window.endMs, groupBy: [], filters: [['org', org]] });
      expect(rollup).toEqual({ source: 'rollup', rows: [expect.objectContaining({ requests: 4, cost: '10' })] });
      const prefix = `recon-${randomBytes(4).toString('hex')}:`;
      const ledger = new RedisBudgetLedger(redis(), prefix);
      const line = accountAt(budget, now).line;
      await ledger.settle('r1', [line], 5_000_000); // what the two requests really cost
      const reconciler = new BudgetReconciler([budget], ledger, reports, async () => 0, logger, { clock: () => now });
      expect(await reconciler.reconcile()).toMatchObject([{ ledgerMicros: 5_000_000, storedMicros: 5_000_000, correctionMicros: 0 }]);
      expect((await ledger.read([line.account]))[0]?.spentMicros).toBe(5_000_000);
      await reconciler.close();
    });

    it('publishes the threshold crossings no settle published, once', async () => {
      const now = Date.parse('2025-03-20T12:00:00Z');
      // The ingress that settled the request past 80 % could not publish (Kafka down), and the
      // budget, now nearly spent, refuses what would have settled next.
      const budget = budgetSchema.parse({ id: 'acme-alerts', scope: { org: 'acme-three' }, period: 'monthly', amount: '2' });
      await repository.insertRows([repository.encode(event('e1', Date.parse('2025-03-06T10:00:00Z'), 'search', '1.7', usagev1.Status.STATUS_OK, 'acme-three'))]);
      const prefix = `recon-${randomBytes(4).toString('hex')}:`;
      const ledger = new RedisBudgetLedger(redis(), prefix);
      await ledger.settle('r1', [accountAt(budget, now).line], 1_700_000);
      const bus = new InProcessBudgetBus(logger);
      const received: string[] = [];
      bus.subscribe((e) => received.push(`${e.eventId} ${e.spent}`));
      const registry = createMetricsRegistry('billing', { processMetrics: false });
      const reconciler = new BudgetReconciler([budget], ledger, new ClickHouseReportsRepository(store.client, store.database), async () => 0, logger, {
        clock: () => now,
        alerts: new ThresholdAlerts(ledger, bus, logger, () => now),
        metrics: new ReconciliationMetrics(registry),
      });
      expect(await reconciler.reconcileIfLeased()).toMatchObject([{ correctionMicros: 0, thresholdsPublished: 2 }]);
      expect(await registry.metrics()).toContain('openrouter_budget_threshold_events_caught_up_total{service="billing"} 2');
      expect(received).toEqual(['acme-alerts/2025-03/50 1.7', 'acme-alerts/2025-03/80 1.7']);
      expect(await reconciler.reconcile()).toMatchObject([{ thresholdsPublished: 0 }]);
      expect(received).toHaveLength(2);
      await reconciler.close();
    });
  });
});
