import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';

/** A numbered schema change: statements run in order, `{db:Identifier}` is the database. */
export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export interface MigrationResult {
  applied: number[];
  current: number;
}

export function checksumOf(migration: Migration): string {
  return createHash('sha256').update(migration.statements.join('\n;\n')).digest('hex');
}

/**
 * Brings the database to the latest migration: creates the database and the `schema_migrations`
 * table, runs every migration not recorded there, in order, and records it. Statements are
 * idempotent (`IF NOT EXISTS`), so a run interrupted between a statement and its record, or two
 * instances starting at once, end in the same schema. A recorded migration whose text changed
 * is an error: history is never rewritten.
 */
export async function migrate(client: ClickHouseClient, database: string, migrations: readonly Migration[]): Promise<MigrationResult> {
  assertOrdered(migrations);
  const db = { db: database };
  await client.command({ query: 'CREATE DATABASE IF NOT EXISTS {db:Identifier}', query_params: db });
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS {db:Identifier}.schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version`,
    query_params: db,
  });
  const recorded = new Map(
    (
      await (
        await client.query({ query: 'SELECT version, checksum FROM {db:Identifier}.schema_migrations FINAL', query_params: db, format: 'JSONEachRow' })
      ).json<{ version: number; checksum: string }>()
    ).map((r) => [Number(r.version), r.checksum]),
  );
  const applied: number[] = [];
  for (const migration of migrations) {
    const checksum = checksumOf(migration);
    const known = recorded.get(migration.version);
    if (known !== undefined) {
      if (known !== checksum) throw new Error(`ClickHouse migration ${migration.version} (${migration.name}) was changed after it was applied; add a new migration instead`);
      continue;
    }
    for (const statement of migration.statements) await client.command({ query: statement, query_params: db });
    await client.insert({
      table: `${database}.schema_migrations`,
      values: [{ version: migration.version, name: migration.name, checksum }],
      format: 'JSONEachRow',
    });
    applied.push(migration.version);
  }
  const current = migrations.length > 0 ? (migrations[migrations.length - 1]?.version ?? 0) : 0;
  return { applied, current };
}

function assertOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`ClickHouse migrations must be numbered 1, 2, 3, … in order; found ${m.version} at position ${i + 1}`);
  });
}

const DAY_MS = 86_400_000;

/**
 * Keeps raw events (and their ids) for `days`: the TTL comes from configuration, so it is set at
 * start-up rather than in a migration, and only when it differs from the table's. A change of the
 * raw table's retention is recorded in `usage_retention_changes` (see {@link rawEventsCompleteFrom}).
 */
export async function applyRetention(client: ClickHouseClient, database: string, days: number, now: () => number = Date.now): Promise<boolean> {
  const rows = await (
    await client.query({
      query: "SELECT name, engine_full FROM system.tables WHERE database = {db:String} AND name IN ('usage_events', 'usage_event_ids')",
      query_params: { db: database },
      format: 'JSONEachRow',
    })
  ).json<{ name: string; engine_full: string }>();
  let changed = false;
  for (const row of rows) {
    // The parameter is kept in the table definition as `_CAST(<days>, 'UInt32')`.
    if (new RegExp(`toIntervalDay\\((_CAST\\()?${days}\\b`).test(row.engine_full)) continue;
    const previous = /toIntervalDay\((?:_CAST\()?(\d+)\b/.exec(row.engine_full)?.[1];
    // Recorded before the change: a start that fails between the two records it again, never
    // changes without it. A table without a TTL held every event: nothing to record.
    if (row.name === 'usage_events' && previous !== undefined) {
      await client.insert({
        table: `${database}.usage_retention_changes`,
        values: [{ changed_at: new Date(now()).toISOString().slice(0, 23).replace('T', ' '), previous_days: Number(previous), days }],
        format: 'JSONEachRow',
      });
    }
    await client.command({
      query: `ALTER TABLE {db:Identifier}.{table:Identifier} MODIFY TTL toDateTime(received_at) + toIntervalDay({days:UInt32})`,
      query_params: { db: database, table: row.name, days },
      clickhouse_settings: { materialize_ttl_after_modify: 0 },
    });
    changed = true;
  }
  return changed;
}

/**
 * Since when (epoch ms) the raw table holds every event it was given: `days` (the retention now
 * configured) before `now`, or later when the retention was raised: a change from `p` days at `t`
 * left the table holding events from `t − p` on, whatever the new retention. Days before it must
 * never be compared with the rollup: their first events expired.
 */
export async function rawEventsCompleteFrom(client: ClickHouseClient, database: string, days: number, now: number): Promise<number> {
  const [row] = await (
    await client.query({
      // No change recorded: 0, earlier than any configured bound.
      query: 'SELECT max(toUnixTimestamp64Milli(changed_at) - toInt64(previous_days) * 86400000) AS from_ms FROM {db:Identifier}.usage_retention_changes',
      query_params: { db: database },
      format: 'JSONEachRow',
    })
  ).json<{ from_ms: string | number }>();
  return Math.max(now - days * DAY_MS, Number(row?.from_ms ?? 0));
}
