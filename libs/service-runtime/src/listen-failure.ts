import type { GatewayConfig } from '@openrouter/config';

/** A listener that could not listen, told as the operator can act on it. */
export class ListenError extends Error {
  constructor(
    message: string,
    readonly setting: string,
    options: { cause: unknown },
  ) {
    super(message, options);
    this.name = 'ListenError';
  }
}

const REASONS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'no interface of this machine has that address',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
};

/** The listeners' names, by the setting that configures them. */
const NAMES: Record<string, string> = {
  'gateway.simulator': 'the simulated provider',
  'ingress.http': 'the public HTTP API',
  'ingress.internalHttp': 'the internal HTTP listener (probes and metrics)',
};

interface FailedListen {
  code: string;
  /** The port tried; undefined for a host name that did not resolve (no port was tried yet). */
  port?: number;
  /** The host name that did not resolve. */
  host?: string;
}

/**
 * What a failed listen tried: Node's error (`syscall: 'listen'`, HTTP servers), or grpc-js's, which
 * only quotes Node's message (`No address added out of total 1 resolved errors: [listen EADDRINUSE: …]`).
 */
function failedListen(error: unknown): FailedListen | undefined {
  // Read by shape: Node's errors are not always of this realm's Error (a test's VM context).
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { code?: unknown; syscall?: unknown; port?: unknown; hostname?: unknown; message?: unknown };
  if (e.syscall === 'listen' && typeof e.code === 'string' && typeof e.port === 'number') return { code: e.code, port: e.port };
  // A listen host that does not resolve: Node's lookup error (HTTP servers), or grpc-js's words for it.
  if (e.syscall === 'getaddrinfo' && typeof e.code === 'string' && typeof e.hostname === 'string') return { code: e.code, host: e.hostname };
  const message = typeof e.message === 'string' ? e.message : '';
  const unresolved = /Name resolution failed for target dns:(.+):(\d+)/.exec(message);
  if (unresolved?.[1] && unresolved[2]) return { code: 'ENOTFOUND', host: unresolved[1], port: Number(unresolved[2]) };
  const quoted = /listen (E[A-Z_]+): .*?:(\d+)\]?$/m.exec(message);
  return quoted?.[1] && quoted[2] ? { code: quoted[1], port: Number(quoted[2]) } : undefined;
}

/** Every `{ host, port }` of the configuration sections named, by its setting (`router.grpc`). */
function listenersOf(config: GatewayConfig, sections: readonly string[]): Array<{ setting: string; host: string; port: number }> {
  const found: Array<{ setting: string; host: string; port: number }> = [];
  for (const section of sections) {
    const entries = (config as unknown as Record<string, Record<string, unknown> | undefined>)[section];
    for (const [key, value] of Object.entries(entries ?? {})) {
      const listen = value as { host?: unknown; port?: unknown } | undefined;
      if (listen && typeof listen.host === 'string' && typeof listen.port === 'number') found.push({ setting: `${section}.${key}`, host: listen.host, port: listen.port });
    }
  }
  return found;
}

/**
 * A listen failure of the service whose configuration `sections` are given (`['router']`; the
 * embedded gateway's are `gateway` and `ingress`), as an error naming the listener, its address and
 * its setting: `the router gRPC listener cannot listen on 0.0.0.0:50051 (router.grpc.port): address
 * already in use`. Undefined when `error` is no listen failure, or none of those listeners has its port.
 */
export function describeListenFailure(error: unknown, config: GatewayConfig, sections: readonly string[]): ListenError | undefined {
  const failed = failedListen(error);
  if (!failed) return undefined;
  const listeners = listenersOf(config, sections);
  if (failed.host !== undefined && failed.port === undefined) {
    // Node's lookup error names no port: every listener on that host is named.
    const named = listeners.filter((l) => l.host === failed.host).map((l) => `${l.setting}.host`);
    if (named.length === 0) return undefined;
    const reason = REASONS[failed.code] ?? failed.code;
    return new ListenError(`cannot listen on ${failed.host} (${named.join(', ')}): ${reason}`, named[0] ?? '', { cause: error });
  }
  // A name that does not resolve is the host's fault: found by it (and its port when known), named by `.host`.
  const listener =
    failed.host !== undefined
      ? listeners.find((l) => l.host === failed.host && (l.port === failed.port || l.port === 0))
      : failed.port === 0
        ? undefined
        : listeners.find((l) => l.port === failed.port);
  if (!listener) return undefined;
  const [section = '', key = ''] = listener.setting.split('.');
  const name = NAMES[listener.setting] ?? `the ${section} ${key === 'grpc' ? 'gRPC listener' : key === 'http' ? 'HTTP listener (probes and metrics)' : `listener ${key}`}`;
  const reason = REASONS[failed.code] ?? failed.code;
  const setting = `${listener.setting}.${failed.host !== undefined ? 'host' : 'port'}`;
  return new ListenError(`${name} cannot listen on ${listener.host}:${listener.port} (${setting}): ${reason}`, setting, { cause: error });
}
