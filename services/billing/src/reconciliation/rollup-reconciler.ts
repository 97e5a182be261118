import type { Logger } from '@openrouter/observability';
import { rawEventsCompleteFrom, WITHOUT_OUTPUT_SETTINGS, type ClickHouseClient } from '@openrouter/usage';
import { LeasedJob, type LeasedJobOptions } from './leased-job';

const DAY_MS = 86_400_000;

/** The rollup's key below the day, in its sort order. */
const KEY = ['org_id', 'project_id', 'team_id', 'app_id', 'cost_center', 'key_id', 'served_model', 'provider', 'currency'] as const;

/** The rollup's summed columns, and how the raw events make each. */
const SUMS = [
  ['requests', 'toInt64(count())'],
  ['errors', "toInt64(countIf(status = 'error'))"],
  ['cancelled', 'toInt64(countIf(cancelled))'],
  ['prompt_tokens', 'toInt64(sum(prompt_tokens))'],
  ['completion_tokens', 'toInt64(sum(completion_tokens))'],
  ['cached_read_tokens', 'toInt64(sum(cached_read_tokens))'],
  ['cache_write_tokens', 'toInt64(sum(cache_write_tokens))'],
  ['reasoning_tokens', 'toInt64(sum(reasoning_tokens))'],
  ['cost', 'sum(cost)'],
  ['latency_ms_sum', 'toInt64(sum(latency_ms))'],
  ['cache_hits', 'toInt64(countIf(cache_hit))'],
  ['cache_saved_cost', 'sum(cache_saved_cost)'],
] as const;

type Correction = Record<(typeof KEY)[number] | (typeof SUMS)[number][0], string>;

export interface DayReconciliation {
  /** The UTC day, `YYYY-MM-DD`. */
  day: string;
  /**
   * `corrected`: rows were added; `consistent`: nothing to do; `unsettled`: events were arriving,
   * try again later; `lease_lost`: the lease passed to another replica during the run, which
   * corrects the day (the run stops there).
   */
  outcome: 'corrected' | 'consistent' | 'unsettled' | 'lease_lost';
  /** Rollup groups corrected. */
  groups: number;
  /** What the correction added to the day's request count (negative: counted twice). */
  requests: number;
}

/**
 * Keeps `usage_daily` equal to the raw events. The rollup is filled by a materialized view in
 * the same insert as the raw rows, and the raw table forgives a duplicate (ReplacingMergeTree,
 * read with FINAL) where the rollup cannot: two consumers storing the same batch during a
 * rebalance race count it twice in the rollup, which invoices, chargeback and whole-day reports
 * read (budget spend reads the raw events: today is corrected only once it is closed).
 *
 * For each closed UTC day of the window, one query computes per rollup group the raw events'
 * sums minus the rollup's; the differences are inserted as correction rows, which
 * SummingMergeTree adds to the group. A day is corrected only when two reads `settleMs` apart
 * give the same differences and the same newest raw row (an insert half-way between the raw table
 * and the rollup would otherwise look like a difference), and only by the replica holding the
 * lease (a correction is relative, so it must be made once).
 */
