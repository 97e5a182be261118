import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { billingv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { callUnary, ERROR_TRAILER, type GrpcSecurity } from '@openrouter/grpc';

/**
 * Why a peer service could not be reached, for the log only: it names the address dialled, which
 * the client's answer never does.
 */
export class PeerUnreachableError extends Error {
  constructor(
    readonly peer: string,
    readonly address: string,
    cause: unknown,
  ) {
    super(`${peer} at ${address} is unreachable: ${(cause as { details?: unknown }).details ?? String(cause)}`, { cause });
    this.name = 'PeerUnreachableError';
  }
}

/** Billing's reports, over gRPC. */
export class BillingClient {
  private readonly client: billingv1.BillingServiceClient;

  /** `timeoutMs`: each report call's deadline (reports scan the usage store); `security`: the service token and TLS. */
  constructor(
    private readonly address: string,
    private readonly timeoutMs: number,
    security: GrpcSecurity,
  ) {
    this.client = security.client(billingv1.BillingServiceClient, address);
  }

  usage(request: billingv1.UsageReportRequest): Promise<billingv1.UsageReportResponse> {
    return this.call(callUnary(this.client.usageReport.bind(this.client), request, this.metadata(), undefined, this.bounds()));
  }

  invoice(request: billingv1.InvoiceRequest): Promise<billingv1.InvoiceResponse> {
    return this.call(callUnary(this.client.invoice.bind(this.client), request, this.metadata(), undefined, this.bounds()));
  }

  chargeback(request: billingv1.ChargebackRequest): Promise<billingv1.ChargebackResponse> {
    return this.call(callUnary(this.client.chargeback.bind(this.client), request, this.metadata(), undefined, this.bounds()));
  }

  focus(request: billingv1.FocusExportRequest): Promise<billingv1.FocusExportResponse> {
    return this.call(callUnary(this.client.focusExport.bind(this.client), request, this.metadata(), undefined, this.bounds()));
  }

  experiment(request: billingv1.ExperimentReportRequest): Promise<billingv1.ExperimentReportResponse> {
    return this.call(callUnary(this.client.experimentReport.bind(this.client), request, this.metadata(), undefined, this.bounds()));
  }

  /** Whether billing's channel connects within the deadline (for the admin API's health; the ingress's own readiness does not depend on it). */
  isReachable(timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => this.client.waitForReady(Date.now() + timeoutMs, (error) => resolve(!error)));
  }

  close(): void {
    this.client.close();
  }

  /**
   * A call that never reached billing (down, or not listening yet) fails naming the service and
   * what it serves, rather than "an internal gateway service"; the address it dialled goes to the
   * log with the cause, never to the client. Errors billing answered with are its own, unchanged.
   */
  private async call<T>(pending: Promise<T>): Promise<T> {
    try {
      return await pending;
    } catch (error) {
      const cause = error instanceof GatewayError ? (error.cause as Partial<ServiceError> | undefined) : undefined;
      if (error instanceof GatewayError && error.kind === 'unavailable' && cause?.code === status.UNAVAILABLE && !cause.metadata?.get(ERROR_TRAILER).length) {
        throw new GatewayError('unavailable', 'The billing service is unavailable, so reports (usage, invoices, chargeback, exports) cannot be served right now. Please retry later.', {
          code: 'billing_unavailable',
          cause: new PeerUnreachableError('billing', this.address, cause),
        });
      }
      throw error;
    }
  }

  private bounds(): { peer: string; timeoutMs: number } {
    return { peer: 'billing service', timeoutMs: this.timeoutMs };
  }

  private metadata(): Metadata {
    return new Metadata();
  }
}
