import { Kafka, logLevel } from 'kafkajs';
import { startBilling, type BillingHandle } from '@openrouter/billing';
import { createLogger } from '@openrouter/observability';
import { KafkaUsagePublisher, PriceBook } from '@openrouter/usage';
import { queryRows } from '../support/infra/clickhouse';
import { KafkaBroker } from '../support/infra/kafka';
import { sharedKafkaBrokers } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { makeUsageEvent, usageTestConfig } from '../support/usage-fixtures';

const logger = createLogger('usage-failures-spec', 'silent');
const T0 = Date.parse('2025-06-10T12:00:00Z');

async function storedCounts(billing: BillingHandle): Promise<{ rows: number; unique: number; rollup: number }> {
  const [raw] = await queryRows<{ rows: string; unique: string }>(billing.usage.store, 'SELECT count() AS rows, uniqExact(event_id) AS unique FROM {db:Identifier}.usage_events FINAL');
  const [daily] = await queryRows<{ requests: string }>(billing.usage.store, 'SELECT sum(requests) AS requests FROM {db:Identifier}.usage_daily');
  return { rows: Number(raw?.rows), unique: Number(raw?.unique), rollup: Number(daily?.requests ?? 0) };
}

describe('usage pipeline under failures (real broker, chDB)', () => {
  it('delivers every event exactly once when the Kafka broker stops mid-run and comes back', async () => {
    const broker = await KafkaBroker.start();
    // A short send timeout: the publisher must give up on the stopped broker quickly and use its outbox.
    const config = usageTestConfig({ brokers: broker.brokers, sendTimeoutMs: 2_000 });
    const prices = PriceBook.fromModels(config.models);
    const billing = await startBilling(config, logger);
    const publisher = await KafkaUsagePublisher.start({ kafka: config.usage.kafka, outbox: config.usage.outbox, clientName: 'spec' }, logger);
    try {
      const events = Array.from({ length: 3_000 }, (_, i) => makeUsageEvent(prices, i, T0 + i, 'restart'));
      await Promise.all(events.slice(0, 1_000).map((e) => publisher.publish(e)));
      await broker.stop();
      // Published while the broker is down: durable in the outbox once publish resolves.
      await Promise.all(events.slice(1_000, 2_000).map((e) => publisher.publish(e)));
      expect(publisher.status().mode).toBe('outbox');
      expect(publisher.status().pending).toBeGreaterThanOrEqual(1_000);
      await broker.restart();
      await Promise.all(events.slice(2_000).map((e) => publisher.publish(e)));
      await waitFor(async () => publisher.status().mode === 'direct' && publisher.status().pending === 0, { timeoutMs: 60_000, what: 'the outbox replayed' });
      await waitFor(async () => (await storedCounts(billing)).unique === 3_000 && (await billing.usage.lag()) === 0, { timeoutMs: 90_000, intervalMs: 250, what: '3,000 stored events' });
      expect(await storedCounts(billing)).toEqual({ rows: 3_000, unique: 3_000, rollup: 3_000 });
    } finally {
      await publisher.close();
      await billing.close();
      await broker.destroy();
    }
  }, 300_000);

  it('commits no offset while ClickHouse inserts fail, retries, and loses nothing', async () => {
    // The shared broker: this suite's topics and consumer group are its own.
    const brokers = sharedKafkaBrokers();
    const config = usageTestConfig({ brokers });
    const prices = PriceBook.fromModels(config.models);
    // Each failed insert is logged by the consumer before it tries again: counted here.
    let failedInserts = 0;
    const watched = createLogger('usage-failures-spec', 'warn', {
      write: (line: string) => {
        if ((JSON.parse(line) as { msg?: string }).msg === 'usage batch not stored; retrying, offsets not committed') failedInserts++;
      },
    });
    const billing = await startBilling(config, watched);
    const publisher = await KafkaUsagePublisher.start({ kafka: config.usage.kafka, outbox: config.usage.outbox, clientName: 'spec' }, logger);
    const admin = new Kafka({ clientId: 'failures-spec', brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const committed = async (): Promise<number> => {
      const [topic] = await admin.fetchOffsets({ groupId: config.usage.kafka.consumerGroup, topics: [config.usage.kafka.topic] });
      return (topic?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
    };
    try {
      const store = billing.usage.store;
      // Take the table away: every insert fails until it is back.
      await store.client.command({ query: 'RENAME TABLE {db:Identifier}.usage_events TO {db:Identifier}.usage_events_away', query_params: { db: store.database } });
      const events = Array.from({ length: 500 }, (_, i) => makeUsageEvent(prices, i, T0 + i, 'flaky'));
      await Promise.all(events.map((e) => publisher.publish(e)));
      // Each organisation's events travel several to a message: lag and offsets count messages.
      const messages = (await admin.fetchTopicOffsets(config.usage.kafka.topic)).reduce((n, p) => n + Number(p.high), 0);
      expect(messages).toBeGreaterThan(0);
      expect(messages).toBeLessThan(500);
      await waitFor(async () => (await billing.usage.lag()) === messages, { timeoutMs: 30_000, what: 'the events on the topic' });
      // The consumer fetched them and keeps failing: nothing may be committed meanwhile.
      await waitFor(async () => billing.usage.stats().batches === 0 && (await committed()) === 0 && (await billing.usage.lag()) === messages, { timeoutMs: 5_000, what: 'no commit' });
      // Once the consumer has failed and tried again at least twice, still nothing is committed.
      await waitFor(() => failedInserts >= 2 || undefined, { timeoutMs: 30_000, intervalMs: 20, what: 'two failed inserts' });
      expect(await committed()).toBe(0);
      expect(billing.usage.stats().stored).toBe(0);

      await store.client.command({ query: 'RENAME TABLE {db:Identifier}.usage_events_away TO {db:Identifier}.usage_events', query_params: { db: store.database } });
      await waitFor(async () => (await billing.usage.lag()) === 0, { timeoutMs: 60_000, intervalMs: 200, what: 'the retried batch committed' });
      expect(await committed()).toBe(messages);
      expect(await storedCounts(billing)).toEqual({ rows: 500, unique: 500, rollup: 500 });
    } finally {
      await admin.disconnect();
      await publisher.close();
      await billing.close();
    }
  }, 300_000);
});
