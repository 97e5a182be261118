import type { ClickHouseClient } from '@openrouter/usage';
import { DIMENSIONS, type DimensionName, type GroupBy } from './report-dimensions';

export interface UsageQuery {
  fromMs: number;
  toMs: number;
  groupBy: readonly GroupBy[];
  /** Dimension → value; every entry must match. */
  filters: ReadonlyArray<[DimensionName, string]>;
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
}

export interface ArmAggregate {
  arm: string;
  currency: string;
  requests: number;
  errors: number;
  latencyP50: number;
  latencyP95: number;
  ttftP50: number;
  ttftP95: number;
  promptTokens: number;
  completionTokens: number;
  cost: string;
}

export interface UsageSource {
  source: 'rollup' | 'events';
  rows: UsageAggregate[];
}

/** Where reports read usage: the raw events and the daily rollup in ClickHouse. */
export interface ReportsRepository {
  usage(query: UsageQuery): Promise<UsageSource>;
  experiment(experiment: string, fromMs: number, toMs: number, filters: ReadonlyArray<[DimensionName, string]>): Promise<ArmAggregate[]>;
  /** Spend per account window: sum of cost of `filters`' events received in [fromMs, toMs). */
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
}

/**
 * Usage aggregates with query parameters only: dimension names come from a fixed list, values
 * and bounds are bound parameters. A query over whole UTC days whose dimensions the daily
 * rollup keeps reads the rollup (a month of chargeback is then a scan of rollup rows, not of
 * events); anything else reads the raw events.
 */
export class ClickHouseReportsRepository implements ReportsRepository {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  async usage(query: UsageQuery): Promise<UsageSource> {
    const rollup =
      query.fromMs % DAY_MS === 0 &&
      query.toMs % DAY_MS === 0 &&
      query.groupBy.every((g) => g.kind === 'dimension' && DIMENSIONS[g.name].rollup !== undefined) &&
      query.filters.every(([d]) => DIMENSIONS[d].rollup !== undefined);
    const params: Record<string, unknown> = { db: this.database };
    const where: string[] = [];
    const dims: string[] = [];
    query.groupBy.forEach((g, i) => {
      if (g.kind === 'tag') {
        params[`tag${i}`] = g.tag;
        dims.push(`tags[{tag${i}:String}]`);
      } else {
        const d = DIMENSIONS[g.name];
        dims.push(rollup ? (d.rollup ?? d.raw) : d.raw);
      }
    });
    query.filters.forEach(([name, value], i) => {
      const d = DIMENSIONS[name];
      params[`f${i}`] = value;
      where.push(`${rollup ? (d.rollup ?? d.raw) : d.raw} = {f${i}:String}`);
    });
    let sql: string;
    if (rollup) {
      params['fromDay'] = new Date(query.fromMs).toISOString().slice(0, 10);
      params['toDay'] = new Date(query.toMs).toISOString().slice(0, 10);
      where.unshift('day >= {fromDay:Date}', 'day < {toDay:Date}');
      sql = `SELECT [${dims.map((d) => `toString(${d})`).join(', ')}] AS d, currency,
    sum(requests) AS requests, sum(errors) AS errors, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
    sum(cached_read_tokens) AS cached_read_tokens, sum(cache_write_tokens) AS cache_write_tokens, sum(reasoning_tokens) AS reasoning_tokens,
    toString(sum(cost)) AS cost
FROM {db:Identifier}.usage_daily
WHERE ${where.join(' AND ')}
GROUP BY d, currency
ORDER BY d, currency`;
    } else {
      params['from'] = query.fromMs;
      params['to'] = query.toMs;
      where.unshift("received_at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')", "received_at < fromUnixTimestamp64Milli({to:Int64}, 'UTC')");
      sql = `SELECT [${dims.map((d) => `toString(${d})`).join(', ')}] AS d, currency,
    count() AS requests, countIf(status = 'error') AS errors, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
    sum(cached_read_tokens) AS cached_read_tokens, sum(cache_write_tokens) AS cache_write_tokens, sum(reasoning_tokens) AS reasoning_tokens,
    toString(sum(cost)) AS cost
FROM {db:Identifier}.usage_events FINAL
WHERE ${where.join(' AND ')}
GROUP BY d, currency
ORDER BY d, currency`;
    }
    const rows = await this.rows<RawAggregate>(sql, params);
    return {
      source: rollup ? 'rollup' : 'events',
      rows: rows.map((r) => ({
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
      })),
    };
  }

  async experiment(experiment: string, fromMs: number, toMs: number, filters: ReadonlyArray<[DimensionName, string]>): Promise<ArmAggregate[]> {
    const params: Record<string, unknown> = { db: this.database, experiment, from: fromMs, to: toMs };
    const where = ['experiment = {experiment:String}', "received_at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')", "received_at < fromUnixTimestamp64Milli({to:Int64}, 'UTC')"];
    filters.forEach(([name, value], i) => {
      params[`f${i}`] = value;
      where.push(`${DIMENSIONS[name].raw} = {f${i}:String}`);
    });
    const rows = await this.rows<{
      arm: string;
      currency: string;
      requests: string | number;
      errors: string | number;
      latency: number[];
      ttft: number[];
      prompt_tokens: string | number;
      completion_tokens: string | number;
      cost: string;
    }>(
      `SELECT experiment_arm AS arm, currency, count() AS requests, countIf(status = 'error') AS errors,
    quantilesExact(0.5, 0.95)(latency_ms) AS latency,
    quantilesExactIf(0.5, 0.95)(ttft_ms, ttft_ms > 0) AS ttft,
    sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens, toString(sum(cost)) AS cost
FROM {db:Identifier}.usage_events FINAL
WHERE ${where.join(' AND ')}
GROUP BY arm, currency
ORDER BY arm, currency`,
      params,
    );
    return rows.map((r) => ({
      arm: r.arm,
      currency: r.currency,
      requests: Number(r.requests),
      errors: Number(r.errors),
      latencyP50: Math.round(r.latency[0] ?? 0),
      latencyP95: Math.round(r.latency[1] ?? 0),
      ttftP50: Math.round(Number.isFinite(r.ttft[0]) ? (r.ttft[0] ?? 0) : 0),
      ttftP95: Math.round(Number.isFinite(r.ttft[1]) ? (r.ttft[1] ?? 0) : 0),
      promptTokens: Number(r.prompt_tokens),
      completionTokens: Number(r.completion_tokens),
      cost: r.cost,
    }));
  }

  async spend(fromMs: number, toMs: number, filters: ReadonlyArray<[DimensionName, string]>): Promise<Array<{ currency: string; cost: string; requests: number }>> {
    const { rows } = await this.usage({ fromMs, toMs, groupBy: [], filters });
    return rows.map((r) => ({ currency: r.currency, cost: r.cost, requests: r.requests }));
  }

  private async rows<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    const result = await this.client.query({ query, query_params: params, format: 'JSONEachRow' });
    return result.json<T>();
  }
}
