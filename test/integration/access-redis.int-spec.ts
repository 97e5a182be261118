import { Redis } from 'ioredis';
import { RedisCounterStore, type CounterCharge } from '@openrouter/ingress';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };

async function post(url: string, key: string, body: unknown = chat): Promise<number> {
  const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await response.arrayBuffer();
  return response.status;
}

describe('access layer on a real Redis', () => {
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => redis?.stop());

  it('admits exactly the limit out of many concurrent requests, across connections', async () => {
    const connections = [new Redis(redis.url), new Redis(redis.url)];
    const stores = connections.map((c) => new RedisCounterStore(c, 'concurrency:'));
    const charges: CounterCharge[] = [
      { key: 'key:a:requests', limit: 10, windowMs: 60_000, cost: 1 },
      { key: 'project:p:requests', limit: 1000, windowMs: 60_000, cost: 1 },
    ];
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => (stores[i % 2] as RedisCounterStore).take(charges)));
    const admitted = outcomes.filter((o) => o.every((c) => c.allowed)).length;
    expect(admitted).toBe(10);
    // A denied request is charged to none of its limits: the project saw exactly the admitted ones.
    const project = await (stores[0] as RedisCounterStore).take([{ key: 'project:p:requests', limit: 1000, windowMs: 60_000, cost: 1 }]);
    expect(project[0]?.remaining).toBe(1000 - admitted - 1);
    await Promise.all(stores.map((s) => s.close()));
  });

  describe('two ingress replicas sharing it', () => {
    let a: TestGateway;
    let b: TestGateway;

    beforeAll(async () => {
      const shared = (doc: Record<string, unknown>): void => {
        doc['access'] = { ...(doc['access'] as object), redis: { url: redis.url, keyPrefix: 'replicas:' }, keyCacheMs: 60_000 };
      };
      [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
    });
    afterAll(async () => Promise.all([a?.close(), b?.close()]));

    it('serves a key issued on one replica on the other, and refuses it on both within a second of revocation', async () => {
      const issued = await fetch(`${a.url}/admin/v1/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ org: 'default', project: 'default' }),
      });
      const { id, key } = (await issued.json()) as { id: string; key: string };
      expect(issued.status).toBe(201);
      // Both replicas cache the key as valid (the cache lives a minute).
      expect(await post(`${a.baseURL}/chat/completions`, key)).toBe(200);
      expect(await post(`${b.baseURL}/chat/completions`, key)).toBe(200);

      const revokedAt = Date.now();
      const revoke = await fetch(`${a.url}/admin/v1/keys/${id}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
      expect(revoke.status).toBe(200);
      await waitFor(async () => (await post(`${b.baseURL}/chat/completions`, key)) === 401, { timeoutMs: 1_000, intervalMs: 20, what: 'replica b to refuse the revoked key' });
      expect(await post(`${a.baseURL}/chat/completions`, key)).toBe(401);
      expect(Date.now() - revokedAt).toBeLessThan(1_000);
    });
  });

  describe.each([
    ['open', 200],
    ['closed', 503],
  ] as const)('when Redis is unreachable and the fail mode is %s', (failMode, status) => {
    let down: RedisServer;
    let gw: TestGateway;

    beforeAll(async () => {
      down = await RedisServer.start();
      gw = await startTestGateway({
        configure: (doc) => {
          doc['access'] = { ...(doc['access'] as object), redis: { url: down.url }, rateLimits: { failMode, key: { rpm: 1000 } } };
        },
      });
    });
    afterAll(async () => {
      await gw?.close();
      await down?.stop();
    });

    it(`answers ${status} while it is down, and stays healthy`, async () => {
      expect(await post(`${gw.baseURL}/chat/completions`, gw.apiKey)).toBe(200);
      await down.stop();
      const response = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(chat) });
      expect(response.status).toBe(status);
      const body = (await response.json()) as { error?: { code: string } };
      if (status === 503) expect(body.error?.code).toBe('rate_limiter_unavailable');
      else expect(response.headers.get('x-ratelimit-limit-requests')).toBeNull();
      expect((await fetch(`${gw.url}/health`)).status).toBe(200);
      // Ready only while requests can be served: with the closed fail mode, not while Redis is away.
      const ready = await fetch(`${gw.url}/ready`);
      expect(ready.status).toBe(failMode === 'closed' ? 503 : 200);
      if (failMode === 'closed') expect(await ready.json()).toMatchObject({ checks: { redis: 'failing' } });
      // The outage is counted, for the RateLimitStoreUnreachable alert (deploy/prometheus/alerts.yml).
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^openrouter_rate_limit_store_failures_total\\{[^}]*fail_mode="${failMode}"[^}]*\\} [1-9]`, 'm'));
    });
  });
});
