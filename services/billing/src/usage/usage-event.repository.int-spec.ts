import { randomBytes } from 'node:crypto';
import { clickhouseSchema } from '@openrouter/config';
import { usagev1 } from '@openrouter/contracts';
import { createClickHouse, emptyUsageEvent, migrate, USAGE_MIGRATIONS, type ClickHouseTarget } from '@openrouter/usage';
import { ClickHouseUsageEventRepository } from './usage-event.repository';
import { USAGE_EVENT_COLUMNS } from './usage-row';

/** Strings a tenant can put in tags, end users or experiments: every escape JSON and ClickHouse know. */
const AWKWARD = ['tab\there', 'line\nbreak', 'quote " and \' both', 'back\\slash', '\\N', 'nul\u0000byte', 'ünïcødé ✓ 𝄞', '[1,2]', '{"a":1}', ''];

function awkwardEvent(i: number): usagev1.UsageEvent {
  const event = emptyUsageEvent(`row-${i}-${AWKWARD[i % AWKWARD.length] ?? ''}`, Date.UTC(2025, 2, 1, 23, 59, 59, 990) + i);
  const text = AWKWARD[i % AWKWARD.length] ?? '';
  event.firstTokenAtMs = i % 2 === 0 ? 0 : event.receivedAtMs + 7;
  event.completedAtMs = event.receivedAtMs + 20;
  event.tenant = { orgId: 'acme', projectId: 'p', teamId: 't', appId: 'a', costCenter: 'cc', keyId: `k-${text}`, endUser: text, tags: { [text || 'empty']: text, env: 'test' } };
  event.experiment = text;
  event.attempts = [
    { provider: 'openai', deployment: text, status: usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR, errorKind: text, latencyMs: 5 },
    { provider: 'anthropic', deployment: 'd#0', status: usagev1.AttemptStatus.ATTEMPT_STATUS_OK, errorKind: '', latencyMs: 4_000_000_000 },
  ];
  event.tokens = { prompt: 2 ** 53 - 1, completion: i, cachedRead: 0, cacheWrite: 0, reasoning: 1, estimated: i % 3 === 0 };
  event.cost = { amount: i % 2 === 0 ? '12345678901234567890.123456789012345678' : '0.000000000000000001', currency: 'EUR', priceVersion: `v-${text}` };
  event.status = usagev1.Status.STATUS_OK;
  event.httpStatus = 200;
  return event;
}

async function queryRows<T>(store: ClickHouseTarget, query: string): Promise<T[]> {
  const result = await store.client.query({ query, query_params: { db: store.database }, format: 'JSONEachRow' });
  return result.json<T>();
}

describe('ClickHouseUsageEventRepository (chDB)', () => {
  let store: ClickHouseTarget;

  beforeAll(async () => {
    // chDB in this process, on its throw-away directory; a database of this suite's own.
    store = createClickHouse(clickhouseSchema.parse({ embedded: { path: ':memory:' }, database: `rows_${randomBytes(6).toString('hex')}` }), '.');
    await migrate(store.client, store.database, USAGE_MIGRATIONS);
  }, 60_000);

  afterAll(async () => {
    await store.client.close();
  });

  it('writes every column of usage_events but the defaulted ingested_at', async () => {
    const columns = await queryRows<{ name: string }>(store, "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'usage_events' ORDER BY position");
    expect(columns.map((c) => c.name).filter((name) => name !== 'ingested_at')).toEqual([...USAGE_EVENT_COLUMNS]);
  });

  it('stores awkward text, exact decimals, times and nulls as they were, and knows them as stored', async () => {
    const repository = new ClickHouseUsageEventRepository(store.client, store.database, store.kind);
    const events = Array.from({ length: 40 }, (_, i) => awkwardEvent(i));
    await repository.insertRows(events.map((event) => repository.encode(event)));
    const rows = await queryRows<Record<string, unknown>>(
      store,
      `SELECT event_id, toString(received_at) AS received_at, toString(first_token_at) AS first_token_at, key_id, end_user, tags, experiment,
              attempts.deployment AS deployments, attempts.error_kind AS error_kinds, attempts.latency_ms AS latencies,
              toString(prompt_tokens) AS prompt_tokens, tokens_estimated, toString(cost) AS cost, price_version
       FROM {db:Identifier}.usage_events ORDER BY received_at`,
    );
    expect(rows).toHaveLength(events.length);
    rows.forEach((row, i) => {
      const event = events[i];
      if (!event) throw new Error(`no event ${i}`);
      const iso = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
      expect(row).toEqual({
        event_id: event.eventId,
        received_at: iso(event.receivedAtMs),
        first_token_at: event.firstTokenAtMs > 0 ? iso(event.firstTokenAtMs) : null,
        key_id: event.tenant?.keyId,
        end_user: event.tenant?.endUser,
        tags: event.tenant?.tags,
        experiment: event.experiment,
        deployments: event.attempts.map((a) => a.deployment),
        error_kinds: event.attempts.map((a) => a.errorKind),
        latencies: event.attempts.map((a) => a.latencyMs),
        prompt_tokens: String(2 ** 53 - 1),
        tokens_estimated: event.tokens?.estimated,
        cost: event.cost?.amount.replace(/0+$/, ''),
        price_version: event.cost?.priceVersion,
      });
    });
    const stored = await repository.storedIds([...events.map((e) => e.eventId), 'never-stored']);
    expect(stored).toEqual(new Set(events.map((e) => e.eventId)));
    // The lookup a server gets, a few thousand ids per query, finds the same.
    const unknown = Array.from({ length: 4_500 }, (_, i) => `unknown-${i}`);
    const chunked = await new ClickHouseUsageEventRepository(store.client, store.database, 'server').storedIds([...unknown, ...events.map((e) => e.eventId)]);
    expect(chunked).toEqual(new Set(events.map((e) => e.eventId)));
  });

  it('reads a duplicate that one insert carried once, though the insert no longer collapses it', async () => {
    // Inserts skip the engine's merge on insert (optimize_on_insert = 0): the consumer
    // de-duplicates every batch first, and every read of the raw table is FINAL.
    const repository = new ClickHouseUsageEventRepository(store.client, store.database, store.kind);
    const event = awkwardEvent(1);
    event.eventId = 'twice-in-one-insert';
    await repository.insertRows([repository.encode(event), repository.encode(event)]);
    const raw = await queryRows<{ rows: number; final: number }>(
      store,
      "SELECT (SELECT count() FROM {db:Identifier}.usage_events WHERE event_id = 'twice-in-one-insert') AS rows, (SELECT count() FROM {db:Identifier}.usage_events FINAL WHERE event_id = 'twice-in-one-insert') AS final",
    );
    expect(raw).toEqual([{ rows: 2, final: 1 }]);
    expect(await repository.storedIds(['twice-in-one-insert'])).toEqual(new Set(['twice-in-one-insert']));
  });
});
