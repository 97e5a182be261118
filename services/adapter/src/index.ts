import type { GatewayConfig } from '@openrouter/config';
import { GrpcServerHandle } from '@openrouter/grpc';
import { createTelemetry, traceGrpcBinding, UpstreamInstrumentation, type Logger, type TelemetryOptions } from '@openrouter/observability';
import { HealthModule, startHttpApp, type ServiceHandle } from '@openrouter/service-runtime';
import { adapterGrpcBinding } from './adapter.grpc.controller';
import { AdapterService } from './adapter.service';
import { PROVIDER_REGISTRY } from './providers/provider.registry';

export { PROVIDER_REGISTRY } from './providers/provider.registry';
export { createProviderAdapter, type ProviderAdapter } from './providers/provider-adapter';

/** Starts the adapter: gRPC for the router, HTTP for health. */
export async function startAdapter(config: GatewayConfig, logger: Logger, telemetryOptions: TelemetryOptions = {}): Promise<ServiceHandle> {
  const telemetry = createTelemetry('adapter', config.observability, telemetryOptions);
  const service = new AdapterService(config, PROVIDER_REGISTRY, new UpstreamInstrumentation(telemetry.registry, telemetry.tracing));
  const grpc = await GrpcServerHandle.start(config.adapter.grpc.host, config.adapter.grpc.port, [traceGrpcBinding(adapterGrpcBinding(service, logger), telemetry.tracing)]);
  const http = await startHttpApp(HealthModule.register('adapter', [], telemetry.registry), config.adapter.http, logger, { tracing: telemetry.tracing });
  logger.info({ grpcPort: grpc.port, httpPort: http.port, providers: service.providerIds }, 'adapter started');
  return {
    name: 'adapter',
    httpPort: http.port,
    grpcPort: grpc.port,
    async close() {
      await grpc.close();
      await http.app.close();
      await service.close();
      await telemetry.close();
    },
  };
}
