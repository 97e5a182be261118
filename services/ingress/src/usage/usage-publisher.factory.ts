import { join, resolve } from 'node:path';
import type { GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { KafkaUsagePublisher, type PublisherStatus, type UsagePublisher } from '@openrouter/usage';

/**
 * The publisher ingress uses when none is handed in: Kafka (with its outbox) per `usage.bus`.
 * The in-process bus only exists inside the embedded gateway, so a stand-alone ingress on it has
 * nowhere to send events and says so at start-up.
 */
export async function createUsagePublisher(config: GatewayConfig, logger: Logger): Promise<UsagePublisher> {
  const usage = config.usage;
  if (usage.bus === 'kafka') {
    const dir = usage.outbox.dir ? resolve(usage.outbox.dir) : resolve(join(config.gateway.dataDir, 'outbox', 'ingress'));
    return KafkaUsagePublisher.start({ kafka: usage.kafka, outbox: { ...usage.outbox, dir }, clientName: 'ingress' }, logger);
  }
  logger.warn('usage.bus is in-process but ingress runs on its own: usage is not recorded (set usage.bus: kafka for separate processes)');
  return new UnconnectedUsagePublisher();
}

class UnconnectedUsagePublisher implements UsagePublisher {
  async publish(): Promise<void> {}
  status(): PublisherStatus {
    return { mode: 'direct', pending: 0, outboxBytes: 0 };
  }
  async close(): Promise<void> {}
}
