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
});
