import { Redis } from 'ioredis';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { freePort } from '../support/ports';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const chat = { model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user' as const, content: 'hi' }] };
const headers = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };

async function post(gw: TestGateway): Promise<number> {
  return (await answer(gw)).status;
}

async function answer(gw: TestGateway): Promise<{ status: number; code: string | undefined }> {
  const response = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(chat) });
  const body = (await response.json()) as { error?: { code?: string } };
  return { status: response.status, code: body.error?.code };
}

async function admin(gw: TestGateway, method: string, path: string, body?: unknown): Promise<{ status: number; json: { error?: { code?: string; message?: string } } & Record<string, unknown> }> {
  const response = await fetch(`${gw.url}/admin/v1${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: response.status, json: (await response.json()) as { error?: { code?: string } } & Record<string, unknown> };
}

/**
 * Budgets created through the admin API of one ingress replica, enforced by another sharing its
 * Redis: at once through pub/sub, and after a subscription drop through the resync that follows it.
 */
describe('budgets managed at run time, on two replicas sharing a Redis', () => {
  let redis: RedisServer;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    redis = await RedisServer.start();
    const shared = (doc: Record<string, unknown>): void => {
      doc['access'] = { ...(doc['access'] as object), redis: { url: redis.url, keyPrefix: 'budget-replicas:' } };
    };
    [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  it("enforces a budget created on one replica on the other, and the other's change on the first", async () => {
    // "hi" with max_tokens 50 reserves 34 micro-units of gpt-4o-mini: 0.00001 holds none.
    expect((await admin(a, 'POST', '/budgets', { id: 'org-daily', scope: { org: 'default' }, period: 'daily', amount: '0.00001' })).status).toBe(201);
    await waitFor(async () => (await post(b)) === 402, { timeoutMs: 10_000, intervalMs: 50, what: 'replica b to refuse under the new budget' });
    expect(await admin(b, 'GET', '/budgets/org-daily')).toMatchObject({ status: 200, json: { source: 'api', amount: '0.00001' } });
    expect((await admin(b, 'PATCH', '/budgets/org-daily', { amount: '1' })).status).toBe(200);
    // The replica that changed it applies it to its next request; the other as soon as it hears.
    expect(await post(b)).toBe(200);
    await waitFor(async () => (await post(a)) === 200, { timeoutMs: 10_000, intervalMs: 50, what: 'replica a to admit under the raised budget' });
    const status = await waitFor(async () => {
      const { json } = await admin(a, 'GET', '/budgets/org-daily');
      return json['reserved'] === '0' ? json : undefined;
    });
    // Both replicas' requests, in the one ledger.
    expect(Number(status['spent'])).toBeGreaterThan(0);
  });

  it('catches up on a change made while its pub/sub connection was down', async () => {
    expect((await admin(a, 'POST', '/budgets', { id: 'org-weekly', scope: { org: 'default' }, period: 'weekly', amount: '1' })).status).toBe(201);
    await waitFor(async () => (await admin(b, 'GET', '/budgets/org-weekly')).status === 200, { what: 'the budget on replica b' });
    const control = new Redis(redis.url);
    try {
      // Every subscription is cut and no new connection accepted while a changes the budget: the
      // replicas' other connections stay up, their subscribers stay out.
      await control.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      const connected = String(await control.call('CLIENT', 'LIST')).trim().split('\n').length;
      await control.config('SET', 'maxclients', String(connected));
      try {
        expect((await admin(a, 'PATCH', '/budgets/org-weekly', { amount: '0.00001' })).status).toBe(200);
        // Announced to nobody.
        expect(await control.pubsub('NUMSUB', 'budget-replicas:budget-changes')).toEqual(['budget-replicas:budget-changes', 0]);
        expect((await admin(b, 'GET', '/budgets/org-weekly')).json['amount']).toBe('1');
      } finally {
        await control.config('SET', 'maxclients', '10000');
      }
      await waitFor(async () => (await admin(b, 'GET', '/budgets/org-weekly')).json['amount'] === '0.00001', { timeoutMs: 10_000, what: 'replica b to load the change made while its subscription was down' });
      expect(await post(b)).toBe(402);
    } finally {
      control.disconnect();
    }
  });

  it("answers 503 naming the budget store when Redis cannot be reached", async () => {
    await redis.stop();
    const answer = await admin(a, 'GET', '/budgets/org-weekly');
    expect(answer).toMatchObject({ status: 503, json: { error: { code: 'budget_store_unavailable', type: 'server_error' } } });
    expect(answer.json.error?.message).toContain('budget store');
    expect((await admin(a, 'POST', '/budgets', { id: 'later', scope: { org: 'default' }, period: 'daily', amount: '1' })).json.error?.code).toBe('budget_store_unavailable');
    // No budget is configured and rate limits fail open: the budgets created at run time (and
    // budgets.failMode closed, the default) are why the replica is not ready while Redis is away.
    const ready = await fetch(`${a.url}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ checks: { redis: 'failing' } });
  });
});

/**
 * An ingress replica started while its Redis is away cannot know the budgets created through the
 * admin API: with budgets.failMode closed (the default) it refuses requests and is not ready until
 * it has loaded them, then enforces them.
 */
describe('a replica started before its Redis, budgets.failMode closed', () => {
  let late: RedisServer | undefined;
  let gw: TestGateway;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    gw = await startTestGateway({
      configure: (doc) => {
        // Rate limits fail open: what refuses here is the budgets' fail mode alone.
        doc['access'] = { ...(doc['access'] as object), redis: { url: `redis://127.0.0.1:${port}`, keyPrefix: 'late-budgets:' }, rateLimits: { failMode: 'open' } };
      },
    });
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    await late?.stop();
  });

  it('refuses with 503 budget_store_unavailable and is not ready until the created budgets have loaded, then enforces them', async () => {
    expect(await answer(gw)).toEqual({ status: 503, code: 'budget_store_unavailable' });
    const before = await fetch(`${gw.url}/ready`);
    expect(before.status).toBe(503);
    expect(await before.json()).toMatchObject({ checks: { budgets: 'failing' } });

    late = await RedisServer.start(port);
    const client = new Redis(late.url);
    try {
      // Created through another replica's admin API while this one could not reach Redis.
      const at = new Date().toISOString();
      const stored = { id: 'late-daily', scope: { org: 'default' }, period: 'daily', timezone: 'UTC', amount: '0.00001', currency: 'USD', enforcement: 'hard', alertThresholds: [100], createdAt: at, updatedAt: at, creationId: 'late0001' };
      await client.hset('late-budgets:budgets', 'late-daily', JSON.stringify(stored));
      // Loaded on connection (or at the next version check): the tiny budget refuses.
      await waitFor(async () => (await answer(gw)).status === 402, { timeoutMs: 40_000, intervalMs: 100, what: 'the replica to load and enforce the budget created while it could not reach Redis' });
      await waitFor(async () => (await fetch(`${gw.url}/ready`)).status === 200, { timeoutMs: 10_000, intervalMs: 100, what: 'the replica to be ready' });
    } finally {
      client.disconnect();
    }
  }, 90_000);
});
