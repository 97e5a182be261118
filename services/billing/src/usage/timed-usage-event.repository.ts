import type { usagev1 } from '@openrouter/contracts';
import type { UsageConsumerMetrics } from '@openrouter/observability';
import type { EncodedUsageRow, UsageEventRepository } from './usage-event.repository';

/** The usage store with its inserts timed (the ingest service counts the events). */
export class TimedUsageEventRepository implements UsageEventRepository {
  constructor(
    private readonly inner: UsageEventRepository,
    private readonly metrics: UsageConsumerMetrics,
  ) {}

  storedIds(ids: readonly string[]): Promise<Set<string>> {
    return this.inner.storedIds(ids);
  }

  encode(event: usagev1.UsageEvent): EncodedUsageRow {
    return this.inner.encode(event);
  }

  async insertRows(rows: readonly EncodedUsageRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.metrics.timeInsert('usage_events', () => this.inner.insertRows(rows));
  }
}
