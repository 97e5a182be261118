import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { clickhouseSchema } from '@openrouter/config';
import { createClickHouse, migrate, USAGE_MIGRATIONS, type ClickHouseTarget } from '@openrouter/usage';
import { SYNTHETIC_SHAPE } from './event-generator';

export interface ChargebackResult {
  events: number;
  insertSeconds: number;
  /** Median of three runs of the month's chargeback over the raw events. */
  rawQueryMs: number;
  /** The same report from the daily rollup (`usage_daily`). */
  rollupQueryMs: number;
  groups: number;
  totalCost: string;
}

const MONTH_FROM = '2025-03-01 00:00:00.000';
const MONTH_TO = '2025-04-01 00:00:00.000';
const MONTH_MS = 31 * 24 * 3600 * 1000;
const BATCH = 1_000_000;

/**
 * The synthetic event generator in SQL: `count` events from number `start` on, spread evenly over
 * March 2025, with the same tenant, model and token spread as `syntheticUsageEvent`. Inserted
 * into `usage_events`, so the materialized views fill the id table and the daily rollup exactly
 * as billing's inserts do.
 */
const GENERATE = `INSERT INTO {db:Identifier}.usage_events
  (event_id, received_at, first_token_at, completed_at, org_id, project_id, team_id, app_id, cost_center, key_id, end_user, tags,
   operation, requested_model, served_model, provider, deployment, upstream_model, task_type, experiment, experiment_arm,
   \`attempts.provider\`, \`attempts.deployment\`, \`attempts.status\`, \`attempts.error_kind\`, \`attempts.latency_ms\`,
   prompt_tokens, completion_tokens, cached_read_tokens, cache_write_tokens, reasoning_tokens, tokens_estimated,
   cost, currency, price_version, latency_ms, ttft_ms, stream, cancelled, status, error_kind, http_status)
SELECT
  concat('bench-', toString(number)) AS event_id,
  toDateTime64({from:String}, 3, 'UTC') + toIntervalMillisecond(intDiv(number * {spanMs:UInt64}, {total:UInt64})) AS received_at,
  received_at + toIntervalMillisecond(20) AS first_token_at,
  received_at + toIntervalMillisecond(40 + number % 200) AS completed_at,
  concat('org-', toString(number % {orgs:UInt32})) AS org_id,
  concat('project-', toString(intDiv(number, {orgs:UInt32} * {teams:UInt32}) % {projects:UInt32})) AS project_id,
  concat('team-', toString(intDiv(number, {orgs:UInt32}) % {teams:UInt32})) AS team_id,
  concat('app-', toString(number % {apps:UInt32})) AS app_id,
  concat('cc-', toString(number % {costCenters:UInt32})) AS cost_center,
  concat('key-', toString(number % {keys:UInt32})) AS key_id,
  '' AS end_user,
  map('env', 'bench') AS tags,
  if(number % 10 = 0, 'embedding', 'chat') AS operation,
  {models:Array(String)}[number % length({models:Array(String)}) + 1] AS requested_model,
  requested_model AS served_model,
  {providers:Array(String)}[number % length({providers:Array(String)}) + 1] AS provider,
  concat(served_model, '#0') AS deployment,
  served_model AS upstream_model,
  '' AS task_type, '' AS experiment, '' AS experiment_arm,
  [provider], [deployment], ['ok'], [''], [toUInt32(40 + number % 200)],
  100 + number % 2000 AS prompt_tokens,
  20 + number % 500 AS completion_tokens,
  0, 0, 0, false,
  toDecimal128(prompt_tokens * 150 + completion_tokens * 600, 18) / 1000000000 AS cost,
  'USD', 'bench',
  toUInt32(40 + number % 200), 20, number % 2 = 0, false, 'ok', '', 200
FROM numbers({start:UInt64}, {count:UInt64})`;

