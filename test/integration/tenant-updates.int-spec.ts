import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

interface OrgView {
  id: string;
  name: string | null;
  cost_center: string | null;
  limits: { rpm: number | null; tpm: number | null };
  teams: Array<{ id: string; cost_center: string | null; projects: Array<{ id: string; name: string | null; cost_center: string | null; limits: { rpm: number | null; tpm: number | null } }> }>;
}

async function admin(base: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${base}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** The org as a replica's own directory shows it (GET /tenants answers from memory, never from Redis). */
async function orgOn(replica: TestGateway, id: string): Promise<OrgView | undefined> {
  const list = await admin(replica.url, 'GET', '/tenants');
  return (list.json['data'] as OrgView[]).find((o) => o.id === id);
}

async function chat(replica: TestGateway, key: string): Promise<number> {
  const response = await fetch(`${replica.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await response.arrayBuffer();
  return response.status;
}

describe('tenant changes across two ingress replicas sharing Redis', () => {
  let redis: RedisServer;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    redis = await RedisServer.start();
    const shared = (doc: Record<string, unknown>): void => {
      doc['access'] = { ...(doc['access'] as object), redis: { url: redis.url, keyPrefix: 'tenant-updates:' } };
    };
    [a, b] = await Promise.all([startTestGateway({ configure: shared }), startTestGateway({ configure: shared })]);
    expect((await admin(a.url, 'POST', '/tenants', { id: 'globex', cost_center: 'CC-GLOBEX' })).status).toBe(201);
    expect((await admin(a.url, 'POST', '/tenants/globex/teams', { id: 'lab' })).status).toBe(201);
    expect((await admin(a.url, 'POST', '/tenants/globex/teams/lab/projects', { id: 'alpha', cost_center: 'CC-ALPHA' })).status).toBe(201);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  it('shows a change made on one replica on the other once announced, well before its periodic check', async () => {
    const changed = await admin(a.url, 'PATCH', '/tenants/globex/teams/lab/projects/alpha', { cost_center: 'CC-MOVED', name: 'Alpha' });
    expect(changed).toEqual({ status: 200, json: { object: 'project', id: 'alpha', name: 'Alpha', cost_center: 'CC-MOVED', limits: { rpm: null, tpm: null }, end_user_limits: null, policy: null } });
    // The periodic version check runs every 30 s: within 10 s, the announcement did it.
    const seen = await waitFor(
      async () => {
        const project = (await orgOn(b, 'globex'))?.teams[0]?.projects[0];
        return project?.cost_center === 'CC-MOVED' ? project : undefined;
      },
      { timeoutMs: 10_000, what: 'replica b to show the changed project' },
    );
    expect(seen).toMatchObject({ id: 'alpha', name: 'Alpha' });

    // And the other way round, on the org.
    expect((await admin(b.url, 'PATCH', '/tenants/globex', { cost_center: null, name: 'Globex' })).status).toBe(200);
    await waitFor(async () => {
      const org = await orgOn(a, 'globex');
      return org?.cost_center === null && org.name === 'Globex';
    }, { timeoutMs: 10_000, what: 'replica a to show the changed org' });
    const audit = await admin(a.url, 'GET', '/audit?action=project.update,org.update&org=globex');
    expect((audit.json['data'] as Array<{ action: string; details: Record<string, unknown> }>).map((e) => [e.action, e.details['changes']])).toEqual([
      ['org.update', { cost_center: { from: 'CC-GLOBEX', to: null }, name: { from: null, to: 'Globex' } }],
      ['project.update', { name: { from: null, to: 'Alpha' }, cost_center: { from: 'CC-ALPHA', to: 'CC-MOVED' } }],
    ]);
  });

  it('keeps both of two changes of one org made at the same time on both replicas', async () => {
    const [team, project] = await Promise.all([
      admin(a.url, 'PATCH', '/tenants/globex/teams/lab', { cost_center: 'CC-LAB' }),
      admin(b.url, 'PATCH', '/tenants/globex/teams/lab/projects/alpha', { limits: { tpm: 5000 } }),
    ]);
    expect([team.status, project.status]).toEqual([200, 200]);
    for (const replica of [a, b]) {
      await waitFor(async () => {
        const lab = (await orgOn(replica, 'globex'))?.teams[0];
        return lab?.cost_center === 'CC-LAB' && lab.projects[0]?.limits.tpm === 5000;
      }, { timeoutMs: 10_000, what: 'both changes on the replica' });
    }
  });

  it("enforces a project's rate limit set on one replica on requests to the other", async () => {
    const issued = await admin(a.url, 'POST', '/keys', { org: 'globex', project: 'alpha', name: 'limited' });
    expect(issued.status).toBe(201);
    const key = issued.json['key'] as string;
    expect(await chat(b, key)).toBe(200);
    expect((await admin(a.url, 'PATCH', '/tenants/globex/teams/lab/projects/alpha', { limits: { rpm: 1 } })).status).toBe(200);
    await waitFor(async () => (await orgOn(b, 'globex'))?.teams[0]?.projects[0]?.limits.rpm === 1, { timeoutMs: 10_000, what: 'replica b to know the limit' });
    // One request a minute: the first after the change is admitted, the next refused.
    expect([await chat(b, key), await chat(b, key)]).toEqual([200, 429]);
  });
});
