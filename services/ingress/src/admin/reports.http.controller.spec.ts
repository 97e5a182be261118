import type { FastifyReply, FastifyRequest } from 'fastify';
import { billingv1 } from '@openrouter/contracts';
import type { BillingClient } from '../billing.client';
import type { AdminPrincipal } from './admin-auth';
import { ReportsHttpController } from './reports.http.controller';

const DAY_MS = 86_400_000;

/** A billing client that answers every usage report with nothing, and the requests it was sent. */
function billing(): { client: BillingClient; usage: billingv1.UsageReportRequest[] } {
  const usage: billingv1.UsageReportRequest[] = [];
  const client = {
    usage: async (request: billingv1.UsageReportRequest): Promise<billingv1.UsageReportResponse> => {
      usage.push(request);
      return { rows: [], total: undefined, source: 'rollup', costByCurrency: {} };
    },
  } as unknown as BillingClient;
  return { client, usage };
}

const admin: AdminPrincipal = { id: 'admin', role: 'admin' };
const request = { admin } as unknown as FastifyRequest;
const reply = {} as FastifyReply;

describe('ReportsHttpController.usage', () => {
  it('reads a range reaching past the last instant usage can be stored at in whole days, so the daily rollup answers it like any whole-day range', async () => {
    const { client, usage } = billing();
    const report = await new ReportsHttpController(client).usage(request, { from: '2025-01-01', to: '2100-01-01' }, reply);
    // The answer says the range it covers: nothing can be stored from 2056-02-19T06:28:16Z on.
    expect(report).toMatchObject({ from: '2025-01-01T00:00:00.000Z', to: '2056-02-19T06:28:16.000Z' });
    // Billing reads to the end of that day: the same events, and whole days, which the rollup keeps
    // for good (raw events expire after usage.clickhouse.retentionDays).
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ fromMs: Date.parse('2025-01-01T00:00:00Z'), toMs: Date.parse('2056-02-20T00:00:00Z') });
    expect((usage[0]?.toMs ?? 1) % DAY_MS).toBe(0);
  });

  it('reads any other range as it is', async () => {
    const { client, usage } = billing();
    await new ReportsHttpController(client).usage(request, { from: '2025-01-01', to: '2025-01-31T12:00:00+01:00' }, reply);
    expect(usage[0]).toMatchObject({ fromMs: Date.parse('2025-01-01T00:00:00Z'), toMs: Date.parse('2025-01-31T11:00:00Z') });
  });
});
