import type { FastifyReply, FastifyRequest } from 'fastify';
import { billingv1 } from '@openrouter/contracts';
import type { BillingClient } from '../billing.client';
import type { AdminPrincipal } from './admin-auth';
import { ReportsHttpController } from './reports.http.controller';

const DAY_MS = 86_400_000;

/**
 * A billing client that answers every usage report with nothing and every experiment report with
 * `arms`, read from the request's `from` or, without one, from `defaultFrom` (billing's default
 * start), and the requests it was sent.
 */
function billing(
  arms: billingv1.ExperimentArm[] = [],
  defaultFrom = 0,
  answer: billingv1.UsageReportResponse = { rows: [], total: undefined, source: 'rollup', costByCurrency: {}, cacheSavedCostByCurrency: {} },
): { client: BillingClient; usage: billingv1.UsageReportRequest[]; experiment: billingv1.ExperimentReportRequest[] } {
  const usage: billingv1.UsageReportRequest[] = [];
  const experiment: billingv1.ExperimentReportRequest[] = [];
  const client = {
    usage: async (request: billingv1.UsageReportRequest): Promise<billingv1.UsageReportResponse> => {
      usage.push(request);
      return answer;
    },
    experiment: async (request: billingv1.ExperimentReportRequest): Promise<billingv1.ExperimentReportResponse> => {
      experiment.push(request);
      return { experiment: request.experiment, fromMs: request.fromMs ?? defaultFrom, arms };
    },
  } as unknown as BillingClient;
  return { client, usage, experiment };
}

const admin: AdminPrincipal = { id: 'admin', role: 'admin' };
const request = { admin } as unknown as FastifyRequest;
const reply = {} as FastifyReply;

/** A reply that keeps the headers set on it. */
function recordingReply(): { reply: FastifyReply; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  const r = {
    header(name: string, value: string) {
      headers[name] = value;
      return r;
    },
  };
  return { reply: r as unknown as FastifyReply, headers };
}

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

