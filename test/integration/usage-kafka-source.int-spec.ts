import { Kafka, logLevel } from 'kafkajs';
import { createLogger } from '@openrouter/observability';
import { KafkaUsagePublisher, PriceBook, USAGE_SCHEMA_NAME, type UsageMessage } from '@openrouter/usage';
import { usagev1 } from '@openrouter/contracts';
import { KafkaUsageSource } from '@openrouter/billing';
import { sharedKafkaBrokers } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { makeUsageEvent, usageTestConfig } from '../support/usage-fixtures';

const logger = createLogger('kafka-usage-source-spec', 'silent');

describe('KafkaUsageSource (real broker)', () => {
  it('hands batch records over as their events, in chunks of at most batchMaxEvents cut between records, and commits every record', async () => {
    const config = usageTestConfig({ brokers: sharedKafkaBrokers(), usage: { consumer: { maxWaitMs: 100, retryInitialMs: 50, retryMaxMs: 500, batchMaxEvents: 250 } } });
    const prices = PriceBook.fromModels(config.models);
    const publisher = await KafkaUsagePublisher.start({ kafka: config.usage.kafka, outbox: config.usage.outbox, clientName: 'spec' }, logger);
    const events = Array.from({ length: 1_200 }, (_, i) => makeUsageEvent(prices, i, Date.parse('2025-06-10T12:00:00Z') + i, 'chunked'));
    await Promise.all(events.map((e) => publisher.publish(e)));
    await publisher.close();

    const admin = new Kafka({ clientId: 'source-spec', brokers: sharedKafkaBrokers(), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const records = (await admin.fetchTopicOffsets(config.usage.kafka.topic)).reduce((n, p) => n + Number(p.high), 0);
    // Four organisations: a few records each, not one per event.
    expect(records).toBeLessThan(100);

    const chunks: UsageMessage[][] = [];
    const source = new KafkaUsageSource(config.usage, logger);
    try {
      await source.start(async (messages) => void chunks.push(messages));
      await waitFor(async () => (await source.lag()) === 0 && chunks.flat().length >= 1_200, { timeoutMs: 60_000, what: 'every record consumed and committed' });
    } finally {
      await source.close();
      await admin.disconnect();
    }
    const received = chunks.flat();
    expect(received).toHaveLength(1_200);
    expect(new Set(received.map((m) => usagev1.UsageEvent.decode(m.value).eventId)).size).toBe(1_200);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(250);
    for (const m of received) {
      expect(m.headers['schema']).toBe(USAGE_SCHEMA_NAME);
      expect(m.key).toBe(usagev1.UsageEvent.decode(m.value).tenant?.orgId);
      expect(m.origin?.topic).toBe(config.usage.kafka.topic);
    }
  }, 90_000);

  it('gives its partitions up at a rebalance while its store is failing: the member that takes them over stores them, and no event is stored twice', async () => {
    const config = usageTestConfig({ brokers: sharedKafkaBrokers(), usage: { consumer: { maxWaitMs: 100, retryInitialMs: 50, retryMaxMs: 500 } } });
    const prices = PriceBook.fromModels(config.models);
    const publisher = await KafkaUsagePublisher.start({ kafka: config.usage.kafka, outbox: config.usage.outbox, clientName: 'spec' }, logger);
    await Promise.all(Array.from({ length: 40 }, (_, i) => publisher.publish(makeUsageEvent(prices, i, Date.parse('2025-06-10T12:00:00Z') + i, 'rebalance'))));
    await publisher.close();
    const idsOf = (messages: UsageMessage[]): string[] => messages.map((m) => usagev1.UsageEvent.decode(m.value).eventId);
    let storeDown = true;
    let failedTries = 0;
    const storedByFirst: string[] = [];
    const storedBySecond: string[] = [];
    const first = new KafkaUsageSource(config.usage, logger);
    const second = new KafkaUsageSource(config.usage, logger);
    try {
      await first.start(async (messages) => {
        if (storeDown) {
          failedTries++;
          throw new Error('the store is down');
        }
        storedByFirst.push(...idsOf(messages));
      });
      await waitFor(async () => failedTries >= 3 || undefined, { timeoutMs: 30_000, what: 'the first member retrying a failing store' });
      // The second member joins: the first, retrying, must take part in the rebalance (it used to
      // hold it up for the group's whole rebalance timeout, a minute, and keep its partitions).
      let joined = false;
      void second.start(async (messages) => void storedBySecond.push(...idsOf(messages))).then(() => (joined = true));
      await waitFor(async () => joined || undefined, { timeoutMs: 30_000, what: 'the second member joined the group' });
      storeDown = false;
      await waitFor(async () => ((await first.lag()) === 0 && new Set([...storedByFirst, ...storedBySecond]).size === 40) || undefined, { timeoutMs: 60_000, what: 'every event stored and committed' });
    } finally {
      await first.close();
      await second.close();
    }
    expect(storedByFirst.filter((id) => storedBySecond.includes(id))).toEqual([]);
    expect(storedByFirst.length + storedBySecond.length).toBe(40);
  }, 120_000);
});
