import { isIP } from 'node:net';
import { experimental, Metadata, status, type ChannelOptions } from '@grpc/grpc-js';
import { systemLookup } from './router-addresses';

/**
 * The scheme of the targets PollingDnsResolver resolves: `dns-poll:<host>:<port>`. grpc-js's own
 * `dns:` resolver looks a name up again only when a connection breaks or is renewed, so replicas
 * added behind a name would wait for `grpc.maxConnectionAgeMs` to get calls.
 */
export const POLLING_DNS_SCHEME = 'dns-poll';

/** The resolve interval used when a channel does not set one (`grpc.resolveIntervalMs`'s default). */
export const DEFAULT_RESOLVE_INTERVAL_MS = 30_000;

/**
 * Channel options read by the resolver. Under grpc-js's prefix for options kept from subchannels:
 * they are the resolver's alone, and a function would otherwise take part in subchannel sharing.
 */
export const RESOLVE_INTERVAL_OPTION = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.openrouter.resolve_interval_ms`;
export const ADDRESS_LOOKUP_OPTION = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.openrouter.address_lookup`;

/** One address a name stands for; `port`, when set, replaces the target's (test servers all listen on 127.0.0.1). */
export interface ResolvedAddress {
  address: string;
  port?: number;
}

/** Every address (A and AAAA records) of a host name; `dns.promises.lookup(host, { all: true })` by default. */
export type AddressLookup = (host: string) => Promise<readonly ResolvedAddress[]>;

type Endpoint = experimental.Endpoint;

/** `host` and `port` of a target without a scheme (`router:50051`, `dns:router:50051`) whose host is a DNS name. */
const DNS_HOST_PORT = /^(?:dns:(?:\/\/\/)?)?([A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?)(?::(\d{1,5}))?$/;

/** grpc-js's default port of a `dns:` target without one. */
const DEFAULT_PORT = 443;

/**
 * The polling target of a client address when its host is a DNS name (`router:50051` →
 * `dns-poll:router:50051`); undefined for an IP literal, another scheme (`ipv4:`, `unix:`) or a
 * form it does not know, which keep grpc-js's own resolvers.
 */
export function pollingTargetOf(address: string): string | undefined {
  const match = DNS_HOST_PORT.exec(address);
  const host = match?.[1];
  if (host === undefined || isIP(host) !== 0) return undefined;
  const port = match?.[2];
  return `${POLLING_DNS_SCHEME}:${host}:${port ?? DEFAULT_PORT}`;
}

/** A set of endpoints as one comparable value: the order DNS answers in does not change it. */
export function endpointSetKey(endpoints: readonly Endpoint[]): string {
  return [...new Set(endpoints.flatMap((e) => e.addresses.map((a) => experimental.subchannelAddressToString(a))))].sort().join(',');
}

/** The endpoints of a lookup's answer: one per distinct address, each with the target's port unless the answer gives one. */
export function endpointsOf(answer: readonly ResolvedAddress[], port: number): Endpoint[] {
  const seen = new Set<string>();
  const endpoints: Endpoint[] = [];
  for (const a of answer) {
    const address = { host: a.address, port: a.port ?? port };
    const key = experimental.subchannelAddressToString(address);
    if (seen.has(key)) continue;
    seen.add(key);
    endpoints.push({ addresses: [address] });
  }
  return endpoints;
}

const intervalOf = (options: ChannelOptions): number => {
  const value: unknown = options[RESOLVE_INTERVAL_OPTION];
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : DEFAULT_RESOLVE_INTERVAL_MS;
};

const lookupOf = (options: ChannelOptions): AddressLookup => {
  const value: unknown = options[ADDRESS_LOOKUP_OPTION];
  return typeof value === 'function' ? (value as AddressLookup) : systemLookup;
};

/**
 * A DNS resolver that looks its name up every `resolveIntervalMs` (0: only when grpc-js asks,
 * as its own does) and whenever grpc-js asks (a connection lost or renewed). It tells the channel
 * of the full address list only when the set changed, so round_robin is not rebuilt every
 * interval. A lookup that fails keeps the last good list: a DNS blip must not drop every replica;
 * the failure reaches the channel only while it never had a list. Its timer is unref'd, and
 * stopped by `destroy()` (the channel closed or gone idle); a lookup in flight then is ignored.
 */
export class PollingDnsResolver implements experimental.Resolver {
  private readonly host: string | undefined;
  private readonly port: number;
  private readonly intervalMs: number;
  private readonly lookup: AddressLookup;
  /** The set last reported and taken by the channel; undefined before the first and after an error. */
  private reported: string | undefined;
  private hasGoodList = false;
  private pending = false;
  /** Bumped by `destroy()`: a lookup of an earlier generation reports nothing. */
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly target: experimental.GrpcUri,
    private readonly listener: experimental.ResolverListener,
    options: ChannelOptions,
  ) {
    const hostPort = experimental.splitHostPort(target.path);
    this.host = hostPort?.host;
    this.port = hostPort?.port ?? DEFAULT_PORT;
    this.intervalMs = intervalOf(options);
    this.lookup = lookupOf(options);
  }

  /** The target's `host:port`, as grpc-js's DNS resolver gives: TLS verifies the server as the host, whatever address it has. */
  static getDefaultAuthority(target: experimental.GrpcUri): string {
    return target.path;
  }

  updateResolution(): void {
    if (this.intervalMs > 0 && this.timer === undefined) {
      this.timer = setInterval(() => this.resolve(), this.intervalMs);
      this.timer.unref();
    }
    this.resolve();
  }

  destroy(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.generation += 1;
    this.pending = false;
    this.reported = undefined;
    this.hasGoodList = false;
  }

  private resolve(): void {
    // A lookup that hangs is waited on, not started again at each tick.
    if (this.pending) return;
    const host = this.host;
    if (host === undefined) {
      setImmediate(() => this.fail(`Cannot resolve target ${experimental.uriToString(this.target)}: it is not host:port`));
      return;
    }
    this.pending = true;
    const generation = this.generation;
    // Never synchronously with updateResolution: grpc-js requires it (the lookup's promise settles later).
    void Promise.resolve()
      .then(() => this.lookup(host))
      .then(
        (answer) => {
          if (generation !== this.generation) return;
          this.pending = false;
          const endpoints = endpointsOf(answer, this.port);
          if (endpoints.length === 0) this.fail(`Name resolution for ${host} gave no address`);
          else this.report(endpoints);
        },
        (error: unknown) => {
          if (generation !== this.generation) return;
          this.pending = false;
          this.fail(`Name resolution failed for ${host}: ${error instanceof Error ? error.message : String(error)}`);
        },
      );
  }

  private report(endpoints: Endpoint[]): void {
    const key = endpointSetKey(endpoints);
    if (key === this.reported) return;
    const accepted = this.listener(experimental.statusOrFromValue(endpoints), {}, null, '');
    this.hasGoodList = true;
    // A list the channel refused is offered again at the next lookup.
    this.reported = accepted ? key : undefined;
  }

  private fail(details: string): void {
    if (this.hasGoodList) return;
    this.reported = undefined;
    this.listener(experimental.statusOrFromError({ code: status.UNAVAILABLE, details, metadata: new Metadata() }), {}, null, '');
  }
}

/** Makes `dns-poll:` targets resolvable in this process (grpc-js keeps one resolver class per scheme; registering again replaces it with itself). */
export function registerPollingDnsResolver(): void {
  experimental.registerResolver(POLLING_DNS_SCHEME, PollingDnsResolver);
}