/** A finance view: the month's cost per org, team, project and cost centre. */
const RAW_REPORT = `SELECT org_id, team_id, project_id, cost_center, currency,
  count() AS requests, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens, sum(cost) AS cost
FROM {db:Identifier}.usage_events
WHERE received_at >= {from:DateTime64(3, 'UTC')} AND received_at < {to:DateTime64(3, 'UTC')}
GROUP BY org_id, team_id, project_id, cost_center, currency
ORDER BY cost DESC`;

const ROLLUP_REPORT = `SELECT org_id, team_id, project_id, cost_center, currency,
  sum(requests) AS requests, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens, sum(cost) AS cost
FROM {db:Identifier}.usage_daily
WHERE day >= toDate({from:DateTime64(3, 'UTC')}) AND day < toDate({to:DateTime64(3, 'UTC')})
GROUP BY org_id, team_id, project_id, cost_center, currency
ORDER BY cost DESC`;

interface ReportRow {
  requests: number | string;
  cost: string;
}

async function timedReport(store: ClickHouseTarget, query: string): Promise<{ ms: number; rows: ReportRow[] }> {
  const times: number[] = [];
  let rows: ReportRow[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const result = await store.client.query({ query, query_params: { db: store.database, from: MONTH_FROM, to: MONTH_TO }, format: 'JSONEachRow' });
    rows = await result.json<ReportRow>();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { ms: times[1] ?? times[0] ?? 0, rows };
}

/**
 * The chargeback benchmark: `events` synthetic events for one month inserted straight into
 * ClickHouse (chDB, its own data directory) in batches of a million, then the month's
 * chargeback, from the raw events and from the daily rollup.
 */
export async function measureChargeback(events: number): Promise<ChargebackResult> {
  const dir = mkdtempSync(join(tmpdir(), 'or-bench-chdb-'));
  const store = createClickHouse(clickhouseSchema.parse({ embedded: { path: dir }, database: 'bench_chargeback' }), '.');
  try {
    await migrate(store.client, store.database, USAGE_MIGRATIONS);
    const s = SYNTHETIC_SHAPE;
    const started = performance.now();
    for (let start = 0; start < events; start += BATCH) {
      await store.client.command({
        query: GENERATE,
        query_params: {
          db: store.database,
          from: MONTH_FROM,
          spanMs: MONTH_MS,
          total: events,
          orgs: s.orgs,
          teams: s.teamsPerOrg,
          projects: s.projectsPerTeam,
          apps: s.apps,
          costCenters: s.costCenters,
          keys: s.keys,
          models: [...s.models],
          providers: [...s.providers],
          start,
          count: Math.min(BATCH, events - start),
        },
      });
    }
    const insertSeconds = (performance.now() - started) / 1000;
    const raw = await timedReport(store, RAW_REPORT);
    const rollup = await timedReport(store, ROLLUP_REPORT);
    const requests = raw.rows.reduce((sum, r) => sum + Number(r.requests), 0);
    if (requests !== events) throw new Error(`the chargeback counted ${requests} requests, expected ${events}`);
    const rollupRequests = rollup.rows.reduce((sum, r) => sum + Number(r.requests), 0);
    if (rollupRequests !== events) throw new Error(`the rollup chargeback counted ${rollupRequests} requests, expected ${events}`);
    const total = await store.client.query({
      query: `SELECT toString(sum(cost)) AS total FROM {db:Identifier}.usage_events WHERE received_at >= {from:DateTime64(3, 'UTC')} AND received_at < {to:DateTime64(3, 'UTC')}`,
      query_params: { db: store.database, from: MONTH_FROM, to: MONTH_TO },
      format: 'JSONEachRow',
    });
    const [first] = await total.json<{ total: string }>();
    return { events, insertSeconds, rawQueryMs: raw.ms, rollupQueryMs: rollup.ms, groups: raw.rows.length, totalCost: first?.total ?? '0' };
  } finally {
    await store.client.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
