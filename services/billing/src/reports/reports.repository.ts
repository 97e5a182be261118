import type { ClickHouseClient } from '@openrouter/usage';
import { DIMENSIONS, type DimensionName, type GroupBy } from './report-dimensions';

export interface UsageQuery {
  fromMs: number;
  toMs: number;
  groupBy: readonly GroupBy[];
  /** Dimension → value; every entry must match. */
  filters: ReadonlyArray<[DimensionName, string]>;
  /**
   * At most this many rows, the first in the report's order; every row when undefined. A query
   * with more groups than this may instead fail with {@link TooManyGroupsError}.
   */
  limit?: number;
}

/** One group of a usage query; money as decimal text. */
export interface UsageAggregate {
  dimensions: string[];
  currency: string;
  requests: number;
  errors: number;
  promptTokens: number;
  completionTokens: number;
  cachedReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  cost: string;
  /** Requests answered from the response cache (counted in `requests`, at cost 0). */
  cacheHits: number;
  /** What those answers cost when first served: the spend the cache avoided. Not in `cost`. */
  cacheSavedCost: string;
}

/** One arm's requests priced in one currency; money as decimal text. */
export interface ArmCost {
  currency: string;
  requests: number;
  cost: string;
}

/**
 * One arm of an experiment over all its requests, whatever currency each was priced in; its
 * money per currency (by currency), since costs in different currencies are never added up.
 * The percentiles are approximate (t-digest).
 */
export interface ArmAggregate {
  arm: string;
  requests: number;
  errors: number;
  latencyP50: number;
  latencyP95: number;
  ttftP50: number;
  ttftP95: number;
  promptTokens: number;
  completionTokens: number;
  costs: ArmCost[];
}

/** A usage query that has more groups than its `limit`: the report is larger than allowed. */
export class TooManyGroupsError extends Error {
  constructor(readonly limit: number) {
    super(`the usage query has more than ${limit} groups`);
    this.name = 'TooManyGroupsError';
  }
}

/** ClickHouse's refusal of a GROUP BY past `max_rows_to_group_by` (code 158). */
function isTooManyRows(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { type?: unknown }).type === 'TOO_MANY_ROWS';
}

/** Where a usage query reads: the daily rollup or the raw events. */
export type Source = 'rollup' | 'events';

export interface UsageSource {
  source: Source;
  rows: UsageAggregate[];
}

/** Where reports read usage: the raw events and the daily rollup in ClickHouse. */
export interface ReportsRepository {
  /** `signal`, where given: aborted, it cancels the query in the store (a report its caller left). */
  usage(query: UsageQuery, signal?: AbortSignal): Promise<UsageSource>;
  experiment(experiment: string, fromMs: number, toMs: number, filters: ReadonlyArray<[DimensionName, string]>, signal?: AbortSignal): Promise<ArmAggregate[]>;
  /**
   * Spend per account window: sum of cost of `filters`' events received in [fromMs, toMs), each
   * event counted once however often it was stored.
   */
  spend(fromMs: number, toMs: number, filters: ReadonlyArray<[DimensionName, string]>): Promise<Array<{ currency: string; cost: string; requests: number }>>;
}

const DAY_MS = 86_400_000;

interface RawAggregate {
  d: string[];
  currency: string;
  requests: string | number;
  errors: string | number;
  prompt_tokens: string | number;
  completion_tokens: string | number;
  cached_read_tokens: string | number;
  cache_write_tokens: string | number;
  reasoning_tokens: string | number;
  cost: string;
  cache_hits: string | number;
  cache_saved_cost: string;
}

/** Whether the daily rollup can answer `query`: whole UTC days, and only dimensions and filters it keeps. */
export function rollupAnswers(query: UsageQuery): boolean {
  return (
    query.fromMs % DAY_MS === 0 &&
    query.toMs % DAY_MS === 0 &&
    query.groupBy.every((g) => g.kind === 'dimension' && DIMENSIONS[g.name].rollup !== undefined) &&
    query.filters.every(([d]) => DIMENSIONS[d].rollup !== undefined)
  );
}

