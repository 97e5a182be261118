import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { accessSchema } from '@openrouter/config';
import { connectRedis, hashApiKey, RateLimiter, RedisCounterStore, type CounterCharge } from '@openrouter/ingress';
import { freePort } from '../support/ports';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { TEST_ADMIN_KEY } from '../support/test-config';

const DEV_HASH_SECRET = 'open-router-development-secret';
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
    // Hour-long windows: a limit refills one unit every window/limit ms (on Redis time), so with a
    // minute the project's 1000 would refill every 60 ms and the exact counts below would race.
    const charges: CounterCharge[] = [
      { key: 'key:a:requests', limit: 10, windowMs: 3_600_000, cost: 1 },
      { key: 'project:p:requests', limit: 1000, windowMs: 3_600_000, cost: 1 },
    ];
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => (stores[i % 2] as RedisCounterStore).take(charges)));
    const admitted = outcomes.filter((o) => o.every((c) => c.allowed)).length;
    expect(admitted).toBe(10);
    // A denied request is charged to none of its limits: the project saw exactly the admitted ones.
    const project = await (stores[0] as RedisCounterStore).take([{ key: 'project:p:requests', limit: 1000, windowMs: 3_600_000, cost: 1 }]);
    expect(project[0]?.remaining).toBe(1000 - admitted - 1);
    await Promise.all(stores.map((s) => s.close()));
  });

  it("gives back a reservation's unused tokens in the script: the TAT moves back, never to before Redis's now", async () => {
    const client = new Redis(redis.url);
    const store = new RedisCounterStore(client, 'giveback:');
    const tokens = (cost: number): CounterCharge => ({ key: 'key:k:tokens', limit: 1000, windowMs: 3_600_000, cost });
    const reserved = await Promise.all([store.take([tokens(410)]), store.take([tokens(410)])]);
    expect(reserved.map(([o]) => o?.allowed)).toEqual([true, true]);
    expect((await store.take([tokens(410)]))[0]).toMatchObject({ allowed: false, remaining: 180 });
    // Both answered in 30 tokens: 380 each come back, and the third fits.
    await store.adjust([tokens(-380)]);
    await store.adjust([tokens(-380)]);
    expect((await store.take([tokens(410)]))[0]).toMatchObject({ allowed: true, remaining: 1000 - 30 - 30 - 410 });
    // More than is charged: the limit is full, not fuller.
    await store.adjust([tokens(-100_000)]);
    const [[, tat], [, time]] = (await client.multi().get('giveback:{rl}:key:k:tokens').time().exec()) as [[null, string | null], [null, [string, string]]];
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    // Set to the script's now, kept a second longer (or already expired: full all the same).
    if (tat !== null) expect(now - Number(tat)).toBeGreaterThanOrEqual(0);
    if (tat !== null) expect(now - Number(tat)).toBeLessThan(1000);
    expect((await store.take([tokens(1000)]))[0]).toMatchObject({ allowed: true, remaining: 0 });
    await store.close();
  });

  it('gives back only what is still ahead of a refund: later charges behind a long reservation stay', async () => {
    const client = new Redis(redis.url);
    const store = new RedisCounterStore(client, 'until:');
    try {
      await refundsBehindLaterCharges(store);
    } finally {
      await store.close();
    }
  });

  async function refundsBehindLaterCharges(store: RedisCounterStore): Promise<void> {
    const tokens = (cost: number, until?: number): CounterCharge => ({ key: 'key:k:tokens', limit: 1000, windowMs: 3_600_000, cost, ...(until === undefined ? {} : { until }) });
    const [first] = await store.take([tokens(400)]);
    const [second] = await store.take([tokens(400)]);
    expect([first?.allowed, second?.allowed, second?.remaining]).toEqual([true, true, 200]);
    // The first reservation ran until its TAT. Were that an hour ago (it refilled long since), none of
    // it comes back: the TAT now holds the second's charge, which a refund must not erase.
    const interval = 3_600_000 / 1000;
    await store.adjust([tokens(-400, (first?.nextTat ?? 0) - 400 * interval)]);
    expect((await store.take([tokens(1)]))[0]).toMatchObject({ allowed: true, remaining: 199 });
    // Still ahead of now, all of the unused part comes back.
    await store.adjust([tokens(-350, second?.nextTat)]);
    expect((await store.take([tokens(1)]))[0]).toMatchObject({ allowed: true, remaining: 548 });
  }

  it('sends a refund again that Redis never received because the connection had dropped', async () => {
    const config = accessSchema.parse({ redis: { url: redis.url, keyPrefix: 'resend:' } }).redis;
    const counterRedis = connectRedis(config);
    counterRedis.on('error', () => undefined);
    await waitFor(() => counterRedis.status === 'ready', { what: 'the counter connection' });
    const control = new Redis(redis.url);
    try {
      await refundAcrossADroppedConnection(counterRedis, control, config.keyPrefix);
    } finally {
      control.disconnect();
      counterRedis.disconnect();
    }
  });

  async function refundAcrossADroppedConnection(counterRedis: Redis, control: Redis, keyPrefix: string): Promise<void> {
    const limiter = new RateLimiter(new RedisCounterStore(counterRedis, keyPrefix), 'closed', () => undefined);
    const limits = [{ scope: 'key' as const, id: 'k', kind: 'tokens' as const, perMinute: 10_000 }];
    const admission = await limiter.admit(limits, { prompt: 100, output: 4_000, outputAsked: true });
    expect(admission.headers['x-ratelimit-remaining-tokens']).toBe('5900');
    // The server drops the connection: until ioredis reconnects, commands are refused unsent.
    const id = Number(await counterRedis.client('ID'));
    await control.client('KILL', 'ID', String(id));
    await waitFor(() => counterRedis.status !== 'ready', { what: 'the counter connection to drop' });
    await admission.settle(100);
    await waitFor(() => counterRedis.status === 'ready', { what: 'the counter connection back' });
    const after = await limiter.admit(limits, { prompt: 0, output: 1, outputAsked: true });
    // 100 used of 4,100 reserved, then 1 (the limit refills a token every 6 ms: lost, the refund would leave it far lower).
    expect(Number(after.headers['x-ratelimit-remaining-tokens'])).toBeGreaterThanOrEqual(10_000 - 100 - 1);
  }

  describe('token limits shared by two replicas', () => {
    const KEY = 'sk-or-v1-reserving-int-key-0000000000000000';
    const TPM = 1000;
    let a: TestGateway;
    let b: TestGateway;

    beforeAll(async () => {
      const shared = (doc: Record<string, unknown>): void => {
        doc['access'] = {
          ...(doc['access'] as object),
          redis: { url: redis.url, keyPrefix: 'reserving:' },
          keys: [{ id: 'reserving', hash: hashApiKey(DEV_HASH_SECRET, KEY), org: 'default', limits: { tpm: TPM } }],
        };
      };
      [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
    });
    afterAll(async () => Promise.all([a?.close(), b?.close()]));

    it('admits concurrent requests on both replicas only while their prompts and max_tokens fit, and keeps only what their answers used', async () => {
      // Each answer takes two seconds: the six requests are all admitted (or refused) before the first settles.
      for (const gw of [a, b]) gw.sim.configure({ latencyMs: 2_000 });
      const body = { ...chat, max_tokens: 400 };
      const statuses = await Promise.all(Array.from({ length: 6 }, (_, i) => post(`${(i % 2 ? b : a).baseURL}/chat/completions`, KEY, body)));
      // About 410 tokens each: two fit in 1,000, whichever replica admitted them.
      expect(statuses.filter((s) => s === 200)).toHaveLength(2);
      expect(statuses.filter((s) => s === 429)).toHaveLength(4);
      // The two answered in a few dozen tokens: once settled, the limit holds those alone (less
      // what has refilled since), not the 820 reserved.
      const client = new Redis(redis.url);
      try {
        const charged = async (): Promise<number> => {
          const [[, tat], [, time]] = (await client.multi().get('reserving:{rl}:rl:key:reserving:tokens').time().exec()) as [[null, string | null], [null, [string, string]]];
          const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
          return Math.max(0, Number(tat ?? 0) - now) / (60_000 / TPM);
        };
        await waitFor(async () => ((await charged()) < 100 ? true : undefined), { timeoutMs: 5_000, intervalMs: 20, what: 'the unused reservations to be given back' });
      } finally {
        client.disconnect();
      }
      for (const gw of [a, b]) gw.sim.configure({ latencyMs: 0 });
      expect(await post(`${b.baseURL}/chat/completions`, KEY, body)).toBe(200);
      expect(await post(`${a.baseURL}/chat/completions`, KEY, body)).toBe(200);
    });
  });

  describe('two ingress replicas sharing it', () => {
    let a: TestGateway;
    let b: TestGateway;
    /** How long a replica caches a resolved key: longer than any wait below for a revocation to be seen. */
    const KEY_CACHE_MS = 60_000;
    /** The wait for a revoked key to be refused: ended within it, only the revocation notice can have done it, not the cache expiring. */
    const REVOCATION_SEEN_MS = 10_000;

    beforeAll(async () => {
      const shared = (doc: Record<string, unknown>): void => {
        doc['access'] = { ...(doc['access'] as object), redis: { url: redis.url, keyPrefix: 'replicas:' }, keyCacheMs: KEY_CACHE_MS, keyUseFlushMs: 1_000 };
      };
      [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
    });
    afterAll(async () => Promise.all([a?.close(), b?.close()]));

    it('keeps every team and project added at the same time on both replicas', async () => {
      const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
      const created = await fetch(`${a.url}/admin/v1/tenants`, { method: 'POST', headers: admin, body: JSON.stringify({ id: 'busy' }) });
      expect(created.status).toBe(201);
      await waitFor(async () => ((await fetch(`${b.url}/admin/v1/tenants`, { headers: admin }).then((r) => r.text())).includes('"busy"') ? true : undefined), { what: 'the org on the other replica' });
      const teams = await Promise.all(
        Array.from({ length: 8 }, (_, i) => fetch(`${(i % 2 ? b : a).url}/admin/v1/tenants/busy/teams`, { method: 'POST', headers: admin, body: JSON.stringify({ id: `team-${i}` }) })),
      );
      expect(teams.map((r) => r.status)).toEqual(Array(8).fill(201));
      const projects = await Promise.all(
        Array.from({ length: 8 }, (_, i) => fetch(`${(i % 2 ? a : b).url}/admin/v1/tenants/busy/teams/team-${i % 2}/projects`, { method: 'POST', headers: admin, body: JSON.stringify({ id: `project-${i}` }) })),
      );
      expect(projects.map((r) => r.status)).toEqual(Array(8).fill(201));
      // Added twice: refused as existing, whichever replica is asked.
      const again = await fetch(`${b.url}/admin/v1/tenants/busy/teams`, { method: 'POST', headers: admin, body: JSON.stringify({ id: 'team-2' }) });
      expect(again.status).toBe(409);
      expect(((await again.json()) as { error: { type: string; code: string } }).error).toMatchObject({ type: 'invalid_request_error', code: 'already_exists' });
      for (const replica of [a, b]) {
        const org = await waitFor(async () => {
          const body = (await fetch(`${replica.url}/admin/v1/tenants`, { headers: admin }).then((r) => r.json())) as { data: Array<{ id: string; teams: Array<{ id: string; projects: Array<{ id: string }> }> }> };
          const busy = body.data.find((o) => o.id === 'busy');
          return busy && busy.teams.flatMap((t) => t.projects).length === 8 ? busy : undefined;
        }, { what: 'every project on the replica' });
        expect(org.teams.map((t) => t.id).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `team-${i}`));
      }
    });

    it("shows on every replica when a key was last used, once the replica that served it has written its uses", async () => {
      const headers = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
      const issued = await fetch(`${a.url}/admin/v1/keys`, { method: 'POST', headers, body: JSON.stringify({ org: 'default', project: 'default' }) });
      const { id, key } = (await issued.json()) as { id: string; key: string };
      const lastUsed = async (replica: TestGateway): Promise<string | null | undefined> => ((await fetch(`${replica.url}/admin/v1/keys/${id}`, { headers }).then((r) => r.json())) as { last_used_at?: string | null }).last_used_at;
      expect(await lastUsed(b)).toBeNull();
      const before = Date.now();
      expect(await post(`${a.baseURL}/chat/completions`, key)).toBe(200);
      // Replica b learns of it from the store, when a writes its uses (every access.keyUseFlushMs, 1 s here).
      const seen = await waitFor(async () => (await lastUsed(b)) ?? undefined, { timeoutMs: 10_000, what: 'the use written by replica a' });
      expect(Date.parse(seen)).toBeGreaterThanOrEqual(before);
      // A later use on the other replica moves it on, for both.
      expect(await post(`${b.baseURL}/chat/completions`, key)).toBe(200);
      const newer = await waitFor(async () => {
        const at = await lastUsed(a);
        return at && Date.parse(at) > Date.parse(seen) ? at : undefined;
      }, { timeoutMs: 10_000, what: 'the newer use written by replica b' });
      const client = new Redis(redis.url);
      try {
        await client.eval("return redis.call('HGET', KEYS[1], ARGV[1])", 1, 'replicas:key-last-used', id).then((stored) => expect(Number(stored)).toBe(Date.parse(newer)));
      } finally {
        client.disconnect();
      }
    });

    it('serves a key issued on one replica on the other, and refuses it on both within seconds of revocation', async () => {
      const issued = await fetch(`${a.url}/admin/v1/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ org: 'default', project: 'default' }),
      });
      const { id, key } = (await issued.json()) as { id: string; key: string };
      expect(issued.status).toBe(201);
      // Both replicas cache the key as valid (for KEY_CACHE_MS).
      expect(await post(`${a.baseURL}/chat/completions`, key)).toBe(200);
      expect(await post(`${b.baseURL}/chat/completions`, key)).toBe(200);

      const revoke = await fetch(`${a.url}/admin/v1/keys/${id}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
      expect(revoke.status).toBe(200);
      // Refused within REVOCATION_SEEN_MS, far below the KEY_CACHE_MS the key stays cached: the
      // revocation notice did it, not the cache expiring.
      await waitFor(async () => (await post(`${b.baseURL}/chat/completions`, key)) === 401, { timeoutMs: REVOCATION_SEEN_MS, intervalMs: 20, what: 'replica b to refuse the revoked key' });
      expect(await post(`${a.baseURL}/chat/completions`, key)).toBe(401);
    });

    it('catches up on what was published while only its pub/sub connection was down: a revoked key, a new org', async () => {
      const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
      const issued = await fetch(`${a.url}/admin/v1/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ org: 'default', project: 'default' }) });
      const { id, key } = (await issued.json()) as { id: string; key: string };
      // Cached on b as valid, for a minute.
      expect(await post(`${b.baseURL}/chat/completions`, key)).toBe(200);
      const control = new Redis(redis.url);
      try {
        // Every subscription is cut (CLIENT KILL TYPE pubsub), and no new connection is accepted
        // while a changes things: the replicas' other connections stay up, their subscribers stay out.
        await control.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
        const connected = String(await control.call('CLIENT', 'LIST')).trim().split('\n').length;
        await control.config('SET', 'maxclients', String(connected));
        try {
          expect((await fetch(`${a.url}/admin/v1/keys/${id}/revoke`, { method: 'POST', headers: { authorization: admin.authorization } })).status).toBe(200);
          expect((await fetch(`${a.url}/admin/v1/tenants`, { method: 'POST', headers: admin, body: JSON.stringify({ id: 'after-drop' }) })).status).toBe(201);
          // Published to nobody: both notices are lost.
          expect(await control.pubsub('NUMSUB', 'replicas:access-changes')).toEqual(['replicas:access-changes', 0]);
        } finally {
          await control.config('SET', 'maxclients', '10000');
        }
        await waitFor(async () => (await post(`${b.baseURL}/chat/completions`, key)) === 401, { timeoutMs: 10_000, intervalMs: 50, what: 'replica b to refuse the key revoked while its subscription was down' });
        const knows = async (): Promise<boolean> => (await fetch(`${b.url}/admin/v1/tenants`, { headers: admin }).then((r) => r.text())).includes('"after-drop"');
        await waitFor(knows, { timeoutMs: 10_000, what: 'replica b to know the org added while its subscription was down' });
        // And it hears notices again.
        expect((await fetch(`${a.url}/admin/v1/tenants`, { method: 'POST', headers: admin, body: JSON.stringify({ id: 'after-return' }) })).status).toBe(201);
        await waitFor(async () => (await fetch(`${b.url}/admin/v1/tenants`, { headers: admin }).then((r) => r.text())).includes('"after-return"'), { timeoutMs: 10_000, what: 'a notice after the subscription is back' });
      } finally {
        control.disconnect();
      }
    }, 60_000);

    it('accepts an admin write on one replica right after the tenant it names was created on the other', async () => {
      const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
      for (let i = 0; i < 10; i++) {
        expect((await fetch(`${a.url}/admin/v1/tenants`, { method: 'POST', headers: admin, body: JSON.stringify({ id: `hop-${i}` }) })).status).toBe(201);
        const [key, team] = await Promise.all([
          fetch(`${b.url}/admin/v1/keys`, { method: 'POST', headers: admin, body: JSON.stringify({ org: `hop-${i}` }) }),
          fetch(`${b.url}/admin/v1/tenants/hop-${i}/teams`, { method: 'POST', headers: admin, body: JSON.stringify({ id: 'team' }) }),
        ]);
        expect([key.status, team.status]).toEqual([201, 201]);
      }
    });
  });

  describe('a replica started before Redis', () => {
    let late: RedisServer | undefined;
    let gw: TestGateway;
    let port: number;

    beforeAll(async () => {
      port = await freePort();
      gw = await startTestGateway({
        configure: (doc) => {
          doc['access'] = { ...(doc['access'] as object), redis: { url: `redis://127.0.0.1:${port}`, keyPrefix: 'late:' } };
        },
      });
    });
    afterAll(async () => {
      await gw?.close();
      await late?.stop();
    });

    /** A key stored by another replica, with the tenant it names, announced to nobody. */
    async function storeKey(client: Redis, key: string, org: string, team: string, project: string): Promise<void> {
      const hash = hashApiKey(DEV_HASH_SECRET, key);
      const record = { id: `key_${hash.slice(0, 16)}`, hash, prefix: key.slice(0, 12), name: '', orgId: org, teamId: team, projectId: project, appId: '', allowedModels: [], limits: {}, metadata: {}, tags: {}, createdAt: new Date().toISOString(), source: 'issued' };
      await client.multi().set(`late:key:${hash}`, JSON.stringify(record)).hset('late:key-ids', record.id, hash).exec();
    }

    it('loads tenants added elsewhere once Redis is reachable, and answers 503 for a key whose project is unknown', async () => {
      const key = 'sk-or-v1-late-tenant-key-000000000000000000';
      late = await RedisServer.start(port);
      const client = new Redis(late.url);
      try {
        await client.hset('late:orgs', 'late-org', JSON.stringify({ id: 'late-org', teams: [{ id: 'late-team', projects: [{ id: 'late-project' }] }] }));
        await storeKey(client, key, 'late-org', 'late-team', 'late-project');
        await waitFor(async () => (await post(`${gw.baseURL}/chat/completions`, key)) === 200, { timeoutMs: 10_000, intervalMs: 100, what: 'the replica to serve a key of a tenant stored while it was disconnected' });
        const projects = (await (await fetch(`${gw.url}/admin/v1/tenants`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } })).json()) as { data: Array<{ id: string }> };
        expect(projects.data.map((o) => o.id)).toContain('late-org');

        const ghost = 'sk-or-v1-ghost-project-key-00000000000000000';
        await storeKey(client, ghost, 'late-org', '', 'ghost-project');
        const response = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${ghost}`, 'content-type': 'application/json' }, body: JSON.stringify(chat) });
        expect(response.status).toBe(503);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe('tenant_unavailable');
      } finally {
        client.disconnect();
      }
    }, 30_000);
  });

  describe.each([
    ['open', 200],
    ['closed', 503],
  ] as const)('when Redis is unreachable and the fail mode is %s', (failMode, status) => {
    let down: RedisServer;
    let gw: TestGateway;
    const lines: string[] = [];
    const logs = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });

    beforeAll(async () => {
      down = await RedisServer.start();
      gw = await startTestGateway({
        logs,
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
      const unhandled = jest.spyOn(console, 'error');
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
      // The outage is logged once per connection through the service's logger, not on every retry.
      const outage = (what: string): number => lines.filter((l) => l.includes(`${what}: Redis is unreachable`)).length;
      await waitFor(() => outage('rate-limit counters') === 1, { timeoutMs: 5_000, intervalMs: 20, what: 'the counter connection to log its outage' });
      for (let i = 0; i < 3; i++) await post(`${gw.baseURL}/chat/completions`, gw.apiKey);
      expect(outage('rate-limit counters')).toBe(1);
      expect(unhandled.mock.calls.filter((args) => String(args[0]).includes('Unhandled error event'))).toEqual([]);
      unhandled.mockRestore();
    });
  });
});
