import { experimental, makeGenericClientConstructor, type Client } from '@grpc/grpc-js';
import { GrpcSecurity, type GrpcSecuritySettings } from './grpc-security';
import { endpointSetKey, endpointsOf, PollingDnsResolver, pollingTargetOf, RESOLVE_INTERVAL_OPTION, ADDRESS_LOOKUP_OPTION, type AddressLookup, type ResolvedAddress } from './polling-dns-resolver';

type Endpoint = experimental.Endpoint;

/** What the resolver told the channel, in order: a list of `host:port`, or an error's details. */
type Report = { endpoints: string[] } | { error: string };

/** A name whose answer the test sets; each lookup is counted, and settles when the test says so (or at once). */
class FakeName {
  answer: readonly ResolvedAddress[] | Error = [];
  lookups = 0;
  private held: Array<() => void> | undefined;

  readonly lookup: AddressLookup = async () => {
    this.lookups += 1;
    const answer = this.answer;
    if (this.held) await new Promise<void>((go) => this.held?.push(go));
    if (answer instanceof Error) throw answer;
    return answer;
  };

  hold(): void {
    this.held = [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const go of held) go();
  }
}

/** Lets a lookup that has settled reach the listener (the resolver reports from promise callbacks). */
const settled = (): Promise<void> => new Promise((done) => setImmediate(done));

function resolverOf(name: FakeName, accept: () => boolean = () => true, path = 'backends.test:50051'): { resolver: PollingDnsResolver; reports: Report[] } {
  const reports: Report[] = [];
  const listener: experimental.ResolverListener = (result) => {
    reports.push(result.ok ? { endpoints: result.value.flatMap((e) => e.addresses.map((a) => experimental.subchannelAddressToString(a))) } : { error: result.error.details ?? '' });
    return accept();
  };
  // An interval of 0: the specs drive each resolution through updateResolution, as grpc-js does when it asks.
  const resolver = new PollingDnsResolver({ scheme: 'dns-poll', path }, listener, { [RESOLVE_INTERVAL_OPTION]: 0, [ADDRESS_LOOKUP_OPTION]: name.lookup });
  return { resolver, reports };
}

async function resolveOnce(resolver: PollingDnsResolver): Promise<void> {
  resolver.updateResolution();
  await settled();
}

const ip = (address: string, port?: number): ResolvedAddress => (port === undefined ? { address } : { address, port });

describe('PollingDnsResolver: what it tells the channel', () => {
  it('reports the first list, then only a changed set: the same addresses in another order are no change', async () => {
    const name = new FakeName();
    const { resolver, reports } = resolverOf(name);
    name.answer = [ip('10.0.0.1'), ip('10.0.0.2')];
    await resolveOnce(resolver);
    expect(reports).toEqual([{ endpoints: ['10.0.0.1:50051', '10.0.0.2:50051'] }]);

    name.answer = [ip('10.0.0.2'), ip('10.0.0.1')];
    await resolveOnce(resolver);
    expect(reports).toHaveLength(1);

    name.answer = [ip('10.0.0.2'), ip('10.0.0.1'), ip('fd00::3')];
    await resolveOnce(resolver);
    expect(reports).toEqual([{ endpoints: ['10.0.0.1:50051', '10.0.0.2:50051'] }, { endpoints: ['10.0.0.2:50051', '10.0.0.1:50051', '[fd00::3]:50051'] }]);
    expect(name.lookups).toBe(3);
    resolver.destroy();
  });

  it('keeps the last good list when a lookup fails, reporting no error; an error is reported only while it never had a list', async () => {
    const name = new FakeName();
    const { resolver, reports } = resolverOf(name);
    name.answer = new Error('getaddrinfo ENOTFOUND backends.test');
    await resolveOnce(resolver);
    expect(reports).toEqual([{ error: 'Name resolution failed for backends.test: getaddrinfo ENOTFOUND backends.test' }]);

    name.answer = [ip('10.0.0.1')];
    await resolveOnce(resolver);
    name.answer = new Error('getaddrinfo EAI_AGAIN backends.test');
    await resolveOnce(resolver);
    name.answer = [];
    await resolveOnce(resolver);
    expect(reports.slice(1)).toEqual([{ endpoints: ['10.0.0.1:50051'] }]);

    // The channel still has that list: the same answer after the failures is no change.
    name.answer = [ip('10.0.0.1')];
    await resolveOnce(resolver);
    expect(reports).toHaveLength(2);
    resolver.destroy();
  });

  it('offers a list the channel refused again at the next lookup', async () => {
    const name = new FakeName();
    let accepts = false;
    const { resolver, reports } = resolverOf(name, () => accepts);
    name.answer = [ip('10.0.0.1')];
    await resolveOnce(resolver);
    accepts = true;
    await resolveOnce(resolver);
    await resolveOnce(resolver);
    expect(reports).toEqual([{ endpoints: ['10.0.0.1:50051'] }, { endpoints: ['10.0.0.1:50051'] }]);
    resolver.destroy();
  });

  it('starts no second lookup while one is in flight, and reports nothing of one in flight at destroy()', async () => {
    const name = new FakeName();
    const { resolver, reports } = resolverOf(name);
    name.answer = [ip('10.0.0.1')];
    name.hold();
    resolver.updateResolution();
    resolver.updateResolution();
    await settled();
    expect(name.lookups).toBe(1);
    resolver.destroy();
    name.release();
    await settled();
    expect(reports).toEqual([]);

    // After destroy() it starts over: the next resolution is reported, even with the same set.
    await resolveOnce(resolver);
    expect(reports).toEqual([{ endpoints: ['10.0.0.1:50051'] }]);
    resolver.destroy();
  });

  it('uses the port the lookup gives, else the target’s (443 without one), and the target’s host:port as the authority', async () => {
    expect(endpointsOf([ip('127.0.0.1', 4001), ip('127.0.0.1', 4001), ip('127.0.0.1')], 50051).map((e) => experimental.endpointToString(e))).toEqual(['[127.0.0.1:4001]', '[127.0.0.1:50051]']);
    const name = new FakeName();
    name.answer = [ip('10.0.0.1')];
    const { resolver, reports } = resolverOf(name, () => true, 'backends.test');
    await resolveOnce(resolver);
    expect(reports).toEqual([{ endpoints: ['10.0.0.1:443'] }]);
    resolver.destroy();
    expect(PollingDnsResolver.getDefaultAuthority({ scheme: 'dns-poll', path: 'backends.test:50051' })).toBe('backends.test:50051');
  });

  it('compares endpoint sets whatever their order or repeats', () => {
    const list = (...addresses: string[]): Endpoint[] => addresses.map((host) => ({ addresses: [{ host, port: 1 }] }));
    expect(endpointSetKey(list('10.0.0.2', '10.0.0.1'))).toBe(endpointSetKey(list('10.0.0.1', '10.0.0.2', '10.0.0.1')));
    expect(endpointSetKey(list('10.0.0.1'))).not.toBe(endpointSetKey(list('10.0.0.1', '10.0.0.2')));
  });
});

