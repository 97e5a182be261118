import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { ClickHouseConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { DependencyWait } from './dependency-wait';

/** The store as `@openrouter/usage` opens it (`ClickHouseTarget`), as far as waiting for it goes. */
export interface ClickHouseStore {
  kind: 'server' | 'embedded';
  /** The server URL without credentials, or chDB's data directory. */
  location: string;
  client: { ping(): Promise<{ success: boolean }> };
}

/** The setting that says where the ClickHouse server is (its key, and the variable the shipped configurations read it from). */
export const CLICKHOUSE_SETTING = 'usage.clickhouse.url / CLICKHOUSE_URL';

/** What ClickHouse answered a request with, when it was not a success. */
export class ClickHouseAnswerError extends Error {
  /** ClickHouse's error name (`AUTHENTICATION_FAILED`), when the answer was one of ClickHouse's errors. */
  readonly type: string | undefined;

  constructor(
    readonly status: number,
    body: string,
  ) {
    const text = body.trim().split('\n')[0]?.slice(0, 300) ?? '';
    super(text ? `HTTP ${status}: ${text}` : `HTTP ${status}`);
    this.name = 'ClickHouseAnswerError';
    this.type = /\(([A-Z][A-Z0-9_]{2,})\)/.exec(text)?.[1];
  }
}

/** Connection failures: nothing answers yet (refused, unreachable, a name not in DNS yet), or the connection broke. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT']);

/** ClickHouse's own errors that mean "not now" rather than "not so": a server starting, loaded, or without its Keeper. */
const NOT_NOW = new Set(['TIMEOUT_EXCEEDED', 'TOO_MANY_SIMULTANEOUS_QUERIES', 'SOCKET_TIMEOUT', 'NETWORK_ERROR', 'TABLE_IS_READ_ONLY', 'KEEPER_EXCEPTION', 'ALL_CONNECTION_TRIES_FAILED', 'MEMORY_LIMIT_EXCEEDED']);

/**
 * Why a failed request to a ClickHouse server passes by itself, in a few words; undefined when it
 * does not (a refused credential, a statement the server rejects, a changed migration): those are
 * configuration errors. Reads the errors of `@clickhouse/client` and of {@link probeClickHouse}.
 */
export function clickHouseOutage(error: unknown): string | undefined {
  // Read by shape: Node's socket errors are not always of this realm's Error (a test's VM context).
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, type, name, message = '' } = error as { code?: unknown; type?: unknown; name?: unknown; message?: string };
  // A connection tried at several addresses fails as an AggregateError with the code and no message.
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return message || code;
  if (name === 'TimeoutError') return message;
  if (message === 'Timeout error.') return 'no answer in time';
  if (typeof type === 'string') return NOT_NOW.has(type) ? message : undefined;
  // A proxy or load balancer in front of a server that is not up yet answers for it.
  if (error instanceof ClickHouseAnswerError && [502, 503, 504].includes(error.status)) return message;
  return undefined;
}

/** The longest a probe waits for an answer: a store that takes longer is not ready either. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Asks a ClickHouse server `SELECT 1` with the configured credentials: it answers, and takes them.
 * Sent without `@clickhouse/client`, which logs every failed request with its stack at error
 * level: while the server is not up yet, the caller tells that story once. Node's HTTP client, as
 * the client's (fetch refuses some ports). Throws the socket's error when nothing answers, a
 * {@link ClickHouseAnswerError} when the server refuses.
 */
export function probeClickHouse(config: Pick<ClickHouseConfig, 'url' | 'username' | 'password' | 'requestTimeoutMs'>): Promise<void> {
  const url = new URL(config.url);
  // As the client reads them: credentials in the URL, else the settings; ClickHouse's `default` user without.
  const username = decodeURIComponent(url.username) || config.username || 'default';
  const password = decodeURIComponent(url.password) || config.password;
  const probe = new URL('/?query=SELECT%201', url.origin);
  const timeoutMs = Math.min(config.requestTimeoutMs, PROBE_TIMEOUT_MS);
  return new Promise<void>((resolve, reject) => {
    const request = (probe.protocol === 'https:' ? httpsRequest : httpRequest)(probe, { headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` }, timeout: timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve();
        else reject(new ClickHouseAnswerError(status, Buffer.concat(chunks).toString('utf8')));
      });
    });
    request.on('timeout', () => request.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' })));
    request.on('error', reject);
    request.end();
  });
}

export interface ClickHouseWaitOptions<T> {
  store: ClickHouseStore;
  config: ClickHouseConfig;
  /** The store as log lines and `/ready` name it, e.g. `the usage store (ClickHouse)`. */
  what: string;
  /** What the service does with the store once it answers (apply its migrations), tried again while the server is down. */
  prepare: () => Promise<T>;
  logger: Logger;
  initialDelayMs: number;
  maxDelayMs: number;
  /** Aborted when the service is told to stop while it starts: the wait stops. */
  signal?: AbortSignal | undefined;
}

/**
 * Waits for the service's ClickHouse, then prepares it: a server that is not up yet (or a name
 * not in DNS yet) is waited for with backoff, the service not ready meanwhile; a refused
 * credential, or a migration that fails for another reason, fails the wait (a configuration
 * error: retrying would not mend it). chDB in the process is there or not: one try.
 */
export function waitForClickHouse<T>(options: ClickHouseWaitOptions<T>): DependencyWait<T> {
  const { store, config } = options;
  const server = store.kind === 'server';
  return new DependencyWait({
    what: options.what,
    location: store.location,
    setting: server ? CLICKHOUSE_SETTING : 'usage.clickhouse.embedded.path',
    attempt: async () => {
      if (server) await probeClickHouse(config);
      return options.prepare();
    },
    outage: server ? clickHouseOutage : () => undefined,
    // The probe, not the client's ping: while a server is down, `/ready` is asked every few seconds.
    live: server ? () => probeClickHouse(config).then(() => true) : async () => (await store.client.ping()).success,
    logger: options.logger,
    initialDelayMs: options.initialDelayMs,
    maxDelayMs: options.maxDelayMs,
    signal: options.signal,
  });
}
