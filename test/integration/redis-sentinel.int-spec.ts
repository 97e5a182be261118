import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { accessSchema, type RedisConfig } from '@openrouter/config';
import { RedisBudgetLedger } from '@openrouter/budgets';
import { createRedisClient } from '@openrouter/service-runtime';
import { connectBudgetRedis, connectRedis, RedisAccessRepository, RedisCounterStore, type AccessEvent, type CounterCharge } from '@openrouter/ingress';
import { freePorts } from '../support/ports';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';

/*
 * A primary, its replica and one sentinel (quorum 1) on loopback, every one with a password. The
 * gateway's own Redis components connect through the sentinel with the configuration a deployment
 * writes, and keep working on the new primary after a failover: the forced one an operator runs
 * (SENTINEL FAILOVER), then the primary going away.
 */

const NAME = 'gateway-primary';
const DATA_PASSWORD = 'data-secret';
const SENTINEL_PASSWORD = 'sentinel-secret';
const HOUR = 3_600_000;

describe('Redis through Sentinel, across a failover', () => {
  let dir: string;
  const servers: RedisServer[] = [];
  let sentinel: RedisServer;
  let sentinelControl: Redis;
  const controls: Array<{ port: number; redis: Redis }> = [];
  let config: RedisConfig;

  /** A plain connection to one data node, to look at it from outside. */
  const control = (server: RedisServer): Redis => {
    const redis = new Redis({ host: '127.0.0.1', port: server.port, password: DATA_PASSWORD, lazyConnect: true });
    controls.push({ port: server.port, redis });
    return redis;
  };
  /** Stops a data node, its control connections first (else they retry it until the end). */
  const stop = async (server: RedisServer): Promise<void> => {
    for (const c of controls) if (c.port === server.port) c.redis.disconnect();
    await server.stop();
  };
  const byPort = (port: number): RedisServer => {
    const server = servers.find((s) => s.port === port);
    if (!server) throw new Error(`no server of this test listens on ${port}`);
    return server;
  };
  /** The primary's port as the sentinel tells it. */
  const primaryPort = async (): Promise<number> => {
    const address = (await sentinelControl.call('SENTINEL', 'get-master-addr-by-name', NAME)) as [string, string] | null;
    return Number(address?.[1]);
  };
  const info = async (redis: Redis): Promise<string> => redis.info('replication');
  /** The sentinel names `port` as the primary and has finished the failover (announced +switch-master). */
  const switchedTo = async (port: number): Promise<boolean> => {
    const fields = (await sentinelControl.call('SENTINEL', 'master', NAME)) as string[];
    const flags = fields[fields.indexOf('flags') + 1] ?? '';
    return (await primaryPort()) === port && !flags.includes('failover_in_progress');
  };
  /** The sentinel knows `port` as a replica whose link to the primary is up: one it can promote. */
  const promotable = async (port: number): Promise<boolean> => {
    const replicas = (await sentinelControl.call('SENTINEL', 'replicas', NAME)) as string[][];
    return replicas.some((fields) => {
      const entry = new Map(fields.flatMap((v, i) => (i % 2 === 0 ? [[v, fields[i + 1] ?? '']] : [])));
      return entry.get('port') === String(port) && entry.get('master-link-status') === 'ok' && !/s_down|disconnected/.test(entry.get('flags') ?? '');
    });
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'openrouter-sentinel-'));
    const [first, second, sentinelPort] = await freePorts(3);
    // Diskless full syncs without the default 5 s wait for more replicas.
    const data = ['--dir', dir, '--requirepass', DATA_PASSWORD, '--masterauth', DATA_PASSWORD, '--repl-diskless-sync-delay', '0'];
    servers.push(await RedisServer.start(first, { args: [...data, '--dbfilename', 'first.rdb'] }));
    servers.push(await RedisServer.start(second, { args: [...data, '--dbfilename', 'second.rdb', '--replicaof', '127.0.0.1', String(first)] }));
    await waitFor(async () => (await info(control(byPort(second)))).includes('master_link_status:up'), { timeoutMs: 15_000, what: 'the replica in sync' });
    const sentinelConfig = join(dir, 'sentinel.conf');
    await writeFile(
      sentinelConfig,
      [
        `sentinel monitor ${NAME} 127.0.0.1 ${first} 1`,
        `sentinel auth-pass ${NAME} ${DATA_PASSWORD}`,
        `sentinel down-after-milliseconds ${NAME} 1000`,
        `sentinel failover-timeout ${NAME} 10000`,
        `requirepass ${SENTINEL_PASSWORD}`,
        '',
      ].join('\n'),
    );
    sentinel = await RedisServer.start(sentinelPort, { configFile: sentinelConfig, args: ['--sentinel', '--dir', dir] });
    sentinelControl = new Redis({ host: '127.0.0.1', port: sentinelPort, password: SENTINEL_PASSWORD });
    await waitFor(() => promotable(second), { timeoutMs: 15_000, what: 'the sentinel to know the replica' });
    // What a deployment writes (REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_PASSWORD), through the schema.
    config = accessSchema.parse({ redis: { url: `redis://:${DATA_PASSWORD}@${NAME}`, keyPrefix: 'sentinel:', sentinel: { nodes: `127.0.0.1:${sentinelPort}`, password: SENTINEL_PASSWORD } } }).redis;
  }, 60_000);

  afterAll(async () => {
    sentinelControl?.disconnect();
    for (const { redis } of controls) if (redis.status !== 'end') redis.disconnect();
    await Promise.allSettled([sentinel?.stop(), ...servers.map((s) => s.stop())]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Each of the gateway's Redis components on the connections ingress gives them, once connected. */
  async function gatewayComponents() {
    const [counterRedis, ledgerRedis] = [connectRedis(config), connectBudgetRedis(config)];
    // Ingress logs a connection's outages; here they are expected.
    for (const redis of [counterRedis, ledgerRedis]) redis.on('error', () => undefined);
    const counters = new RedisCounterStore(counterRedis, config.keyPrefix);
    const ledger = new RedisBudgetLedger(ledgerRedis, config.keyPrefix);
    // Two ingress replicas: a revocation published by one is heard by the other.
    const [publisher, listener] = [new RedisAccessRepository(config, config.keyPrefix), new RedisAccessRepository(config, config.keyPrefix)];
    const heard: AccessEvent[] = [];
    listener.onChange((event) => heard.push(event));
    const close = async (): Promise<void> => {
      await Promise.all([counters.close(), ledger.close(), publisher.close(), listener.close()]);
    };
    try {
      await waitFor(() => counterRedis.status === 'ready' && ledgerRedis.status === 'ready', { timeoutMs: 10_000, what: 'the counter and ledger connections ready' });
      expect(await Promise.all([publisher.ready(), listener.ready()])).toEqual([true, true]);
    } catch (error) {
      await close();
      throw error;
    }
    /** The ledger's connection is back on the current primary: it reconnects on its own, independently of the counters' one. */
    const ledgerReady = async (): Promise<void> => {
      await waitFor(() => ledgerRedis.status === 'ready', { timeoutMs: 10_000, what: 'the ledger connection ready again' });
    };
    return { counters, ledger, ledgerReady, publisher, listener, heard, close };
  }

  /** Once traffic is admitted again after a switch, it all is: nothing fails any more. The traffic is stopped either way. */
  async function settled(traffic: ReturnType<typeof steadyTraffic>): Promise<{ admitted: number; failed: number; lastFailureAt: number }> {
    try {
      const recovered = traffic.outcome.admitted;
      await waitFor(() => traffic.outcome.admitted > recovered, { timeoutMs: 30_000, what: 'traffic admitted again' });
      const failed = traffic.outcome.failed;
      const admitted = traffic.outcome.admitted;
      await waitFor(() => traffic.outcome.admitted >= admitted + 50, { timeoutMs: 10_000, what: 'traffic admitted on the new primary' });
      const outcome = await traffic.stop();
      expect(outcome.failed).toBe(failed);
      return outcome;
    } finally {
      await traffic.stop();
    }
  }

  /** Takes one unit of `charge` every few ms until stopped, noting each failure (Redis away: the fail mode's case). */
  function steadyTraffic(counters: RedisCounterStore, charge: CounterCharge) {
    const outcome = { admitted: 0, failed: 0, firstFailureAt: 0, lastFailureAt: 0 };
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          // A check that does not settle counts as failed, as a request would give up on it.
          await Promise.race([counters.take([charge]), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 3 s')), 3_000).unref())]);
          outcome.admitted += 1;
        } catch {
          outcome.failed += 1;
          outcome.lastFailureAt = Date.now();
          outcome.firstFailureAt ||= outcome.lastFailureAt;
        }
        await new Promise((done) => setTimeout(done, 5));
      }
    })();
    return {
      outcome,
      async stop() {
        running = false;
        await loop;
        return outcome;
      },
    };
  }

  it('keeps counting, reserving and propagating revocations on the promoted replica after SENTINEL FAILOVER', async () => {
    const gateway = await gatewayComponents();
    try {
      const before = await primaryPort();
      const charge: CounterCharge = { key: 'key:failover:requests', limit: 100_000, windowMs: HOUR, cost: 1 };
      const budget = { account: 'failover:budget', limitMicros: 1_000_000, hard: true, keepMs: HOUR };
      expect(await gateway.ledger.reserve({ id: 'before', lines: [budget], worstMicros: 1_000, floorMicros: 1_000, ttlMs: HOUR })).toEqual({ ok: true, amountMicros: 1_000 });
      await gateway.publisher.publish({ kind: 'key', hash: 'revoked-before' });
      await waitFor(() => gateway.heard.some((e) => e.kind === 'key' && e.hash === 'revoked-before'), { timeoutMs: 5_000, what: 'the first revocation heard' });

      const traffic = steadyTraffic(gateway.counters, charge);
      await waitFor(() => traffic.outcome.admitted >= 20, { timeoutMs: 5_000, what: 'traffic flowing' });
      const admittedBefore = traffic.outcome.admitted;
      const startedAt = Date.now();
      expect(await sentinelControl.call('SENTINEL', 'FAILOVER', NAME)).toBe('OK');
      const after = servers.find((s) => s.port !== before)?.port ?? 0;
      await waitFor(() => switchedTo(after), { timeoutMs: 20_000, what: 'the sentinel to switch to the new primary' });
      const promoted = control(byPort(after));
      const demoted = control(byPort(before));
      await waitFor(async () => (await info(promoted)).includes('role:master'), { timeoutMs: 10_000, what: 'the promoted replica to be the primary' });
      await waitFor(async () => /role:slave[\s\S]*master_link_status:up/.test(await info(demoted)), { timeoutMs: 20_000, what: 'the old primary to follow the new one' });
      const outcome = await settled(traffic);
      const switchMs = outcome.lastFailureAt ? outcome.lastFailureAt - startedAt : 0;
      console.info(`SENTINEL FAILOVER: ${outcome.failed} of ${outcome.admitted + outcome.failed} rate-limit checks failed, the last ${switchMs} ms after the failover began`);

      // The counter went on from its state before the failover, on the new primary: not reset.
      const [last] = await gateway.counters.take([charge]);
      expect(last?.allowed).toBe(true);
      expect(last?.remaining).toBeLessThan(charge.limit - admittedBefore);
      expect(Number(await promoted.exists(`${config.keyPrefix}{rl}:${charge.key}`))).toBe(1);

      // The budget ledger's scripts run on the new primary, whose script cache started empty; and
      // again after it is flushed (NOSCRIPT: the script is sent again).
      await promoted.script('FLUSH');
      await gateway.ledgerReady();
      const [spent] = await gateway.ledger.settle('before', [budget], 400);
      expect(spent).toBe(400);
      expect(await gateway.ledger.reserve({ id: 'after', lines: [budget], worstMicros: 1_000, floorMicros: 1_000, ttlMs: HOUR })).toEqual({ ok: true, amountMicros: 1_000 });
      expect(await gateway.ledger.read([budget.account])).toEqual([expect.objectContaining({ spentMicros: 400, reservedMicros: 1_000 })]);

      // Both pub/sub connections moved to the new primary, and a revocation reaches the other replica.
      await waitFor(async () => Number(((await promoted.pubsub('NUMSUB', `${config.keyPrefix}access-changes`)) as [string, number])[1]) === 2, {
        timeoutMs: 10_000,
        what: 'both subscribers on the new primary',
      });
      await gateway.publisher.publish({ kind: 'key', hash: 'revoked-after' });
      await waitFor(() => gateway.heard.some((e) => e.kind === 'key' && e.hash === 'revoked-after'), { timeoutMs: 5_000, what: 'the revocation heard after the failover' });
      // The listener also learnt that it may have missed changes while it moved.
      expect(gateway.heard.filter((e) => e.kind === 'resync').length).toBeGreaterThanOrEqual(2);
    } finally {
      await gateway.close();
    }
  });

  it('moves to the replica the sentinel promotes when the primary goes away', async () => {
    const gateway = await gatewayComponents();
    try {
      const before = await primaryPort();
      const other = servers.find((s) => s.port !== before);
      if (!other) throw new Error('no replica');
      await waitFor(() => promotable(other.port), { timeoutMs: 20_000, what: 'the sentinel to know the old primary as a replica' });
      const charge: CounterCharge = { key: 'key:outage:requests', limit: 100_000, windowMs: HOUR, cost: 1 };
      const traffic = steadyTraffic(gateway.counters, charge);
      await waitFor(() => traffic.outcome.admitted >= 20, { timeoutMs: 5_000, what: 'traffic flowing' });
      const stoppedAt = Date.now();
      await stop(byPort(before));
      await waitFor(() => switchedTo(other.port), { timeoutMs: 20_000, what: 'the sentinel to promote the replica' });
      const outcome = await settled(traffic);
      console.info(`primary stopped: ${outcome.failed} of ${outcome.admitted + outcome.failed} rate-limit checks failed, the last ${outcome.lastFailureAt - stoppedAt} ms after it stopped`);

      const budget = { account: 'outage:budget', limitMicros: 1_000_000, hard: true, keepMs: HOUR };
      await gateway.ledgerReady();
      expect(await gateway.ledger.reserve({ id: 'after-outage', lines: [budget], worstMicros: 1_000, floorMicros: 1_000, ttlMs: HOUR })).toEqual({ ok: true, amountMicros: 1_000 });
      const promoted = control(other);
      await waitFor(async () => Number(((await promoted.pubsub('NUMSUB', `${config.keyPrefix}access-changes`)) as [string, number])[1]) === 2, {
        timeoutMs: 10_000,
        what: 'both subscribers on the new primary',
      });
      await gateway.publisher.publish({ kind: 'key', hash: 'revoked-after-outage' });
      await waitFor(() => gateway.heard.some((e) => e.kind === 'key' && e.hash === 'revoked-after-outage'), { timeoutMs: 5_000, what: 'the revocation heard after the outage' });
    } finally {
      await gateway.close();
    }
  });

  it('refuses a wrong data node password with an error that does not carry it', async () => {
    const wrong = { ...config, url: `redis://:not-the-data-secret@${NAME}` };
    const client = createRedisClient(wrong, { enableOfflineQueue: false, retryStrategy: () => null });
    try {
      const error = await new Promise<unknown>((resolve) => client.once('error', resolve));
      expect(String(error)).toMatch(/WRONGPASS/);
      expect(JSON.stringify(error)).not.toContain('not-the-data-secret');
    } finally {
      client.disconnect();
    }
  });
});
