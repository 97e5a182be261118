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
  const shutdown = new SignalShutdown(() => logger);
  shutdown.started(handle, onError);
}

/**
 * SIGTERM/SIGINT handling for a main program that starts its service itself, installed before the
 * start: a signal during the start is a graceful stop too, carried out once the service is handed
 * to `started` (or, when the start fails after it, by `abandoned`). `logger` is read when a signal
 * comes (it may not exist yet).
 */
export function handleSignals(logger: () => Logger | undefined): SignalShutdown {
  return new SignalShutdown(logger);
}

/**
 * SIGTERM/SIGINT handling installed before a service starts, so a signal that comes while it
 * starts (waiting for its ClickHouse, say) is a graceful stop too: `stopping` is logged and
 * `signal` aborted, which the start gives up on; its outcome is then closed (`started`) or its
 * failure taken as the stop (`abandoned`), `stopped` logged, and the process exits 0. A second
 * signal exits at once with 1, as during a drain.
 */
export class SignalShutdown {
  private readonly controller = new AbortController();
  private signalled: { signal: NodeJS.Signals; at: number } | undefined;
  private handle: { close(): Promise<void> } | undefined;
  private onError: (error: unknown) => void = () => undefined;

  constructor(private readonly logger: () => Logger | undefined) {
    process.on('SIGTERM', this.stop);
    process.on('SIGINT', this.stop);
  }

  /** Aborted by the first signal: what the start waits for, it stops waiting for. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Whether a signal has come (the start's failure is then the stop it asked for). */
  get stopping(): boolean {
    return this.signalled !== undefined;
  }

  /** The service has started: a signal that came meanwhile closes it now, a later one when it comes. */
  started(handle: { close(): Promise<void> }, onError: (error: unknown) => void): void {
    this.handle = handle;
    this.onError = onError;
    if (this.signalled) this.close(handle, this.signalled.signal);
  }

  /** The start gave up after a signal (`reason`), having released what it held: nothing is left to close. */
  abandoned(reason: unknown): void {
    const { signal, at } = this.signalled ?? { signal: 'SIGTERM', at: performance.now() };
    const message = reason instanceof Error ? reason.message : String(reason);
    this.logger()?.info({ signal, drainMs: Math.round(performance.now() - at), duringStart: true, reason: message }, 'stopped');
    // Not `process.exit` at once: `stopping` may still be on its way out (pino writes in the
    // background), and exiting now would write `stopped` before it. The process ends when nothing
    // is left to do, or after a second if something the start opened lingers.
    process.exitCode = 0;
    setTimeout(() => process.exit(0), 1_000).unref();
  }

  private readonly stop = (signal: NodeJS.Signals): void => {
    if (this.signalled) {
      this.logger()?.warn({ signal }, 'stopping at once: a second signal came before the drain ended');
      process.exit(1);
    }
    this.signalled = { signal, at: performance.now() };
    this.logger()?.info({ signal, ...(this.handle ? {} : { duringStart: true }) }, 'stopping');
    this.controller.abort();
    if (this.handle) this.close(this.handle, signal);
  };

  private close(handle: { close(): Promise<void> }, signal: NodeJS.Signals): void {
    const started = this.signalled?.at ?? performance.now();
    handle.close().then(
      () => {
        this.logger()?.info({ signal, drainMs: Math.round(performance.now() - started) }, 'stopped');
        process.exit(0);
      },
      (error: unknown) => {
        this.onError(error);
        process.exit(1);
      },
    );
  }
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

/**
 * The whole main program of a service run on its own: load config, start, close on signals. The
 * signals are handled from the beginning: one that comes during the start is a graceful stop too,
 * logged as such, and the service is closed as soon as its start has finished.
 */
export function runServiceMain(name: string, start: (config: GatewayConfig, logger: Logger) => Promise<ServiceHandle>): void {
  // Called with these two arguments only: a start's own further parameters keep their defaults.
  runStoppableServiceMain(name, (config, logger) => start(config, logger));
}

/**
 * `runServiceMain` for a start that may wait for long (billing's and alerting's ClickHouse, which
 * may come up after them): it is given `stopping`, aborted by a signal that comes during the start,
 * to give up waiting on. Its failure is then the stop asked for — logged as `stopped`, exit 0; a
 * start that finishes anyway is closed at once.
 */
export function runStoppableServiceMain(name: string, start: (config: GatewayConfig, logger: Logger, stopping: AbortSignal) => Promise<ServiceHandle>): void {
  let config: GatewayConfig | undefined;
  let logger: Logger | undefined;
  const shutdown = new SignalShutdown(() => logger);
  (async () => {
    const loaded = loadServiceConfig(name);
    config = loaded.config;
    logger = loaded.logger;
    const log = loaded.logger;
    const handle = await start(config, log, shutdown.signal);
    shutdown.started(handle, (error) => log.error({ err: error }, 'shutdown failed'));
  })().catch((error: unknown) => {
    if (shutdown.stopping) return shutdown.abandoned(error);
    // Configuration problems are printed whole: they list every bad value with its path. A port
    // that cannot be listened on is named with its listener and setting.
    const failure = (config && describeListenFailure(error, config, [name])) ?? error;
    process.stderr.write(`${name}: ${failure instanceof Error ? failure.message : String(failure)}\n`);
    process.exit(1);
  });
}
