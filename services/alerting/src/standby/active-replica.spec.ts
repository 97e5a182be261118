import { createLogger } from '@openrouter/observability';
import type { Lease, LeaseHold } from '@openrouter/service-runtime';
import { ActiveReplica } from './active-replica';

const logger = createLogger('active-replica-spec', 'silent');
const TTL = 1_500;
/** How long an active replica counts on a renewal: two thirds of the time to live. */
const SAFE = 1_000;

/** One lease key, as Redis keeps it: a holder and when it expires (on the faked clock). */
class LeaseKey {
  holder: string | undefined;
  expiresAt = 0;
  /** The holders whose commands fail (Redis unreachable from their replica). */
  readonly cutOff = new Set<string>();

  /** Set when the last holder gave the key up (RedisLease's `:released` mark). */
  released = false;

  leaseFor(token: string): Lease {
    const holdState = async (): Promise<LeaseHold> => {
      if (this.cutOff.has(token)) throw new Error('connection is closed');
      const now = Date.now();
      if (this.holder === token && now < this.expiresAt) {
        this.expiresAt = now + TTL;
        return 'renewed';
      }
      if (this.holder === undefined || now >= this.expiresAt) {
        this.holder = token;
        this.expiresAt = now + TTL;
        const handedOver = this.released;
        this.released = false;
        return handedOver ? 'handed-over' : 'taken';
      }
      return 'held-by-other';
    };
    return {
      holdState,
      hold: async () => (await holdState()) !== 'held-by-other',
      release: async () => {
        if (this.cutOff.has(token)) throw new Error('connection is closed');
        if (this.holder === token) {
          this.holder = undefined;
          this.released = true;
        }
      },
    };
  }

  /** The key lost without a release: evicted, flushed, a failover to a replica without it. */
  lose(): void {
    this.holder = undefined;
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

/** Two replicas on one lease key, `a` begun first, `b` `lagMs` later. */
async function twoReplicas(lagMs = 0) {
  const key = new LeaseKey();
  const a = replicaOn(key, 'a');
  const b = replicaOn(key, 'b');
  a.replica.begin();
  await jest.advanceTimersByTimeAsync(lagMs);
  b.replica.begin();
  return { key, a, b };
}

describe('ActiveReplica', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('lets one of two replicas on one lease start its work while the other stands by', async () => {
    const { a, b } = await twoReplicas();
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
    const { key, a, b } = await twoReplicas();
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
    // A lease found free (not handed over) is held a safe span before the replica starts.
    await jest.advanceTimersByTimeAsync(SAFE);
    expect(failing.current).toBe('standby');
    expect(key.holder).toBeUndefined();
    const b = replicaOn(key, 'b');
    b.replica.begin();
    await jest.advanceTimersByTimeAsync(0);
    // Given up, so handed over: b starts at once.
    expect(b.replica.current).toBe('active');
    await failing.close();
    await b.replica.close();
  });

  it('stops the moment another token holds the key, and competes again', async () => {
    const key = new LeaseKey();
    const a = replicaOn(key, 'a');
    a.replica.begin();
    await jest.advanceTimersByTimeAsync(SAFE);
    expect(a.replica.current).toBe('active');
    key.holder = 'intruder';
    await jest.advanceTimersByTimeAsync(TTL / 3);
    expect(a.replica.isActive()).toBe(false);
    expect(a.events).toEqual(['start', 'stop']);
    key.holder = undefined;
    await jest.advanceTimersByTimeAsync(TTL / 3 + SAFE);
    expect(a.events).toEqual(['start', 'stop', 'start']);
    await a.replica.close();
  });

  it('a replica that finds the key lost (evicted, flushed, a failover) waits out the previous holder before starting: never two active', async () => {
    // b tries half a period after a renews, so it finds the key gone before a's next renewal does.
    const { key, a, b } = await twoReplicas(TTL / 6);
    await jest.advanceTimersByTimeAsync(TTL * 2 - TTL / 6 + 1);
    expect(a.replica.current).toBe('active');
    key.lose();
    let overlap = false;
    for (let t = 0; t < TTL * 4; t += 10) {
      await jest.advanceTimersByTimeAsync(10);
      if (a.replica.isActive() && b.replica.isActive()) overlap = true;
    }
    expect(overlap).toBe(false);
    // One of them ends up active, the other standing by.
    expect([a.replica.current, b.replica.current].sort()).toEqual(['active', 'standby']);
    await a.replica.close();
    await b.replica.close();
  });

  it('ignores the reply to a hold sent before it gave the lease up (its start failed): never active again on a stale answer', async () => {
    const key = new LeaseKey();
    const base = key.leaseFor('a');
    let holds = 0;
    let replyLate: (() => void) | undefined;
    const lease: Lease = {
      ...base,
      holdState: async () => {
        holds += 1;
        const state = await (base.holdState as () => Promise<LeaseHold>)();
        // The fourth hold (the first renewal once active) answers only when the test says.
        if (holds === 4) await new Promise<void>((done) => (replyLate = done));
        return state;
      },
    };
    let starts = 0;
    let failStart: ((error: Error) => void) | undefined;
    const replica = new ActiveReplica(
      lease,
      () => {
        starts += 1;
        return new Promise((_, reject) => (failStart = reject));
      },
      logger,
      { ttlMs: TTL, clock: () => Date.now() },
    );
    replica.begin();
    // Taken (not handed over): held for a safe span, then active and starting.
    await jest.advanceTimersByTimeAsync(SAFE);
    expect(starts).toBe(1);
    // The renewal is sent; before its answer comes, the start fails and the lease is given up.
    await jest.advanceTimersByTimeAsync(TTL / 3);
    expect(holds).toBe(4);
    failStart?.(new Error('Kafka unreachable'));
    await jest.advanceTimersByTimeAsync(0);
    expect(replica.current).toBe('standby');
    replyLate?.();
    await jest.advanceTimersByTimeAsync(0);
    expect(replica.current).toBe('standby');
    expect(starts).toBe(1);
    await replica.close();
  });

  it('stops before the key can expire when Redis does not answer, so no other replica is ever active alongside it', async () => {
    const { key, a, b } = await twoReplicas();
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
