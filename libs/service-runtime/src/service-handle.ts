import { loadConfig, readRuntimeEnv, type GatewayConfig } from '@openrouter/config';
import { createLogger, type Logger } from '@openrouter/observability';
import { describeListenFailure } from './listen-failure';

/** A running service, however it was started (its own process or inside the embedded gateway). */
export interface ServiceHandle {
  readonly name: string;
  /** Port of the HTTP listener (health, and the public API for ingress). */
  readonly httpPort: number;
  /** Port of the gRPC listener, for services that serve gRPC. */
  readonly grpcPort?: number;
  /** Stops taking work, drains what is in flight, releases every resource. */
  close(): Promise<void>;
}

/**
 * Runs a service as the main program: SIGTERM/SIGINT trigger one graceful close, a second
 * signal exits at once. With a logger, the close is logged: `stopping` with the signal, `stopped`
 * with how long the drain took.
 */
export function closeOnSignals(handle: { close(): Promise<void> }, onError: (error: unknown) => void, logger?: Logger): void {
  let closing = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (closing) {
      logger?.warn({ signal }, 'stopping at once: a second signal came before the drain ended');
      process.exit(1);
    }
    closing = true;
    const started = performance.now();
    logger?.info({ signal }, 'stopping');
    handle.close().then(
      () => {
        logger?.info({ signal, drainMs: Math.round(performance.now() - started) }, 'stopped');
        process.exit(0);
      },
      (error: unknown) => {
        onError(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * The service's configuration (the file OPENROUTER_CONFIG names, else the embedded gateway's
 * default) and its logger. Which file it is, and whether it was the default, is logged once: a
 * service started without OPENROUTER_CONFIG runs with the embedded gateway's settings, which is
 * rarely what a service run on its own wants, so that is a warning.
 */
export function loadServiceConfig(name: string): { config: GatewayConfig; logger: Logger } {
  const runtime = readRuntimeEnv();
  const config = loadConfig(runtime);
  const logger = createLogger(name, config.log.level);
  // readRuntimeEnv falls back to the default path for an unset or empty variable alike.
  if (runtime.vars['OPENROUTER_CONFIG']) logger.info({ configPath: runtime.configPath, defaultConfig: false }, 'configuration loaded');
  else logger.warn({ configPath: runtime.configPath, defaultConfig: true }, 'OPENROUTER_CONFIG is not set: running with the default configuration, the embedded gateway\'s');
  return { config, logger };
}

/** The whole main program of a service run on its own: load config, start, close on signals. */
export function runServiceMain(name: string, start: (config: GatewayConfig, logger: Logger) => Promise<ServiceHandle>): void {
  let config: GatewayConfig | undefined;
  (async () => {
    const loaded = loadServiceConfig(name);
    config = loaded.config;
    const { logger } = loaded;
    const handle = await start(config, logger);
    closeOnSignals(handle, (error) => logger.error({ err: error }, 'shutdown failed'), logger);
  })().catch((error: unknown) => {
    // Configuration problems are printed whole: they list every bad value with its path. A port
    // that cannot be listened on is named with its listener and setting.
    const failure = (config && describeListenFailure(error, config, [name])) ?? error;
    process.stderr.write(`${name}: ${failure instanceof Error ? failure.message : String(failure)}\n`);
    process.exit(1);
  });
}
