import type { usagev1 } from '@openrouter/contracts';
import type { ClickHouseClient } from '@openrouter/usage';
import { toUsageRow } from './usage-row';

/** Where billing stores usage events. */
export interface UsageEventRepository {
  /** The ids among `ids` that are stored already. */
  storedIds(ids: readonly string[]): Promise<Set<string>>;
  insert(events: readonly usagev1.UsageEvent[]): Promise<void>;
  ping(): Promise<boolean>;
}

/** Ids per lookup: query parameters travel in the request URL of the HTTP interface. */
const IDS_PER_QUERY = 2_000;

export class ClickHouseUsageEventRepository implements UsageEventRepository {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  async storedIds(ids: readonly string[]): Promise<Set<string>> {
    const stored = new Set<string>();
    for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
      const result = await this.client.query({
        query: 'SELECT DISTINCT event_id FROM {db:Identifier}.usage_event_ids WHERE event_id IN {ids:Array(String)}',
        query_params: { db: this.database, ids: ids.slice(i, i + IDS_PER_QUERY) },
        format: 'JSONEachRow',
      });
      for (const row of await result.json<{ event_id: string }>()) stored.add(row.event_id);
    }
    return stored;
  }

  async insert(events: readonly usagev1.UsageEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.client.insert({ table: `${this.database}.usage_events`, values: events.map(toUsageRow), format: 'JSONEachRow' });
  }

  async ping(): Promise<boolean> {
    const result = await this.client.ping();
    return result.success;
  }
}
