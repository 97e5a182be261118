import type { IncomingMessage } from 'node:http';
import { AddressRanges, ClientAddresses, refusingLevel, unmapped } from './network';

function request(peer: string | undefined, forwardedFor?: string): IncomingMessage {
  return { headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }, socket: { remoteAddress: peer } } as unknown as IncomingMessage;
}

describe('AddressRanges', () => {
  const ranges = new AddressRanges(['203.0.113.7', '10.0.0.0/8', '2001:db8::/32', '::1']);

  it('holds single addresses and CIDR ranges of both families, and nothing that is no address', () => {
    expect(['203.0.113.7', '10.255.0.1', '2001:db8:1::9', '::1'].map((a) => ranges.has(a))).toEqual([true, true, true, true]);
    expect(['203.0.113.8', '11.0.0.1', '2001:db9::1', '::2', 'not-an-address', ''].map((a) => ranges.has(a))).toEqual([false, false, false, false, false, false]);
  });

  it('reads an IPv4-mapped IPv6 address as its IPv4 address', () => {
    expect(ranges.has('::ffff:10.1.2.3')).toBe(true);
    expect(ranges.has('::ffff:11.1.2.3')).toBe(false);
  });

  it('allows nothing when empty, and everything with 0.0.0.0/0 and ::/0', () => {
    expect(new AddressRanges([]).has('10.0.0.1')).toBe(false);
    const all = new AddressRanges(['0.0.0.0/0', '::/0']);
    expect(['10.0.0.1', '2001:db8::1'].every((a) => all.has(a))).toBe(true);
  });
});

describe('ClientAddresses', () => {
  it('is the peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(new ClientAddresses([]).of(request('198.51.100.7', '10.0.0.1'))).toBe('198.51.100.7');
  });

  it('walks X-Forwarded-For from the right past every trusted hop', () => {
    const clients = new ClientAddresses(['10.0.0.0/24', 'fd00::/8']);
    // client → 10.0.0.5 → 10.0.0.6 → ingress; the client claimed to be 192.0.2.1.
    expect(clients.of(request('10.0.0.6', '192.0.2.1, 198.51.100.7, 10.0.0.5'))).toBe('198.51.100.7');
    expect(clients.of(request('fd00::2', '2001:db8::9'))).toBe('2001:db8::9');
    // A trusted proxy that forwards no header is itself the client (a health check of its own).
    expect(clients.of(request('10.0.0.6'))).toBe('10.0.0.6');
    // Every hop trusted: the leftmost address is the client's.
    expect(clients.of(request('10.0.0.6', '10.0.0.7, 10.0.0.5'))).toBe('10.0.0.7');
  });

  it('gives IPv4-mapped addresses as IPv4, and no address for a gone peer or a forwarded entry that is none', () => {
    const clients = new ClientAddresses(['10.0.0.1']);
    expect(clients.of(request('::ffff:198.51.100.7'))).toBe('198.51.100.7');
    expect(clients.of(request('::ffff:10.0.0.1', '::ffff:192.0.2.4'))).toBe('192.0.2.4');
    expect(clients.of(request(undefined))).toBeUndefined();
    expect(clients.of(request('10.0.0.1', '192.0.2.4, garbage'))).toBeUndefined();
    expect(clients.of(request('10.0.0.1', '192.0.2.4:5123'))).toBeUndefined();
  });
});

describe('refusingLevel', () => {
  const org = { level: 'org' as const, ranges: new AddressRanges(['10.0.0.0/8']) };
  const key = { level: 'key' as const, ranges: new AddressRanges(['10.1.0.0/16']) };

  it('needs every list to hold the address: each level narrows', () => {
    expect(refusingLevel([], '192.0.2.1')).toBeUndefined();
    expect(refusingLevel([], undefined)).toBeUndefined();
    expect(refusingLevel([org, key], '10.1.2.3')).toBeUndefined();
    expect(refusingLevel([org, key], '10.2.0.1')).toBe(key);
    expect(refusingLevel([org, key], '192.0.2.1')).toBe(org);
    expect(refusingLevel([org], undefined)).toBe(org);
  });

  it('unmaps only IPv4-mapped addresses', () => {
    expect(unmapped('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(unmapped('::FFFF:10.0.0.1')).toBe('10.0.0.1');
    expect(unmapped('2001:db8::1')).toBe('2001:db8::1');
  });
});