describe('which client addresses are resolved by polling', () => {
  it('DNS names, with or without dns:, and not IP literals, other schemes or other forms', () => {
    expect(pollingTargetOf('router:50051')).toBe('dns-poll:router:50051');
    expect(pollingTargetOf('adapter-openai.open-router.svc.cluster.local:50061')).toBe('dns-poll:adapter-openai.open-router.svc.cluster.local:50061');
    expect(pollingTargetOf('dns:billing:50071')).toBe('dns-poll:billing:50071');
    expect(pollingTargetOf('dns:///billing:50071')).toBe('dns-poll:billing:50071');
    expect(pollingTargetOf('router')).toBe('dns-poll:router:443');
    for (const address of ['127.0.0.1:50051', '[::1]:50051', '::1', 'ipv4:127.0.0.1:1,127.0.0.1:2', 'unix:/run/router.sock', 'dns://8.8.8.8/router:50051', 'router:port']) {
      expect([address, pollingTargetOf(address)]).toEqual([address, undefined]);
    }
  });

  const NO_TLS = { cert: '', key: '', ca: '', serverNameOverride: '' };
  const Calls = makeGenericClientConstructor({}, 'Calls');
  const targetOf = (settings: Partial<GrpcSecuritySettings>, address: string): string => {
    // No call is made, so no connection: the channel's target is what it would dial.
    const client = GrpcSecurity.fromConfig({ auth: { token: '' }, tls: NO_TLS, ...settings }).client(Calls, address, { 'grpc.enable_http_proxy': 0 }) as Client;
    try {
      return client.getChannel().getTarget();
    } finally {
      client.close();
    }
  };

  it('round_robin clients of a DNS name go through it; pick_first, IP targets and an interval of 0 keep grpc-js’s resolvers', () => {
    expect(targetOf({ loadBalancing: 'round_robin' }, 'router:50051')).toBe('dns-poll:router:50051');
    expect(targetOf({ loadBalancing: 'round_robin', resolveIntervalMs: 0 }, 'router:50051')).toBe('dns:router:50051');
    expect(targetOf({ loadBalancing: 'pick_first' }, 'router:50051')).toBe('dns:router:50051');
    expect(targetOf({}, 'router:50051')).toBe('dns:router:50051');
    expect(targetOf({ loadBalancing: 'round_robin' }, '127.0.0.1:50051')).toBe('dns:127.0.0.1:50051');
    expect(targetOf({ loadBalancing: 'round_robin' }, 'ipv4:127.0.0.1:1,127.0.0.1:2')).toBe('ipv4:127.0.0.1:1,127.0.0.1:2');
  });
});
