import type { LookupAddress } from 'node:dns';
import { Writable } from 'node:stream';
import { alertingSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { RouterTargets, routerAddressesOf, type HostLookup, type RouterDiscovery } from './router-addresses';

const silent = createLogger('router-addresses-spec', 'silent');
const resolveRouterTargets = (addresses: string[], discovery: RouterDiscovery) => new RouterTargets(addresses, discovery, silent, { lookupTimeoutMs: 5_000 }).resolve();

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

  describe('with a lookup that fails now and then', () => {
    const v4 = (...ips: string[]): LookupAddress[] => ips.map((address) => ({ address, family: 4 }));
    const notFound = (): Promise<never> => Promise.reject(Object.assign(new Error('getaddrinfo EAI_AGAIN router'), { code: 'EAI_AGAIN' }));
    /** Answers each lookup with the next of `answers` (the last one from then on). */
    const scripted = (...answers: Array<() => Promise<readonly LookupAddress[]>>): HostLookup & { calls: number } => {
      const lookup = Object.assign((): Promise<readonly LookupAddress[]> => (answers[Math.min(lookup.calls++, answers.length - 1)] ?? notFound)(), { calls: 0 });
      return lookup;
    };
    const logged = (): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } => {
      const lines: string[] = [];
      const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
      return { logger: createLogger('router-addresses-spec', 'info', sink), lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
    };
    const pod = (ip: string) => ({ address: `${ip}:50051`, serverName: 'router' });

    it('keeps the replicas a name last resolved to while its lookups fail, logging it once and when it resolves again', async () => {
      const lookup = scripted(
        () => Promise.resolve(v4('10.0.0.2', '10.0.0.1')),
        notFound,
        () => Promise.resolve([]),
        () => Promise.resolve(v4('10.0.0.3')),
      );
      const { logger, lines } = logged();
      const targets = new RouterTargets(['router:50051'], 'dns', logger, { lookupTimeoutMs: 5_000, lookup });
      expect(await targets.resolve()).toEqual([pod('10.0.0.1'), pod('10.0.0.2')]);
      // A failed lookup, then one with no address: the replicas stay, never the name as a replica of its own.
      expect(await targets.resolve()).toEqual([pod('10.0.0.1'), pod('10.0.0.2')]);
      expect(await targets.resolve()).toEqual([pod('10.0.0.1'), pod('10.0.0.2')]);
      expect(lines()).toEqual([
        expect.objectContaining({ level: 40, router: 'router:50051', reason: 'router does not resolve (EAI_AGAIN)', polled: ['10.0.0.1:50051', '10.0.0.2:50051'], msg: 'router name does not resolve; the replicas it last had stay polled' }),
      ]);
      // Resolved again, the name's replicas are those it has now.
      expect(await targets.resolve()).toEqual([pod('10.0.0.3')]);
      expect(lines()[1]).toEqual(expect.objectContaining({ level: 30, router: 'router:50051', failedLookups: 2, msg: 'router name resolves again' }));
      expect(lookup.calls).toBe(4);
    });

    it('keeps a name that has not resolved yet as one replica that does not answer, until it does', async () => {
      const lookup = scripted(notFound, notFound, () => Promise.resolve(v4('10.0.0.1')));
      const { logger, lines } = logged();
      const targets = new RouterTargets(['router:50051', '10.0.0.9:50051'], 'dns', logger, { lookupTimeoutMs: 5_000, lookup });
      const unresolved = { address: 'router:50051', unresolved: 'router does not resolve (EAI_AGAIN)' };
      expect(await targets.resolve()).toEqual([unresolved, { address: '10.0.0.9:50051' }]);
      expect(await targets.resolve()).toEqual([unresolved, { address: '10.0.0.9:50051' }]);
      expect(await targets.resolve()).toEqual([pod('10.0.0.1'), { address: '10.0.0.9:50051' }]);
      expect(lines().map((l) => l['msg'])).toEqual(['router name does not resolve; polled as a replica not answering', 'router name resolves again']);
    });

    it('counts a lookup that hangs as failed once its time is up, and waits on it rather than starting another', async () => {
      let settle: (addresses: LookupAddress[]) => void = () => undefined;
      const hung = (): Promise<readonly LookupAddress[]> => new Promise((resolve) => (settle = resolve));
      const lookup = scripted(() => Promise.resolve(v4('10.0.0.1')), hung, () => Promise.resolve(v4('10.0.0.2')));
      const targets = new RouterTargets(['router:50051'], 'dns', silent, { lookupTimeoutMs: 20, lookup });
      expect(await targets.resolve()).toEqual([pod('10.0.0.1')]);
      expect(await targets.resolve()).toEqual([pod('10.0.0.1')]);
      expect(await targets.resolve()).toEqual([pod('10.0.0.1')]);
      // The hung lookup was not started again, so lookups do not pile up on the resolver's threads.
      expect(lookup.calls).toBe(2);
      // Its late answer is taken by the poll waiting on it; the next starts a new lookup.
      const pending = targets.resolve();
      settle(v4('10.0.0.4'));
      expect(await pending).toEqual([pod('10.0.0.4')]);
      expect(await targets.resolve()).toEqual([pod('10.0.0.2')]);
      expect(lookup.calls).toBe(3);
    });
  });
});
