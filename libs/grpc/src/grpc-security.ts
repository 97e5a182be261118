import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import {
  credentials,
  InterceptingCall,
  Metadata,
  ServerCredentials,
  ServerInterceptingCall,
  status,
  type ChannelCredentials,
  type ClientOptions,
  type Interceptor,
  type ServerInterceptor,
  type ServerOptions,
} from '@grpc/grpc-js';
import { ConfigError, type GatewayConfig } from '@openrouter/config';
import { CHANNEL_OPTIONS } from './grpc-server';
import { DEFAULT_RESOLVE_INTERVAL_MS, pollingTargetOf, registerPollingDnsResolver, RESOLVE_INTERVAL_OPTION } from './polling-dns-resolver';

/** The settings read here: `grpc.auth`, `grpc.tls`, `grpc.loadBalancing`, `grpc.resolveIntervalMs` and `grpc.maxConnectionAgeMs` of the configuration. */
export interface GrpcSecuritySettings {
  /** `acceptedTokens`: tokens the servers take besides `token` (a rotation in progress). */
  auth: { token: string; acceptedTokens?: readonly string[] };
  tls: GatewayConfig['grpc']['tls'];
  /** How clients spread calls over a peer's addresses; `pick_first` when unset (grpc-js's own default). */
  loadBalancing?: GatewayConfig['grpc']['loadBalancing'];
  /** How long servers keep a connection before asking the client to reconnect; never when unset or 0. */
  maxConnectionAgeMs?: number;
  /**
   * How often a round_robin client looks a peer's DNS name up again, to call replicas added since
   * (30 s when unset); 0: only when a connection breaks or is renewed (grpc-js's own resolver).
   */
  resolveIntervalMs?: number;
}

/** Call metadata that carries the shared service token, as `Bearer <token>`. */
export const SERVICE_TOKEN_HEADER = 'authorization';

/** The PEM files of `grpc.tls`, read; a file not named is absent. */
interface TlsMaterial {
  cert: Buffer | undefined;
  key: Buffer | undefined;
  ca: Buffer | undefined;
  serverNameOverride: string;
}

type ClientConstructor<C> = new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>) => C;

interface ConnectionPolicy {
  loadBalancing: 'round_robin' | 'pick_first';
  maxConnectionAgeMs: number;
  resolveIntervalMs: number;
}

/**
 * The channel's load-balancing policy, as a service config of our own: a service config published
 * in DNS (TXT records grpc-js would otherwise look up) is not taken, so the name's owner cannot
 * change how the gateway's calls are spread.
 */
function balancing(policy: ConnectionPolicy['loadBalancing']): Partial<ClientOptions> {
  return { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ [policy]: {} }] }), 'grpc.service_config_disable_resolution': 1 };
}

/**
 * The target a client dials, and the options its resolver needs. A round_robin client of a DNS
 * name goes through PollingDnsResolver, which looks the name up every `resolveIntervalMs`, so
 * replicas added behind it get calls within about that long, not at the next connection renewal.
 * IP literals, other schemes, pick_first (one connection anyway) and an interval of 0 keep
 * grpc-js's own resolvers, which look the name up only when a connection breaks or is renewed.
 */
function resolution(address: string, policy: ConnectionPolicy): { target: string; options: Partial<ClientOptions> } {
  const polling = policy.loadBalancing === 'round_robin' && policy.resolveIntervalMs > 0 ? pollingTargetOf(address) : undefined;
  if (polling === undefined) return { target: address, options: {} };
  registerPollingDnsResolver();
  return { target: polling, options: { [RESOLVE_INTERVAL_OPTION]: policy.resolveIntervalMs } };
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * Client interceptor: every call carries the token. (gRPC's call credentials would do the same,
 * but grpc-js sends them over TLS channels only, and the token also guards plaintext ones.)
 */
function tokenInterceptor(token: string): Interceptor {
  const value = `Bearer ${token}`;
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(SERVICE_TOKEN_HEADER, value);
        next(metadata, listener);
      },
    });
}

/**
 * Server interceptor: a call without the token is answered UNAUTHENTICATED from its metadata, so
 * the handler never sees it (nor its message). The token is compared in constant time (digests of
 * equal length) and taken out of the metadata the handler gets, so no handler can log or forward it.
 */
function tokenCheck(tokens: readonly string[]): ServerInterceptor {
  const expected = tokens.map((token) => digest(`Bearer ${token}`));
  // Every accepted token is compared, whichever matches: the time taken says nothing of which.
  const accepts = (value: string): boolean => {
    const given = digest(value);
    return expected.reduce((ok, e) => timingSafeEqual(given, e) || ok, false);
  };
  return (_method, call) =>
    new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, nextMetadata) {
            const given = metadata.get(SERVICE_TOKEN_HEADER);
            const value = given.length === 1 ? given[0] : undefined;
            if (typeof value === 'string' && accepts(value)) {
              metadata.remove(SERVICE_TOKEN_HEADER);
              nextMetadata(metadata);
            } else {
              call.sendStatus({ code: status.UNAUTHENTICATED, details: 'This call lacks a valid service token (grpc.auth.token).', metadata: new Metadata() });
            }
          },
        });
      },
    });
}

