import type { usagev1 } from '@openrouter/contracts';
import { WITHOUT_OUTPUT_SETTINGS, type ClickHouseClient, type ClickHouseTarget } from '@openrouter/usage';
import { ClickHouseTimeFormat, toUsageRowValues, USAGE_EVENT_COLUMNS } from './usage-row';

/** Where billing stores usage events. */
export interface UsageEventRepository {
  /** The ids among `ids` that are stored already. */
  storedIds(ids: readonly string[]): Promise<Set<string>>;
  insert(events: readonly usagev1.UsageEvent[]): Promise<void>;
  ping(): Promise<boolean>;
}

/**
 * Ids per lookup. Over HTTP query parameters travel in the request URL, so a server gets a few
 * thousand at a time; chDB binds them in the process, where one lookup per batch costs half.
 */
const IDS_PER_QUERY: Record<ClickHouseTarget['kind'], number> = { server: 2_000, embedded: 100_000 };

export class ClickHouseUsageEventRepository implements UsageEventRepository {
  private readonly time = new ClickHouseTimeFormat();

  private readonly idsPerQuery: number;

  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
    kind: ClickHouseTarget['kind'] = 'server',
  ) {
    this.idsPerQuery = IDS_PER_QUERY[kind];
  }

  async storedIds(ids: readonly string[]): Promise<Set<string>> {
    const stored = new Set<string>();
    for (let i = 0; i < ids.length; i += this.idsPerQuery) {
      const result = await this.client.query({
        query: 'SELECT DISTINCT event_id FROM {db:Identifier}.usage_event_ids WHERE event_id IN {ids:Array(String)}',
        query_params: { db: this.database, ids: ids.slice(i, i + this.idsPerQuery) },
        format: 'JSONEachRow',
        clickhouse_settings: WITHOUT_OUTPUT_SETTINGS,
      });
      for (const row of await result.json<{ event_id: string }>()) stored.add(row.event_id);
    }
    return stored;
  }

  async insert(events: readonly usagev1.UsageEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.client.insert({
      table: `${this.database}.usage_events`,
      columns: [...USAGE_EVENT_COLUMNS],
      values: events.map((event) => toUsageRowValues(event, this.time)),
      format: 'JSONCompactEachRow',
      clickhouse_settings: WITHOUT_OUTPUT_SETTINGS,
    });
  }

  async ping(): Promise<boolean> {
    const result = await this.client.ping();
    return result.success;
  }
}
