import 'reflect-metadata';
import { loadConfig, readRuntimeEnv, type GatewayConfig } from '@openrouter/config';
import { createLogger, type Logger } from '@openrouter/observability';
import { describeListenFailure, handleSignals } from '@openrouter/service-runtime';
import { startGateway } from './gateway';

let config: GatewayConfig | undefined;
let logger: Logger | undefined;
// From the beginning: a signal while the gateway starts stops it gracefully once it has started.
const shutdown = handleSignals(() => logger);

async function main(): Promise<void> {
  const startedAt = Date.now();
  const runtime = readRuntimeEnv();
  config = loadConfig(runtime);
  const log = createLogger('gateway', config.log.level);
  logger = log;
  log.info({ configPath: runtime.configPath, defaultConfig: !runtime.vars['OPENROUTER_CONFIG'] }, 'configuration loaded');
  const gateway = await startGateway(config, log);
  shutdown.started(gateway, (error) => log.error({ err: error }, 'shutdown failed'));
  if (shutdown.stopping) return;
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
  // The start failed after a signal asked it to stop: what it opened is closed (startGateway does), nothing is left to stop.
  if (shutdown.stopping) return shutdown.abandoned(error);
  // A port already taken is named with its listener and setting (the simulated provider's is
  // OPENROUTER_SIMULATOR_PORT in the default configuration, the API's PORT).
  const failure = (config && describeListenFailure(error, config, ['gateway', 'ingress'])) ?? error;
  console.error(failure instanceof Error ? failure.message : failure);
  process.exit(1);
});
