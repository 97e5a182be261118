import type { GatewayConfig } from '@openrouter/config';
import { GrpcServerHandle } from '@openrouter/grpc';
import { createTelemetry, RouterMetrics, traceGrpcBinding, tracingClientOptions, type Logger, type TelemetryOptions } from '@openrouter/observability';
import { HealthModule, startHttpApp, type ServiceHandle } from '@openrouter/service-runtime';
import { AdapterClients } from './adapter-clients';
import { deploymentCircuits, instrumentAdapterPort } from './observability/router-telemetry';
import { routerGrpcBinding } from './router.grpc.controller';
import { grpcAdapters, RouterService } from './router.service';
import { createRoutingEngine } from './routing/routing-engine';

export { measureRouteDecision } from './bench/route-decision.bench';

/** Starts the router: gRPC for ingress, HTTP for health. */
export async function startRouter(config: GatewayConfig, logger: Logger, telemetryOptions: TelemetryOptions = {}): Promise<ServiceHandle> {
  const telemetry = createTelemetry('router', config.observability, telemetryOptions);
  const metrics = new RouterMetrics(telemetry.registry);
  const adapters = new AdapterClients(config.router.adapters, tracingClientOptions(telemetry.tracing));
  const engine = createRoutingEngine(config);
  metrics.readCircuitsFrom(() => deploymentCircuits(engine));
  const service = new RouterService(engine, instrumentAdapterPort(grpcAdapters(adapters), metrics, engine.catalog.list()));
  const grpc = await GrpcServerHandle.start(config.router.grpc.host, config.router.grpc.port, [traceGrpcBinding(routerGrpcBinding(service, logger), telemetry.tracing)]);
  const http = await startHttpApp(HealthModule.register('router', [{ name: 'adapters', check: () => adapters.anyReachable(500) }], telemetry.registry), config.router.http, logger, { tracing: telemetry.tracing });
  logger.info({ grpcPort: grpc.port, httpPort: http.port }, 'router started');
  return {
    name: 'router',
    httpPort: http.port,
    grpcPort: grpc.port,
    async close() {
      await grpc.close();
      await http.app.close();
      adapters.close();
      await telemetry.close();
    },
  };
}
