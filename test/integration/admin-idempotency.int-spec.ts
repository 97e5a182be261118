import { request as httpRequest } from 'node:http';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';

interface Answer {
  status: number;
  replayed: string | null;
  json: Record<string, unknown>;
}

async function admin(base: string, path: string, body: unknown, idempotencyKey?: string): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
  if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
  const response = await fetch(`${base}/admin/v1${path}`, { method: body === undefined ? 'GET' : 'POST', headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: response.status, replayed: response.headers.get('idempotent-replayed'), json: (await response.json()) as Record<string, unknown> };
}

async function patch(base: string, path: string, body: unknown, idempotencyKey?: string): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
  if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
  const response = await fetch(`${base}/admin/v1${path}`, { method: 'PATCH', headers, body: JSON.stringify(body) });
  return { status: response.status, replayed: response.headers.get('idempotent-replayed'), json: (await response.json()) as Record<string, unknown> };
}

describe('Idempotency-Key on the admin API, across two ingress replicas sharing Redis', () => {
  let redis: RedisServer;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    redis = await RedisServer.start();
    const shared = (doc: Record<string, unknown>): void => {
      doc['access'] = { ...(doc['access'] as object), redis: { url: redis.url, keyPrefix: 'idem:' } };
    };
    [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  it('issues one key for a POST /keys retried on the other replica, replaying the first answer with its secret', async () => {
    const body = { name: 'retried-key', org: 'default', project: 'default' };
    const first = await admin(a.url, '/keys', body, 'issue-4f1c');
    expect(first).toMatchObject({ status: 201, replayed: null, json: { object: 'api_key', name: 'retried-key' } });
    expect(typeof first.json['key']).toBe('string');

    const retried = await admin(b.url, '/keys', { project: 'default', org: 'default', name: 'retried-key' }, 'issue-4f1c');
    expect(retried).toEqual({ status: 201, replayed: 'true', json: first.json });

    const listed = await admin(a.url, '/keys?org=default', undefined);
    expect((listed.json['data'] as Array<{ name: string }>).filter((k) => k.name === 'retried-key')).toHaveLength(1);
    const audit = await admin(b.url, `/audit?action=key.issue&target=${String(first.json['id'])}`, undefined);
    expect(audit.json['data']).toHaveLength(1);
  });

  it('refuses the same key with another body (422 idempotency_key_reused), and an invalid key (400)', async () => {
    await expect(admin(a.url, '/keys', { name: 'one', org: 'default' }, 'reuse-77')).resolves.toMatchObject({ status: 201 });
    await expect(admin(b.url, '/keys', { name: 'two', org: 'default' }, 'reuse-77')).resolves.toMatchObject({
      status: 422,
      json: { error: { type: 'invalid_request_error', code: 'idempotency_key_reused' } },
    });
    await expect(admin(b.url, '/keys', { name: 'three', org: 'default' }, 'x'.repeat(256))).resolves.toMatchObject({
      status: 400,
      json: { error: { code: 'invalid_idempotency_key', param: 'Idempotency-Key' } },
    });
    // Sent twice (two header lines, which Node would join into one value "four-a, four-b").
    const twice = await new Promise<{ status: number; json: unknown }>((resolve, reject) => {
      const body = JSON.stringify({ name: 'four', org: 'default' });
      const sent = httpRequest(`${b.url}/admin/v1/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json', 'idempotency-key': ['four-a', 'four-b'] },
      });
      sent.on('response', (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(text) as unknown }));
      });
      sent.on('error', reject);
      sent.end(body);
    });
    expect(twice).toMatchObject({ status: 400, json: { error: { code: 'invalid_idempotency_key', message: expect.stringContaining('send it once') } } });
    expect(((await admin(a.url, '/keys?org=default', undefined)).json['data'] as Array<{ name: string }>).some((k) => k.name === 'four')).toBe(false);
  });

  it('replays a tenant and a budget creation instead of answering 409 already_exists; a refused request is not stored', async () => {
    const org = await admin(a.url, '/tenants', { id: 'retried-org' }, 'org-1');
    expect(org.status).toBe(201);
    await expect(admin(b.url, '/tenants', { id: 'retried-org' }, 'org-1')).resolves.toEqual({ status: 201, replayed: 'true', json: org.json });
    // Without the key, the conflict it would have met.
    await expect(admin(b.url, '/tenants', { id: 'retried-org' })).resolves.toMatchObject({ status: 409, json: { error: { type: 'invalid_request_error', code: 'already_exists' } } });

    const team = await admin(b.url, '/tenants/retried-org/teams', { id: 'core' }, 'team-1');
    await expect(admin(a.url, '/tenants/retried-org/teams', { id: 'core' }, 'team-1')).resolves.toEqual({ status: 201, replayed: 'true', json: team.json });

    const budget = { id: 'retried-budget', scope: { org: 'default' }, period: 'daily', amount: '5' };
    const created = await admin(a.url, '/budgets', budget, 'budget-1');
    expect(created.status).toBe(201);
    await expect(admin(b.url, '/budgets', budget, 'budget-1')).resolves.toMatchObject({ status: 201, replayed: 'true', json: { id: 'retried-budget', amount: '5' } });

    // A request refused (an unknown org, 404) frees its key: corrected and sent again with it, it runs.
    await expect(admin(a.url, '/keys', { org: 'no-such-org' }, 'fix-me')).resolves.toMatchObject({ status: 404, json: { error: { code: 'not_found' } } });
    await expect(admin(b.url, '/keys', { org: 'default' }, 'fix-me')).resolves.toMatchObject({ status: 201, replayed: null, json: { org: 'default' } });
  });

  it('replays a tenant PATCH: the first answer again, not done a second time, even after another PATCH changed the tenant', async () => {
    await expect(admin(a.url, '/tenants', { id: 'patched-org' })).resolves.toMatchObject({ status: 201 });
    const first = await patch(a.url, '/tenants/patched-org', { name: 'First' }, 'patch-1');
    expect(first).toMatchObject({ status: 200, replayed: null, json: { object: 'organization', id: 'patched-org', name: 'First' } });
    // Another change without the key in between.
    await expect(patch(b.url, '/tenants/patched-org', { name: 'Second' })).resolves.toMatchObject({ status: 200, json: { name: 'Second' } });

    // The retry of the first: its answer, replayed; the tenant keeps the second change.
    await expect(patch(b.url, '/tenants/patched-org', { name: 'First' }, 'patch-1')).resolves.toEqual({ status: 200, replayed: 'true', json: first.json });
    // Replica A hears of B's change through Redis's pub/sub: wait until it has (a replay that changed the tenant again would leave it 'First').
    await waitFor(
      async () => ((await admin(a.url, '/tenants', undefined)).json['data'] as Array<{ id: string; name: string | null }>).find((o) => o.id === 'patched-org')?.name === 'Second' || undefined,
      { timeoutMs: 10_000, intervalMs: 20, what: "replica A to show B's change" },
    );
    const audit = await admin(b.url, '/audit?action=org.update&target=patched-org', undefined);
    const changes = (audit.json['data'] as Array<{ details: { changes: { name?: { to: unknown } } } }>).map((e) => e.details.changes.name?.to);
    expect(changes).toEqual(['Second', 'First']);

    // The same key on another tenant is another request (the path is part of it), not a replay of this one's answer.
    await expect(admin(a.url, '/tenants', { id: 'other-patched-org' })).resolves.toMatchObject({ status: 201 });
    await expect(patch(a.url, '/tenants/other-patched-org', { name: 'First' }, 'patch-1')).resolves.toMatchObject({
      status: 422,
      replayed: null,
      json: { error: { type: 'invalid_request_error', code: 'idempotency_key_reused' } },
    });
    // Replica B hears of the tenant added on A through Redis's pub/sub: it is read there once it has.
    const other = await waitFor(
      async () => ((await admin(b.url, '/tenants', undefined)).json['data'] as Array<{ id: string; name: string | null }>).find((o) => o.id === 'other-patched-org'),
      { timeoutMs: 10_000, intervalMs: 20, what: 'replica B to know the tenant added on A' },
    );
    expect(other).toMatchObject({ name: null });
  });

  it('replays a team, project, key and budget PATCH with its first answer', async () => {
    await expect(admin(a.url, '/tenants', { id: 'patch-teams' })).resolves.toMatchObject({ status: 201 });
    await expect(admin(a.url, '/tenants/patch-teams/teams', { id: 'core' })).resolves.toMatchObject({ status: 201 });
    await expect(admin(a.url, '/tenants/patch-teams/teams/core/projects', { id: 'web' })).resolves.toMatchObject({ status: 201 });
    const team = await patch(a.url, '/tenants/patch-teams/teams/core', { cost_center: 'cc-1' }, 'team-patch');
    expect(team).toMatchObject({ status: 200, replayed: null, json: { object: 'team', cost_center: 'cc-1' } });
    await expect(patch(b.url, '/tenants/patch-teams/teams/core', { cost_center: 'cc-1' }, 'team-patch')).resolves.toEqual({ status: 200, replayed: 'true', json: team.json });
    const project = await patch(b.url, '/tenants/patch-teams/teams/core/projects/web', { name: 'Web' }, 'project-patch');
    expect(project).toMatchObject({ status: 200, replayed: null, json: { object: 'project', name: 'Web' } });
    await expect(patch(a.url, '/tenants/patch-teams/teams/core/projects/web', { name: 'Web' }, 'project-patch')).resolves.toEqual({ status: 200, replayed: 'true', json: project.json });

    const issued = await admin(a.url, '/keys', { name: 'to-rename', org: 'default' });
    const id = String(issued.json['id']);
    const renamed = await patch(a.url, `/keys/${id}`, { name: 'renamed' }, 'key-patch');
    expect(renamed).toMatchObject({ status: 200, replayed: null, json: { id, name: 'renamed' } });
    await expect(patch(b.url, `/keys/${id}`, { name: 'renamed' }, 'key-patch')).resolves.toEqual({ status: 200, replayed: 'true', json: renamed.json });
    const keyAudit = await admin(b.url, `/audit?action=key.update&target=${id}`, undefined);
    expect(keyAudit.json['data']).toHaveLength(1);

    await expect(admin(a.url, '/budgets', { id: 'patched-budget', scope: { org: 'default' }, period: 'daily', amount: '5' })).resolves.toMatchObject({ status: 201 });
    const budget = await patch(b.url, '/budgets/patched-budget', { amount: '7' }, 'budget-patch');
    expect(budget).toMatchObject({ status: 200, replayed: null, json: { id: 'patched-budget', amount: '7' } });
    await expect(patch(a.url, '/budgets/patched-budget', { amount: '7' }, 'budget-patch')).resolves.toMatchObject({ status: 200, replayed: 'true', json: { id: 'patched-budget', amount: '7' } });
  });
});
