import type { GatewayConfig } from '@openrouter/config';
import { GrpcServerHandle } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import { HealthModule, startHttpApp, type ServiceHandle } from '@openrouter/service-runtime';
import { AdapterClients } from './adapter-clients';
import { ModelCatalog } from './model-catalog';
import { routerGrpcBinding } from './router.grpc.controller';
import { RouterService } from './router.service';

/** Starts the router: gRPC for ingress, HTTP for health. */
export async function startRouter(config: GatewayConfig, logger: Logger): Promise<ServiceHandle> {
  const adapters = new AdapterClients(config.router.adapters);
  const service = new RouterService(new ModelCatalog(config), adapters);
  const grpc = await GrpcServerHandle.start(config.router.grpc.host, config.router.grpc.port, [routerGrpcBinding(service, logger)]);
  const http = await startHttpApp(HealthModule.register('router'), config.router.http, logger);
  logger.info({ grpcPort: grpc.port, httpPort: http.port }, 'router started');
  return {
    name: 'router',
    httpPort: http.port,
    grpcPort: grpc.port,
    async close() {
      await grpc.close();
      await http.app.close();
      adapters.close();
    },
  };
}
