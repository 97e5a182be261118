import { createLogger } from '@openrouter/observability';
import { KafkaUsagePublisher, PriceBook, createKafka, type UsageMessage } from '@openrouter/usage';
import { usagev1 } from '@openrouter/contracts';
import { KafkaUsageSource } from '@openrouter/billing';
import { KAFKA_SASL_USER } from '../support/infra/kafka';
import { sharedKafkaSaslBrokers } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { makeUsageEvent, usageTestConfig } from '../support/usage-fixtures';

const logger = createLogger('kafka-security-spec', 'silent');

describe('usage over a broker that requires SASL', () => {
  it('publishes and consumes usage events with usage.kafka.sasl', async () => {
    const base = usageTestConfig({ brokers: sharedKafkaSaslBrokers() });
    const kafka = { ...base.usage.kafka, sasl: { ...KAFKA_SASL_USER } };
    const usage = { ...base.usage, kafka };
    const prices = PriceBook.fromModels(base.models);
    const publisher = await KafkaUsagePublisher.start({ kafka, outbox: usage.outbox, clientName: 'sasl-spec' }, logger);
    const events = Array.from({ length: 20 }, (_, i) => makeUsageEvent(prices, i, Date.parse('2025-06-10T12:00:00Z') + i, 'sasl'));
    await Promise.all(events.map((e) => publisher.publish(e)));
    // Sent straight to the broker, not kept in the outbox for a broker it cannot reach.
    expect(publisher.status().mode).toBe('direct');
    await publisher.close();

    const received: UsageMessage[] = [];
    const source = new KafkaUsageSource(usage, logger);
    try {
      await source.start(async (messages) => void received.push(...messages));
      await waitFor(async () => (await source.lag()) === 0 && received.length >= 20, { timeoutMs: 60_000, what: 'every event consumed over SASL' });
    } finally {
      await source.close();
    }
    expect(new Set(received.map((m) => usagev1.UsageEvent.decode(m.value).eventId))).toEqual(new Set(events.map((e) => e.eventId)));
  }, 90_000);

  it('is refused with a wrong password', async () => {
    const { kafka } = usageTestConfig({ brokers: sharedKafkaSaslBrokers() }).usage;
    const wrong = createKafka({ ...kafka, sasl: { ...KAFKA_SASL_USER, password: 'not-the-password' } }, logger, 'wrong').admin();
    await expect(wrong.connect()).rejects.toThrow(/SASL|[Aa]uthentication/);
  }, 60_000);
});