/** How `source` sums each column of a group. */
const SUMS: Readonly<Record<Source, string>> = {
  rollup: `sum(requests) AS requests, sum(errors) AS errors, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
    sum(cached_read_tokens) AS cached_read_tokens, sum(cache_write_tokens) AS cache_write_tokens, sum(reasoning_tokens) AS reasoning_tokens,
    toString(sum(cost)) AS cost, sum(cache_hits) AS cache_hits, toString(sum(cache_saved_cost)) AS cache_saved_cost`,
  events: `count() AS requests, countIf(status = 'error') AS errors, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
    sum(cached_read_tokens) AS cached_read_tokens, sum(cache_write_tokens) AS cache_write_tokens, sum(reasoning_tokens) AS reasoning_tokens,
    toString(sum(cost)) AS cost, countIf(cache_hit) AS cache_hits, toString(sum(cache_saved_cost)) AS cache_saved_cost`,
};

/**
 * A rollup group that counts something. The rollup reconciliation takes a group the raw events do
 * not have (any more) off its day with a correction row, leaving a group whose sums are all zero:
 * the raw events show no row for it, so neither does the rollup.
 */
const ROLLUP_NOT_EMPTY = ['requests', 'errors', 'prompt_tokens', 'completion_tokens', 'cached_read_tokens', 'cache_write_tokens', 'reasoning_tokens', 'sum(usage_daily.cost)', 'cache_hits', 'sum(usage_daily.cache_saved_cost)'].map((c) => `${c} != 0`).join(' OR ');

/** The aggregate query of `query` over `source`, its values all bound parameters; `settings` end it (see {@link querySettings}). */
function aggregateSql(query: UsageQuery, source: Source, database: string, settings: string[] = []): { sql: string; params: Record<string, unknown> } {
  const column = (name: DimensionName): string => (source === 'rollup' ? (DIMENSIONS[name].rollup ?? DIMENSIONS[name].raw) : DIMENSIONS[name].raw);
  const params: Record<string, unknown> = { db: database };
  const dims = query.groupBy.map((g, i) => {
    if (g.kind === 'dimension') return column(g.name);
    params[`tag${i}`] = g.tag;
    return `tags[{tag${i}:String}]`;
  });
  const where = query.filters.map(([name, value], i) => {
    params[`f${i}`] = value;
    return `${column(name)} = {f${i}:String}`;
  });
  if (source === 'rollup') {
    params['fromDay'] = new Date(query.fromMs).toISOString().slice(0, 10);
    params['toDay'] = new Date(query.toMs).toISOString().slice(0, 10);
    where.unshift('day >= {fromDay:Date}', 'day < {toDay:Date}');
  } else {
    params['from'] = query.fromMs;
    params['to'] = query.toMs;
    where.unshift("received_at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')", "received_at < fromUnixTimestamp64Milli({to:Int64}, 'UTC')");
  }
  let limit = '';
  const clauses = [...settings];
  if (query.limit !== undefined) {
    if (!Number.isSafeInteger(query.limit) || query.limit < 1) throw new RangeError(`a report's row limit must be a positive integer, not ${query.limit}`);
    params['limit'] = query.limit;
    // The groups are all held in memory before the first is sorted out: ClickHouse stops once it
    // holds more than the limit (TOO_MANY_ROWS), so a report of millions of groups (a tag, keys over
    // years) is refused early rather than grown in billing's memory. A SETTINGS clause, not the
    // client's settings: chDB runs those as SET statements that outlive the query in its session.
    limit = '\nLIMIT {limit:UInt64}';
    clauses.push(`max_rows_to_group_by = ${query.limit}`, "group_by_overflow_mode = 'throw'");
  }
  const sql = `SELECT [${dims.map((d) => `toString(${d})`).join(', ')}] AS d, currency,
    ${SUMS[source]}
FROM {db:Identifier}.${source === 'rollup' ? 'usage_daily' : 'usage_events FINAL'}
WHERE ${where.join(' AND ')}
GROUP BY d, currency${source === 'rollup' ? `\nHAVING ${ROLLUP_NOT_EMPTY}` : ''}
ORDER BY d, currency${limit}${settingsClause(clauses)}`;
  return { sql, params };
}