export class RollupReconciler {
  private readonly clock: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly job: LeasedJob<DayReconciliation[]>;

  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
    /** `retentionDays`: the raw events' TTL; a day not wholly within it (or within what an earlier, shorter one kept) is never compared. */
    private readonly settings: { lookbackDays: number; settleMs: number; retentionDays?: number },
    private readonly logger: Logger,
    options: LeasedJobOptions & {
      clock?: () => number;
      /** Waits between a day's two reads. */
      sleep?: (ms: number) => Promise<void>;
    } = {},
  ) {
    this.clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((done) => setTimeout(done, ms)));
    this.job = new LeasedJob('rollup', () => this.reconcileWindow(), (days) => days.reduce((sum, d) => sum + d.groups, 0), logger, options);
  }

  start(intervalMs: number): void {
    this.job.start(intervalMs);
  }

  /** One periodic run: the closed days of the window, when this replica holds the lease. */
  reconcileIfLeased(): Promise<DayReconciliation[] | undefined> {
    return this.job.runIfLeased();
  }

  /**
   * Each closed UTC day of the last `lookbackDays`, oldest first, that lies wholly within the raw
   * events' retention: a day whose first events may have expired would look over-counted and have
   * its rollup taken off. After a raise of the retention, that is from the change minus the
   * earlier retention (`rawEventsCompleteFrom`), whatever the new one says.
   */
  async reconcileWindow(): Promise<DayReconciliation[]> {
    const now = this.clock();
    const today = Math.floor(now / DAY_MS);
    const days = this.settings.retentionDays;
    const kept = days === undefined ? -Infinity : await rawEventsCompleteFrom(this.client, this.database, days, now);
    const out: DayReconciliation[] = [];
    for (let back = this.settings.lookbackDays; back >= 1; back--) {
      const start = (today - back) * DAY_MS;
      if (start < kept) continue;
      const day = await this.reconcileDay(new Date(start).toISOString().slice(0, 10));
      out.push(day);
      // The days left are the new holder's.
      if (day.outcome === 'lease_lost') break;
    }
    return out;
  }

  async reconcileDay(day: string): Promise<DayReconciliation> {
    const first = await this.differences(day);
    if (first.corrections.length === 0) return { day, outcome: 'consistent', groups: 0, requests: 0 };
    await this.sleep(this.settings.settleMs);
    const second = await this.differences(day);
    if (JSON.stringify(first) !== JSON.stringify(second)) return { day, outcome: 'unsettled', groups: 0, requests: 0 };
    if (second.corrections.length === 0) return { day, outcome: 'consistent', groups: 0, requests: 0 };
    // The lease is renewed only when a run starts: a run may outlive it, and the replica that took
    // it over may have read this day too. Both would add the difference, and the rollup (invoices,
    // chargeback) would be off by it once more. Checked (and renewed) right before each insert.
    if (!(await this.job.stillHeld())) {
      this.logger.warn({ day }, 'the rollup reconciliation lease passed to another replica during the run; stopping before correcting the day');
      return { day, outcome: 'lease_lost', groups: 0, requests: 0 };
    }
    await this.client.insert({
      table: `${this.database}.usage_daily`,
      values: second.corrections.map((c) => ({ day, ...c })),
      format: 'JSONEachRow',
      clickhouse_settings: WITHOUT_OUTPUT_SETTINGS,
    });
    const requests = second.corrections.reduce((sum, c) => sum + Number(c.requests), 0);
    this.logger.warn({ day, groups: second.corrections.length, requests }, 'daily rollup differed from the raw usage events; corrected');
    return { day, outcome: 'corrected', groups: second.corrections.length, requests };
  }

  close(): Promise<void> {
    return this.job.close();
  }

  /**
   * Per rollup group of `day`: raw sums minus rollup sums, the groups that differ; and when the
   * day's newest raw row was stored (every insert stamps its rows; merges keep the newest).
   */
  private async differences(day: string): Promise<{ lastStored: string; corrections: Correction[] }> {
    const key = KEY.join(', ');
    const raw = SUMS.map(([name, expr]) => `${expr} AS ${name}`).join(', ');
    const rollup = SUMS.map(([name]) => `-sum(${name}) AS ${name}`).join(', ');
    // Distinct output names: an alias equal to a column it sums would refer to itself.
    const outer = SUMS.map(([name]) => `sum(${name}) AS d_${name}`).join(', ');
    const differs = SUMS.map(([name]) => `d_${name} != 0`).join(' OR ');
    const result = await this.client.query({
      query: `SELECT ${KEY.map((k) => `toString(${k}) AS ${k}`).join(', ')}, ${SUMS.map(([name]) => `toString(d_${name}) AS ${name}`).join(', ')}
FROM (
    SELECT ${key}, ${outer}
    FROM (
        SELECT ${key}, ${raw} FROM {db:Identifier}.usage_events FINAL WHERE toDate(received_at) = {day:Date} GROUP BY ${key}
        UNION ALL
        SELECT ${key}, ${rollup} FROM {db:Identifier}.usage_daily WHERE day = {day:Date} GROUP BY ${key}
    )
    GROUP BY ${key}
    HAVING ${differs}
)
ORDER BY ${key}`,
      query_params: { db: this.database, day },
      format: 'JSONEachRow',
    });
    const corrections = await result.json<Correction>();
    const stored = await this.client.query({
      query: 'SELECT toString(max(ingested_at)) AS last FROM {db:Identifier}.usage_events WHERE toDate(received_at) = {day:Date}',
      query_params: { db: this.database, day },
      format: 'JSONEachRow',
    });
    const [row] = await stored.json<{ last: string }>();
    return { lastStored: row?.last ?? '', corrections };
  }
}
