import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { billingv1 } from '@openrouter/contracts';
import { GatewayError, type ErrorKind } from '@openrouter/errors';
import { toGrpcStatus, type GrpcServiceBinding } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import type { ReportsService } from './reports.service';

const CALLER_MISTAKES: ReadonlySet<ErrorKind> = new Set<ErrorKind>(['bad_request', 'not_found', 'permission_denied']);

/** gRPC transport only: each report RPC calls the service; failures map to gRPC status. */
export function billingGrpcBinding(reports: ReportsService, logger: Logger): GrpcServiceBinding {
  const unary =
    <Req, Res>(name: string, work: (request: Req) => Promise<Res>) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      work(call.request).then(
        (response) => callback(null, response),
        (error: unknown) => {
          // A report asked for wrongly (bad filter, unknown group) is the caller's mistake: said in one
          // line. Anything else is billing's own failure, logged with its stack.
          if (error instanceof GatewayError && CALLER_MISTAKES.has(error.kind)) logger.info({ rpc: name, kind: error.kind, code: error.code }, 'report refused');
          else logger.warn({ err: error, rpc: name }, 'report failed');
          callback(toGrpcStatus(error));
        },
      );
    };
  const implementation: billingv1.BillingServiceServer = {
    usageReport: unary('UsageReport', (r: billingv1.UsageReportRequest) => reports.usage(r)),
    invoice: unary('Invoice', (r: billingv1.InvoiceRequest) => reports.invoice(r)),
    chargeback: unary('Chargeback', (r: billingv1.ChargebackRequest) => reports.chargeback(r)),
    focusExport: unary('FocusExport', (r: billingv1.FocusExportRequest) => reports.focus(r)),
    experimentReport: unary('ExperimentReport', (r: billingv1.ExperimentReportRequest) => reports.experiment(r)),
  };
  return { definition: billingv1.BillingServiceService, implementation };
}
