import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '@openrouter/observability';

/** How the configured router addresses become the replicas polled (`observability.alerting.routerDiscovery`). */
export type RouterDiscovery = 'none' | 'dns';

/** A router replica to poll. */
export interface RouterTarget {
  /** The address polled (`host:port`, `[IPv6]:port`); for a name that did not resolve, the configured address. */
  address: string;
  /**
   * The host name a certificate must be issued for, when `address` is an IP address a configured
   * name resolved to (TLS still verifies the router as that name, not as its pod's address).
   */
  serverName?: string;
  /** Why the configured name gave no address to poll: the replica counts as not answering. */
  unresolved?: string;
}

/** The addresses of `observability.alerting.router`: a comma-separated list of `host:port`. */
export function routerAddressesOf(value: string): string[] {
  return value
    .split(',')
    .map((address) => address.trim())
    .filter((address) => address !== '');
}

/** `host` and `port` of `host:port` or `[IPv6]:port` (the configuration has checked the form). */
function split(address: string): { host: string; port: string } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  return { host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port: address.slice(colon + 1) };
}

const join = (ip: string, port: string): string => (isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`);

/** Resolves a host name to its addresses, as `dns.promises.lookup` with `all: true` does. */
export type HostLookup = (host: string) => Promise<readonly LookupAddress[]>;

/** The system resolver (getaddrinfo: DNS and the hosts file). */
export const systemLookup: HostLookup = (host) => lookup(host, { all: true });

export interface RouterTargetsOptions {
  /** How long a name's lookup may take before it counts as failed. */
  lookupTimeoutMs: number;
  lookup?: HostLookup;
}

/** A configured name's lookups: the replicas the last one that succeeded gave, and what is under way. */
interface NameState {
  last: RouterTarget[] | undefined;
  /** Lookups failed in a row since the last that succeeded. */
  failures: number;
  /** The lookup not settled yet: one that hangs is waited on again, not started again. */
  pending: Promise<readonly LookupAddress[]> | undefined;
}

/**
 * The router replicas to poll at each poll. With `none`, each configured address is one router:
 * polled on one gRPC channel, where whichever replica its load balancing picks answers. With
 * `dns`, the host of each address is resolved at each poll, and each address it has is a replica
 * of its own: a headless Kubernetes Service answers with one address per ready pod, compose DNS
 * with one per container of a scaled service. A name with both IPv4 and IPv6 addresses counts its
 * IPv4 ones only, so a dual-stack pod is not counted twice.
 *
 * A lookup that fails (an error, no address, or no answer within `lookupTimeoutMs`) keeps the
 * replicas the name last resolved to, until a lookup succeeds again: a DNS blip must not drop
 * them, or each replica's state (since when it has not answered) would go with them and an alert
 * on a dead replica would start over at every blip. A name that never resolved is kept as one
 * replica that does not answer: alerting must not read "no replicas" as "all healthy".
 */
export class RouterTargets {
  private readonly names = new Map<string, NameState>();
  private readonly lookup: HostLookup;

  constructor(
    private readonly addresses: readonly string[],
    private readonly discovery: RouterDiscovery,
    /** Where a name that stops resolving (and resolves again) is told; nowhere when undefined. */
    private readonly logger: Logger | undefined,
    private readonly options: RouterTargetsOptions,
  ) {
    this.lookup = options.lookup ?? systemLookup;
  }

  async resolve(): Promise<RouterTarget[]> {
    const found = new Map<string, RouterTarget>();
    const resolved = await Promise.all(this.addresses.map((address) => (this.discovery === 'dns' ? this.resolveOne(address) : [{ address }])));
    for (const target of resolved.flat()) if (!found.has(target.address)) found.set(target.address, target);
    return [...found.values()];
  }

  private async resolveOne(address: string): Promise<RouterTarget[]> {
    const { host, port } = split(address);
    if (isIP(host) !== 0) return [{ address: join(host, port) }];
    const state = this.names.get(address) ?? { last: undefined, failures: 0, pending: undefined };
    this.names.set(address, state);
    let failure: string;
    try {
      const all = await this.lookupWithin(host, state);
      const v4 = all.filter((a) => a.family === 4);
      const chosen = [...new Set((v4.length > 0 ? v4 : all).map((a) => a.address))].sort();
      if (chosen.length > 0) {
        if (state.failures > 0) this.logger?.info({ router: address, failedLookups: state.failures }, 'router name resolves again');
        state.failures = 0;
        state.last = chosen.map((ip) => ({ address: join(ip, port), serverName: host }));
        return state.last;
      }
      failure = `${host} has no address`;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      failure = `${host} does not resolve${code ? ` (${code})` : ''}`;
    }
    state.failures += 1;
    if (state.failures === 1) {
      const polled = state.last?.map((t) => t.address) ?? [];
      this.logger?.warn({ router: address, reason: failure, polled }, polled.length > 0 ? 'router name does not resolve; the replicas it last had stay polled' : 'router name does not resolve; polled as a replica not answering');
    }
    return state.last ?? [{ address, unresolved: failure }];
  }

  /** The name's addresses, or a failure once `lookupTimeoutMs` has passed (a hung lookup goes on, awaited by the next poll). */
  private lookupWithin(host: string, state: NameState): Promise<readonly LookupAddress[]> {
    const pending = (state.pending ??= this.lookup(host).finally(() => (state.pending = undefined)));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`lookup of ${host} timed out`), { code: 'ETIMEOUT' })), this.options.lookupTimeoutMs);
    });
    return Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
  }
}
