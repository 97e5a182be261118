import { createLogger } from '@openrouter/observability';
import type { Lease } from '@openrouter/service-runtime';
import { ActiveReplica } from './active-replica';

const logger = createLogger('active-replica-spec', 'silent');
const TTL = 1_500;

/** One lease key, as Redis keeps it: a holder and when it expires (on the faked clock). */
class LeaseKey {
  holder: string | undefined;
  expiresAt = 0;
  /** The holders whose commands fail (Redis unreachable from their replica). */
  readonly cutOff = new Set<string>();

  leaseFor(token: string): Lease {
    return {
      hold: async () => {
        if (this.cutOff.has(token)) throw new Error('connection is closed');
        const now = Date.now();
        if (this.holder === undefined || now >= this.expiresAt || this.holder === token) {
          this.holder = token;
          this.expiresAt = now + TTL;
          return true;
        }
        return false;
      },
      release: async () => {
        if (this.cutOff.has(token)) throw new Error('connection is closed');
        if (this.holder === token) this.holder = undefined;
      },
    };
  }
}

function replicaOn(key: LeaseKey, token: string) {
  const events: string[] = [];
  const replica = new ActiveReplica(
    key.leaseFor(token),
    async () => {
      events.push('start');
      return async () => void events.push('stop');
    },
    logger,
    { ttlMs: TTL, clock: () => Date.now() },
  );
  return { replica, events };
}

describe('ActiveReplica', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('lets one of two replicas on one lease start its work while the other stands by', async () => {
    const key = new LeaseKey();
    const a = replicaOn(key, 'a');
    const b = replicaOn(key, 'b');
    a.replica.begin();
    await jest.advanceTimersByTimeAsync(0);
    b.replica.begin();
    await jest.advanceTimersByTimeAsync(TTL * 4);
    expect(a.replica.current).toBe('active');
    expect(a.replica.isActive()).toBe(true);
    expect(a.events).toEqual(['start']);
    expect(b.replica.current).toBe('standby');
    expect(b.replica.isActive()).toBe(false);
    expect(b.events).toEqual([]);
    await a.replica.close();
    await b.replica.close();
  });

  it('hands over at the standby next attempt when the active one closes (stopped first, then the lease given up)', async () => {
    const key = new LeaseKey();
    const a = replicaOn(key, 'a');
    const b = replicaOn(key, 'b');
    a.replica.begin();
    await jest.advanceTimersByTimeAsync(0);
    b.replica.begin();
    await jest.advanceTimersByTimeAsync(TTL);
    await a.replica.close();
    expect(a.events).toEqual(['start', 'stop']);
    expect(key.holder).toBeUndefined();
    // The standby's next attempt (a third of the time to live), well before the key would have expired.
    await jest.advanceTimersByTimeAsync(TTL / 3);
    expect(b.replica.current).toBe('active');
    expect(b.events).toEqual(['start']);
    await b.replica.close();
  });

  it('gives the lease up when its work cannot start, so another replica may take it', async () => {
    const key = new LeaseKey();
    const failing = new ActiveReplica(
      key.leaseFor('a'),
      async () => {
        throw new Error('Kafka unreachable');
      },
      logger,
      { ttlMs: TTL, clock: () => Date.now() },
    );
    failing.begin();
    await jest.advanceTimersByTimeAsync(0);
    expect(failing.current).toBe('standby');
    expect(key.holder).toBeUndefined();
    const b = replicaOn(key, 'b');
    b.replica.begin();
    await jest.advanceTimersByTimeAsync(0);
    expect(b.replica.current).toBe('active');
    await failing.close();
    await b.replica.close();
  });

  it('stops the moment another token holds the key, and competes again', async () => {
    const key = new LeaseKey();
    const a = replicaOn(key, 'a');
    a.replica.begin();
    await jest.advanceTimersByTimeAsync(0);
    expect(a.replica.current).toBe('active');
    key.holder = 'intruder';
    await jest.advanceTimersByTimeAsync(TTL / 3);
    expect(a.replica.isActive()).toBe(false);
    expect(a.events).toEqual(['start', 'stop']);
    key.holder = undefined;
    await jest.advanceTimersByTimeAsync(TTL / 3);
    expect(a.events).toEqual(['start', 'stop', 'start']);
    await a.replica.close();
  });

  it('stops before the key can expire when Redis does not answer, so no other replica is ever active alongside it', async () => {
    const key = new LeaseKey();
    const a = replicaOn(key, 'a');
    const b = replicaOn(key, 'b');
    a.replica.begin();
    await jest.advanceTimersByTimeAsync(0);
    b.replica.begin();
    await jest.advanceTimersByTimeAsync(TTL);
    // Redis away for `a` only (a partition): `b` keeps trying and takes the key once it expires.
    key.cutOff.add('a');
    let overlap = false;
    for (let t = 0; t < TTL * 2; t += 10) {
      await jest.advanceTimersByTimeAsync(10);
      if (a.replica.isActive() && b.replica.isActive()) overlap = true;
    }
    expect(overlap).toBe(false);
    expect(a.events).toEqual(['start', 'stop']);
    expect(b.events).toEqual(['start']);
    key.cutOff.clear();
    await a.replica.close();
    await b.replica.close();
  });
});