describe('cache hits in the reports', () => {
  const totals = (requests: number, cost: string, cacheHits: number, cacheSavedCost: string): billingv1.UsageTotals => ({
    requests,
    errors: 0,
    promptTokens: 10,
    completionTokens: 5,
    cachedReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    cost,
    cacheHits,
    cacheSavedCost,
  });
  const answer = (rows: billingv1.UsageRow[], total: billingv1.UsageTotals, costByCurrency: Record<string, string>, cacheSavedCostByCurrency: Record<string, string>): billingv1.UsageReportResponse => ({
    rows,
    total,
    source: 'rollup',
    costByCurrency,
    cacheSavedCostByCurrency,
  });

  it('gives every usage row and the total its cache hits and the spend they avoided, in JSON and CSV', async () => {
    const report = answer(
      [
        { dimensions: { model: 'gpt-4o' }, currency: 'USD', totals: totals(3, '0.1', 2, '0.200000000000000001') },
        { dimensions: { model: 'gpt-4o-mini' }, currency: 'USD', totals: totals(1, '0.05', 0, '0') },
      ],
      totals(4, '0.15', 2, '0.200000000000000001'),
      { USD: '0.15' },
      { USD: '0.200000000000000001' },
    );
    const { client } = billing([], 0, report);
    const json = (await new ReportsHttpController(client).usage(request, { from: '2025-01-01', to: '2025-02-01', group_by: 'model' }, reply)) as { data: unknown[]; total: unknown };
    expect(json.data).toEqual([
      expect.objectContaining({ model: 'gpt-4o', requests: 3, cost: '0.1', cache_hits: 2, cache_saved_cost: '0.200000000000000001' }),
      expect.objectContaining({ model: 'gpt-4o-mini', requests: 1, cost: '0.05', cache_hits: 0, cache_saved_cost: '0' }),
    ]);
    expect(json.total).toMatchObject({ requests: 4, cost: '0.15', cache_hits: 2, cache_saved_cost: '0.200000000000000001', cache_saved_cost_by_currency: { USD: '0.200000000000000001' } });
    const { reply: csvReply } = recordingReply();
    const text = (await new ReportsHttpController(client).usage(request, { from: '2025-01-01', to: '2025-02-01', group_by: 'model', format: 'csv' }, csvReply)) as string;
    expect(text.split('\r\n')).toEqual([
      'model,currency,requests,errors,prompt_tokens,completion_tokens,cached_read_tokens,cache_write_tokens,reasoning_tokens,cost,cache_hits,cache_saved_cost',
      'gpt-4o,USD,3,0,10,5,0,0,0,0.1,2,0.200000000000000001',
      'gpt-4o-mini,USD,1,0,10,5,0,0,0,0.05,0,0',
      '',
    ]);
  });

  it('gives no total saving for rows in several currencies, each currency its own', async () => {
    const total = { ...totals(2, '', 2, ''), cost: '', cacheSavedCost: '' };
    const { client } = billing([], 0, answer([], total, { USD: '1', EUR: '2' }, { USD: '0.5', EUR: '3' }));
    const json = (await new ReportsHttpController(client).usage(request, { from: '2025-01-01', to: '2025-02-01' }, reply)) as { total: unknown };
    expect(json.total).toMatchObject({ cost: null, cache_hits: 2, cache_saved_cost: null, cache_saved_cost_by_currency: { USD: '0.5', EUR: '3' } });
  });

  it('lists an invoice line\'s and a chargeback line\'s cache hits and savings, in JSON and CSV, the billed amounts as they are', async () => {
    const client = {
      invoice: async (r: billingv1.InvoiceRequest): Promise<billingv1.InvoiceResponse> => ({
        orgId: r.orgId,
        month: r.month,
        periodStartMs: Date.parse('2025-06-01T00:00:00Z'),
        periodEndMs: Date.parse('2025-07-01T00:00:00Z'),
        lines: [{ model: 'gpt-4o', currency: 'USD', requests: 4, promptTokens: 40, completionTokens: 20, cachedReadTokens: 0, cacheWriteTokens: 0, amount: '1.5', cacheHits: 2, cacheSavedCost: '0.75' }],
        totals: { USD: '1.5' },
      }),
      chargeback: async (r: billingv1.ChargebackRequest): Promise<billingv1.ChargebackResponse> => ({
        month: r.month,
        allocation: billingv1.Allocation.ALLOCATION_PROPORTIONAL,
        lines: [{ orgId: 'acme', costCenter: 'cc-ads', currency: 'USD', direct: '1', allocated: '0.5', total: '1.5', requests: 3, cacheHits: 1, cacheSavedCost: '0.25' }],
        unallocated: [],
        totals: { USD: '1.5' },
      }),
    } as unknown as BillingClient;
    const controller = new ReportsHttpController(client);
    const invoice = (await controller.invoice(request, { org: 'acme', month: '2025-06' }, {}, reply)) as { lines: unknown[]; totals: unknown };
    expect(invoice.lines).toEqual([expect.objectContaining({ requests: 4, amount: '1.5', cache_hits: 2, cache_saved_cost: '0.75' })]);
    expect(invoice.totals).toEqual({ USD: '1.5' });
    const invoiceCsv = (await controller.invoice(request, { org: 'acme', month: '2025-06' }, { format: 'csv' }, recordingReply().reply)) as string;
    expect(invoiceCsv.split('\r\n').slice(0, 2)).toEqual(['model,currency,requests,prompt_tokens,completion_tokens,cached_read_tokens,cache_write_tokens,amount,cache_hits,cache_saved_cost', 'gpt-4o,USD,4,40,20,0,0,1.5,2,0.75']);
    const chargeback = (await controller.chargeback(request, { month: '2025-06' }, reply)) as { lines: unknown[] };
    expect(chargeback.lines).toEqual([expect.objectContaining({ cost_center: 'cc-ads', total: '1.5', requests: 3, cache_hits: 1, cache_saved_cost: '0.25' })]);
    const chargebackCsv = (await controller.chargeback(request, { month: '2025-06', format: 'csv' }, recordingReply().reply)) as string;
    expect(chargebackCsv.split('\r\n').slice(0, 2)).toEqual(['org,cost_center,currency,direct,allocated,total,requests,cache_hits,cache_saved_cost', 'acme,cc-ads,USD,1,0.5,1.5,3,1,0.25']);
  });
});

