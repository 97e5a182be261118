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

/**
 * Keeps raw events (and their ids) for `days`: the TTL comes from configuration, so it is set at
 * start-up rather than in a migration, and only when it differs from the table's.
 */
export async function applyRetention(client: ClickHouseClient, database: string, days: number): Promise<boolean> {
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
    await client.command({
      query: `ALTER TABLE {db:Identifier}.{table:Identifier} MODIFY TTL toDateTime(received_at) + toIntervalDay({days:UInt32})`,
      query_params: { db: database, table: row.name, days },
      clickhouse_settings: { materialize_ttl_after_modify: 0 },
    });
    changed = true;
  }
  return changed;
}
