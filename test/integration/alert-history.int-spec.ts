import { ClickHouseAlertHistory, type AlertHistoryEntry } from '@openrouter/observability';
import { migrate, USAGE_MIGRATIONS } from '@openrouter/usage';
import { embeddedClickHouse } from '../support/infra/clickhouse';

// Recent times: the table's TTL drops rows older than 400 days.
const hour = 3_600_000;
const base = Math.floor(Date.now() / hour) * hour - 5 * hour;
const iso = (hours: number): string => new Date(base + hours * hour).toISOString();

const entry = (at: string, ruleId: string, status: 'firing' | 'resolved', org = 'acme'): AlertHistoryEntry => ({
  at,
  alertId: `${ruleId}:${org}`,
  ruleId,
  ruleKind: 'error_rate',
  severity: 'warning',
  status,
  labels: { org },
  value: 0.5,
  threshold: 0.2,
  summary: `${ruleId} ${status}`,
  startedAt: iso(0),
  notified: true,
  channels: ['ops'],
});

/** An alert history in a fresh chDB database holding `entries`, for the enclosing describe. */
function historyOf(entries: () => AlertHistoryEntry[]): ClickHouseAlertHistory {
  const target = embeddedClickHouse();
  const history = new ClickHouseAlertHistory(target.client, target.database);
  beforeAll(async () => {
    await migrate(target.client, target.database, USAGE_MIGRATIONS);
    await history.append(entries());
  }, 60_000);
  afterAll(() => target.client.close());
  return history;
}

const SOME = (): AlertHistoryEntry[] => [entry(iso(0), 'errors', 'firing'), entry(iso(1), 'errors', 'resolved'), entry(iso(2), 'latency', 'firing', 'beta')];

describe('alert history in ClickHouse (chDB)', () => {
  const history = historyOf(SOME);

  it('lists newest first with the times as written', async () => {
    const all = await history.list({ limit: 10 });
    expect(all.map((e) => [e.at, e.ruleId, e.status])).toEqual([
      [iso(2), 'latency', 'firing'],
      [iso(1), 'errors', 'resolved'],
      [iso(0), 'errors', 'firing'],
    ]);
    expect(all[0]?.startedAt).toBe(iso(0));
  });

  it('filters by since (inclusive), status, rule and org', async () => {
    const since = base + hour;
    expect((await history.list({ limit: 10, sinceMs: since })).map((e) => e.at)).toEqual([iso(2), iso(1)]);
    expect((await history.list({ limit: 10, sinceMs: since + 1, ruleId: 'errors' })).map((e) => e.at)).toEqual([]);
    expect((await history.list({ limit: 10, status: 'firing', org: 'acme' })).map((e) => e.at)).toEqual([iso(0)]);
  });
});

describe('the alerts firing, by their history in ClickHouse (chDB)', () => {
  const history = historyOf(() => [
    ...SOME(),
    // One that fired again after it resolved, and one resolved in the instant it fired.
    entry(iso(0), 'flapping', 'firing'),
    entry(iso(1), 'flapping', 'resolved'),
    entry(iso(3), 'flapping', 'firing'),
    entry(iso(2), 'instant', 'firing'),
    entry(iso(2), 'instant', 'resolved'),
  ]);

  it('tells the alerts whose latest entry is firing: what alerting takes back when it restarts', async () => {
    const firing = await history.firing();
    expect(firing.map((e) => [e.alertId, e.at, e.status])).toEqual([
      ['latency:beta', iso(2), 'firing'],
      ['flapping:acme', iso(3), 'firing'],
    ]);
    expect(firing[0]).toMatchObject({ ruleKind: 'error_rate', labels: { org: 'beta' }, notified: true, startedAt: iso(0) });
    expect(await history.firing(1)).toHaveLength(1);
  });
});
