import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

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

/**
 * The router replicas to poll now. With `none`, each configured address is one router: polled on
 * one gRPC channel, where whichever replica its load balancing picks answers. With `dns`, the host
 * of each address is resolved as the system resolves names (getaddrinfo: DNS and the hosts file),
 * and each address it has is a replica of its own: a headless Kubernetes Service answers with one
 * address per ready pod, compose DNS with one per container of a scaled service. A name with both
 * IPv4 and IPv6 addresses counts its IPv4 ones only, so a dual-stack pod is not counted twice. A
 * name that does not resolve (or has no address) is kept as one replica that does not answer:
 * alerting must not read "no replicas" as "all healthy".
 */
export async function resolveRouterTargets(addresses: readonly string[], discovery: RouterDiscovery): Promise<RouterTarget[]> {
  const found = new Map<string, RouterTarget>();
  const resolved = await Promise.all(addresses.map((address) => (discovery === 'dns' ? resolveOne(address) : [{ address }])));
  for (const target of resolved.flat()) if (!found.has(target.address)) found.set(target.address, target);
  return [...found.values()];
}

async function resolveOne(address: string): Promise<RouterTarget[]> {
  const { host, port } = split(address);
  if (isIP(host) !== 0) return [{ address: join(host, port) }];
  try {
    const all = await lookup(host, { all: true });
    const v4 = all.filter((a) => a.family === 4);
    const chosen = [...new Set((v4.length > 0 ? v4 : all).map((a) => a.address))].sort();
    if (chosen.length === 0) return [{ address, unresolved: `${host} has no address` }];
    return chosen.map((ip) => ({ address: join(ip, port), serverName: host }));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return [{ address, unresolved: `${host} does not resolve${code ? ` (${code})` : ''}` }];
  }
}
