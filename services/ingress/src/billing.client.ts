import { Metadata } from '@grpc/grpc-js';
import { billingv1 } from '@openrouter/contracts';
import { callUnary, type GrpcSecurity } from '@openrouter/grpc';

/** Billing's reports, over gRPC. */
export class BillingClient {
  private readonly client: billingv1.BillingServiceClient;

  /** `timeoutMs`: each report call's deadline (reports scan the usage store); `security`: the service token and TLS. */
  constructor(
    address: string,
    private readonly timeoutMs: number,
    security: GrpcSecurity,
  ) {
    this.client = security.client(billingv1.BillingServiceClient, address);
  }

  usage(request: billingv1.UsageReportRequest): Promise<billingv1.UsageReportResponse> {
    return callUnary(this.client.usageReport.bind(this.client), request, this.metadata(), undefined, this.bounds());
  }

  invoice(request: billingv1.InvoiceRequest): Promise<billingv1.InvoiceResponse> {
    return callUnary(this.client.invoice.bind(this.client), request, this.metadata(), undefined, this.bounds());
  }

  chargeback(request: billingv1.ChargebackRequest): Promise<billingv1.ChargebackResponse> {
    return callUnary(this.client.chargeback.bind(this.client), request, this.metadata(), undefined, this.bounds());
  }

  focus(request: billingv1.FocusExportRequest): Promise<billingv1.FocusExportResponse> {
    return callUnary(this.client.focusExport.bind(this.client), request, this.metadata(), undefined, this.bounds());
  }

  experiment(request: billingv1.ExperimentReportRequest): Promise<billingv1.ExperimentReportResponse> {
    return callUnary(this.client.experimentReport.bind(this.client), request, this.metadata(), undefined, this.bounds());
  }

  close(): void {
    this.client.close();
  }

  private bounds(): { peer: string; timeoutMs: number } {
    return { peer: 'billing service', timeoutMs: this.timeoutMs };
  }

  private metadata(): Metadata {
    return new Metadata();
  }
}
