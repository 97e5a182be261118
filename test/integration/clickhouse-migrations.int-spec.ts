import { applyRetention, migrate, USAGE_MIGRATIONS, type Migration } from '@openrouter/usage';
import { embeddedClickHouse, queryRows } from '../support/infra/clickhouse';

describe('ClickHouse migrations (chDB)', () => {
  const target = embeddedClickHouse();
  afterAll(() => target.client.close());

  it('applies every migration once and records it; running again changes nothing', async () => {
    const first = await migrate(target.client, target.database, USAGE_MIGRATIONS);
    expect(first.applied).toEqual(USAGE_MIGRATIONS.map((m) => m.version));
    const second = await migrate(target.client, target.database, USAGE_MIGRATIONS);
    expect(second.applied).toEqual([]);
    const recorded = await queryRows<{ version: number; name: string }>(target, 'SELECT version, name FROM {db:Identifier}.schema_migrations FINAL ORDER BY version');
    expect(recorded.map((r) => r.name)).toEqual(USAGE_MIGRATIONS.map((m) => m.name));
    expect(recorded.map((r) => r.name)).toEqual(['usage_events', 'usage_event_ids', 'usage_daily', 'alert_history']);
    const tables = await queryRows<{ name: string }>(target, 'SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name', { db: target.database });
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['usage_events', 'usage_event_ids', 'usage_event_ids_mv', 'usage_daily', 'usage_daily_mv', 'schema_migrations']));
  }, 60_000);

  it('refuses a migration whose text changed after it was applied', async () => {
    const changed: Migration[] = USAGE_MIGRATIONS.map((m) => (m.version === 1 ? { ...m, statements: [...m.statements, 'SELECT 1'] } : m));
    await expect(migrate(target.client, target.database, changed)).rejects.toThrow(/was changed after it was applied/);
  });

  it('applies a new migration after the recorded ones', async () => {
    const extra: Migration = { version: USAGE_MIGRATIONS.length + 1, name: 'extra', statements: ['CREATE TABLE IF NOT EXISTS {db:Identifier}.extra (x UInt8) ENGINE = MergeTree ORDER BY x'] };
    const result = await migrate(target.client, target.database, [...USAGE_MIGRATIONS, extra]);
    expect(result.applied).toEqual([extra.version]);
  });

  it('sets the retention TTL from configuration only when it differs', async () => {
    expect(await applyRetention(target.client, target.database, 30)).toBe(true);
    expect(await applyRetention(target.client, target.database, 30)).toBe(false);
    const [row] = await queryRows<{ engine_full: string }>(target, "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'usage_events'", { db: target.database });
    expect(row?.engine_full).toMatch(/toIntervalDay\((_CAST\()?30\b/);
    expect(await applyRetention(target.client, target.database, 400)).toBe(true);
  });
});
