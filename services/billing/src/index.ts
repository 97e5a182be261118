import type { GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { HealthModule, startHttpApp, type ServiceHandle } from '@openrouter/service-runtime';

/**
 * Starts the billing service. For now it boots with its health endpoints; its work (see the README)
 * plugs in here.
 */
export async function startBilling(config: GatewayConfig, logger: Logger): Promise<ServiceHandle> {
  const http = await startHttpApp(HealthModule.register('billing'), config.billing.http, logger);
  logger.info({ httpPort: http.port }, 'billing started');
  return { name: 'billing', httpPort: http.port, close: () => http.app.close() };
}
