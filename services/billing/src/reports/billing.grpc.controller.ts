import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { billingv1 } from '@openrouter/contracts';
import { GatewayError, type ErrorKind } from '@openrouter/errors';
import { MAX_MESSAGE_BYTES, serveUnary, type GrpcServiceBinding } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import type { ReportsService } from './reports.service';

const CALLER_MISTAKES: ReadonlySet<ErrorKind> = new Set<ErrorKind>(['bad_request', 'not_found', 'permission_denied']);

/**
 * The largest report answered: what one gRPC message carries, less room for its framing. Rows are
 * bounded by `billing.reports.maxRows`, but their size by what clients named (apps, tags, end
 * users): a report within the rows can still be too large to send, and is refused as one too large.
 */
const MAX_REPORT_BYTES = MAX_MESSAGE_BYTES - 64 * 1024;

/**
 * gRPC transport only: each report RPC calls the service; failures map to gRPC status. A call the
 * client cancels, or whose deadline (`grpc.reportTimeoutMs`) passes, aborts its report: the query
 * it runs in ClickHouse is cancelled rather than left scanning for an answer nobody reads.
 */
export function billingGrpcBinding(reports: ReportsService, logger: Logger, maxBytes = MAX_REPORT_BYTES): GrpcServiceBinding {
  const unary =
    <Req, Res>(name: string, work: (request: Req, signal: AbortSignal) => Promise<Res>, type: { encode(message: Res): { finish(): Uint8Array } }) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      serveUnary(call, callback, async (signal) => {
        try {
          const response = await work(call.request, signal);
          const bytes = type.encode(response).finish().byteLength;
          if (bytes > maxBytes) throw tooLargeToSend(name, bytes, maxBytes);
          return response;
        } catch (error) {
          // A report asked for wrongly (bad filter, unknown group, too large) is the caller's mistake:
          // said in one line, as is one the caller gave up on. Anything else is billing's own
          // failure, logged with its stack.
          if (signal.aborted) logger.info({ rpc: name }, 'report cancelled: the caller left or its deadline passed');
          else if (error instanceof GatewayError && CALLER_MISTAKES.has(error.kind)) logger.info({ rpc: name, kind: error.kind, code: error.code }, 'report refused');
          else logger.warn({ err: error, rpc: name }, 'report failed');
          throw error;
        }
      });
    };
  const implementation: billingv1.BillingServiceServer = {
    usageReport: unary('UsageReport', (r: billingv1.UsageReportRequest, signal) => reports.usage(r, signal), billingv1.UsageReportResponse),
    invoice: unary('Invoice', (r: billingv1.InvoiceRequest, signal) => reports.invoice(r, signal), billingv1.InvoiceResponse),
    chargeback: unary('Chargeback', (r: billingv1.ChargebackRequest, signal) => reports.chargeback(r, signal), billingv1.ChargebackResponse),
    focusExport: unary('FocusExport', (r: billingv1.FocusExportRequest, signal) => reports.focus(r, signal), billingv1.FocusExportResponse),
    experimentReport: unary('ExperimentReport', (r: billingv1.ExperimentReportRequest, signal) => reports.experiment(r, signal), billingv1.ExperimentReportResponse),
  };
  return { definition: billingv1.BillingServiceService, implementation };
}

function tooLargeToSend(rpc: string, bytes: number, maxBytes: number): GatewayError {
  const mib = (n: number): string => (n / (1024 * 1024)).toFixed(1);
  return new GatewayError('bad_request', `The report (${rpc}) is ${mib(bytes)} MiB, more than the ${mib(maxBytes)} MiB one answer can carry; narrow it (a shorter period, fewer groups, a filter).`, { code: 'report_too_large' });
}
