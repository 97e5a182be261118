import { randomBytes } from 'node:crypto';
import { ConfigResourceTypes } from 'kafkajs';
import { kafkaUsageSchema, type KafkaUsageConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { createKafka, ensureUsageTopics } from '@openrouter/usage';
import { sharedKafkaBrokers } from '../support/infra/shared-infra';

const logger = createLogger('usage-topics-spec', 'silent');

describe('ensureUsageTopics (real broker)', () => {
  /** `retention.ms` of each topic, as the broker reports it. */
  async function retentionOf(config: KafkaUsageConfig): Promise<Record<string, string | undefined>> {
    const admin = createKafka(config, logger, 'spec').admin();
    await admin.connect();
    try {
      const { resources } = await admin.describeConfigs({
        resources: [config.topic, config.dlqTopic].map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['retention.ms'] })),
        includeSynonyms: false,
      });
      return Object.fromEntries(resources.map((r) => [r.resourceName, r.configEntries.find((e) => e.configName === 'retention.ms')?.configValue]));
    } finally {
      await admin.disconnect();
    }
  }

  function configWith(settings: Record<string, unknown>): KafkaUsageConfig {
    const id = randomBytes(4).toString('hex');
    return kafkaUsageSchema.parse({ brokers: sharedKafkaBrokers(), clientId: `retention-${id}`, topic: `usage-${id}.v1`, dlqTopic: `usage-${id}.v1.dlq`, partitions: 1, ...settings });
  }

  it('creates the usage and dead-letter topics with the configured retention, 30 days unless told otherwise', async () => {
    const configured = configWith({ retentionMs: String(45 * 24 * 3_600_000) });
    await ensureUsageTopics(createKafka(configured, logger, 'spec'), configured);
    expect(await retentionOf(configured)).toEqual({ [configured.topic]: '3888000000', [configured.dlqTopic]: '3888000000' });

    const byDefault = configWith({});
    await ensureUsageTopics(createKafka(byDefault, logger, 'spec'), byDefault);
    expect(await retentionOf(byDefault)).toEqual({ [byDefault.topic]: '2592000000', [byDefault.dlqTopic]: '2592000000' });

    const forGood = configWith({ retentionMs: -1 });
    await ensureUsageTopics(createKafka(forGood, logger, 'spec'), forGood);
    expect(await retentionOf(forGood)).toEqual({ [forGood.topic]: '-1', [forGood.dlqTopic]: '-1' });
  });
});