describe('a report given only `to`', () => {
  it('reads a usage report from the start of the month `to` ends in, when that is before this month', async () => {
    const { client, usage } = billing();
    const report = await new ReportsHttpController(client).usage(request, { to: '2025-03-15T12:00:00Z' }, reply);
    expect(usage[0]).toMatchObject({ fromMs: Date.parse('2025-03-01T00:00:00Z'), toMs: Date.parse('2025-03-15T12:00:00Z') });
    expect(report).toMatchObject({ from: '2025-03-01T00:00:00.000Z', to: '2025-03-15T12:00:00.000Z' });
    // A `to` at midnight of the 1st ends the month before: that month is read, not an empty range.
    await new ReportsHttpController(client).usage(request, { to: '2025-06-01' }, reply);
    expect(usage[1]).toMatchObject({ fromMs: Date.parse('2025-05-01T00:00:00Z'), toMs: Date.parse('2025-06-01T00:00:00Z') });
  });

  it('still reads a usage report from the start of this month when `to` is in it or later', async () => {
    const { client, usage } = billing();
    const now = new Date();
    const thisMonth = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    await new ReportsHttpController(client).usage(request, { to: '2050-01-01' }, reply);
    expect(usage[0]).toMatchObject({ fromMs: thisMonth, toMs: Date.parse('2050-01-01T00:00:00Z') });
  });

  it('leaves an experiment report\'s start to billing, which keeps to the raw events\' retention, and answers the start it read from', async () => {
    // As billing answers when its retention is shorter than the 30 days before `to`.
    const { client, experiment } = billing([], Date.parse('2025-03-08T00:00:00Z'));
    const report = await new ReportsHttpController(client).experiment(request, 'exp-1', { to: '2025-03-15' }, reply);
    expect(experiment).toHaveLength(1);
    expect(experiment[0]).toMatchObject({ experiment: 'exp-1', toMs: Date.parse('2025-03-15T00:00:00Z') });
    expect(experiment[0]?.fromMs).toBeUndefined();
    expect(report).toMatchObject({ from: '2025-03-08T00:00:00.000Z', to: '2025-03-15T00:00:00.000Z' });
    // A `from` the caller gives is sent as it is.
    await new ReportsHttpController(client).experiment(request, 'exp-1', { from: '2025-01-01', to: '2025-03-15' }, reply);
    expect(experiment[1]).toMatchObject({ fromMs: Date.parse('2025-01-01T00:00:00Z'), toMs: Date.parse('2025-03-15T00:00:00Z') });
  });

  it('still refuses a `to` before an explicit `from`, naming both', async () => {
    const { client, usage } = billing();
    const error: unknown = await new ReportsHttpController(client).usage(request, { from: '2025-03-02', to: '2025-03-01' }, reply).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'bad_request', param: 'to', code: 'invalid_value', message: 'Invalid to: must be after from.' });
    expect(usage).toEqual([]);
  });
});

