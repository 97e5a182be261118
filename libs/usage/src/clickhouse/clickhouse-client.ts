import { mkdirSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type ClickHouseClientConfigOptions, type ClickHouseSettings, type Logger as ClientLogger } from '@clickhouse/client';
import type * as Chdb from 'chdb/connection';
import type { ClickHouseConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { unusableDirectory } from '../unusable-directory';

export type { ClickHouseClient };

export interface ClickHouseTarget {
  client: ClickHouseClient;
  /** `server` (HTTP) or `embedded` (chDB in this process). */
  kind: 'server' | 'embedded';
  database: string;
  /** The server URL or the chDB data directory, for logs. */
  location: string;
}

/** Output settings on every query of the client: decimals as strings, so money never becomes a float. */
const OUTPUT_SETTINGS = { output_format_json_quote_decimals: 1, output_format_json_quote_64bit_integers: 0 } as const;

/**
 * Per-request settings that drop the client's output settings, for inserts and id lookups that
 * read no decimals. chDB runs client settings as `SET …;` statements in front of the query, and
 * a multi-statement query is scanned whole: for an insert with its rows inline that doubles the
 * engine's parse time. Over HTTP an undefined setting is simply not sent.
 */
export const WITHOUT_OUTPUT_SETTINGS: ClickHouseSettings = Object.fromEntries(Object.keys(OUTPUT_SETTINGS).map((name) => [name, undefined]));

/**
 * The analytics store: a ClickHouse server over HTTP when `url` is set, else chDB in this process
 * behind the same `@clickhouse/client` API, so every query is the same code. chDB allows one data
 * directory per process; every service in the process must use the same one.
 */
export function createClickHouse(config: ClickHouseConfig, dataDir: string, logger?: Logger): ClickHouseTarget {
  const settings = OUTPUT_SETTINGS;
  if (config.url) {
    const client = createClient({
      url: config.url,
      ...(config.username ? { username: config.username } : {}),
      ...(config.password ? { password: config.password } : {}),
      request_timeout: config.requestTimeoutMs,
      clickhouse_settings: settings,
      log: clientLog(logger),
    });
    return { client, kind: 'server', database: config.database, location: withoutCredentials(config.url) };
  }
  const path = embeddedPath(config, dataDir);
  if (path !== ':memory:') {
    try {
      mkdirSync(path, { recursive: true });
    } catch (error) {
      throw unusableDirectory('usage.clickhouse.embedded.path (empty: under gateway.dataDir, OPENROUTER_DATA_DIR)', 'the embedded ClickHouse', path, error);
    }
  }
  // chdb types its connection against its own copy of @clickhouse/client-common's declarations;
  // the shapes are the same, the declaration files differ.
  const connection = loadChdb().createChdbConnection({ path }) as unknown as NonNullable<ClickHouseClientConfigOptions['connection']>;
  const client = createClient({ connection, clickhouse_settings: settings, log: clientLog(logger) });
  return { client, kind: 'embedded', database: config.database, location: path };
}

/**
 * The client's own log, through the service's logger. By default it prints every failed request
 * with its stack to the console, while the caller gets the same error and reports it in its own
 * words (a store outage once, not a dump per retry): its errors are kept for `debug`, its
 * warnings stay warnings. Without a logger it is off.
 */
function clientLog(logger: Logger | undefined): NonNullable<ClickHouseClientConfigOptions['log']> {
  if (!logger) return { level: ClickHouseLogLevel.OFF };
  const log = logger.child({ component: 'clickhouse-client' });
  const fields = (params: { module: string; args?: Record<string, unknown>; err?: Error }): Record<string, unknown> => ({ module: params.module, ...params.args, ...(params.err ? { err: params.err } : {}) });
  class ServiceLogger implements ClientLogger {
    trace(params: Parameters<ClientLogger['trace']>[0]): void {
      log.trace(fields(params), params.message);
    }
    debug(params: Parameters<ClientLogger['debug']>[0]): void {
      log.debug(fields(params), params.message);
    }
    info(params: Parameters<ClientLogger['info']>[0]): void {
      log.debug(fields(params), params.message);
    }
    warn(params: Parameters<ClientLogger['warn']>[0]): void {
      log.warn(fields(params), params.message);
    }
    error(params: Parameters<ClientLogger['error']>[0]): void {
      log.debug(fields(params), params.message);
    }
  }
  return { LoggerClass: ServiceLogger, level: ClickHouseLogLevel.WARN };
}

/** The server's URL as it may be logged: no user or password, and no query string (ClickHouse takes `password` there too). */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    parsed.hash = '';
    return parsed.toString();
  } catch {
    // Not a URL the client would accept either; all that is safe to show is the scheme.
    return url.replace(/^(\w+:\/\/).*$/, '$1…');
  }
}

/**
 * chDB's engine is a native library of ~150 MB resident once loaded: it is loaded when a process
 * first opens an embedded store, so services that never do (ingress and alerting next to a
 * ClickHouse server, the router, the adapters) do not carry it.
 */
function loadChdb(): typeof Chdb {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- deliberately loaded on first use
  return require('chdb/connection') as typeof Chdb;
}

export function embeddedPath(config: ClickHouseConfig, dataDir: string): string {
  const path = config.embedded.path;
  if (path === ':memory:') return path;
  if (path === '') return resolve(dataDir, 'clickhouse');
  return isAbsolute(path) ? path : resolve(path);
}
