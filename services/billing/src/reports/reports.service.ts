import type { BillingConfig } from '@openrouter/config';
import { billingv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { Money, moneyText } from '@openrouter/usage';
import { allocate } from './allocation';
import { DIMENSIONS, FILTERS, GROUP_BY_NAMES, parseGroupBy, type DimensionName, type GroupBy } from './report-dimensions';
import { rollupAnswers, TooManyGroupsError, type ReportsRepository, type UsageAggregate, type UsageQuery, type UsageSource } from './reports.repository';

const DAY_MS = 86_400_000;
const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

type Filters = Array<[DimensionName, string]>;

/** [start, end) of a calendar month in UTC. */
export function monthWindow(month: string): { fromMs: number; toMs: number } {
  const m = MONTH.exec(month);
  if (!m) throw new GatewayError('bad_request', 'month must be YYYY-MM.', { param: 'month', code: 'invalid_value' });
  const year = Number(m[1]);
  const index = Number(m[2]) - 1;
  return { fromMs: Date.UTC(year, index, 1), toMs: Date.UTC(year, index + 1, 1) };
}

/** Filters the caller's scope imposes (a project-scoped key sees only its project). */
function scopeFilters(scope: billingv1.TenantScope | undefined): Filters {
  const out: Filters = [];
  if (scope?.orgId) out.push(['org', scope.orgId]);
  if (scope?.projectId) out.push(['project', scope.projectId]);
  return out;
}

const text = (amount: Money | string): string => moneyText(new Money(amount));

function totalsOf(rows: readonly UsageAggregate[]): billingv1.UsageTotals {
  let cost = new Money(0);
  let saved = new Money(0);
  const t = { requests: 0, errors: 0, promptTokens: 0, completionTokens: 0, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, cacheHits: 0 };
  for (const r of rows) {
    t.requests += r.requests;
    t.errors += r.errors;
    t.promptTokens += r.promptTokens;
    t.completionTokens += r.completionTokens;
    t.cachedReadTokens += r.cachedReadTokens;
    t.cacheWriteTokens += r.cacheWriteTokens;
    t.reasoningTokens += r.reasoningTokens;
    t.cacheHits += r.cacheHits;
    cost = cost.plus(r.cost);
    saved = saved.plus(r.cacheSavedCost);
  }
  return { ...t, cost: text(cost), cacheSavedCost: text(saved) };
}

/**
 * A report with more rows than `billing.reports.maxRows`: the caller's to narrow. Without this the
 * response outgrows gRPC's message cap between billing and ingress and fails as a 5xx; reports
 * are not paged.
 */
function tooLarge(report: string, maxRows: number, narrow: string): GatewayError {
  return new GatewayError('bad_request', `The ${report} has more than ${maxRows} rows, the most billing.reports.maxRows allows; ${narrow}.`, { code: 'report_too_large' });
}

function sumByCurrency(entries: Iterable<{ currency: string; amount: Money | string }>): Record<string, string> {
  const sums = new Map<string, Money>();
  for (const e of entries) sums.set(e.currency, (sums.get(e.currency) ?? new Money(0)).plus(e.amount));
  return Object.fromEntries([...sums].map(([c, v]) => [c, text(v)]));
}

/** A cost centre's own use in a chargeback: its cost, requests, and the cache hits among them with the spend they avoided. */
interface DirectUse {
  cost: Money;
  requests: number;
  cacheHits: number;
  cacheSavedCost: Money;
}

const noUse = (): DirectUse => ({ cost: new Money(0), requests: 0, cacheHits: 0, cacheSavedCost: new Money(0) });

function addUse(use: DirectUse, r: UsageAggregate): DirectUse {
  return { cost: use.cost.plus(r.cost), requests: use.requests + r.requests, cacheHits: use.cacheHits + r.cacheHits, cacheSavedCost: use.cacheSavedCost.plus(r.cacheSavedCost) };
}

/** What the daily rollup keeps, for messages. */
const ROLLUP_DIMENSIONS = (Object.keys(DIMENSIONS) as DimensionName[]).filter((d) => DIMENSIONS[d].rollup !== undefined).join(', ');

export interface ReportsOptions {
  /** `usage.clickhouse.retentionDays`: raw events older than this are deleted (the daily rollup is kept). */
  retentionDays?: number;
  clock?: () => number;
}

/**
 * The reports: usage, invoices, chargeback, FOCUS export and experiment comparison. Every
 * money figure is an exact decimal sum of stored event costs; nothing passes through a float.
 */
export class ReportsService {
  constructor(
    private readonly repository: ReportsRepository,
    private readonly config: Pick<BillingConfig, 'chargeback' | 'reports'>,
    private readonly options: ReportsOptions = {},
  ) {}

  /**
   * A usage report the raw events answer cannot start before the oldest one kept: the days before
   * it are gone from them, and the report would answer less than was spent without saying so. The
   * daily rollup keeps every day, so whole UTC days grouped by what it keeps answer any period.
   */
  private requireRawEventsKept(query: UsageQuery): void {
    if (rollupAnswers(query)) return;
    this.requireKept(
      query.fromMs,
      'this report, which reads them',
      `Whole UTC days (dates as from and to) grouped and filtered only by ${ROLLUP_DIMENSIONS} are read from the daily rollup, which keeps every day.`,
    );
  }

  /** The first instant whose raw events are still kept; none without a retention. */
  private oldestKept(): number {
    const { retentionDays, clock = Date.now } = this.options;
    return retentionDays === undefined ? -Infinity : clock() - retentionDays * DAY_MS;
  }

  /** A range of raw events that starts before the oldest one kept is refused, saying from when it may start. */
  private requireKept(fromMs: number, reader: string, instead: string, oldest = this.oldestKept()): void {
    if (fromMs < oldest) throw this.notKept(oldest, reader, instead, 'from');
  }

  private notKept(oldest: number, reader: string, instead: string, param: 'from' | 'to'): GatewayError {
    return new GatewayError('bad_request', `Raw usage events are kept for ${this.options.retentionDays} days (usage.clickhouse.retentionDays), so ${reader}, cannot start before ${new Date(oldest).toISOString()}. ${instead}`, {
      param,
      code: 'invalid_value',
    });
  }

  /**
   * The usage rows of one report, refused when there are more than `maxRows`. The store is asked
   * for one row more than allowed, so an oversized report is known without reading it whole.
   */
  private async rows(query: UsageQuery, report: string, narrow: string, signal?: AbortSignal): Promise<UsageSource> {
    const { maxRows } = this.config.reports;
    const result = await this.repository.usage({ ...query, limit: maxRows + 1 }, signal).catch((error: unknown) => {
      throw error instanceof TooManyGroupsError ? tooLarge(report, maxRows, narrow) : error;
    });
    if (result.rows.length > maxRows) throw tooLarge(report, maxRows, narrow);
    return result;
  }

  /** `signal`, on every report: aborted when its caller is gone, which cancels the store's query. */
  async usage(request: billingv1.UsageReportRequest, signal?: AbortSignal): Promise<billingv1.UsageReportResponse> {
    if (!(request.toMs > request.fromMs)) throw new GatewayError('bad_request', '`to` must be after `from`.', { param: 'to', code: 'invalid_value' });
    const groupBy: GroupBy[] = [];
    for (const name of request.groupBy) {
      const parsed = parseGroupBy(name);
      if (!parsed) throw new GatewayError('bad_request', `Unknown group_by "${name}"; use ${GROUP_BY_NAMES.join(', ')}.`, { param: 'group_by', code: 'invalid_value' });
      if (!groupBy.some((g) => g.name === parsed.name)) groupBy.push(parsed);
    }
    const filters = scopeFilters(request.scope);
    for (const [field, dimension] of Object.entries(FILTERS) as Array<[keyof typeof FILTERS, DimensionName]>) {
      const value = request.filter?.[field];
      if (value) filters.push([dimension, value]);
    }
    const query: UsageQuery = { fromMs: request.fromMs, toMs: request.toMs, groupBy, filters };
    this.requireRawEventsKept(query);
    const result = await this.rows(query, 'usage report', 'narrow the period (`from`, `to`), group by fewer dimensions or filter', signal);
    // Costs in different currencies are not added up: the total's cost is given only for one currency.
    const costByCurrency = sumByCurrency(result.rows.map((r) => ({ currency: r.currency, amount: r.cost })));
    const cacheSavedCostByCurrency = sumByCurrency(result.rows.map((r) => ({ currency: r.currency, amount: r.cacheSavedCost })));
    const total = totalsOf(result.rows);
    return {
      source: result.source,
      total: Object.keys(costByCurrency).length > 1 ? { ...total, cost: '', cacheSavedCost: '' } : total,
      costByCurrency,
      cacheSavedCostByCurrency,
      rows: result.rows.map((r) => ({
        dimensions: Object.fromEntries(groupBy.map((g, i) => [g.name, r.dimensions[i] ?? ''])),
        currency: r.currency,
        totals: totalsOf([r]),
      })),
    };
  }

  async invoice(request: billingv1.InvoiceRequest, signal?: AbortSignal): Promise<billingv1.InvoiceResponse> {
    if (!request.orgId) throw new GatewayError('bad_request', 'Name the organisation.', { param: 'org', code: 'invalid_value' });
    const window = monthWindow(request.month);
    const filters: Filters = [...scopeFilters(request.scope), ['org', request.orgId]];
    const { rows } = await this.rows({ ...window, groupBy: [{ kind: 'dimension', name: 'model' }], filters }, 'invoice', 'an invoice has one line per model and currency of its month, so only raising the limit helps', signal);
    const lines = rows.map((r) => ({
      model: r.dimensions[0] ?? '',
      currency: r.currency,
      requests: r.requests,
      promptTokens: r.promptTokens,
      completionTokens: r.completionTokens,
      cachedReadTokens: r.cachedReadTokens,
      cacheWriteTokens: r.cacheWriteTokens,
      amount: text(r.cost),
      cacheHits: r.cacheHits,
      cacheSavedCost: text(r.cacheSavedCost),
    }));
    return { orgId: request.orgId, month: request.month, periodStartMs: window.fromMs, periodEndMs: window.toMs, lines, totals: sumByCurrency(lines) };
  }

  /**
   * Money is allocated, requests are not: a line's `requests` are its cost centre's own (direct)
   * requests, since a share of the pool's requests would be a fraction of a request, or whole
   * requests handed to cost centres that never made them. When the pool is allocated the response
   * has no field for its requests, so the lines' requests add up to the month's less the pool's;
   * a pool left unallocated carries its own count on its `unallocated` line. Cache hits and the
   * spend they avoided (`cacheHits`, `cacheSavedCost`) are counted like requests: a cost centre's
   * own, never allocated.
   */
  async chargeback(request: billingv1.ChargebackRequest, signal?: AbortSignal): Promise<billingv1.ChargebackResponse> {
    const window = monthWindow(request.month);
    const allocation =
      request.allocation === billingv1.Allocation.ALLOCATION_UNSPECIFIED || request.allocation === billingv1.Allocation.UNRECOGNIZED
        ? this.config.chargeback.allocation === 'fixed'
          ? billingv1.Allocation.ALLOCATION_FIXED
          : billingv1.Allocation.ALLOCATION_PROPORTIONAL
        : request.allocation;
    const filters: Filters = scopeFilters(request.scope);
    if (request.orgId) filters.push(['org', request.orgId]);
    const { rows } = await this.rows(
      {
        ...window,
        groupBy: [
          { kind: 'dimension', name: 'org' },
          { kind: 'dimension', name: 'cost_center' },
        ],
        filters,
      },
      'chargeback',
      'ask for one org (`org`)',
      signal,
    );
    const shared = new Set(this.config.chargeback.sharedCostCenters);
    // Per org and currency: direct spend per cost centre, and the pool of shared and untagged spend.
    // Requests and cache savings stay with the cost centre that made them, as requests do.
    const groups = new Map<string, { org: string; currency: string; direct: Map<string, DirectUse>; pool: Money; poolUse: DirectUse }>();
    for (const r of rows) {
      const [org = '', costCenter = ''] = r.dimensions;
      const key = `${org}\u0000${r.currency}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { org, currency: r.currency, direct: new Map(), pool: new Money(0), poolUse: noUse() }));
      if (costCenter === '' || shared.has(costCenter)) {
        g.pool = g.pool.plus(r.cost);
        g.poolUse = addUse(g.poolUse, r);
      } else {
        g.direct.set(costCenter, addUse(g.direct.get(costCenter) ?? noUse(), r));
      }
    }
    const lines: billingv1.ChargebackLine[] = [];
    const unallocated: billingv1.ChargebackLine[] = [];
    for (const g of groups.values()) {
      const weights: Array<readonly [string, Money]> =
        allocation === billingv1.Allocation.ALLOCATION_FIXED
          ? Object.entries(this.config.chargeback.fixedShares).map(([cc, w]) => [cc, new Money(w)] as const)
          : [...g.direct].map(([cc, d]) => [cc, d.cost] as const);
      const shares = g.pool.isZero() ? new Map<string, Money>() : allocate(g.pool, weights);
      const centres = new Set([...g.direct.keys(), ...(shares?.keys() ?? [])]);
      for (const cc of [...centres].sort()) {
        const direct = g.direct.get(cc)?.cost ?? new Money(0);
        const allocated = shares?.get(cc) ?? new Money(0);
        const use = g.direct.get(cc) ?? noUse();
        lines.push({ orgId: g.org, costCenter: cc, currency: g.currency, direct: text(direct), allocated: text(allocated), total: text(direct.plus(allocated)), requests: use.requests, cacheHits: use.cacheHits, cacheSavedCost: text(use.cacheSavedCost) });
      }
      // A pool nothing was allocated from (no weight to allocate by, or no money: its requests all
      // answered from the cache at 0) keeps its own line, so its requests, hits and savings appear.
      if ((!shares || g.pool.isZero()) && (!g.pool.isZero() || g.poolUse.requests > 0)) {
        unallocated.push({ orgId: g.org, costCenter: '', currency: g.currency, direct: text(g.pool), allocated: '0', total: text(g.pool), requests: g.poolUse.requests, cacheHits: g.poolUse.cacheHits, cacheSavedCost: text(g.poolUse.cacheSavedCost) });
      }
    }
    return {
      month: request.month,
      allocation,
      lines,
      unallocated,
      totals: sumByCurrency([...lines, ...unallocated].map((l) => ({ currency: l.currency, amount: l.total }))),
    };
  }

  async focus(request: billingv1.FocusExportRequest, signal?: AbortSignal): Promise<billingv1.FocusExportResponse> {
    const window = monthWindow(request.month);
    const filters: Filters = scopeFilters(request.scope);
    if (request.orgId) filters.push(['org', request.orgId]);
    const names: DimensionName[] = ['day', 'org', 'project', 'team', 'app', 'cost_center', 'model', 'provider'];
    const { rows } = await this.rows({ ...window, groupBy: names.map((name) => ({ kind: 'dimension', name })), filters }, 'FOCUS export', 'export one org at a time (`org`)', signal);
    return {
      billingPeriodStartMs: window.fromMs,
      billingPeriodEndMs: window.toMs,
      rows: rows.map((r) => {
        const [day = '', org = '', project = '', team = '', app = '', costCenter = '', model = '', provider = ''] = r.dimensions;
        const start = Date.parse(`${day}T00:00:00Z`);
        const cost = text(r.cost);
        const tags: Record<string, string> = {};
        if (team) tags['openrouter/team'] = team;
        if (app) tags['openrouter/app'] = app;
        if (costCenter) tags['openrouter/cost-center'] = costCenter;
        return {
          billedCost: cost,
          effectiveCost: cost,
          listCost: cost,
          consumedQuantity: String(r.promptTokens + r.completionTokens),
          consumedUnit: 'Tokens',
          chargePeriodStartMs: start,
          chargePeriodEndMs: start + DAY_MS,
          billingAccountId: org,
          subAccountId: project ? `${org}/${project}` : org,
          serviceName: 'Open-Router',
          skuId: model,
          providerName: provider,
          billingCurrency: r.currency,
          tags,
        };
      }),
    };
  }

  /**
   * One entry per arm over all its requests: its error rate and percentiles are the arm's, whatever
   * currency each request was priced in. Money is per currency (`costs`); the arm's own `cost`,
   * `costPerRequest` and `currency` are filled only when it has one currency, as costs in
   * different currencies are never added up. The experiment report always reads the raw events
   * (the rollup keeps no arm), so it is held to their retention: a `from` the caller gave before
   * the oldest one kept is refused, while the default start (the 30 days before `to`, never before
   * 1970) is moved up to it, so a report that names no start is not refused for one it never chose.
   */
  async experiment(request: billingv1.ExperimentReportRequest, signal?: AbortSignal): Promise<billingv1.ExperimentReportResponse> {
    if (!request.experiment) throw new GatewayError('bad_request', 'Name the experiment.', { param: 'id', code: 'invalid_value' });
    const reader = 'the experiment report, which reads them';
    // Read once: the default start and the check against it must see the same instant.
    const oldest = this.oldestKept();
    let fromMs = request.fromMs;
    if (fromMs === undefined) {
      fromMs = Math.max(0, request.toMs - 30 * DAY_MS, oldest);
      // A `to` at or before the oldest event kept: no window ending there is kept.
      if (!(request.toMs > fromMs) && fromMs === oldest) throw this.notKept(oldest, reader, 'Ask for a later `to`.', 'to');
    } else {
      this.requireKept(fromMs, reader, 'Ask for a later `from`.', oldest);
    }
    if (!(request.toMs > fromMs)) throw new GatewayError('bad_request', '`to` must be after `from`.', { param: 'to', code: 'invalid_value' });
    const arms = await this.repository.experiment(request.experiment, fromMs, request.toMs, scopeFilters(request.scope), signal);
    const per = (value: Money | number | string, requests: number, places: number): string =>
      requests > 0 ? new Money(value).dividedBy(requests).toDecimalPlaces(places, Money.ROUND_HALF_EVEN).toFixed() : '0';
    return {
      experiment: request.experiment,
      fromMs,
      arms: arms.map((a) => {
        const costs = a.costs.map((c) => ({ currency: c.currency, requests: c.requests, cost: text(c.cost), costPerRequest: moneyText(new Money(per(c.cost, c.requests, 18))) }));
        const only = costs.length === 1 ? costs[0] : undefined;
        return {
          arm: a.arm,
          requests: a.requests,
          errors: a.errors,
          errorRate: per(a.errors, a.requests, 6),
          latencyP50Ms: a.latencyP50,
          latencyP95Ms: a.latencyP95,
          ttftP50Ms: a.ttftP50,
          ttftP95Ms: a.ttftP95,
          promptTokensPerRequest: per(a.promptTokens, a.requests, 2),
          completionTokensPerRequest: per(a.completionTokens, a.requests, 2),
          cost: only?.cost ?? '',
          costPerRequest: only?.costPerRequest ?? '',
          currency: only?.currency ?? '',
          costs,
        };
      }),
    };
  }
}
