import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisBudgetLedger, type BudgetEventPublisher } from '@openrouter/budgets';
import { createLogger } from '@openrouter/observability';
import { PriceBook } from '@openrouter/usage';
import { ingressTestConfig } from '../test-config.testing';
import { BudgetService } from './budget.service';
import { renewalIntervalMs } from './reservation-renewal';

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

/** Polls `condition` every 50 ms until it holds; fails after `timeoutMs`. */
async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

const TTL = 1_200;
const tenant = { orgId: 'acme', teamId: 't', projectId: 'p', keyId: 'k1' };
const events: BudgetEventPublisher = { publish: async () => undefined, close: async () => undefined };
const stream = () => ({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });

describe('budget reservations on Redis, renewed while their request runs', () => {
  let prefix: string;
  let control: Redis;
  const opened: Array<{ service: BudgetService; redis: Redis }> = [];

  /** One ingress replica's budget service, on a Redis connection of its own. */
  function replica(): { service: BudgetService; redis: Redis } {
    // 100 micro-units: a stream of model `m` (1 per prompt token, 2 per output token) reserves them all.
    const config = ingressTestConfig({ budgets: { reservationTtlMs: TTL, list: [{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.0001' }] } });
    const redis = new Redis(redisUrl());
    const service = new BudgetService(config, PriceBook.fromModels(config.models), new RedisBudgetLedger(redis, prefix), events, createLogger('test', 'silent'));
    opened.push({ service, redis });
    return { service, redis };
  }

  const redisNow = async (): Promise<number> => {
    const [seconds, micros] = await control.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  };
  const admits = async (service: BudgetService, id: string): Promise<boolean> =>
    service.reserve({ requestId: id, tenant, body: stream() }).then(
      async (r) => {
        await r?.release();
        return true;
      },
      (error: unknown) => {
        if ((error as { kind?: string }).kind !== 'budget_exceeded') throw error;
        return false;
      },
    );

  beforeEach(() => {
    prefix = `budget-renewal-${randomBytes(4).toString('hex')}:`;
    control = new Redis(redisUrl());
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((o) => o.service.close()));
    control.disconnect();
  });

  it('keeps a stream running past the ttl holding its reservation: a concurrent request on another replica is still refused', async () => {
    const [holder, other] = [replica(), replica()];
    const startedAt = await redisNow();
    const long = await holder.service.reserve({ requestId: 'long', tenant, body: stream() });
    expect(long?.amountMicros).toBe(100);
    // The review's case: asked early (refused) and again well after the ttl (was admitted).
    expect(await admits(other.service, 'early')).toBe(false);
    let asked = 0;
    await until(async () => {
      expect(await admits(other.service, `late-${asked++}`)).toBe(false);
      return (await redisNow()) > startedAt + 3 * TTL;
    }, 'three ttls to pass while the stream runs');
    expect((await other.service.status())[0]).toMatchObject({ spent: '0', reserved: '0.0001' });
    // The stream ends: its real cost is counted and the rest is free again.
    await long?.settle('0.00004');
    expect((await other.service.status())[0]).toMatchObject({ spent: '0.00004', reserved: '0' });
    expect(await admits(other.service, 'after')).toBe(true);
  }, 30_000);

  it('still returns the reservation of a replica that died, once its ttl has passed', async () => {
    const [crashed, other] = [replica(), replica()];
    expect((await crashed.service.reserve({ requestId: 'dead', tenant, body: stream() }))?.amountMicros).toBe(100);
    // The process is gone: nothing it sends reaches Redis any more, renewals included.
    crashed.redis.disconnect();
    const goneAt = await redisNow();
    expect(await admits(other.service, 'while-held')).toBe(false);
    await until(() => admits(other.service, 'after-ttl'), 'the dead replica\'s reservation to be swept');
    // Not before a ttl from its last renewal, which was at most one renewal interval before the crash.
    expect((await redisNow()) - goneAt).toBeGreaterThanOrEqual(TTL - renewalIntervalMs(TTL));
  }, 30_000);
});
