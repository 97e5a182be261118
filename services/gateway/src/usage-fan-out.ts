import type { usagev1 } from '@openrouter/contracts';
import { UsageMessageEncoder, type InProcessUsageBus, type PublisherStatus, type PublishOptions, type UsagePublisher } from '@openrouter/usage';

/**
 * One publisher in front of several in-process buses: in the embedded mode each consumer (billing,
 * alerting) has its own bus, as each has its own consumer group on Kafka. The event is encoded
 * once and the same message goes on every bus. Status is the first (billing's) bus's; the buses
 * are closed by their owner, not here.
 */
export class UsageFanOut implements UsagePublisher {
  private readonly encoder = new UsageMessageEncoder();

  constructor(private readonly targets: readonly [InProcessUsageBus, ...InProcessUsageBus[]]) {}

  async publish(event: usagev1.UsageEvent, options?: PublishOptions): Promise<void> {
    const message = this.encoder.encode(event, options?.headers);
    for (const target of this.targets) target.publishMessage(message);
  }

  status(): PublisherStatus {
    return this.targets[0].status();
  }

  async close(): Promise<void> {}
}
