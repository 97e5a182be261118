import type { ReportsRepository, UsageAggregate } from './reports.repository';
import { ReportsService } from './reports.service';

function row(model: string, currency: string, cost: string, requests: number): UsageAggregate {
  return { dimensions: [model], currency, requests, errors: 0, promptTokens: 10 * requests, completionTokens: 5 * requests, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, cost };
}

/** A repository that answers every usage query with the given rows. */
function reports(rows: UsageAggregate[]): ReportsService {
  const repository: ReportsRepository = {
    usage: async () => ({ source: 'events', rows }),
    experiment: async () => [],
    spend: async () => [],
  };
  return new ReportsService(repository, { sharedCostCenters: [], allocation: 'proportional', fixedShares: {} });
}

describe('ReportsService.usage', () => {
  const request = { fromMs: 0, toMs: 86_400_000, groupBy: ['model'], scope: undefined, filter: undefined };

  it('adds up the cost of rows in one currency exactly', async () => {
    const report = await reports([row('a', 'USD', '0.1', 2), row('b', 'USD', '0.2', 3)]).usage(request);
    expect(report.total).toMatchObject({ cost: '0.3', requests: 5, promptTokens: 50 });
    expect(report.costByCurrency).toEqual({ USD: '0.3' });
  });

  it('never adds costs in different currencies: the total has none, each currency has its own', async () => {
    const report = await reports([row('a', 'USD', '1.5', 2), row('b', 'EUR', '2.25', 1), row('c', 'USD', '0.5', 1)]).usage(request);
    expect(report.total).toMatchObject({ cost: '', requests: 4 });
    expect(report.costByCurrency).toEqual({ USD: '2', EUR: '2.25' });
  });
});
