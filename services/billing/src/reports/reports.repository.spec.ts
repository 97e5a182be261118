import type { ClickHouseClient } from '@openrouter/usage';
import { ClickHouseReportsRepository } from './reports.repository';
import { ReportsService } from './reports.service';

interface SentQuery {
  query: string;
  abort_signal?: AbortSignal;
}

/** A ClickHouse client that answers every query with no rows, and the queries it was sent. */
function recordingClient(): { client: ClickHouseClient; sent: SentQuery[] } {
  const sent: SentQuery[] = [];
  const client = {
    query: async (params: SentQuery) => {
      sent.push(params);
      return { json: async () => [] };
    },
  } as unknown as ClickHouseClient;
  return { client, sent };
}

const DAY_MS = 86_400_000;

describe('ClickHouseReportsRepository', () => {
  it("hands a report's abort signal to the query, so a report its caller left stops in ClickHouse (or chDB)", async () => {
    const { client, sent } = recordingClient();
    const repository = new ClickHouseReportsRepository(client, 'openrouter');
    const usage = new AbortController();
    const experiment = new AbortController();
    await repository.usage({ fromMs: 0, toMs: DAY_MS, groupBy: [], filters: [] }, usage.signal);
    await repository.experiment('exp-1', 0, DAY_MS, [], experiment.signal);
    expect(sent.map((q) => q.abort_signal)).toEqual([usage.signal, experiment.signal]);
  });

  it('sends no signal where none is given (the budget reconciliation reads spend on its own schedule)', async () => {
    const { client, sent } = recordingClient();
    await new ClickHouseReportsRepository(client, 'openrouter').spend(0, DAY_MS, []);
    expect(sent).toHaveLength(1);
    expect(sent[0]).not.toHaveProperty('abort_signal');
  });

  it('bounds each query it runs for reports by the report call, in a SETTINGS clause of the query, beside the row limit', async () => {
    const { client, sent } = recordingClient();
    const repository = new ClickHouseReportsRepository(client, 'openrouter', { maxExecutionMs: 60_000 });
    await repository.usage({ fromMs: 0, toMs: DAY_MS, groupBy: [], filters: [], limit: 10 });
    await repository.usage({ fromMs: 0, toMs: DAY_MS, groupBy: [], filters: [] });
    await repository.experiment('exp-1', 0, DAY_MS, []);
    expect(sent.map((q) => q.query.split('\n').at(-1))).toEqual([
      "SETTINGS max_execution_time = 60, max_rows_to_group_by = 10, group_by_overflow_mode = 'throw'",
      'SETTINGS max_execution_time = 60',
      'SETTINGS max_execution_time = 60',
    ]);
    // Without a bound, as the reconciliations' repository: only the row limit's settings.
    const plain = recordingClient();
    await new ClickHouseReportsRepository(plain.client, 'openrouter').usage({ fromMs: 0, toMs: DAY_MS, groupBy: [], filters: [], limit: 10 });
    await new ClickHouseReportsRepository(plain.client, 'openrouter').usage({ fromMs: 0, toMs: DAY_MS, groupBy: [], filters: [] });
    expect(plain.sent.map((q) => q.query.split('\n').at(-1))).toEqual(["SETTINGS max_rows_to_group_by = 10, group_by_overflow_mode = 'throw'", 'ORDER BY d, currency']);
  });
});

describe('ReportsService', () => {
  it('passes the signal of every report down to its query', async () => {
    const { client, sent } = recordingClient();
    const service = new ReportsService(new ClickHouseReportsRepository(client, 'openrouter'), { chargeback: { sharedCostCenters: [], allocation: 'proportional', fixedShares: {} }, reports: { maxRows: 10 } });
    const signal = new AbortController().signal;
    await service.usage({ fromMs: 0, toMs: DAY_MS, groupBy: [], scope: undefined, filter: undefined }, signal);
    await service.invoice({ orgId: 'acme', month: '2025-01', scope: undefined }, signal);
    await service.chargeback({ month: '2025-01', orgId: '', allocation: 0, scope: undefined }, signal);
    await service.focus({ month: '2025-01', orgId: '', scope: undefined }, signal);
    await service.experiment({ experiment: 'exp-1', fromMs: 0, toMs: DAY_MS, scope: undefined }, signal);
    expect(sent).toHaveLength(5);
    expect(sent.every((q) => q.abort_signal === signal)).toBe(true);
  });
});
