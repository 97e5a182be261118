import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { hashApiKey, RedisAccessRepository } from '@openrouter/ingress';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';

const OLD = 'hash-secret-before-rotation';
const NEW = 'hash-secret-after-rotation';
const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };
const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

async function post(gateway: TestGateway, key: string): Promise<number> {
  const response = await fetch(`${gateway.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(chat) });
  await response.arrayBuffer();
  return response.status;
}

async function adminCall(gateway: TestGateway, path: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const sent = body === undefined ? { headers: { authorization: admin.authorization, ...headers } } : { headers: { ...admin, ...headers }, body: JSON.stringify(body) };
  const response = await fetch(`${gateway.url}/admin/v1${path}`, { method, ...sent });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('rotating access.keyHashSecret on two ingress replicas sharing a real Redis', () => {
  const prefix = `hash-rotation-${randomBytes(4).toString('hex')}:`;
  let old: TestGateway;
  let overlap: TestGateway;
  let control: Redis;

  /** A replica hashing with `current` and still accepting `previous`; keys cached a minute, so what another replica sees at once, a notice did. */
  const replica = (current: string, previous: string[] = []): Promise<TestGateway> =>
    startTestGateway({
      configure: (doc) => {
        doc['access'] = { ...(doc['access'] as object), keyHashSecret: current, previousKeyHashSecrets: previous, redis: { url: redisUrl(), keyPrefix: prefix }, keyCacheMs: 60_000 };
      },
    });

  beforeAll(async () => {
    control = new Redis(redisUrl());
    // One replica not restarted yet (old secret only), one restarted with the new secret and the old one as previous.
    [old, overlap] = await Promise.all([replica(OLD), replica(NEW, [OLD])]);
  });
  afterAll(async () => {
    await Promise.all([old?.close(), overlap?.close()]);
    control?.disconnect();
  });

  async function issue(on: TestGateway): Promise<{ id: string; key: string }> {
    const issued = await adminCall(on, '/keys', 'POST', { org: 'default', project: 'default', name: 'rotation' });
    expect(issued.status).toBe(201);
    return issued.body as { id: string; key: string };
  }

  it('keeps a key issued under the old secret working on both replicas during the overlap, and after the old secret is dropped once it was used', async () => {
    const { id, key } = await issue(old);
    expect(await post(overlap, key)).toBe(200);
    // Re-indexed under the new secret with its id; the old hash stays, an alias, for the replicas still on the old secret.
    expect(await control.hget(`${prefix}key-ids`, id)).toBe(hashApiKey(NEW, key));
    expect(JSON.parse((await control.get(`${prefix}key:${hashApiKey(OLD, key)}`)) ?? '{}')).toEqual({ aliasOf: hashApiKey(NEW, key) });
    expect(await post(old, key)).toBe(200);
    expect(await post(overlap, key)).toBe(200);
    // Its usage and admin view carry on under the same id.
    expect((await adminCall(old, `/keys/${id}`, 'GET')).body).toMatchObject({ id, status: 'active' });

    const after = await replica(NEW);
    try {
      expect(await post(after, key)).toBe(200);
    } finally {
      await after.close();
    }
  });

  it('indexes a key issued on a restarted replica under the old secret too, so a replica not restarted yet accepts it', async () => {
    const { key } = await issue(overlap);
    expect(await post(old, key)).toBe(200);
    expect(await post(overlap, key)).toBe(200);
  });

  it('refuses, once the old secret is dropped, a key never used during the overlap (401 invalid_api_key)', async () => {
    const { key } = await issue(old);
    const after = await replica(NEW);
    try {
      const response = await fetch(`${after.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(chat) });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    } finally {
      await after.close();
    }
  });

  it('revokes during the overlap on both replicas, from either, whichever hash each has cached', async () => {
    for (const [from, other] of [
      [old, overlap],
      [overlap, old],
    ] as const) {
      const { id, key } = await issue(old);
      // Both have it cached (a minute); the restarted one re-indexed it.
      expect(await post(overlap, key)).toBe(200);
      expect(await post(old, key)).toBe(200);
      expect((await adminCall(from, `/keys/${id}/revoke`, 'POST')).status).toBe(200);
      expect(await post(from, key)).toBe(401);
      await waitFor(async () => (await post(other, key)) === 401, { timeoutMs: 10_000, intervalMs: 20, what: 'the other replica to refuse the revoked key' });
    }
  });

  it('rotates a re-indexed key: both secrets work on both replicas during the grace, and a rotation without one ends them on both', async () => {
    const { id, key: first } = await issue(old);
    expect(await post(overlap, first)).toBe(200);
    const second = (await adminCall(overlap, `/keys/${id}/rotate`, 'POST', { grace_seconds: 3_600 })).body['key'] as string;
    for (const gateway of [old, overlap]) {
      expect(await post(gateway, first)).toBe(200);
      expect(await post(gateway, second)).toBe(200);
    }
    const third = (await adminCall(old, `/keys/${id}/rotate`, 'POST', { grace_seconds: 0 })).body['key'] as string;
    for (const secret of [first, second]) {
      await waitFor(async () => (await post(overlap, secret)) === 401, { timeoutMs: 10_000, intervalMs: 20, what: 'the restarted replica to refuse a replaced secret' });
      expect(await post(old, secret)).toBe(401);
    }
    expect(await post(old, third)).toBe(200);
    expect(await post(overlap, third)).toBe(200);
    // No place of the replaced secrets is left, under either hash secret.
    const places = [OLD, NEW].flatMap((secret) => [first, second].map((k) => `${prefix}key:${hashApiKey(secret, k)}`));
    expect(await control.exists(...places)).toBe(0);
  });

  it('re-points the grace alias of a key rotated under the old secret when it is re-indexed, keeping its expiry', async () => {
    const { id, key: first } = await issue(old);
    const rotated = await adminCall(old, `/keys/${id}/rotate`, 'POST', { grace_seconds: 3_600 });
    const second = rotated.body['key'] as string;
    expect(await post(overlap, second)).toBe(200);
    const ttl = await control.pttl(`${prefix}key:${hashApiKey(OLD, first)}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    expect(JSON.parse((await control.get(`${prefix}key:${hashApiKey(OLD, first)}`)) ?? '{}')).toEqual({ aliasOf: hashApiKey(NEW, second) });
    for (const gateway of [old, overlap]) {
      expect(await post(gateway, first)).toBe(200);
      expect(await post(gateway, second)).toBe(200);
    }
  });

  it('replays an admin write sent again with its Idempotency-Key across the replicas, whichever secret answered it first', async () => {
    const headers = { 'idempotency-key': `issue-${randomBytes(4).toString('hex')}` };
    const body = { org: 'default', project: 'default', name: 'idempotent' };
    const first = await adminCall(old, '/keys', 'POST', body, headers);
    expect(first.status).toBe(201);
    const retry = await adminCall(overlap, '/keys', 'POST', body, headers);
    expect(retry.status).toBe(201);
    expect(retry.body['key']).toBe(first.body['key']);
    // And the other way: first answered on the restarted replica, replayed by the one not restarted yet.
    const again = { 'idempotency-key': `issue-${randomBytes(4).toString('hex')}` };
    const onNew = await adminCall(overlap, '/keys', 'POST', body, again);
    expect(onNew.status).toBe(201);
    const onOld = await adminCall(old, '/keys', 'POST', body, again);
    expect(onOld.status).toBe(201);
    expect(onOld.body['key']).toBe(onNew.body['key']);
  });

  it('re-indexes once when two replicas find the key under the old secret at the same time', async () => {
    const { id, key } = await issue(old);
    const repositories = [new RedisAccessRepository({ url: redisUrl() }, prefix), new RedisAccessRepository({ url: redisUrl() }, prefix)];
    try {
      for (const repository of repositories) expect(await repository.ready()).toBe(true);
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => repositories[i % 2]!.reindexKey(hashApiKey(OLD, key), hashApiKey(NEW, key))));
      expect(results.filter((r) => r !== undefined)).toHaveLength(1);
      expect(await control.hget(`${prefix}key-ids`, id)).toBe(hashApiKey(NEW, key));
      const stored = JSON.parse((await control.get(`${prefix}key:${hashApiKey(NEW, key)}`)) ?? '{}') as Record<string, unknown>;
      expect(stored).toMatchObject({ id, hash: hashApiKey(NEW, key), formerHashes: [hashApiKey(OLD, key)] });
      expect(await post(old, key)).toBe(200);
      expect(await post(overlap, key)).toBe(200);
    } finally {
      await Promise.all(repositories.map((r) => r.close()));
    }
  });
});
