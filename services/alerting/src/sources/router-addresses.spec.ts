import { alertingSchema } from '@openrouter/config';
import { resolveRouterTargets, routerAddressesOf } from './router-addresses';

const problems = (router: string): string[] => {
  const result = alertingSchema.safeParse({ router });
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('router addresses', () => {
  it('takes one address, as before, or a comma-separated list of host:port (IPv6 in brackets)', () => {
    expect(['', 'router:50051', 'router-0.router:50051, router-1.router:50051', '10.0.0.5:50051,[fd00::5]:50051'].map(problems)).toEqual([[], [], [], []]);
    expect(routerAddressesOf('router:50051')).toEqual(['router:50051']);
    expect(routerAddressesOf(' a:1, b:2 ')).toEqual(['a:1', 'b:2']);
    expect(routerAddressesOf('')).toEqual([]);
    const refused = ['router', 'router:50051,', 'a:1,,b:2', 'a:1;b:2', 'fd00::5:50051', 'a:1 b:2'];
    expect(refused.map(problems)).toEqual(refused.map(() => ['router: must be host:port, a comma-separated list of them, or empty']));
    expect(alertingSchema.parse({}).routerDiscovery).toBe('none');
    expect(alertingSchema.safeParse({ routerDiscovery: 'srv' }).success).toBe(false);
  });

  it('without discovery, polls each configured address as one router, a name left to its gRPC channel', async () => {
    expect(await resolveRouterTargets(['localhost:50051', 'router.invalid:50051', 'localhost:50051'], 'none')).toEqual([{ address: 'localhost:50051' }, { address: 'router.invalid:50051' }]);
  });

  it('resolves a name to its addresses at each poll with dns discovery, to be polled one by one and verified as the name', async () => {
    // The hosts file answers localhost with 127.0.0.1 (and often ::1 too: IPv4 is kept, as a dual-stack pod counts once).
    expect(await resolveRouterTargets(['localhost:50051'], 'dns')).toEqual([{ address: '127.0.0.1:50051', serverName: 'localhost' }]);
    // Addresses need no lookup; the same replica named twice is polled once.
    expect(await resolveRouterTargets(['127.0.0.1:50051', '[::1]:50052', 'localhost:50051'], 'dns')).toEqual([{ address: '127.0.0.1:50051' }, { address: '[::1]:50052' }]);
  });

  it('keeps a name that does not resolve as one replica that does not answer, never as no replicas', async () => {
    // .invalid never resolves (RFC 6761).
    expect(await resolveRouterTargets(['router.invalid:50051', 'localhost:50052'], 'dns')).toEqual([
      { address: 'router.invalid:50051', unresolved: expect.stringMatching(/^router\.invalid does not resolve/) },
      { address: '127.0.0.1:50052', serverName: 'localhost' },
    ]);
  });
});