describe('ReportsHttpController.experiment', () => {
  const arm = (name: string, costs: billingv1.ExperimentArmCost[]): billingv1.ExperimentArm => {
    const only = costs.length === 1 ? costs[0] : undefined;
    return {
      arm: name,
      requests: costs.reduce((n, c) => n + c.requests, 0),
      errors: 1,
      errorRate: '0.2',
      latencyP50Ms: 100,
      latencyP95Ms: 300,
      ttftP50Ms: 40,
      ttftP95Ms: 90,
      promptTokensPerRequest: '10',
      completionTokensPerRequest: '5',
      cost: only?.cost ?? '',
      costPerRequest: only?.costPerRequest ?? '',
      currency: only?.currency ?? '',
      costs,
    };
  };
  const arms = [
    arm('control', [
      { currency: 'EUR', requests: 2, cost: '0.2', costPerRequest: '0.1' },
      { currency: 'USD', requests: 3, cost: '0.300000000000000001', costPerRequest: '0.1' },
    ]),
    arm('treatment', [{ currency: 'USD', requests: 2, cost: '0.8', costPerRequest: '0.4' }]),
  ];

  it('answers one entry per arm, with its cost per currency, and a single cost only for an arm in one currency', async () => {
    const { client } = billing(arms);
    const report = (await new ReportsHttpController(client).experiment(request, 'exp-1', { from: '2025-04-01', to: '2025-05-01' }, reply)) as { arms: Array<Record<string, unknown>> };
    expect(report.arms).toHaveLength(2);
    expect(report.arms[0]).toMatchObject({
      arm: 'control',
      requests: 5,
      currency: null,
      cost: null,
      cost_per_request: null,
      cost_by_currency: { EUR: { requests: 2, cost: '0.2', cost_per_request: '0.1' }, USD: { requests: 3, cost: '0.300000000000000001', cost_per_request: '0.1' } },
    });
    expect(report.arms[1]).toMatchObject({ arm: 'treatment', requests: 2, currency: 'USD', cost: '0.8', cost_per_request: '0.4', cost_by_currency: { USD: { requests: 2, cost: '0.8', cost_per_request: '0.4' } } });
  });

  it('writes a CSV line per arm and currency, the arm\'s figures on each and the money of that currency', async () => {
    const { client } = billing(arms);
    const { reply: csvReply, headers } = recordingReply();
    const text = (await new ReportsHttpController(client).experiment(request, 'exp-1', { from: '2025-04-01', to: '2025-05-01', format: 'csv' }, csvReply)) as string;
    expect(headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(text.split('\r\n')).toEqual([
      'arm,currency,requests,errors,error_rate,latency_p50_ms,latency_p95_ms,ttft_p50_ms,ttft_p95_ms,prompt_tokens_per_request,completion_tokens_per_request,cost,cost_per_request,currency_requests',
      'control,EUR,5,1,0.2,100,300,40,90,10,5,0.2,0.1,2',
      'control,USD,5,1,0.2,100,300,40,90,10,5,0.300000000000000001,0.1,3',
      'treatment,USD,2,1,0.2,100,300,40,90,10,5,0.8,0.4,2',
      '',
    ]);
  });

  it('writes an arm with no priced currency on one CSV line of its own, its cost cells empty', async () => {
    const { client } = billing([{ ...arm('unpriced', []), requests: 3 }, ...arms]);
    const { reply: csvReply } = recordingReply();
    const text = (await new ReportsHttpController(client).experiment(request, 'exp-1', { from: '2025-04-01', to: '2025-05-01', format: 'csv' }, csvReply)) as string;
    expect(text.split('\r\n').slice(1)).toEqual([
      'unpriced,,3,1,0.2,100,300,40,90,10,5,,,',
      'control,EUR,5,1,0.2,100,300,40,90,10,5,0.2,0.1,2',
      'control,USD,5,1,0.2,100,300,40,90,10,5,0.300000000000000001,0.1,3',
      'treatment,USD,2,1,0.2,100,300,40,90,10,5,0.8,0.4,2',
      '',
    ]);
    const report = (await new ReportsHttpController(client).experiment(request, 'exp-1', { from: '2025-04-01', to: '2025-05-01' }, reply)) as { arms: Array<Record<string, unknown>> };
    expect(report.arms[0]).toMatchObject({ arm: 'unpriced', requests: 3, currency: null, cost: null, cost_per_request: null, cost_by_currency: {} });
  });
});
