import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import proxyaddr from 'proxy-addr';

/*
 * Network allow lists: which client addresses may use a key (its organisation's, team's, project's
 * and its own `policy.allowedIps`) or the admin API (`access.admin.allowedIps`), and which address
 * a request comes from when load balancers stand in front of ingress (`ingress.trustedProxies`).
 */

/** A set of IP addresses and CIDR ranges, as validated by the configuration's `ipRange`. */
export class AddressRanges {
  private readonly list = new BlockList();

  constructor(readonly ranges: readonly string[]) {
    for (const range of ranges) {
      const slash = range.indexOf('/');
      const address = slash === -1 ? range : range.slice(0, slash);
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (slash === -1) this.list.addAddress(address, family);
      else this.list.addSubnet(address, Number(range.slice(slash + 1)), family);
    }
  }

  /** Whether `address` is in the set. An IPv4 address written IPv4-mapped (`::ffff:10.0.0.1`, a dual-stack socket's) is the IPv4 address. */
  has(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/**
 * The address a request comes from: its connection's peer, unless that peer is a trusted proxy;
 * then `X-Forwarded-For` is read from its right end, each trusted hop skipped, and the first
 * address that is not a trusted proxy's is the client's (as the rightmost entries are the ones the
 * trusted proxies appended, a client cannot forge them by sending a header of its own). An entry
 * that is not an IP address ends the walk there: the address is then unknown, as is a peer already
 * gone. An IPv4-mapped address is given as IPv4.
 */
export class ClientAddresses {
  private readonly trusted: AddressRanges;

  constructor(trustedProxies: readonly string[]) {
    this.trusted = new AddressRanges(trustedProxies);
  }

  of(request: IncomingMessage): string | undefined {
    if (request.socket.remoteAddress === undefined) return undefined;
    const address = proxyaddr(request, (hop) => this.trusted.has(hop));
    return isIP(address) === 0 ? undefined : unmapped(address);
  }
}

/** `::ffff:203.0.113.7` → `203.0.113.7`; any other address as it is. */
export function unmapped(address: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return v4?.[1] ?? address;
}

/** A level of a key's tenancy (or the key itself) with an allow list of its own. */
export interface NetworkLevel {
  level: 'org' | 'team' | 'project' | 'key';
  ranges: AddressRanges;
}

/**
 * The first level whose allow list refuses `address` (every list that is set must allow it: each
 * level can only narrow), or undefined when all allow it. An unknown address is refused by any list.
 */
export function refusingLevel(levels: readonly NetworkLevel[], address: string | undefined): NetworkLevel | undefined {
  return levels.find((l) => address === undefined || !l.ranges.has(address));
}
