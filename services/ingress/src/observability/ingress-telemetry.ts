import type { GatewayConfig } from '@openrouter/config';
import { usagev1, type routerv1 } from '@openrouter/contracts';
import { ClickHouseAlertHistory, HttpMetrics, IngressMetrics, UsageProducerMetrics, type AlertHistoryStore, type Logger, type Telemetry } from '@openrouter/observability';
import type { RespondedExchange } from '@openrouter/service-runtime';
import { createClickHouse, type ClickHouseTarget, type PublishOptions, type UsagePublisher } from '@openrouter/usage';

const ENDPOINTS: Record<usagev1.Operation, string> = {
  [usagev1.Operation.OPERATION_CHAT]: '/v1/chat/completions',
  [usagev1.Operation.OPERATION_COMPLETION]: '/v1/completions',
  [usagev1.Operation.OPERATION_EMBEDDING]: '/v1/embeddings',
  [usagev1.Operation.OPERATION_MODERATION]: '/v1/moderations',
  [usagev1.Operation.OPERATION_IMAGE]: '/v1/images/generations',
  [usagev1.Operation.OPERATION_TRANSCRIPTION]: '/v1/audio/transcriptions',
  [usagev1.Operation.OPERATION_TRANSLATION]: '/v1/audio/translations',
  [usagev1.Operation.OPERATION_SPEECH]: '/v1/audio/speech',
  [usagev1.Operation.OPERATION_UNSPECIFIED]: 'unknown',
  [usagev1.Operation.UNRECOGNIZED]: 'unknown',
};

const OUTCOMES: Record<usagev1.Status, 'ok' | 'error' | 'cancelled'> = {
  [usagev1.Status.STATUS_OK]: 'ok',
  [usagev1.Status.STATUS_ERROR]: 'error',
  [usagev1.Status.STATUS_CANCELLED]: 'cancelled',
  [usagev1.Status.STATUS_UNSPECIFIED]: 'error',
  [usagev1.Status.UNRECOGNIZED]: 'error',
};

/**
 * The edge's metrics and access log: every metered request (from its usage event and routing
 * decision) and every other response (refused before metering). Log lines carry the request id,
 * trace id and tenant ids — never bodies or secrets; `debugSizes` adds body sizes.
 */
export class IngressTelemetry {
  readonly http: HttpMetrics;
  readonly api: IngressMetrics;

  constructor(
    readonly telemetry: Telemetry,
    private readonly logger: Logger,
    private readonly debugSizes: boolean,
  ) {
    this.http = new HttpMetrics(telemetry.registry);
    this.api = new IngressMetrics(telemetry.registry);
  }

  /** Told by the usage recorder when a metered request ends, with the endpoint it came through. */
  readonly metered = (event: usagev1.UsageEvent, decision: routerv1.RouteDecision | undefined, endpoint?: string): void => {
    const attempts = decision?.attemptDetails ?? [];
    this.api.metered({
      endpoint: endpoint ?? ENDPOINTS[event.operation],
      model: event.servedModel,
      // A hit is served by no provider: counted under `cache`, so per-provider latency and token panels stay the providers'.
      provider: event.cacheHit ? 'cache' : event.provider,
      httpStatus: event.httpStatus,
      outcome: OUTCOMES[event.status],
      errorKind: event.errorKind,
      stream: event.stream,
      latencyMs: event.latencyMs,
      ttftMs: event.ttftMs,
      upstreamMs: attempts.length > 0 ? attempts.reduce((sum, a) => sum + a.latencyMs, 0) : undefined,
      promptTokens: event.tokens?.prompt ?? 0,
      completionTokens: event.tokens?.completion ?? 0,
      cost: Number(event.cost?.amount ?? 0),
      currency: event.cost?.currency ?? '',
    });
  };

  /** Every response, once it ended. */
  readonly responded = (exchange: RespondedExchange): void => {
    const { request, route, status } = exchange;
    this.api.responded(route, status, request.metered === true);
    if (route === '/health' || route === '/ready' || route === '/metrics') return;
    const tenant = request.requestContext;
    const line: Record<string, unknown> = {
      requestId: String(request.id),
      ...(exchange.traceId ? { traceId: exchange.traceId } : {}),
      method: exchange.method,
      route,
      status,
      durationMs: Math.round(exchange.durationMs),
      ...(tenant ? { orgId: tenant.orgId, teamId: tenant.teamId, projectId: tenant.projectId, appId: tenant.appId, keyId: tenant.keyId } : {}),
    };
    if (this.debugSizes) {
      line['requestBytes'] = Number(request.headers['content-length'] ?? 0);
      if (exchange.responseBytes !== undefined) line['responseBytes'] = exchange.responseBytes;
    }
    if (status >= 500) this.logger.warn(line, 'request failed');
    else if (status >= 400) this.logger.info(line, 'request refused');
    else this.logger.debug(line, 'request served');
  };

  /** The publisher, with its outbox depth and lost events measured. */
  instrumentPublisher(publisher: UsagePublisher): UsagePublisher {
    const metrics = new UsageProducerMetrics(this.telemetry.registry, () => publisher.status());
    return {
      async publish(event: usagev1.UsageEvent, options?: PublishOptions): Promise<void> {
        try {
          await publisher.publish(event, options);
        } catch (error) {
          metrics.errors.inc({ stage: 'publish' });
          throw error;
        }
      },
      status: () => publisher.status(),
      close: () => publisher.close(),
    };
  }
}

/**
 * Where the admin API reads alert history: the embedded gateway's shared store, else a ClickHouse
 * server when one is configured. A stand-alone ingress on the embedded engine has none (chDB's
 * data belongs to the billing process).
 */
export function alertHistoryFor(config: GatewayConfig, shared: ClickHouseTarget | undefined): { store: AlertHistoryStore | undefined; close(): Promise<void> } {
  if (shared) return { store: new ClickHouseAlertHistory(shared.client, shared.database), close: async () => undefined };
  if (!config.usage.clickhouse.url) return { store: undefined, close: async () => undefined };
  const target = createClickHouse(config.usage.clickhouse, config.gateway.dataDir);
  return { store: new ClickHouseAlertHistory(target.client, target.database), close: () => target.client.close() };
}
