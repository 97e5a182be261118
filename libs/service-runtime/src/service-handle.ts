import { loadConfig, type GatewayConfig } from '@openrouter/config';
import { createLogger, type Logger } from '@openrouter/observability';

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
 * signal exits at once.
 */
export function closeOnSignals(handle: { close(): Promise<void> }, onError: (error: unknown) => void): void {
  let closing = false;
  const stop = (): void => {
    if (closing) process.exit(1);
    closing = true;
    handle.close().then(
      () => process.exit(0),
      (error: unknown) => {
        onError(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** The whole main program of a service run on its own: load config, start, close on signals. */
export function runServiceMain(name: string, start: (config: GatewayConfig, logger: Logger) => Promise<ServiceHandle>): void {
  let logger: Logger | undefined;
  (async () => {
    const config = loadConfig();
    logger = createLogger(name, config.log.level);
    const handle = await start(config, logger);
    closeOnSignals(handle, (error) => logger?.error({ err: error }, 'shutdown failed'));
  })().catch((error: unknown) => {
    // Configuration problems are printed whole: they list every bad value with its path.
    process.stderr.write(`${name}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
