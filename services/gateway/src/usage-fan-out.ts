import type { usagev1 } from '@openrouter/contracts';
import { inProcessUsageMessage, type InProcessUsageBus, type PublisherStatus, type PublishOptions, type UsagePublisher } from '@openrouter/usage';

/**
 * One publisher in front of several in-process buses: in the embedded mode each consumer (billing,
 * alerting) has its own bus, as each has its own consumer group on Kafka. The same message, which
 * carries the event itself, goes on every bus. Status is the first (billing's) bus's; the buses
 * are closed by their owner, not here.
 */
export class UsageFanOut implements UsagePublisher {
  constructor(private readonly targets: readonly [InProcessUsageBus, ...InProcessUsageBus[]]) {}

  /** Resolves once every bus holds the event (billing's, when it waits in its outbox: once fsynced there). */
  async publish(event: usagev1.UsageEvent, options?: PublishOptions): Promise<void> {
    const message = inProcessUsageMessage(event, options?.headers);
    await Promise.all(this.targets.map((target) => target.publishMessage(message)));
  }

  status(): PublisherStatus {
    return this.targets[0].status();
  }

  async close(): Promise<void> {}
}
