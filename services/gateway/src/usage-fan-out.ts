import type { usagev1 } from '@openrouter/contracts';
import type { PublisherStatus, PublishOptions, UsagePublisher } from '@openrouter/usage';

/**
 * One publisher in front of several in-process buses: in the embedded mode each consumer (billing,
 * alerting) has its own bus, as each has its own consumer group on Kafka. Status is the first
 * (billing's) bus's; the buses are closed by their owner, not here.
 */
export class UsageFanOut implements UsagePublisher {
  constructor(private readonly targets: readonly [UsagePublisher, ...UsagePublisher[]]) {}

  async publish(event: usagev1.UsageEvent, options?: PublishOptions): Promise<void> {
    await Promise.all(this.targets.map((t) => t.publish(event, options)));
  }

  status(): PublisherStatus {
    return this.targets[0].status();
  }

  async close(): Promise<void> {}
}