function readTls(tls: GrpcSecuritySettings['tls'], read: (path: string) => Buffer): TlsMaterial | undefined {
  if (tls.cert === '' && tls.key === '' && tls.ca === '') return undefined;
  const problems: string[] = [];
  const file = (key: 'cert' | 'key' | 'ca'): Buffer | undefined => {
    const path = tls[key];
    if (path === '') return undefined;
    try {
      return read(resolve(path));
    } catch (error) {
      problems.push(`grpc.tls.${key}: cannot read "${path}": ${(error as Error).message}`);
      return undefined;
    }
  };
  const material = { cert: file('cert'), key: file('key'), ca: file('ca'), serverNameOverride: tls.serverNameOverride };
  if (problems.length === 0) {
    // Bad PEM or a key that is not the certificate's fails here, naming the files, not at the first call.
    try {
      createSecureContext({ cert: material.cert, key: material.key, ca: material.ca });
    } catch (error) {
      const named = (['cert', 'key', 'ca'] as const).filter((k) => tls[k] !== '').map((k) => `${k} "${tls[k]}"`);
      problems.push(`grpc.tls: the files cannot be used together (${named.join(', ')}): ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError('grpc.tls', problems);
  return material;
}

/**
 * How this process's gRPC servers and clients protect the calls between services: the shared
 * service token (`grpc.auth.token`) and TLS (`grpc.tls`, mutual with a CA). One per service,
 * made at its start from the configuration; the TLS files are read then. With neither set,
 * plaintext and no token, as before. It also carries how those connections are spread and
 * renewed (`grpc.loadBalancing`, `grpc.resolveIntervalMs`, `grpc.maxConnectionAgeMs`), as every client and server of the
 * process is made through it.
 */
export class GrpcSecurity {
  private constructor(
    private readonly token: string,
    /** What the servers take: the token, then the others accepted during a rotation. */
    private readonly accepted: readonly string[],
    private readonly tls: TlsMaterial | undefined,
    private readonly connections: ConnectionPolicy,
  ) {}

  /** From the configuration; a TLS file that is missing, unreadable or unusable is a ConfigError naming it. */
  static fromConfig(settings: GrpcSecuritySettings, read: (path: string) => Buffer = readFileSync): GrpcSecurity {
    const { token, acceptedTokens = [] } = settings.auth;
    const accepted = token === '' ? [] : [token, ...acceptedTokens.filter((t) => t !== '' && t !== token)];
    const connections = {
      loadBalancing: settings.loadBalancing ?? 'pick_first',
      maxConnectionAgeMs: settings.maxConnectionAgeMs ?? 0,
      resolveIntervalMs: settings.resolveIntervalMs ?? DEFAULT_RESOLVE_INTERVAL_MS,
    };
    return new GrpcSecurity(token, accepted, readTls(settings.tls, read), connections);
  }

  /**
   * Why a server listening on `host` takes calls from anyone who reaches it, or undefined: no
   * service token (`grpc.auth.token` empty) and no client certificate required (`grpc.tls.ca`),
   * on a host other than loopback. Such a listener makes provider calls (an adapter, the router)
   * or answers any tenant's reports (billing) for whoever connects.
   */
  exposure(host: string): string | undefined {
    if (this.accepted.length > 0 || this.tls?.ca !== undefined) return undefined;
    const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
    if (bare === 'localhost' || bare === '::1' || /^127\./.test(bare)) return undefined;
    return `the gRPC listener on ${host} takes calls without a service token (grpc.auth.token is empty, OPENROUTER_INTERNAL_TOKEN in the shipped files) and without client certificates (grpc.tls.ca): anyone who can reach it can make provider calls or read any tenant's reports. Set a token of your own (\`openssl rand -hex 32\`), the same in every service`;
  }

  /** The server's credentials: TLS with `cert` and `key`, requiring a client certificate signed by `ca` when it is set. */
  serverCredentials(): ServerCredentials {
    const tls = this.tls;
    if (!tls) return ServerCredentials.createInsecure();
    if (!tls.cert || !tls.key) throw new ConfigError('grpc.tls', ['grpc.tls.cert, grpc.tls.key: a gRPC server needs its certificate and key when TLS is on (grpc.tls.ca is set)']);
    return ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.ca !== undefined);
  }

  /**
   * The server's options: the token check when a token is set; with `maxConnectionAgeMs`, a
   * connection is asked to go away (HTTP/2 GOAWAY, ±10 % jitter) once that old. The calls in flight
   * on it finish, however long they stream, and the client's next calls open a new connection
   * after resolving the server's name again, so replicas added since get their share.
   */
  serverOptions(): ServerOptions {
    const options: ServerOptions = this.accepted.length === 0 ? {} : { interceptors: [tokenCheck(this.accepted)] };
    if (this.connections.maxConnectionAgeMs > 0) options['grpc.max_connection_age_ms'] = this.connections.maxConnectionAgeMs;
    return options;
  }

  /**
   * A gRPC client of `address` (a ts-proto client constructor, or makeGenericClientConstructor's):
   * TLS verifying the server against `ca` (else the system's roots) under the address's host name
   * or `serverNameOverride`, presenting `cert` and `key` when set; the token on every call. `options`
   * add to CHANNEL_OPTIONS, their interceptors (tracing) run before the token's. With round_robin,
   * a DNS name is looked up again every `resolveIntervalMs` (see `resolution`).
   */
  client<C>(Client: ClientConstructor<C>, address: string, options: Partial<ClientOptions> = {}): C {
    const { target, options: resolverOptions } = resolution(address, this.connections);
    return new Client(target, this.channelCredentials(), this.clientOptions({ ...resolverOptions, ...options }));
  }

  private channelCredentials(): ChannelCredentials {
    const tls = this.tls;
    if (!tls) return credentials.createInsecure();
    return credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
  }

  private clientOptions(options: Partial<ClientOptions>): Partial<ClientOptions> {
    const merged: Partial<ClientOptions> = { ...CHANNEL_OPTIONS, ...balancing(this.connections.loadBalancing), ...options };
    if (this.tls && this.tls.serverNameOverride !== '') merged['grpc.ssl_target_name_override'] = this.tls.serverNameOverride;
    if (this.token !== '') merged.interceptors = [...(options.interceptors ?? []), tokenInterceptor(this.token)];
    return merged;
  }
}
