import 'reflect-metadata';
import { loadConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { closeOnSignals } from '@openrouter/service-runtime';
import { startGateway } from './gateway';

async function main(): Promise<void> {
  const startedAt = Date.now();
  const config = loadConfig();
  const logger = createLogger('gateway', config.log.level);
  const gateway = await startGateway(config, logger);
  closeOnSignals(gateway, (error) => logger.error({ err: error }, 'shutdown failed'));
  const key = gateway.ingress.devKeyGenerated ? gateway.ingress.devKey : '$OPENROUTER_DEV_KEY';
  console.log(
    [
      '',
      `Open-Router is ready in ${Date.now() - startedAt} ms at ${gateway.url}/v1`,
      gateway.ingress.devKeyGenerated
        ? `Development key (generated; set OPENROUTER_DEV_KEY to choose one): ${gateway.ingress.devKey}`
        : gateway.ingress.devKey
          ? 'Development key: the value of OPENROUTER_DEV_KEY'
          : 'Development key: disabled',
      gateway.ingress.adminKeyGenerated
        ? `Admin key (generated; set OPENROUTER_ADMIN_KEY to choose one): ${gateway.ingress.adminKey}`
        : gateway.ingress.adminKey
          ? 'Admin key: the value of OPENROUTER_ADMIN_KEY'
          : '',
      gateway.simulator ? `Simulated provider at ${gateway.simulator.baseUrl}` : '',
      '',
      `  curl ${gateway.url}/v1/chat/completions \\`,
      `    -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\`,
      `    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'`,
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
