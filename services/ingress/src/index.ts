import { randomBytes } from 'node:crypto';
import type { GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { startHttpApp, type ServiceHandle } from '@openrouter/service-runtime';
import { DevKeyStore } from './auth/key-store';
import { IngressModule } from './ingress.module';
import { RouterClient } from './router.client';

export interface IngressHandle extends ServiceHandle {
  /** The accepted development key, and whether it was generated because none was configured. */
  readonly devKey: string;
  readonly devKeyGenerated: boolean;
}

export function generateDevKey(): string {
  return `sk-or-dev-${randomBytes(24).toString('base64url')}`;
}

/** Starts the edge: the OpenAI-compatible HTTP API in front of the router. */
export async function startIngress(config: GatewayConfig, logger: Logger): Promise<IngressHandle> {
  const devKeyGenerated = config.ingress.devKey === '';
  const devKey = devKeyGenerated ? generateDevKey() : config.ingress.devKey;
  const router = new RouterClient(config.ingress.router);
  const { app, port } = await startHttpApp(
    IngressModule.register({ router, keys: new DevKeyStore(devKey), logger }),
    config.ingress.http,
    logger,
    {
      bodyLimit: config.ingress.limits.bodyBytes,
      requestIds: true,
    },
  );
  logger.info({ httpPort: port, router: config.ingress.router }, 'ingress started');
  return {
    name: 'ingress',
    httpPort: port,
    devKey,
    devKeyGenerated,
    async close() {
      await app.close();
      router.close();
    },
  };
}
