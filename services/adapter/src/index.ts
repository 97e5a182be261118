import type { GatewayConfig } from '@openrouter/config';
import { GrpcServerHandle } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import { HealthModule, startHttpApp, type ServiceHandle } from '@openrouter/service-runtime';
import { adapterGrpcBinding } from './adapter.grpc.controller';
import { AdapterService } from './adapter.service';
import { PROVIDER_REGISTRY } from './providers/provider.registry';

export { PROVIDER_REGISTRY } from './providers/provider.registry';
export { createProviderAdapter, type ProviderAdapter } from './providers/provider-adapter';

/** Starts the adapter: gRPC for the router, HTTP for health. */
export async function startAdapter(config: GatewayConfig, logger: Logger): Promise<ServiceHandle> {
  const service = new AdapterService(config, PROVIDER_REGISTRY);
  const grpc = await GrpcServerHandle.start(config.adapter.grpc.host, config.adapter.grpc.port, [adapterGrpcBinding(service, logger)]);
  const http = await startHttpApp(HealthModule.register('adapter'), config.adapter.http, logger);
  logger.info({ grpcPort: grpc.port, httpPort: http.port, providers: service.providerIds }, 'adapter started');
  return {
    name: 'adapter',
    httpPort: http.port,
    grpcPort: grpc.port,
    async close() {
      await grpc.close();
      await http.app.close();
      await service.close();
    },
  };
}
