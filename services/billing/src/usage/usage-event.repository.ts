import { Readable } from 'node:stream';
import type { usagev1 } from '@openrouter/contracts';
import { WITHOUT_OUTPUT_SETTINGS, type ClickHouseClient, type ClickHouseTarget } from '@openrouter/usage';
import { ClickHouseTimeFormat, toUsageRowValues, USAGE_EVENT_COLUMNS } from './usage-row';

/** An event encoded as one row of the store's insert format (for ClickHouse a JSONCompactEachRow line). */
export type EncodedUsageRow = string & { readonly __encodedUsageRow: true };

/**
 * Where billing stores usage events. Encoding is separate from inserting so that a batch can be
 * encoded as it arrives, while the previous one is being written.
 */
export interface UsageEventRepository {
  /** The ids among `ids` that are stored already. */
  storedIds(ids: readonly string[]): Promise<Set<string>>;
  encode(event: usagev1.UsageEvent): EncodedUsageRow;
  /** Inserts encoded rows in one write. */
  insertRows(rows: readonly EncodedUsageRow[]): Promise<void>;
}

/**
 * Ids per lookup. Over HTTP query parameters travel in the request URL, so a server gets a few
 * thousand at a time; chDB binds them in the process, where one lookup per batch costs half.
 */
const IDS_PER_QUERY: Record<ClickHouseTarget['kind'], number> = { server: 2_000, embedded: 100_000 };

export class ClickHouseUsageEventRepository implements UsageEventRepository {
  private readonly time = new ClickHouseTimeFormat();

  private readonly idsPerQuery: number;

  private readonly insertStatement: string;

  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
    kind: ClickHouseTarget['kind'] = 'server',
  ) {
    this.idsPerQuery = IDS_PER_QUERY[kind];
    // `optimize_on_insert = 0`: the engine would otherwise run ReplacingMergeTree's merge over each
    // inserted block (and the id table's) to collapse duplicate keys, a fifth of the insert's cost.
    // The consumer has de-duplicated the batch already, and every read of the raw table is FINAL.
    // In the statement rather than the client's settings: chDB sends those as a `SET …;` in front.
    this.insertStatement = `INSERT INTO ${database}.usage_events (${USAGE_EVENT_COLUMNS.join(', ')}) SETTINGS optimize_on_insert = 0 FORMAT JSONCompactEachRow`;
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

  /** The row as JSONCompactEachRow, positional in {@link USAGE_EVENT_COLUMNS}' order (what `client.insert` would send). */
  encode(event: usagev1.UsageEvent): EncodedUsageRow {
    return `${JSON.stringify(toUsageRowValues(event, this.time))}\n` as EncodedUsageRow;
  }

  async insertRows(rows: readonly EncodedUsageRow[]): Promise<void> {
    if (rows.length === 0) return;
    // `exec` with a body: the rows are encoded already, `insert` would encode them again.
    const result = await this.client.exec({
      query: this.insertStatement,
      values: Readable.from([rows.join('')]),
      clickhouse_settings: WITHOUT_OUTPUT_SETTINGS,
    });
    // An insert answers with an empty body; reading it to the end frees the connection.
    for await (const chunk of result.stream) void chunk;
  }
}
