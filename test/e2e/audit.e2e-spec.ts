import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { hashApiKey } from '@openrouter/ingress';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';

const SECRET = 'audit-e2e-hash-secret';
const ACME_ADMIN_KEY = 'sk-or-admin-acme-audit-e2e-key-0000000000';

interface Json {
  [key: string]: unknown;
}
interface Entry {
  object: string;
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string;
  details: Json;
}
interface Page {
  object: string;
  data: Entry[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

const orgs = [
  { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
  { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }] }] },
  { id: 'initech', teams: [{ id: 'ops', projects: [{ id: 'billing' }] }] },
];

function adminOf(gw: () => TestGateway) {
  return async (method: string, path: string, key = TEST_ADMIN_KEY, body?: unknown): Promise<{ status: number; json: Json }> => {
    const response = await fetch(`${gw().url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Json };
  };
}

/**
 * The admin audit log through HTTP, on Redis shared with entries an older version wrote (no ids):
 * ids, OpenAI-style paging that neither skips nor repeats while changes are made between pages,
 * filters, a scoped key's view, and 400s naming the parameter.
 */
describe('the admin audit log on Redis', () => {
  const prefix = `audit-e2e-${randomBytes(4).toString('hex')}:`;
  let gw: TestGateway;
  const admin = adminOf(() => gw);
  const page = async (query: string, key?: string): Promise<Page> => {
    const answer = await admin('GET', `/audit?${query}`, key);
    expect(answer.status).toBe(200);
    return answer.json as unknown as Page;
  };

  beforeAll(async () => {
    // Two changes an older version audited, without ids.
    const control = new Redis(sharedRedisUrl());
    const legacy = (target: string, minute: number) => JSON.stringify({ at: `2025-01-01T00:0${minute}:00.000Z`, actor: 'old-ops', action: 'org.create', target, details: { org: target, role: 'admin' } });
    await control.lpush(`${prefix}audit`, legacy('acme', 1), legacy('initech', 2));
    control.disconnect();
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = {
          keyHashSecret: SECRET,
          redis: { url: sharedRedisUrl(), keyPrefix: prefix },
          admin: { devKey: TEST_ADMIN_KEY, keys: [{ id: 'acme-ops', hash: hashApiKey(SECRET, ACME_ADMIN_KEY), role: 'admin', org: 'acme' }] },
          orgs,
        };
      },
    });
  }, 120_000);
  afterAll(async () => gw?.close());

  it('numbers every entry, those an older version wrote included, and pages the log newest first without skipping or repeating while changes are made', async () => {
    const first = await page('limit=5');
    expect(first).toEqual({ object: 'list', data: [expect.objectContaining({ id: 'audit_2', target: 'initech' }), expect.objectContaining({ id: 'audit_1', target: 'acme' })], first_id: 'audit_2', last_id: 'audit_1', has_more: false });
    expect(first.data[0]).toEqual({ object: 'audit_entry', id: 'audit_2', at: '2025-01-01T00:02:00.000Z', actor: 'old-ops', action: 'org.create', target: 'initech', details: { org: 'initech', role: 'admin' } });

    for (let i = 0; i < 5; i++) expect((await admin('POST', '/tenants/acme/teams', TEST_ADMIN_KEY, { id: `team-${i}` })).status).toBe(201);
    expect((await admin('POST', '/keys', TEST_ADMIN_KEY, { org: 'initech', project: 'billing', name: 'billing' })).status).toBe(201);
    // Budgets append to the same log, from their own store's script.
    expect((await admin('POST', '/budgets', TEST_ADMIN_KEY, { id: 'acme-daily', scope: { org: 'acme' }, period: 'daily', amount: '5' })).status).toBe(201);
    const all = await page('limit=100');
    expect(all.data.map((e) => e.id)).toEqual(Array.from({ length: 9 }, (_, i) => `audit_${9 - i}`));
    expect(all.data.map((e) => e.action)).toEqual(['budget.create', 'key.issue', ...Array.from({ length: 5 }, () => 'team.create'), 'org.create', 'org.create']);

    // Page by page while new changes land on top: each entry there was once, in order.
    const seen: string[] = [];
    let query = 'limit=2';
    for (let n = 0; ; n++) {
      const next = await page(query);
      seen.push(...next.data.map((e) => e.id));
      if (!next.has_more) break;
      await admin('POST', '/tenants/initech/teams', TEST_ADMIN_KEY, { id: `late-${n}` });
      query = `limit=2&after=${String(next.last_id)}`;
    }
    expect(seen).toEqual(all.data.map((e) => e.id));

    // And back towards the newest, from the oldest: `before`.
    const forward: string[] = [];
    for (let before = 'audit_0'; ; ) {
      const next = await page(`limit=4&before=${before}`);
      forward.push(...next.data.map((e) => e.id).reverse());
      if (!next.has_more) break;
      before = String(next.first_id);
    }
    expect(forward).toEqual(Array.from({ length: 9 + 4 }, (_, i) => `audit_${i + 1}`));
  });

  it('filters by action, actor, target, time, org and project; a scoped key sees its org only', async () => {
    const issued = await admin('POST', '/keys', ACME_ADMIN_KEY, { org: 'acme', project: 'search', name: 'search' });
    expect(issued.status).toBe(201);
    const keyId = String(issued.json['id']);
    const actions = async (query: string, key?: string): Promise<string[]> => (await page(query, key)).data.map((e) => `${e.action}:${e.target}`);

    expect(await actions('action=key.issue&action=budget.create')).toEqual([`key.issue:${keyId}`, 'budget.create:acme-daily', expect.stringMatching(/^key\.issue:key_/)]);
    expect(await actions('action=key.issue,org.create&actor=acme-ops')).toEqual([`key.issue:${keyId}`]);
    expect(await actions(`target=${keyId}`)).toEqual([`key.issue:${keyId}`]);
    expect(await actions('since=2025-01-01T00:02:00Z&until=2025-01-02')).toEqual(['org.create:initech']);
    expect(await actions('until=2025-01-01T00:02:00Z')).toEqual(['org.create:acme']);
    expect(await actions('org=acme&project=search')).toEqual([`key.issue:${keyId}`]);

    const scoped = await page('limit=100', ACME_ADMIN_KEY);
    expect(new Set(scoped.data.map((e) => e.details['org']))).toEqual(new Set(['acme']));
    expect(scoped.data.map((e) => e.target)).toEqual([keyId, 'acme-daily', 'team-4', 'team-3', 'team-2', 'team-1', 'team-0', 'acme']);
    // Page by page within the scope too.
    const two = await page('limit=2&after=audit_100', ACME_ADMIN_KEY);
    const rest = await page(`limit=100&after=${String(two.last_id)}`, ACME_ADMIN_KEY);
    expect([...two.data, ...rest.data].map((e) => e.target)).toEqual(scoped.data.map((e) => e.target));
    expect(await actions('project=search', ACME_ADMIN_KEY)).toEqual([`key.issue:${keyId}`]);
    await expect(admin('GET', '/audit?org=initech', ACME_ADMIN_KEY)).resolves.toMatchObject({ status: 404, json: { error: { code: 'not_found' } } });
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['after=12', 'after'],
    ['before=audit_one', 'before'],
    ['after=audit_5&before=audit_2', 'before'],
    ['action=key.create', 'action'],
    ['since=yesterday', 'since'],
    ['since=2025-06-02&until=2025-06-01', 'until'],
    ['org=Not%20An%20Id', 'org'],
    ['actor=', 'actor'],
    ['team=platform', 'team'],
  ])('answers ?%s with 400 invalid_request_error naming %s', async (query, param) => {
    const answer = await admin('GET', `/audit?${query}`);
    expect(answer).toMatchObject({ status: 400, json: { error: { type: 'invalid_request_error', code: 'invalid_value', param } } });
  });

  it('describes the route in the OpenAPI document: its parameters and its entries', async () => {
    const spec = (await (await fetch(`${gw.url}/admin/v1/openapi.json`)).json()) as { paths: Record<string, { get: { parameters: Array<{ name: string }> } }>; components: { schemas: Record<string, { properties: Record<string, unknown> }> } };
    expect(spec.paths['/admin/v1/audit']?.get.parameters.map((p) => p.name)).toEqual(['limit', 'after', 'before', 'action', 'actor', 'target', 'since', 'until', 'org', 'project']);
    expect(Object.keys(spec.components.schemas['AuditEntry']?.properties ?? {})).toEqual(['object', 'id', 'at', 'actor', 'action', 'target', 'details']);
  });
});

describe('the admin audit log of the embedded gateway (memory)', () => {
  let gw: TestGateway;
  const admin = adminOf(() => gw);

  beforeAll(async () => {
    gw = await startTestGateway({ configure: (doc) => void (doc['access'] = { keyHashSecret: SECRET, admin: { devKey: TEST_ADMIN_KEY }, orgs }) });
  }, 120_000);
  afterAll(async () => gw?.close());

  it('numbers the access and budget changes of the process in one sequence, and pages them', async () => {
    expect((await admin('POST', '/keys', TEST_ADMIN_KEY, { org: 'acme' })).status).toBe(201);
    expect((await admin('POST', '/budgets', TEST_ADMIN_KEY, { id: 'acme-daily', scope: { org: 'acme' }, period: 'daily', amount: '5' })).status).toBe(201);
    expect((await admin('POST', '/tenants/acme/teams', TEST_ADMIN_KEY, { id: 'late' })).status).toBe(201);
    const first = await admin('GET', '/audit?limit=2');
    expect(first.json).toMatchObject({ data: [{ id: 'audit_3', action: 'team.create' }, { id: 'audit_2', action: 'budget.create' }], first_id: 'audit_3', last_id: 'audit_2', has_more: true });
    await expect(admin('GET', '/audit?limit=2&after=audit_2')).resolves.toMatchObject({ json: { data: [{ id: 'audit_1', action: 'key.issue' }], has_more: false } });
  });
});
