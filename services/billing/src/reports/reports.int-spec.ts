import { randomBytes } from 'node:crypto';
import { credentials, Metadata } from '@grpc/grpc-js';
import { billingSchema, clickhouseSchema } from '@openrouter/config';
import { billingv1, usagev1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { callUnary, CHANNEL_OPTIONS, GrpcServerHandle } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { toOpenAIError } from '@openrouter/openai-wire';
import { createClickHouse, emptyUsageEvent, migrate, USAGE_MIGRATIONS, type ClickHouseTarget } from '@openrouter/usage';
import { ClickHouseUsageEventRepository } from '../usage/usage-event.repository';
import { billingGrpcBinding } from './billing.grpc.controller';
import { ClickHouseReportsRepository } from './reports.repository';
import { ReportsService } from './reports.service';

const MONTH = '2025-04';
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-haiku', 'claude-3-5-sonnet'];

function event(id: string, model: string): usagev1.UsageEvent {
  const e = emptyUsageEvent(id, Date.parse(`${MONTH}-07T10:00:00Z`));
  e.completedAtMs = e.receivedAtMs + 30;
  e.tenant = { orgId: 'acme', projectId: 'search', teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k1', endUser: '', tags: {} };
  e.servedModel = model;
  e.provider = 'openai';
  e.tokens = { prompt: 10, completion: 5, cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: false };
  e.cost = { amount: '0.25', currency: 'USD', priceVersion: 'v1' };
  e.status = usagev1.Status.STATUS_OK;
  e.httpStatus = 200;
  return e;
}

/** The error a call failed with, or undefined when it answered. */
async function failure(call: Promise<unknown>): Promise<GatewayError | undefined> {
  try {
    await call;
    return undefined;
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
}

describe('report size limit (chDB, gRPC)', () => {
  let store: ClickHouseTarget;
  let server: GrpcServerHandle;
  let client: billingv1.BillingServiceClient;
  // Four models in one org: one row per model is one over the limit.
  const billing = billingSchema.parse({ http: { port: 0 }, reports: { maxRows: 3 } });
  // As ingress's BillingClient calls billing.
  const bounds = { peer: 'billing service', timeoutMs: 10_000 };
  const usageReport = (r: billingv1.UsageReportRequest) => callUnary(client.usageReport.bind(client), r, new Metadata(), undefined, bounds);
  const invoice = (r: billingv1.InvoiceRequest) => callUnary(client.invoice.bind(client), r, new Metadata(), undefined, bounds);
  const chargeback = (r: billingv1.ChargebackRequest) => callUnary(client.chargeback.bind(client), r, new Metadata(), undefined, bounds);
  const focus = (r: billingv1.FocusExportRequest) => callUnary(client.focusExport.bind(client), r, new Metadata(), undefined, bounds);

  beforeAll(async () => {
    store = createClickHouse(clickhouseSchema.parse({ embedded: { path: ':memory:' }, database: `size_${randomBytes(6).toString('hex')}` }), '.');
    await migrate(store.client, store.database, USAGE_MIGRATIONS);
    const events = new ClickHouseUsageEventRepository(store.client, store.database, store.kind);
    await events.insertRows(MODELS.map((model, i) => events.encode(event(`e${i}`, model))));
    const service = new ReportsService(new ClickHouseReportsRepository(store.client, store.database), billing);
    server = await GrpcServerHandle.start('127.0.0.1', 0, [billingGrpcBinding(service, createLogger('test', 'silent'))]);
    client = new billingv1.BillingServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await server?.close(0);
    await store?.client.close();
  });

  it('answers a report over billing.reports.maxRows with a 400 report_too_large that says how to narrow it', async () => {
    const usage = { scope: undefined, fromMs: Date.parse(`${MONTH}-01T00:00:00Z`), toMs: Date.parse('2025-05-01T00:00:00Z'), groupBy: ['model'], filter: undefined };
    const error = await failure(usageReport(usage));
    expect(error).toMatchObject({ kind: 'bad_request', code: 'report_too_large' });
    const answer = toOpenAIError(error as GatewayError);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toEqual({
      type: 'invalid_request_error',
      code: 'report_too_large',
      param: null,
      message: 'The usage report has more than 3 rows, the most billing.reports.maxRows allows; narrow the period (`from`, `to`), group by fewer dimensions or filter.',
    });
  });

  it('refuses an oversized report from the raw events and from the rollup, and answers one within the limit', async () => {
    // An instant range reads the raw events; a whole month the rollup: both stop at the limit.
    const events = { scope: undefined, fromMs: Date.parse(`${MONTH}-07T09:00:00Z`), toMs: Date.parse(`${MONTH}-07T11:00:00Z`), groupBy: ['model'], filter: undefined };
    expect(await failure(usageReport(events))).toMatchObject({ code: 'report_too_large' });
    expect(await failure(focus({ scope: undefined, month: MONTH, orgId: '' }))).toMatchObject({ kind: 'bad_request', code: 'report_too_large', message: expect.stringContaining('FOCUS export') });
    expect(await failure(invoice({ scope: undefined, month: MONTH, orgId: 'acme' }))).toMatchObject({ code: 'report_too_large' });
    const within = await usageReport({ ...events, groupBy: ['provider', 'org'] });
    expect(within.rows).toHaveLength(1);
    expect(within.total).toMatchObject({ requests: 4, cost: '1' });
    const month = await chargeback({ scope: undefined, month: MONTH, orgId: '', allocation: billingv1.Allocation.ALLOCATION_UNSPECIFIED });
    expect(month.totals).toEqual({ USD: '1' });
  });
});

describe('cache hits over gRPC (chDB)', () => {
  let store: ClickHouseTarget;
  let server: GrpcServerHandle;
  let client: billingv1.BillingServiceClient;
  const bounds = { peer: 'billing service', timeoutMs: 10_000 };

  beforeAll(async () => {
    store = createClickHouse(clickhouseSchema.parse({ embedded: { path: ':memory:' }, database: `cache_grpc_${randomBytes(6).toString('hex')}` }), '.');
    await migrate(store.client, store.database, USAGE_MIGRATIONS);
    const events = new ClickHouseUsageEventRepository(store.client, store.database, store.kind);
    const hit = event('hit', 'gpt-4o');
    hit.cost = { amount: '0', currency: 'USD', priceVersion: 'v1' };
    hit.cacheHit = true;
    hit.cacheSavedCost = '0.250000000000000001';
    await events.insertRows([event('paid', 'gpt-4o'), hit].map((e) => events.encode(e)));
    const service = new ReportsService(new ClickHouseReportsRepository(store.client, store.database), billingSchema.parse({ http: { port: 0 } }));
    server = await GrpcServerHandle.start('127.0.0.1', 0, [billingGrpcBinding(service, createLogger('test', 'silent'))]);
    client = new billingv1.BillingServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await server?.close(0);
    await store?.client.close();
  });

  it('answers each row\'s and the total\'s cache hits and savings, as exact decimal text', async () => {
    // The whole month reads the rollup.
    const report = await callUnary(client.usageReport.bind(client), { scope: undefined, fromMs: Date.parse(`${MONTH}-01T00:00:00Z`), toMs: Date.parse('2025-05-01T00:00:00Z'), groupBy: ['model'], filter: undefined }, new Metadata(), undefined, bounds);
    expect(report.source).toBe('rollup');
    expect(report.rows).toEqual([{ dimensions: { model: 'gpt-4o' }, currency: 'USD', totals: expect.objectContaining({ requests: 2, cost: '0.25', cacheHits: 1, cacheSavedCost: '0.250000000000000001' }) }]);
    expect(report.total).toMatchObject({ requests: 2, cost: '0.25', cacheHits: 1, cacheSavedCost: '0.250000000000000001' });
    expect(report.cacheSavedCostByCurrency).toEqual({ USD: '0.250000000000000001' });
  });
});
