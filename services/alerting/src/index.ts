import type { GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { HealthModule, startHttpApp, type ServiceHandle } from '@openrouter/service-runtime';

/**
 * Starts the alerting service. For now it boots with its health endpoints; its work (see the README)
 * plugs in here.
 */
export async function startAlerting(config: GatewayConfig, logger: Logger): Promise<ServiceHandle> {
  const http = await startHttpApp(HealthModule.register('alerting'), config.alerting.http, logger);
  logger.info({ httpPort: http.port }, 'alerting started');
  return { name: 'alerting', httpPort: http.port, close: () => http.app.close() };
}
