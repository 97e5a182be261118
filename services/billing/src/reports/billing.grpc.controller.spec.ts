import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { billingv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { fromGrpcError } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { billingGrpcBinding } from './billing.grpc.controller';
import type { ReportsService } from './reports.service';

/** A server call as grpc-js hands one to a handler: its request, and the events it emits ('cancelled'). */
function serverCall<Req, Res>(request: Req): ServerUnaryCall<Req, Res> {
  return Object.assign(new EventEmitter(), { request }) as unknown as ServerUnaryCall<Req, Res>;
}

interface LogLine {
  level: number;
  msg: string;
  rpc?: string;
  kind?: string;
  err?: { stack?: string };
}

/** Calls the binding's UsageReport as grpc-js would, with `reports.usage` failing with `error`. */
async function failedUsageReport(error: unknown): Promise<{ lines: LogLine[]; code: number | undefined }> {
  const lines: LogLine[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString()) as LogLine), done()) });
  const reports = { usage: () => Promise.reject(error) } as unknown as ReportsService;
  const binding = billingGrpcBinding(reports, createLogger('billing-spec', 'info', sink));
  const implementation = binding.implementation as billingv1.BillingServiceServer;
  const code = await new Promise<number | undefined>((resolve) => {
    const callback: sendUnaryData<billingv1.UsageReportResponse> = (err) => resolve(err?.code);
    implementation.usageReport(serverCall({} as billingv1.UsageReportRequest), callback);
  });
  return { lines, code };
}

/** Calls the binding's FocusExport as grpc-js would, answered with `rows` rows, under a bound of `maxBytes`. */
async function focusExport(rows: number, maxBytes: number): Promise<{ error: (Error & { code?: number; metadata?: { get(key: string): unknown[] } }) | null; rows: number }> {
  const row = { ...billingv1.FocusRow.fromPartial({}), billedCost: '0.000123', subAccountId: 'x'.repeat(200) };
  const reports = { focus: () => Promise.resolve({ rows: Array.from({ length: rows }, () => row), billingPeriodStartMs: 0, billingPeriodEndMs: 0 }) } as unknown as ReportsService;
  const implementation = billingGrpcBinding(reports, createLogger('billing-spec', 'silent'), maxBytes).implementation as billingv1.BillingServiceServer;
  return new Promise((resolve) => {
    const callback: sendUnaryData<billingv1.FocusExportResponse> = (error, answer) => resolve({ error: error as never, rows: answer?.rows.length ?? 0 });
    implementation.focusExport(serverCall({} as billingv1.FocusExportRequest), callback);
  });
}

describe('billing gRPC binding', () => {
  it('refuses a report within maxRows whose answer is larger than one message carries, as too large (not a failure of billing)', async () => {
    // About 220 bytes a row: 100 rows are some 22 kB.
    expect(await focusExport(100, 100_000)).toEqual({ error: null, rows: 100 });
    const { error } = await focusExport(1_000, 100_000);
    expect(error?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(fromGrpcError(error)).toMatchObject({ kind: 'bad_request', code: 'report_too_large', message: expect.stringContaining('narrow it') });
  });

  it('logs a report the caller asked for wrongly in one line, without a stack', async () => {
    const { lines, code } = await failedUsageReport(new GatewayError('bad_request', 'group_by "nope" is not a dimension.', { param: 'group_by' }));
    expect(code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(lines).toEqual([expect.objectContaining({ level: 30, msg: 'report refused', rpc: 'UsageReport', kind: 'bad_request' })]);
    expect(lines[0]?.err).toBeUndefined();
  });

  it('aborts the report of a call its client cancels (or whose deadline passes), so its query stops, and logs it in one line', async () => {
    const lines: LogLine[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString()) as LogLine), done()) });
    let given: AbortSignal | undefined;
    // The store's query ends when its signal is aborted, as @clickhouse/client's does.
    const usage = (_request: billingv1.UsageReportRequest, signal?: AbortSignal): Promise<never> =>
      new Promise((_resolve, reject) => {
        given = signal;
        signal?.addEventListener('abort', () => reject(new Error('The user aborted a request.')), { once: true });
      });
    const implementation = billingGrpcBinding({ usage } as unknown as ReportsService, createLogger('billing-spec', 'info', sink)).implementation as billingv1.BillingServiceServer;
    const call = serverCall<billingv1.UsageReportRequest, billingv1.UsageReportResponse>({} as billingv1.UsageReportRequest);
    const answered = new Promise<number | undefined>((resolve) => implementation.usageReport(call, (err) => resolve(err?.code)));
    expect(given?.aborted).toBe(false);
    call.emit('cancelled');
    await answered;
    expect(given?.aborted).toBe(true);
    expect(lines).toEqual([expect.objectContaining({ level: 30, msg: 'report cancelled: the caller left or its deadline passed', rpc: 'UsageReport' })]);
  });

  it('logs billing failing a report as a warning, with its stack', async () => {
    const { lines, code } = await failedUsageReport(new Error('ClickHouse went away'));
    expect(code).toBe(GrpcStatus.INTERNAL);
    expect(lines).toEqual([expect.objectContaining({ level: 40, msg: 'report failed', rpc: 'UsageReport' })]);
    expect(lines[0]?.err?.stack).toContain('ClickHouse went away');
  });
});
