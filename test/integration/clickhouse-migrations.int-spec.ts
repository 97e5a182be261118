import { applyRetention, migrate, rawEventsCompleteFrom, USAGE_MIGRATIONS, type Migration } from '@openrouter/usage';
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
    expect(recorded.map((r) => r.name)).toEqual(['usage_events', 'usage_event_ids', 'usage_daily', 'alert_history', 'usage_daily_signed_counts', 'usage_event_request_id', 'usage_event_cache_hit', 'usage_daily_cache_hits', 'usage_event_audio', 'usage_event_images', 'usage_durable_inserts', 'usage_retention_changes']);
    const tables = await queryRows<{ name: string }>(target, 'SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name', { db: target.database });
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['usage_events', 'usage_event_ids', 'usage_event_ids_mv', 'usage_daily', 'usage_daily_mv', 'schema_migrations', 'usage_retention_changes']));
    // Usage rows are on disk before an insert returns (billing commits the offsets right after).
    const durable = await queryRows<{ name: string; engine_full: string }>(
      target,
      "SELECT name, engine_full FROM system.tables WHERE database = {db:String} AND name IN ('usage_events', 'usage_event_ids', 'usage_daily') ORDER BY name",
      { db: target.database },
    );
    expect(durable.map((t) => t.name)).toEqual(['usage_daily', 'usage_event_ids', 'usage_events']);
    for (const table of durable) expect(table.engine_full).toMatch(/fsync_after_insert = 1, fsync_part_directory = 1/);
    const cacheColumns = await queryRows<{ name: string; type: string; default_expression: string }>(
      target,
      "SELECT name, type, default_expression FROM system.columns WHERE database = {db:String} AND table = 'usage_events' AND name LIKE 'cache\\_%' ORDER BY position",
      { db: target.database },
    );
    expect(cacheColumns.map((c) => [c.name, c.type])).toEqual([
      ['cache_write_tokens', 'UInt64'],
      ['cache_hit', 'Bool'],
      ['cache_saved_cost', 'Decimal(38, 18)'],
    ]);
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

  it('adds the audio quantities and input image tokens to the events: rows written before read 0, rows after keep theirs', async () => {
    const older = embeddedClickHouse();
    try {
      await migrate(older.client, older.database, USAGE_MIGRATIONS.slice(0, 8));
      await older.client.command({
        query: "INSERT INTO {db:Identifier}.usage_events (event_id, received_at, completed_at, org_id, served_model, currency, cost, status) VALUES ('before', '2025-03-01 10:00:00', '2025-03-01 10:00:01', 'acme', 'gpt-4o', 'USD', '0.5', 'ok')",
        query_params: { db: older.database },
      });
      expect((await migrate(older.client, older.database, USAGE_MIGRATIONS.slice(0, 9))).applied).toEqual([9]);
      await older.client.command({
        query: "INSERT INTO {db:Identifier}.usage_events (event_id, received_at, completed_at, org_id, served_model, currency, cost, status, audio_ms, characters, image_prompt_tokens) VALUES ('after', '2025-03-01 10:00:00', '2025-03-01 10:00:01', 'acme', 'whisper-1', 'USD', '0.0006', 'ok', 6000, 12, 194)",
        query_params: { db: older.database },
      });
      const rows = await queryRows<{ event_id: string; audio_ms: string; characters: string; images: string }>(
        older,
        'SELECT event_id, toString(audio_ms) AS audio_ms, toString(characters) AS characters, toString(image_prompt_tokens) AS images FROM {db:Identifier}.usage_events ORDER BY event_id',
      );
      expect(rows).toEqual([
        { event_id: 'after', audio_ms: '6000', characters: '12', images: '194' },
        { event_id: 'before', audio_ms: '0', characters: '0', images: '0' },
      ]);
    } finally {
      await older.client.close();
    }
  });

  it('adds the images made to the events: rows written before read 0, rows after keep theirs', async () => {
    const older = embeddedClickHouse();
    try {
      await migrate(older.client, older.database, USAGE_MIGRATIONS.slice(0, 9));
      await older.client.command({
        query: "INSERT INTO {db:Identifier}.usage_events (event_id, received_at, completed_at, org_id, served_model, currency, cost, status) VALUES ('before', '2025-03-01 10:00:00', '2025-03-01 10:00:01', 'acme', 'dall-e-2', 'USD', '0.02', 'ok')",
        query_params: { db: older.database },
      });
      expect((await migrate(older.client, older.database, USAGE_MIGRATIONS)).applied).toEqual([10, 11, 12]);
      await older.client.command({
        query: "INSERT INTO {db:Identifier}.usage_events (event_id, received_at, completed_at, org_id, served_model, currency, cost, status, images) VALUES ('after', '2025-03-01 10:00:00', '2025-03-01 10:00:01', 'acme', 'dall-e-2', 'USD', '0.2', 'ok', 10)",
        query_params: { db: older.database },
      });
      const rows = await queryRows<{ event_id: string; images: string }>(older, 'SELECT event_id, toString(images) AS images FROM {db:Identifier}.usage_events ORDER BY event_id');
      expect(rows).toEqual([
        { event_id: 'after', images: '10' },
        { event_id: 'before', images: '0' },
      ]);
    } finally {
      await older.client.close();
    }
  });

  it('makes the rollup counts signed on a database that has rollup rows, keeping them', async () => {
    const older = embeddedClickHouse();
    try {
      await migrate(older.client, older.database, USAGE_MIGRATIONS.slice(0, 4));
      await older.client.command({
        query: "INSERT INTO {db:Identifier}.usage_daily (day, org_id, currency, requests, prompt_tokens, cost) VALUES ('2025-03-01', 'acme', 'USD', 3, 300, '1.5')",
        query_params: { db: older.database },
      });
      expect((await migrate(older.client, older.database, USAGE_MIGRATIONS)).applied).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
      const columns = await queryRows<{ name: string; type: string }>(older, "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'usage_daily' AND name IN ('requests', 'prompt_tokens')", { db: older.database });
      expect(columns).toEqual([
        { name: 'requests', type: 'Int64' },
        { name: 'prompt_tokens', type: 'Int64' },
      ]);
      await older.client.command({
        query: "INSERT INTO {db:Identifier}.usage_daily (day, org_id, currency, requests, prompt_tokens, cost) VALUES ('2025-03-01', 'acme', 'USD', -1, -100, '-0.5')",
        query_params: { db: older.database },
      });
      const [sums] = await queryRows<Record<string, string>>(older, 'SELECT toString(sum(requests)) AS requests, toString(sum(prompt_tokens)) AS prompt, toString(sum(cost)) AS cost FROM {db:Identifier}.usage_daily');
      expect(sums).toEqual({ requests: '2', prompt: '200', cost: '1' });
    } finally {
      await older.client.close();
    }
  });

  it('adds cache hits and savings to the daily rollup: rows written before read none, the view counts them from then on', async () => {
    const older = embeddedClickHouse();
    const insertEvent = (id: string, cacheHit: boolean, cost: string, saved: string) =>
      older.client.command({
        query: `INSERT INTO {db:Identifier}.usage_events (event_id, received_at, completed_at, org_id, project_id, served_model, currency, prompt_tokens, cost, status, cache_hit, cache_saved_cost)
VALUES ({id:String}, '2025-03-01 10:00:00', '2025-03-01 10:00:01', 'acme', 'search', 'gpt-4o', 'USD', 10, {cost:Decimal(38, 18)}, 'ok', {hit:Bool}, {saved:Decimal(38, 18)})`,
        query_params: { db: older.database, id, hit: cacheHit, cost, saved },
      });
    try {
      await migrate(older.client, older.database, USAGE_MIGRATIONS.slice(0, 7));
      await insertEvent('before', false, '0.5', '0');
      expect((await migrate(older.client, older.database, USAGE_MIGRATIONS)).applied).toEqual([8, 9, 10, 11, 12]);
      const columns = await queryRows<{ name: string; type: string }>(older, "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'usage_daily' AND name LIKE 'cache\\_%' ORDER BY position", { db: older.database });
      expect(columns.map((c) => [c.name, c.type])).toEqual([
        ['cache_write_tokens', 'Int64'],
        ['cache_hits', 'Int64'],
        ['cache_saved_cost', 'Decimal(38, 18)'],
      ]);
      await insertEvent('hit', true, '0', '0.250000000000000001');
      await insertEvent('miss', false, '0.25', '0');
      const daily = () =>
        queryRows<Record<string, string>>(
          older,
          'SELECT toString(sum(requests)) AS requests, toString(sum(prompt_tokens)) AS prompt, toString(sum(cost)) AS cost, toString(sum(cache_hits)) AS hits, toString(sum(cache_saved_cost)) AS saved FROM {db:Identifier}.usage_daily',
        );
      expect(await daily()).toEqual([{ requests: '3', prompt: '30', cost: '0.75', hits: '1', saved: '0.250000000000000001' }]);
      // Applied once: a second start changes nothing, and the view still counts each event once.
      expect((await migrate(older.client, older.database, USAGE_MIGRATIONS)).applied).toEqual([]);
      await insertEvent('hit-2', true, '0', '1');
      expect(await daily()).toEqual([{ requests: '4', prompt: '40', cost: '0.75', hits: '2', saved: '1.250000000000000001' }]);
    } finally {
      await older.client.close();
    }
  });

  it('sets the retention TTL from configuration only when it differs', async () => {
    expect(await applyRetention(target.client, target.database, 30)).toBe(true);
    expect(await applyRetention(target.client, target.database, 30)).toBe(false);
    const [row] = await queryRows<{ engine_full: string }>(target, "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'usage_events'", { db: target.database });
    expect(row?.engine_full).toMatch(/toIntervalDay\((_CAST\()?30\b/);
    expect(await applyRetention(target.client, target.database, 400)).toBe(true);
  });

  it('records each change of the retention: after a raise, the raw events are complete only from the change minus the earlier retention', async () => {
    const DAY = 86_400_000;
    // Later than the changes the test before made at the real time.
    const at = Date.UTC(2030, 5, 1);
    await applyRetention(target.client, target.database, 30, () => at - 100 * DAY);
    // 30 days: complete from 30 days back, as configured.
    expect(await rawEventsCompleteFrom(target.client, target.database, 30, at)).toBe(at - 30 * DAY);
    // Raised to 90 at `at`: what had expired under 30 days stays gone.
    expect(await applyRetention(target.client, target.database, 90, () => at)).toBe(true);
    expect(await rawEventsCompleteFrom(target.client, target.database, 90, at + 10 * DAY)).toBe(at - 30 * DAY);
    // Once 90 days have passed since the events kept then, the configured retention governs again.
    expect(await rawEventsCompleteFrom(target.client, target.database, 90, at + 70 * DAY)).toBe(at - 20 * DAY);
    // Lowered: the configured retention is the later bound.
    expect(await applyRetention(target.client, target.database, 7, () => at + 80 * DAY)).toBe(true);
    expect(await rawEventsCompleteFrom(target.client, target.database, 7, at + 80 * DAY)).toBe(at + 73 * DAY);
    const changes = await queryRows<{ previous_days: number; days: number }>(target, 'SELECT previous_days, days FROM {db:Identifier}.usage_retention_changes ORDER BY changed_at');
    expect(changes.slice(-2).map((c) => [Number(c.previous_days), Number(c.days)])).toEqual([[30, 90], [90, 7]]);
  });
});