/** The SETTINGS clause that ends a query with `settings`; nothing without any. */
function settingsClause(settings: readonly string[]): string {
  return settings.length > 0 ? `\nSETTINGS ${settings.join(', ')}` : '';
}

function toAggregate(r: RawAggregate): UsageAggregate {
  return {
    dimensions: r.d,
    currency: r.currency,
    requests: Number(r.requests),
    errors: Number(r.errors),
    promptTokens: Number(r.prompt_tokens),
    completionTokens: Number(r.completion_tokens),
    cachedReadTokens: Number(r.cached_read_tokens),
    cacheWriteTokens: Number(r.cache_write_tokens),
    reasoningTokens: Number(r.reasoning_tokens),
    cost: r.cost,
    cacheHits: Number(r.cache_hits),
    cacheSavedCost: r.cache_saved_cost,
  };
}

/**
 * Usage aggregates with query parameters only: dimension names come from a fixed list, values
 * and bounds are bound parameters. A query over whole UTC days whose dimensions the daily
 * rollup keeps reads the rollup (a month of chargeback is then a scan of rollup rows, not of
 * events); anything else reads the raw events. Budget spend always reads the raw events (see
 * `spend`).
 */
export class ClickHouseReportsRepository implements ReportsRepository {
  /**
   * `options.maxExecutionMs`: how long one query may run in ClickHouse, which stops it then itself
   * (`max_execution_time`): a report's query should not outlive the report call, and a ClickHouse
   * server does not stop a query when its client goes away. Unset: no bound of its own.
   */
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
    private readonly options: { maxExecutionMs?: number } = {},
  ) {}

  /**
   * What ends every query of this repository: a SETTINGS clause, not the client's settings, which
   * chDB runs as SET statements that outlive the query in its session.
   */
  private querySettings(): string[] {
    const { maxExecutionMs } = this.options;
    return maxExecutionMs === undefined ? [] : [`max_execution_time = ${Math.ceil(maxExecutionMs / 1000)}`];
  }

  usage(query: UsageQuery, signal?: AbortSignal): Promise<UsageSource> {
    return this.aggregate(query, rollupAnswers(query) ? 'rollup' : 'events', signal);
  }

  /**
   * One scan: the inner query sums each arm's requests per currency (keeping its percentile
   * states), the outer one merges them into the arm's figures, so an arm priced in two currencies
   * is still one arm, and only its money stays per currency. `quantilesTDigest` holds a bounded
   * digest per group however many events the range has, where `quantilesExact` would hold every
   * latency of the range in memory (chDB runs inside billing); its percentiles are approximate.
   */
  async experiment(experiment: string, fromMs: number, toMs: number, filters: ReadonlyArray<[DimensionName, string]>, signal?: AbortSignal): Promise<ArmAggregate[]> {
    const params: Record<string, unknown> = { db: this.database, experiment, from: fromMs, to: toMs };
    const where = ['experiment = {experiment:String}', "received_at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')", "received_at < fromUnixTimestamp64Milli({to:Int64}, 'UTC')"];
    filters.forEach(([name, value], i) => {
      params[`f${i}`] = value;
      where.push(`${DIMENSIONS[name].raw} = {f${i}:String}`);
    });
    const rows = await this.rows<{
      arm: string;
      requests: string | number;
      errors: string | number;
      latency: Array<number | null>;
      ttft: Array<number | null>;
      prompt_tokens: string | number;
      completion_tokens: string | number;
      costs: Array<[string, string | number, string]>;
    }>(
      `SELECT arm, sum(arm_requests) AS requests, sum(arm_errors) AS errors,
    quantilesTDigestMerge(0.5, 0.95)(latency_state) AS latency,
    quantilesTDigestIfMerge(0.5, 0.95)(ttft_state) AS ttft,
    sum(arm_prompt_tokens) AS prompt_tokens, sum(arm_completion_tokens) AS completion_tokens,
    groupArray((currency, arm_requests, toString(arm_cost))) AS costs
FROM (
  SELECT experiment_arm AS arm, currency, count() AS arm_requests, countIf(status = 'error') AS arm_errors,
    quantilesTDigestState(0.5, 0.95)(latency_ms) AS latency_state,
    quantilesTDigestIfState(0.5, 0.95)(ttft_ms, ttft_ms > 0) AS ttft_state,
    sum(prompt_tokens) AS arm_prompt_tokens, sum(completion_tokens) AS arm_completion_tokens, sum(cost) AS arm_cost
  FROM {db:Identifier}.usage_events FINAL
  WHERE ${where.join(' AND ')}
  GROUP BY arm, currency
)
GROUP BY arm
ORDER BY arm${settingsClause(this.querySettings())}`,
      params,
      signal,
    );
    // A percentile of no values (no request produced a token) is null or NaN.
    const ms = (v: number | null | undefined): number => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : 0);
    return rows.map((r) => ({
      arm: r.arm,
      requests: Number(r.requests),
      errors: Number(r.errors),
      latencyP50: ms(r.latency[0]),
      latencyP95: ms(r.latency[1]),
      ttftP50: ms(r.ttft[0]),
      ttftP95: ms(r.ttft[1]),
      promptTokens: Number(r.prompt_tokens),
      completionTokens: Number(r.completion_tokens),
      costs: r.costs.map(([currency, requests, cost]) => ({ currency, requests: Number(requests), cost })).sort((a, b) => (a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : 0)),
    }));
  }

  /**
   * Always the raw events `FINAL`, never the rollup, even over whole UTC days. The rollup counts a
   * batch two consumers stored in a rebalance race twice until its reconciliation corrects the
   * day, which it does only for closed days; the budget reconciliation raises a ledger to what it
   * reads at once but lowers it by a micro-unit per request at most, so a duplicate read here would
   * stay in the budget for the rest of its period and a hard budget would refuse early. One
   * scope's period of raw events is cheap to read: the sort key starts with the org and the day.
   */
  async spend(fromMs: number, toMs: number, filters: ReadonlyArray<[DimensionName, string]>): Promise<Array<{ currency: string; cost: string; requests: number }>> {
    const { rows } = await this.aggregate({ fromMs, toMs, groupBy: [], filters }, 'events');
    return rows.map((r) => ({ currency: r.currency, cost: r.cost, requests: r.requests }));
  }

  private async aggregate(query: UsageQuery, source: Source, signal?: AbortSignal): Promise<UsageSource> {
    const { sql, params } = aggregateSql(query, source, this.database, this.querySettings());
    try {
      const rows = await this.rows<RawAggregate>(sql, params, signal);
      return { source, rows: rows.map(toAggregate) };
    } catch (error) {
      if (query.limit !== undefined && isTooManyRows(error)) throw new TooManyGroupsError(query.limit);
      throw error;
    }
  }

  /** `signal` aborts the query: the HTTP request to a ClickHouse server (which then cancels the query), or chDB's run. */
  private async rows<T>(query: string, params: Record<string, unknown>, signal?: AbortSignal): Promise<T[]> {
    const result = await this.client.query({ query, query_params: params, format: 'JSONEachRow', ...(signal ? { abort_signal: signal } : {}) });
    return result.json<T>();
  }
}
