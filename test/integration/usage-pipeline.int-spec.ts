import { Kafka, logLevel } from 'kafkajs';
import { startBilling, type BillingHandle } from '@openrouter/billing';
import type { GatewayConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { KafkaUsagePublisher, Money, moneyText, PriceBook, USAGE_BATCH_SCHEMA_NAME, type UsagePublisher } from '@openrouter/usage';
import { usagev1 } from '@openrouter/contracts';
import { queryRows } from '../support/infra/clickhouse';
import { sharedKafkaBrokers } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { makeUsageEvent, usageTestConfig } from '../support/usage-fixtures';

const logger = createLogger('usage-pipeline-spec', 'silent');
const T0 = Date.parse('2025-06-10T12:00:00Z');

/** The suite's publisher (its long send timeout comes from `usageTestConfig`). */
async function startPublisher(config: GatewayConfig): Promise<KafkaUsagePublisher> {
  return KafkaUsagePublisher.start({ kafka: config.usage.kafka, outbox: config.usage.outbox, clientName: 'spec' }, logger);
}

async function totals(billing: BillingHandle): Promise<{ rows: number; unique: number; cost: string; rollupRequests: number; rollupCost: string }> {
  const store = billing.usage.store;
  const [raw] = await queryRows<{ rows: string; unique: string; cost: string }>(
    store,
    'SELECT count() AS rows, uniqExact(event_id) AS unique, toString(sum(cost)) AS cost FROM {db:Identifier}.usage_events FINAL',
  );
  const [rollup] = await queryRows<{ requests: string; cost: string }>(store, 'SELECT sum(requests) AS requests, toString(sum(cost)) AS cost FROM {db:Identifier}.usage_daily');
  return { rows: Number(raw?.rows), unique: Number(raw?.unique), cost: moneyText(new Money(raw?.cost ?? '0')), rollupRequests: Number(rollup?.requests ?? 0), rollupCost: moneyText(new Money(rollup?.cost ?? '0')) };
}

describe('usage pipeline: Kafka → billing → ClickHouse (real broker, chDB)', () => {
  let config: GatewayConfig;
  let billing: BillingHandle;
  let publisher: UsagePublisher;
  let prices: PriceBook;

  beforeAll(async () => {
    config = usageTestConfig({ brokers: sharedKafkaBrokers(), pricing: { input: '0.15', output: '0.60', cachedInput: '0.075', changes: [{ from: '2025-06-15', input: '0.10', output: '0.40' }] } });
    prices = PriceBook.fromModels(config.models);
    billing = await startBilling(config, logger);
    publisher = await startPublisher(config);
  }, 120_000);

  afterAll(async () => {
    await publisher?.close();
    await billing?.close();
  });

  it('stores 10,000 events as exactly 10,000 rows with the exact cost sum, and a replay adds nothing', async () => {
    const events = Array.from({ length: 10_000 }, (_, i) => makeUsageEvent(prices, i, T0 + i));
    const expected = moneyText(events.reduce((sum, e) => sum.plus(e.cost?.amount ?? '0'), new Money(0)));
    const started = Date.now();
    await Promise.all(events.map((e) => publisher.publish(e)));
    await waitFor(async () => billing.usage.stats().stored >= 10_000, { timeoutMs: 120_000, what: '10,000 stored events' });
    const seconds = (Date.now() - started) / 1000;
    process.stderr.write(`usage pipeline: 10,000 events published and stored in ${seconds.toFixed(2)} s (${Math.round(10_000 / seconds)} events/s end to end)\n`);
    expect(await totals(billing)).toEqual({ rows: 10_000, unique: 10_000, cost: expected, rollupRequests: 10_000, rollupCost: expected });

    // The same events again (an outbox replay, a producer retry): counted once.
    await Promise.all(events.slice(0, 500).map((e) => publisher.publish(e)));
    await waitFor(async () => (await billing.usage.lag()) === 0 && billing.usage.stats().duplicates >= 500, { timeoutMs: 60_000, what: 'the replay consumed' });
    expect(await totals(billing)).toEqual({ rows: 10_000, unique: 10_000, cost: expected, rollupRequests: 10_000, rollupCost: expected });
  }, 240_000);

  it('sends a flush of one organisation larger than the broker takes in one request in several, and stays direct', async () => {
    // 3,000 events of one org, ~600 bytes each with their tags and trace header: one producer
    // batch of ~1.8 MB for one partition, where the broker takes 1 MB (message.max.bytes).
    const events = Array.from({ length: 3_000 }, (_, i) => {
      const event = makeUsageEvent(prices, i, T0 + i, 'one-org');
      event.tenant = { ...event.tenant!, orgId: 'solo', tags: { env: 'production', team: 'platform-search-and-recommendations', request: `r-${i}-${'x'.repeat(160)}` } };
      return event;
    });
    const before = billing.usage.stats().stored;
    await Promise.all(events.map((e) => publisher.publish(e, { headers: { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` } })));
    expect(publisher.status()).toMatchObject({ mode: 'direct', pending: 0 });
    await waitFor(async () => billing.usage.stats().stored >= before + 3_000, { timeoutMs: 60_000, what: '3,000 events of one organisation stored' });
    const [row] = await queryRows<{ n: string }>(billing.usage.store, "SELECT count() AS n FROM {db:Identifier}.usage_events FINAL WHERE org_id = 'solo'");
    expect(Number(row?.n)).toBe(3_000);
  }, 120_000);

  it('keeps earlier events at their price when the price changes mid-month', async () => {
    const before = makeUsageEvent(prices, 1, Date.parse('2025-06-14T23:59:59.000Z'), 'price');
    const after = makeUsageEvent(prices, 2, Date.parse('2025-06-15T00:00:00.000Z'), 'price');
    for (const e of [before, after]) e.tokens = { prompt: 1_000_000, completion: 1_000_000, cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: false };
    before.cost = { amount: '0.75', currency: 'USD', priceVersion: prices.priceAt('gpt-4o-mini', 'sim-mini', before.receivedAtMs)?.version ?? '' };
    after.cost = { amount: '0.5', currency: 'USD', priceVersion: prices.priceAt('gpt-4o-mini', 'sim-mini', after.receivedAtMs)?.version ?? '' };
    await Promise.all([publisher.publish(before), publisher.publish(after)]);
    await waitFor(async () => (await queryRows(billing.usage.store, "SELECT 1 FROM {db:Identifier}.usage_events WHERE event_id LIKE 'price-%'")).length === 2, { timeoutMs: 30_000, what: 'priced events' });
    const rows = await queryRows<{ event_id: string; cost: string; price_version: string }>(
      billing.usage.store,
      "SELECT event_id, toString(cost) AS cost, price_version FROM {db:Identifier}.usage_events FINAL WHERE event_id LIKE 'price-%' ORDER BY event_id",
    );
    expect(rows.map((r) => [r.event_id, moneyText(new Money(r.cost))])).toEqual([
      ['price-1', '0.75'],
      ['price-2', '0.5'],
    ]);
    expect(rows[0]?.price_version).toMatch(/^gpt-4o-mini@base#/);
    expect(rows[1]?.price_version).toMatch(/^gpt-4o-mini@2025-06-15T00:00:00\.000Z#/);
    // A later price list (another change added) prices the old instants exactly as before.
    const later = PriceBook.fromModels(
      usageTestConfig({ brokers: sharedKafkaBrokers(), pricing: { input: '0.15', output: '0.60', cachedInput: '0.075', changes: [{ from: '2025-06-15', input: '0.10', output: '0.40' }, { from: '2025-06-20', input: '9' }] } }).models,
    );
    expect(later.priceAt('gpt-4o-mini', 'sim-mini', before.receivedAtMs)?.version).toBe(rows[0]?.price_version);
  }, 60_000);

  it('sends a poison message to the dead-letter topic with the reason and keeps consuming', async () => {
    const valid = makeUsageEvent(prices, 1, T0, 'after-poison');
    const kafka = new Kafka({ clientId: 'poison-spec', brokers: sharedKafkaBrokers(), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: config.usage.kafka.topic, messages: [{ key: valid.tenant?.orgId ?? '', value: Buffer.from([0xff, 0xff, 0xff, 0x01, 0x02]) }] });
    await producer.disconnect();
    await publisher.publish(valid);
    // Same key, same partition: the valid event is behind the poison message.
    await waitFor(async () => (await queryRows(billing.usage.store, "SELECT 1 FROM {db:Identifier}.usage_events WHERE event_id = 'after-poison-1'")).length === 1, { timeoutMs: 30_000, what: 'the event after the poison message' });
    await waitFor(() => billing.usage.stats().deadLettered === 1, { timeoutMs: 10_000, what: 'the dead-letter count' });

    const consumer = kafka.consumer({ groupId: `dlq-reader-${Date.now()}` });
    await consumer.connect();
    await consumer.subscribe({ topic: config.usage.kafka.dlqTopic, fromBeginning: true });
    const letters: Array<{ reason: string; offset: string }> = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        letters.push({ reason: String(message.headers?.['x-dlq-reason'] ?? ''), offset: String(message.headers?.['x-dlq-source-offset'] ?? '') });
      },
    });
    await waitFor(() => letters.length >= 1, { timeoutMs: 30_000, what: 'the dead letter' });
    await consumer.disconnect();
    expect(letters).toHaveLength(1);
    expect(letters[0]?.reason).toMatch(/undecodable protobuf|schema_version|missing/);
    expect(letters[0]?.offset).toMatch(/^\d+$/);
  }, 60_000);

  it('shows consumer lag and counters in /ready', async () => {
    // The consumer commits a chunk's offsets just after storing it.
    await waitFor(async () => (await billing.usage.lag()) === 0, { timeoutMs: 30_000, what: 'no consumer lag' });
    const response = await fetch(`http://127.0.0.1:${billing.httpPort}/ready`);
    const body = (await response.json()) as { status: string; checks: Record<string, string>; details?: Record<string, Record<string, unknown>> };
    expect(response.status).toBe(200);
    expect(body.checks).toEqual({ clickhouse: 'ok', 'usage-consumer': 'ok' });
    expect(body.details?.['usage-consumer']).toEqual(expect.objectContaining({ bus: 'kafka', lag: 0, deadLettered: 1 }));

    // Prometheus sees what became of every event, the replayed and the poisoned too.
    const metrics = await (await fetch(`http://127.0.0.1:${billing.httpPort}/metrics`)).text();
    const consumed = (result: string): number => Number(new RegExp(`^openrouter_usage_events_consumed_total\\{result="${result}"[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? NaN);
    const stats = billing.usage.stats();
    expect(stats.duplicates).toBeGreaterThanOrEqual(500);
    expect({ stored: consumed('stored'), duplicate: consumed('duplicate'), dead_letter: consumed('dead_letter') }).toEqual({ stored: stats.stored, duplicate: stats.duplicates, dead_letter: 1 });
  });

  it("carries an organisation's events several to a message; a bad event of a batch goes to the dead letters alone, with its own trace context", async () => {
    const kafka = new Kafka({ clientId: 'batch-spec', brokers: sharedKafkaBrokers(), logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const messagesInTopic = async (): Promise<number> => (await admin.fetchTopicOffsets(config.usage.kafka.topic)).reduce((sum, p) => sum + Number(p.high), 0);
    const before = await messagesInTopic();
    const deadBefore = billing.usage.stats().deadLettered;

    // 400 events of four organisations, and among acme's an event that can never be stored.
    const events = Array.from({ length: 400 }, (_, i) => makeUsageEvent(prices, i, T0 + i, 'packed'));
    const bad = makeUsageEvent(prices, 0, T0, 'packed-bad');
    bad.cost = { amount: '0.1', currency: 'usd', priceVersion: 'x' };
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await Promise.all([...events.slice(0, 200).map((e) => publisher.publish(e)), publisher.publish(bad, { headers: { traceparent } }), ...events.slice(200).map((e) => publisher.publish(e))]);
    // And a record that claims to be a batch but is not one.
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: config.usage.kafka.topic, messages: [{ key: 'acme', value: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f]), headers: { schema: USAGE_BATCH_SCHEMA_NAME } }] });
    await producer.disconnect();

    const stored = async (): Promise<number> => Number((await queryRows<{ n: string }>(billing.usage.store, "SELECT count() AS n FROM {db:Identifier}.usage_events FINAL WHERE event_id LIKE 'packed-%'"))[0]?.n ?? 0);
    await waitFor(async () => (await stored()) === 400 && billing.usage.stats().deadLettered === deadBefore + 2, { timeoutMs: 60_000, what: '400 events stored and 2 dead letters' });
    // 401 events took a few messages per organisation, not one each (plus the fake batch).
    const sent = (await messagesInTopic()) - before;
    expect(sent).toBeLessThanOrEqual(4 * 3 + 1);
    await admin.disconnect();

    const consumer = kafka.consumer({ groupId: `dlq-batch-reader-${Date.now()}` });
    await consumer.connect();
    await consumer.subscribe({ topic: config.usage.kafka.dlqTopic, fromBeginning: true });
    const letters: Array<{ reason: string; traceparent: string; schema: string; value: Buffer }> = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        const header = (name: string): string => String(message.headers?.[name] ?? '');
        letters.push({ reason: header('x-dlq-reason'), traceparent: header('traceparent'), schema: header('schema'), value: message.value ?? Buffer.alloc(0) });
      },
    });
    await waitFor(() => letters.length >= 3, { timeoutMs: 30_000, what: 'the dead letters' });
    await consumer.disconnect();
    const event = letters.find((l) => l.reason.includes('currency'));
    expect(event).toMatchObject({ traceparent, schema: 'openrouter.usage.v1.UsageEvent' });
    expect(usagev1.UsageEvent.decode(event?.value ?? Buffer.alloc(0)).eventId).toBe('packed-bad-0');
    const batch = letters.find((l) => l.reason.startsWith('undecodable usage event batch'));
    expect(batch?.schema).toBe(USAGE_BATCH_SCHEMA_NAME);
    expect(batch?.value).toEqual(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f]));
  }, 90_000);

  it('dead-letters more poison than the broker takes in one request, in several sends, and moves on', async () => {
    const before = billing.usage.stats().deadLettered;
    const kafka = new Kafka({ clientId: 'poison-flood-spec', brokers: sharedKafkaBrokers(), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    // 1,200 undecodable messages of 1 KiB on one partition: ~1.4 MB of dead letters with their headers.
    const poison = Array.from({ length: 1_200 }, (_, i) => ({ key: 'flood', value: Buffer.concat([Buffer.from([0xff, 0xff, 0xff]), Buffer.alloc(1_021, i % 251)]) }));
    for (let i = 0; i < poison.length; i += 200) await producer.send({ topic: config.usage.kafka.topic, messages: poison.slice(i, i + 200) });
    await producer.disconnect();
    const after = makeUsageEvent(prices, 1, T0, 'after-flood');
    after.tenant = { ...after.tenant!, orgId: 'flood' };
    await publisher.publish(after);
    // The poison may be counted before the event behind it is fetched, and a chunk's offsets are
    // committed after it is counted: wait for all three.
    const afterFlood = async (): Promise<number> => (await queryRows(billing.usage.store, "SELECT 1 FROM {db:Identifier}.usage_events WHERE event_id = 'after-flood-1'")).length;
    await waitFor(async () => billing.usage.stats().deadLettered - before >= 1_200 && (await afterFlood()) === 1 && (await billing.usage.lag()) === 0, {
      timeoutMs: 60_000,
      what: '1,200 dead letters, the event behind them stored and no lag',
    });
    expect(billing.usage.stats().deadLettered - before).toBe(1_200);
  }, 90_000);
});
