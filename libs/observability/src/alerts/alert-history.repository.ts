import type { ClickHouseClient } from '@clickhouse/client';

/** One alert transition (fired, resolved) as kept in the `alert_history` table. */
export interface AlertHistoryEntry {
  /** When the transition happened (ISO 8601). */
  at: string;
  /** Stable id of the alert: its rule and group labels. */
  alertId: string;
  ruleId: string;
  ruleKind: string;
  severity: string;
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  value: number;
  threshold: number;
  summary: string;
  /** When the alert (this episode) started firing (ISO 8601). */
  startedAt: string;
  /** False when a cooldown held the notification back. */
  notified: boolean;
  channels: string[];
}

export interface AlertHistoryQuery {
  limit: number;
  status?: 'firing' | 'resolved' | undefined;
  ruleId?: string | undefined;
  /** Only entries at or after this instant (epoch ms). */
  sinceMs?: number | undefined;
  /** Only alerts labelled with this organisation (scoped admin keys). */
  org?: string | undefined;
}

/** Where alert history is written (alerting) and read (the admin API). */
export interface AlertHistoryStore {
  append(entries: readonly AlertHistoryEntry[]): Promise<void>;
  list(query: AlertHistoryQuery): Promise<AlertHistoryEntry[]>;
  /** The alerts whose latest entry is `firing` (what was firing when alerting last stopped), at most `limit`. */
  firing(limit?: number): Promise<AlertHistoryEntry[]>;
}

type AlertHistoryResultRow = Omit<AlertHistoryRow, 'at' | 'started_at'> & { at_text: string; started_at_text: string };

/** The text columns get names of their own: an alias `at` would shadow the DateTime64 column in WHERE and ORDER BY, and comparing it with a time fails. */
const ENTRY_COLUMNS = 'toString(at) AS at_text, alert_id, rule_id, rule_kind, severity, status, labels, value, threshold, summary, toString(started_at) AS started_at_text, notified, channels';

interface AlertHistoryRow {
  at: string;
  alert_id: string;
  rule_id: string;
  rule_kind: string;
  severity: string;
  status: string;
  labels: Record<string, string>;
  value: number;
  threshold: number;
  summary: string;
  started_at: string;
  notified: boolean | number;
  channels: string[];
}

function clickhouseTime(iso: string): string {
  return new Date(iso).toISOString().replace('T', ' ').replace('Z', '');
}

function isoTime(text: string): string {
  return new Date(`${text.replace(' ', 'T')}Z`).toISOString();
}

/** `alert_history` in ClickHouse (migration 0004 of libs/usage); every query uses query parameters. */
export class ClickHouseAlertHistory implements AlertHistoryStore {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  async append(entries: readonly AlertHistoryEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.client.insert({
      table: `${this.database}.alert_history`,
      format: 'JSONEachRow',
      values: entries.map(
        (e): AlertHistoryRow => ({
          at: clickhouseTime(e.at),
          alert_id: e.alertId,
          rule_id: e.ruleId,
          rule_kind: e.ruleKind,
          severity: e.severity,
          status: e.status,
          labels: e.labels,
          value: Number.isFinite(e.value) ? e.value : 0,
          threshold: Number.isFinite(e.threshold) ? e.threshold : 0,
          summary: e.summary,
          started_at: clickhouseTime(e.startedAt),
          notified: e.notified,
          channels: e.channels,
        }),
      ),
    });
  }

  async list(query: AlertHistoryQuery): Promise<AlertHistoryEntry[]> {
    const where: string[] = [];
    const params: Record<string, unknown> = { db: this.database, limit: query.limit };
    if (query.status) {
      where.push('status = {status:String}');
      params['status'] = query.status;
    }
    if (query.ruleId) {
      where.push('rule_id = {rule:String}');
      params['rule'] = query.ruleId;
    }
    if (query.sinceMs !== undefined) {
      where.push("at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')");
      params['since'] = query.sinceMs;
    }
    if (query.org !== undefined) {
      where.push("labels['org'] = {org:String}");
      params['org'] = query.org;
    }
    const result = await this.client.query({
      query: `SELECT ${ENTRY_COLUMNS}
FROM {db:Identifier}.alert_history ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
ORDER BY at DESC, alert_id LIMIT {limit:UInt32}`,
      query_params: params,
      format: 'JSONEachRow',
    });
    return (await result.json<AlertHistoryResultRow>()).map(entryOf);
  }

  async firing(limit = 10_000): Promise<AlertHistoryEntry[]> {
    const result = await this.client.query({
      query: `SELECT * FROM (SELECT ${ENTRY_COLUMNS} FROM {db:Identifier}.alert_history ORDER BY alert_id, at DESC, status = 'resolved' DESC LIMIT 1 BY alert_id)
WHERE status = 'firing' ORDER BY at_text LIMIT {limit:UInt32}`,
      query_params: { db: this.database, limit },
      format: 'JSONEachRow',
    });
    return (await result.json<AlertHistoryResultRow>()).map(entryOf);
  }
}

function entryOf(r: AlertHistoryResultRow): AlertHistoryEntry {
  return {
    at: isoTime(r.at_text),
    alertId: r.alert_id,
    ruleId: r.rule_id,
    ruleKind: r.rule_kind,
    severity: r.severity,
    status: r.status === 'resolved' ? 'resolved' : 'firing',
    labels: r.labels,
    value: Number(r.value),
    threshold: Number(r.threshold),
    summary: r.summary,
    startedAt: isoTime(r.started_at_text),
    notified: r.notified === true || r.notified === 1,
    channels: r.channels,
  };
}
