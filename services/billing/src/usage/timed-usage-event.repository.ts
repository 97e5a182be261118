import type { usagev1 } from '@openrouter/contracts';
import type { UsageConsumerMetrics } from '@openrouter/observability';
import type { UsageEventRepository } from './usage-event.repository';

/** The usage store with its inserts timed and the stored events counted. */
export class TimedUsageEventRepository implements UsageEventRepository {
  constructor(
    private readonly inner: UsageEventRepository,
    private readonly metrics: UsageConsumerMetrics,
  ) {}

  storedIds(ids: readonly string[]): Promise<Set<string>> {
    return this.inner.storedIds(ids);
  }

  async insert(events: readonly usagev1.UsageEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.metrics.timeInsert('usage_events', () => this.inner.insert(events));
    this.metrics.events.inc({ result: 'stored' }, events.length);
  }

  ping(): Promise<boolean> {
    return this.inner.ping();
  }
}
