import { Redis } from 'ioredis';
import { hashApiKey } from '@openrouter/ingress';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';

const DEV_HASH_SECRET = 'open-router-development-secret';
const PREFIX = 'key-changes:';
const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };
const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };

async function post(url: string, key: string, body: unknown = chat): Promise<number> {
  const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await response.arrayBuffer();
  return response.status;
}

async function adminCall(url: string, method: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method, ...(body === undefined ? { headers: { authorization: admin.authorization } } : { headers: admin, body: JSON.stringify(body) }) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('changing and rotating keys on two ingress replicas sharing a real Redis', () => {
  let redis: RedisServer;
  let a: TestGateway;
  let b: TestGateway;
  let control: Redis;

  beforeAll(async () => {
    redis = await RedisServer.start();
    control = new Redis(redis.url);
    // Keys cached a minute: what the other replica sees at once, its notice did, not the cache expiring.
    const shared = (doc: Record<string, unknown>): void => {
      doc['access'] = { ...(doc['access'] as object), redis: { url: redis.url, keyPrefix: PREFIX }, keyCacheMs: 60_000 };
    };
    [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    control?.disconnect();
    await redis?.stop();
  });

  async function issue(): Promise<{ id: string; key: string }> {
    const issued = await adminCall(`${a.url}/admin/v1/keys`, 'POST', { org: 'default', project: 'default', name: 'ci' });
    expect(issued.status).toBe(201);
    return issued.body as { id: string; key: string };
  }

  it('applies a PATCH made on one replica on the other, which had the key cached', async () => {
    const { id, key } = await issue();
    expect(await post(`${b.baseURL}/chat/completions`, key)).toBe(200);

    const patched = await adminCall(`${a.url}/admin/v1/keys/${id}`, 'PATCH', { allowed_models: ['vendor/model-with-slash'], limits: { rpm: 1000 }, tags: { team: 'search' } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id, allowed_models: ['vendor/model-with-slash'], limits: { rpm: 1000 }, tags: { team: 'search' }, name: 'ci', status: 'active' });
    // Replica b refuses the model the key may no longer use (once the notice is there: pub/sub), and serves the one it may.
    await waitFor(async () => (await post(`${b.baseURL}/chat/completions`, key)) === 404, { timeoutMs: 10_000, intervalMs: 20, what: 'replica b to apply the new allowed_models' });
    expect(await post(`${a.baseURL}/chat/completions`, key)).toBe(404);
    expect(await post(`${b.baseURL}/chat/completions`, key, { ...chat, model: 'vendor/model-with-slash' })).toBe(200);
    expect((await adminCall(`${b.url}/admin/v1/keys/${id}`, 'GET')).body).toMatchObject({ allowed_models: ['vendor/model-with-slash'], tags: { team: 'search' } });

    const audit = await adminCall(`${b.url}/admin/v1/audit?action=key.update&target=${id}`, 'GET');
    expect((audit.body['data'] as Array<{ details: Record<string, unknown> }>).map((e) => e.details['fields'])).toEqual([['allowed_models', 'limits', 'tags']]);
  });

  it('rotates on one replica: both secrets work on both replicas during the grace, and a second rotation ends the first grace on the other at once', async () => {
    const { id, key: first } = await issue();
    expect(await post(`${a.baseURL}/chat/completions`, first)).toBe(200);
    expect(await post(`${b.baseURL}/chat/completions`, first)).toBe(200);

    const rotated = await adminCall(`${b.url}/admin/v1/keys/${id}/rotate`, 'POST', { grace_seconds: 3_600 });
    expect(rotated.status).toBe(200);
    const second = rotated.body['key'] as string;
    expect(rotated.body).toMatchObject({ id, object: 'api_key', status: 'active' });
    expect(typeof rotated.body['previous_key_expires_at']).toBe('string');
    for (const replica of [a, b]) {
      expect(await post(`${replica.baseURL}/chat/completions`, first)).toBe(200);
      expect(await post(`${replica.baseURL}/chat/completions`, second)).toBe(200);
    }
    // Stored once, under the new hash; the old hash is an alias that expires with the grace.
    expect(await control.hget(`${PREFIX}key-ids`, id)).toBe(hashApiKey(DEV_HASH_SECRET, second));
    const ttl = await control.pttl(`${PREFIX}key:${hashApiKey(DEV_HASH_SECRET, first)}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_600_000);

    // Rotated again on the other replica, with no grace: the first two secrets end at once everywhere.
    const again = await adminCall(`${a.url}/admin/v1/keys/${id}/rotate`, 'POST', { grace_seconds: 0 });
    expect(again.status).toBe(200);
    const third = again.body['key'] as string;
    expect(again.body['previous_key_expires_at']).toBeUndefined();
    for (const secret of [first, second]) await waitFor(async () => (await post(`${b.baseURL}/chat/completions`, secret)) === 401, { timeoutMs: 10_000, intervalMs: 20, what: 'replica b to refuse a replaced secret' });
    for (const replica of [b, a]) {
      expect(await post(`${replica.baseURL}/chat/completions`, first)).toBe(401);
      expect(await post(`${replica.baseURL}/chat/completions`, second)).toBe(401);
      expect(await post(`${replica.baseURL}/chat/completions`, third)).toBe(200);
    }
    expect(await control.exists(`${PREFIX}key:${hashApiKey(DEV_HASH_SECRET, first)}`, `${PREFIX}key:${hashApiKey(DEV_HASH_SECRET, second)}`)).toBe(0);
    const keys = await adminCall(`${b.url}/admin/v1/keys`, 'GET');
    expect((keys.body['data'] as Array<{ id: string }>).filter((k) => k.id === id)).toHaveLength(1);
  });

  it('refuses both secrets of a rotated key on the other replica once revoked, and refuses to change or rotate it again', async () => {
    const { id, key: first } = await issue();
    const second = (await adminCall(`${a.url}/admin/v1/keys/${id}/rotate`, 'POST', {})).body['key'] as string;
    expect(await post(`${b.baseURL}/chat/completions`, first)).toBe(200);
    expect(await post(`${b.baseURL}/chat/completions`, second)).toBe(200);

    expect((await adminCall(`${a.url}/admin/v1/keys/${id}/revoke`, 'POST')).status).toBe(200);
    await waitFor(async () => (await post(`${b.baseURL}/chat/completions`, first)) === 401, { timeoutMs: 10_000, intervalMs: 20, what: 'replica b to refuse the old secret of the revoked key' });
    expect(await post(`${b.baseURL}/chat/completions`, second)).toBe(401);
    for (const [method, path, body] of [
      ['PATCH', '', { name: 'x' }],
      ['POST', '/rotate', {}],
    ] as const) {
      const refused = await adminCall(`${b.url}/admin/v1/keys/${id}${path}`, method, body);
      expect(refused.status).toBe(409);
      expect(refused.body['error']).toMatchObject({ type: 'invalid_request_error', code: 'key_revoked' });
    }
  });

  it('answers a rotation sent again with its Idempotency-Key on the other replica with the first answer, rotating once', async () => {
    const { id } = await issue();
    const send = (gw: TestGateway) => fetch(`${gw.url}/admin/v1/keys/${id}/rotate`, { method: 'POST', headers: { ...admin, 'idempotency-key': `rotate-${id}` }, body: JSON.stringify({ grace_seconds: 60 }) });
    const first = await send(a);
    const firstBody = (await first.json()) as { key: string };
    const retry = await send(b);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(((await retry.json()) as { key: string }).key).toBe(firstBody.key);
    const audit = await adminCall(`${a.url}/admin/v1/audit?action=key.rotate&target=${id}`, 'GET');
    expect(audit.body['data']).toHaveLength(1);
    expect(await post(`${b.baseURL}/chat/completions`, firstBody.key)).toBe(200);
  });
});
