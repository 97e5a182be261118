import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { Writable } from 'node:stream';
import type { billingv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { billingGrpcBinding } from './billing.grpc.controller';
import type { ReportsService } from './reports.service';

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
    implementation.usageReport({ request: {} } as ServerUnaryCall<billingv1.UsageReportRequest, billingv1.UsageReportResponse>, callback);
  });
  return { lines, code };
}

describe('billing gRPC binding', () => {
  it('logs a report the caller asked for wrongly in one line, without a stack', async () => {
    const { lines, code } = await failedUsageReport(new GatewayError('bad_request', 'group_by "nope" is not a dimension.', { param: 'group_by' }));
    expect(code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(lines).toEqual([expect.objectContaining({ level: 30, msg: 'report refused', rpc: 'UsageReport', kind: 'bad_request' })]);
    expect(lines[0]?.err).toBeUndefined();
  });

  it('logs billing failing a report as a warning, with its stack', async () => {
    const { lines, code } = await failedUsageReport(new Error('ClickHouse went away'));
    expect(code).toBe(GrpcStatus.INTERNAL);
    expect(lines).toEqual([expect.objectContaining({ level: 40, msg: 'report failed', rpc: 'UsageReport' })]);
    expect(lines[0]?.err?.stack).toContain('ClickHouse went away');
  });
});
