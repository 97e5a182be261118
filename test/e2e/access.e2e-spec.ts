import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { hashApiKey } from '@openrouter/ingress';
import { queryRows } from '../support/infra/clickhouse';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY, TEST_DEV_KEY } from '../support/test-config';

const SECRET = 'access-e2e-hash-secret';
const FINANCE_KEY = 'sk-or-admin-finance-e2e-key-000000000000';
const VIEWER_KEY = 'sk-or-admin-viewer-e2e-key-0000000000000';
const PROJECT_KEY = 'sk-or-admin-project-e2e-key-000000000000';
const INITECH_ADMIN_KEY = 'sk-or-admin-initech-e2e-key-000000000000';
const BILLING_ADMIN_KEY = 'sk-or-admin-billing-e2e-key-000000000000';
const LIMITED_KEY = 'sk-or-v1-limited-config-key-0000000000000000';
const TOKEN_KEY = 'sk-or-v1-token-limited-config-key-00000000000';
const CAPPED_KEYS = ['sk-or-v1-capped-org-config-key-a-0000000000', 'sk-or-v1-capped-org-config-key-b-0000000000'] as const;
const PROMPT_MARKER = 'purple-elephant-prompt-marker-4711';

interface Json {
  [key: string]: unknown;
}

describe('access layer end to end', () => {
  let gw: TestGateway;
  const lines: string[] = [];
  const logs = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });

  beforeAll(async () => {
    gw = await startTestGateway({
      logs,
      configure: (doc) => {
        doc['access'] = {
          keyHashSecret: SECRET,
          admin: {
            devKey: TEST_ADMIN_KEY,
            keys: [
              { id: 'fin', hash: hashApiKey(SECRET, FINANCE_KEY), role: 'finance' },
              { id: 'view', hash: hashApiKey(SECRET, VIEWER_KEY), role: 'viewer' },
              { id: 'proj', hash: hashApiKey(SECRET, PROJECT_KEY), role: 'project', org: 'acme', project: 'search' },
              { id: 'initech-ops', hash: hashApiKey(SECRET, INITECH_ADMIN_KEY), role: 'admin', org: 'initech' },
              { id: 'billing-ops', hash: hashApiKey(SECRET, BILLING_ADMIN_KEY), role: 'admin', org: 'initech', project: 'billing' },
            ],
          },
          orgs: [
            { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
            { id: 'acme', costCenter: 'CC-100', teams: [{ id: 'platform', costCenter: 'CC-200', projects: [{ id: 'search', costCenter: 'CC-300' }, { id: 'ads' }] }] },
            { id: 'initech', teams: [{ id: 'ops', projects: [{ id: 'billing' }, { id: 'payroll' }] }] },
            { id: 'capped', limits: { rpm: 3 }, teams: [{ id: 'all', projects: [{ id: 'north' }, { id: 'south' }] }] },
          ],
          keys: [
            { id: 'limited', hash: hashApiKey(SECRET, LIMITED_KEY), org: 'acme', project: 'search', limits: { rpm: 12 } },
            { id: 'tokens', hash: hashApiKey(SECRET, TOKEN_KEY), org: 'acme', project: 'ads', limits: { tpm: 200 } },
            { id: 'capped-north', hash: hashApiKey(SECRET, CAPPED_KEYS[0]), org: 'capped', project: 'north', limits: { rpm: 100 } },
            { id: 'capped-south', hash: hashApiKey(SECRET, CAPPED_KEYS[1]), org: 'capped', project: 'south' },
          ],
        };
      },
    });
  });
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  async function admin(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; json: Json }> {
    const response = await fetch(`${gw.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Json };
  }

  it('serves the OpenAPI document and tells each admin key its role', async () => {
    const spec = (await (await fetch(`${gw.url}/admin/v1/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(spec.openapi).toBe('3.1.0');
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/admin/v1/keys', '/admin/v1/keys/{id}/revoke', '/admin/v1/tenants', '/admin/v1/audit']));
    await expect(admin('GET', '/whoami', FINANCE_KEY)).resolves.toMatchObject({ status: 200, json: { id: 'fin', role: 'finance' } });
    await expect(admin('GET', '/whoami', PROJECT_KEY)).resolves.toMatchObject({ status: 200, json: { role: 'project', org: 'acme', project: 'search' } });
    await expect(admin('GET', '/whoami', TEST_DEV_KEY)).resolves.toMatchObject({ status: 401, json: { error: { code: 'invalid_admin_key', type: 'authentication_error' } } });
  });

  it('keeps each role to its endpoints', async () => {
    const issue = { org: 'acme', project: 'search', name: 'not allowed' };
    await expect(admin('POST', '/keys', FINANCE_KEY, issue)).resolves.toMatchObject({ status: 403, json: { error: { code: 'insufficient_role' } } });
    await expect(admin('POST', '/keys', VIEWER_KEY, issue)).resolves.toMatchObject({ status: 403 });
    await expect(admin('GET', '/keys', PROJECT_KEY)).resolves.toMatchObject({ status: 403 });
    await expect(admin('GET', '/health', VIEWER_KEY)).resolves.toMatchObject({ status: 200, json: { ready: true } });
    await expect(admin('GET', '/tenants', FINANCE_KEY)).resolves.toMatchObject({ status: 200 });
    await expect(admin('GET', '/tenants', VIEWER_KEY)).resolves.toMatchObject({ status: 403 });
  });

  it('issues a key that works at once, attributes it to its project, and refuses it right after revocation', async () => {
    const issued = await admin('POST', '/keys', TEST_ADMIN_KEY, { name: 'search backend', org: 'acme', project: 'search', tags: { env: 'test' } });
    expect(issued.status).toBe(201);
    const key = issued.json['key'] as string;
    expect(key).toMatch(/^sk-or-v1-[A-Za-z0-9_-]{43}$/);
    expect(issued.json).toMatchObject({ object: 'api_key', org: 'acme', team: 'platform', project: 'search', status: 'active', prefix: key.slice(0, 14), last_used_at: null });
    expect((await admin('GET', `/keys/${String(issued.json['id'])}`, TEST_ADMIN_KEY)).json).toMatchObject({ last_used_at: null });

    const client = gw.client({ apiKey: key });
    const before = Date.now();
    const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(response.status).toBe(200);

    const listed = await admin('GET', '/keys?project=search', TEST_ADMIN_KEY);
    const entry = (listed.json['data'] as Json[]).find((k) => k['id'] === issued.json['id']);
    expect(entry).toMatchObject({ prefix: key.slice(0, 14) });
    // The replica that served the request shows the use at once (it writes it to the store later).
    const usedAt = Date.parse(String(entry?.['last_used_at']));
    expect(usedAt).toBeGreaterThanOrEqual(before);
    expect(usedAt).toBeLessThanOrEqual(Date.now());
    expect(JSON.stringify(listed.json)).not.toContain(key);

    const revoked = await admin('POST', `/keys/${String(issued.json['id'])}/revoke`, TEST_ADMIN_KEY);
    expect(revoked).toMatchObject({ status: 200, json: { status: 'revoked' } });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });

    const audit = await admin('GET', '/audit?limit=10', TEST_ADMIN_KEY);
    const actions = (audit.json['data'] as Json[]).map((e) => `${String(e['action'])}:${String(e['target'])}`);
    expect(actions).toEqual(expect.arrayContaining([`key.issue:${String(issued.json['id'])}`, `key.revoke:${String(issued.json['id'])}`]));
  });

  it("lists keys a page at a time in OpenAI's list shape, each next page after the last one's last_id", async () => {
    expect((await admin('POST', '/tenants', TEST_ADMIN_KEY, { id: 'paged' })).status).toBe(201);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(String((await admin('POST', '/keys', TEST_ADMIN_KEY, { org: 'paged', name: `p${i}` })).json['id']));
    const pages: Json[][] = [];
    for (let after = ''; ; ) {
      const { status, json } = await admin('GET', `/keys?org=paged&limit=2${after && `&after=${after}`}`, TEST_ADMIN_KEY);
      expect(status).toBe(200);
      const data = json['data'] as Json[];
      expect(json).toEqual({ object: 'list', data, first_id: data[0]?.['id'], last_id: data.at(-1)?.['id'], has_more: pages.length < 2 });
      pages.push(data);
      if (!json['has_more']) break;
      after = String(json['last_id']);
    }
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    const listed = pages.flat();
    expect(new Set(listed.map((k) => k['id']))).toEqual(new Set(ids));
    const created = listed.map((k) => String(k['created_at']));
    expect(created).toEqual([...created].sort());
    // After the last key: an empty page. Without a limit: up to 100 keys.
    await expect(admin('GET', `/keys?org=paged&after=${String(listed.at(-1)?.['id'])}`, TEST_ADMIN_KEY)).resolves.toMatchObject({ status: 200, json: { data: [], first_id: null, last_id: null, has_more: false } });
    await expect(admin('GET', '/keys?org=paged', TEST_ADMIN_KEY)).resolves.toMatchObject({ status: 200, json: { has_more: false, first_id: listed[0]?.['id'] } });
    for (const limit of ['0', '1001']) await expect(admin('GET', `/keys?limit=${limit}`, TEST_ADMIN_KEY)).resolves.toMatchObject({ status: 400, json: { error: { param: 'limit' } } });
    await expect(admin('GET', '/keys?org=acme&after=key_not_a_key', TEST_ADMIN_KEY)).resolves.toMatchObject({ status: 400, json: { error: { param: 'after', code: 'invalid_value' } } });
  });

  it('rejects bad admin input with a 400 naming the parameter, and unknown tenants with a 404', async () => {
    await expect(admin('POST', '/keys', TEST_ADMIN_KEY, { org: 'acme', limits: { rpm: -1 } })).resolves.toMatchObject({ status: 400, json: { error: { param: 'limits.rpm' } } });
    await expect(admin('POST', '/keys', TEST_ADMIN_KEY, { org: 'acme', surprise: true })).resolves.toMatchObject({ status: 400, json: { error: { param: 'surprise' } } });
    await expect(admin('POST', '/keys', TEST_ADMIN_KEY, { org: 'nobody' })).resolves.toMatchObject({ status: 404, json: { error: { param: 'org', code: 'not_found' } } });
    await expect(admin('POST', '/keys', TEST_ADMIN_KEY, { org: 'acme', project: 'missing' })).resolves.toMatchObject({ status: 404, json: { error: { param: 'project', code: 'not_found' } } });
    await expect(admin('POST', '/keys/nope/revoke', TEST_ADMIN_KEY)).resolves.toMatchObject({ status: 404, json: { error: { param: 'id', code: 'not_found' } } });
  });

  it('adds organisations, teams and projects at run time and shows them in the admin API shape, cost_center as posted', async () => {
    const unlimited = { rpm: null, tpm: null };
    await expect(admin('POST', '/tenants', TEST_ADMIN_KEY, { id: 'globex', name: 'Globex', cost_center: 'CC-500' })).resolves.toEqual({
      status: 201,
      json: { object: 'organization', id: 'globex', name: 'Globex', cost_center: 'CC-500', limits: unlimited, end_user_limits: null, policy: null, teams: [] },
    });
    await expect(admin('POST', '/tenants/acme/teams', TEST_ADMIN_KEY, { id: 'research' })).resolves.toEqual({
      status: 201,
      json: { object: 'team', id: 'research', name: null, cost_center: null, limits: unlimited, end_user_limits: null, policy: null, projects: [] },
    });
    await expect(admin('POST', '/tenants/acme/teams/research/projects', TEST_ADMIN_KEY, { id: 'papers', cost_center: 'CC-900' })).resolves.toEqual({
      status: 201,
      json: { object: 'project', id: 'papers', name: null, cost_center: 'CC-900', limits: unlimited, end_user_limits: null, policy: null },
    });
    // A project added to a team declared in configuration.
    await expect(admin('POST', '/tenants/acme/teams/platform/projects', TEST_ADMIN_KEY, { id: 'maps', name: 'Maps' })).resolves.toEqual({
      status: 201,
      json: { object: 'project', id: 'maps', name: 'Maps', cost_center: null, limits: unlimited, end_user_limits: null, policy: null },
    });
    await expect(admin('POST', '/tenants/acme/teams', TEST_ADMIN_KEY, { id: 'research' })).resolves.toMatchObject({ status: 409, json: { error: { type: 'invalid_request_error', code: 'already_exists' } } });

    const tenants = await admin('GET', '/tenants', TEST_ADMIN_KEY);
    expect(tenants.status).toBe(200);
    expect(tenants.json['object']).toBe('list');
    const data = tenants.json['data'] as Json[];
    expect(data.find((o) => o['id'] === 'globex')).toEqual({ object: 'organization', id: 'globex', name: 'Globex', cost_center: 'CC-500', limits: unlimited, end_user_limits: null, policy: null, teams: [] });
    // Entries added at run time may come before or after the declared ones: compare as sets.
    const acme = data.find((o) => o['id'] === 'acme');
    expect(acme).toEqual({ object: 'organization', id: 'acme', name: null, cost_center: 'CC-100', limits: unlimited, end_user_limits: null, policy: null, teams: expect.any(Array) as unknown });
    expect(data.find((o) => o['id'] === 'capped')).toMatchObject({ limits: { rpm: 3, tpm: null } });
    const teams = acme?.['teams'] as Json[];
    expect(teams).toHaveLength(2);
    expect(teams).toEqual(
      expect.arrayContaining([
        {
          object: 'team',
          id: 'platform',
          name: null,
          cost_center: 'CC-200',
          limits: unlimited,
          end_user_limits: null,
          policy: null,
          projects: expect.arrayContaining([
            { object: 'project', id: 'search', name: null, cost_center: 'CC-300', limits: unlimited, end_user_limits: null, policy: null },
            { object: 'project', id: 'ads', name: null, cost_center: null, limits: unlimited, end_user_limits: null, policy: null },
            { object: 'project', id: 'maps', name: 'Maps', cost_center: null, limits: unlimited, end_user_limits: null, policy: null },
          ]) as unknown,
        },
        { object: 'team', id: 'research', name: null, cost_center: null, limits: unlimited, end_user_limits: null, policy: null, projects: [{ object: 'project', id: 'papers', name: null, cost_center: 'CC-900', limits: unlimited, end_user_limits: null, policy: null }] },
      ]),
    );
    expect(teams.find((t) => t['id'] === 'platform')?.['projects']).toHaveLength(3);
    // No internal (camelCase) name anywhere in the list.
    const names = JSON.stringify(tenants.json).match(/"[^"]+":/g) ?? [];
    expect(names.filter((n) => !/^"[a-z_]+":$/.test(n))).toEqual([]);

    const issued = await admin('POST', '/keys', TEST_ADMIN_KEY, { org: 'acme', team: 'research', project: 'papers' });
    expect(issued).toMatchObject({ status: 201, json: { team: 'research', project: 'papers' } });
  });

  describe('an admin key scoped to an org (or a project) manages only that scope', () => {
    const NOT_FOUND = { status: 404, json: { error: { code: 'not_found', message: 'No such organisation or project.', type: 'invalid_request_error' } } };
    const chat = (key: string) => gw.client({ apiKey: key }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

    it('issues keys only for its org (and project), answering another org as if it did not exist', async () => {
      await expect(admin('POST', '/keys', INITECH_ADMIN_KEY, { org: 'acme', name: 'foreign' })).resolves.toMatchObject(NOT_FOUND);
      await expect(admin('POST', '/keys', INITECH_ADMIN_KEY, { org: 'no-such-org' })).resolves.toMatchObject(NOT_FOUND);
      await expect(admin('POST', '/keys', BILLING_ADMIN_KEY, { org: 'initech', project: 'payroll' })).resolves.toMatchObject(NOT_FOUND);
      const keys = await admin('GET', '/keys', TEST_ADMIN_KEY);
      expect((keys.json['data'] as Json[]).filter((k) => k['name'] === 'foreign' || k['project'] === 'payroll')).toEqual([]);

      await expect(admin('POST', '/keys', INITECH_ADMIN_KEY, { org: 'initech', project: 'payroll' })).resolves.toMatchObject({ status: 201, json: { org: 'initech', project: 'payroll' } });
      // A project key that names no project issues one for its own.
      await expect(admin('POST', '/keys', BILLING_ADMIN_KEY, { org: 'initech' })).resolves.toMatchObject({ status: 201, json: { org: 'initech', team: 'ops', project: 'billing' } });
    });

    it("lists, reads and revokes only its own org's keys; another org's key is 404 and keeps working", async () => {
      const acme = await admin('POST', '/keys', TEST_ADMIN_KEY, { org: 'acme', project: 'search', name: 'acme backend' });
      const acmeId = String(acme.json['id']);
      const billing = await admin('POST', '/keys', INITECH_ADMIN_KEY, { org: 'initech', project: 'billing' });
      const payroll = await admin('POST', '/keys', INITECH_ADMIN_KEY, { org: 'initech', project: 'payroll' });
      const orgWide = await admin('POST', '/keys', INITECH_ADMIN_KEY, { org: 'initech' });
      expect([acme.status, billing.status, payroll.status, orgWide.status]).toEqual([201, 201, 201, 201]);

      const listed = await admin('GET', '/keys', INITECH_ADMIN_KEY);
      const orgs = new Set((listed.json['data'] as Json[]).map((k) => k['org']));
      expect(orgs).toEqual(new Set(['initech']));
      expect((listed.json['data'] as Json[]).map((k) => k['id'])).toEqual(expect.arrayContaining([billing.json['id'], payroll.json['id'], orgWide.json['id']]));
      const projectListed = await admin('GET', '/keys', BILLING_ADMIN_KEY);
      expect(new Set((projectListed.json['data'] as Json[]).map((k) => `${String(k['org'])}/${String(k['project'])}`))).toEqual(new Set(['initech/billing']));
      await expect(admin('GET', '/keys?org=acme', INITECH_ADMIN_KEY)).resolves.toMatchObject(NOT_FOUND);
      await expect(admin('GET', '/keys?project=payroll', BILLING_ADMIN_KEY)).resolves.toMatchObject(NOT_FOUND);

      const missing = { status: 404, json: { error: { message: `No issued key has the id "${acmeId}".`, param: 'id' } } };
      await expect(admin('GET', `/keys/${acmeId}`, INITECH_ADMIN_KEY)).resolves.toMatchObject(missing);
      await expect(admin('POST', `/keys/${acmeId}/revoke`, INITECH_ADMIN_KEY)).resolves.toMatchObject(missing);
      await expect(admin('DELETE', `/keys/${acmeId}`, INITECH_ADMIN_KEY)).resolves.toMatchObject(missing);
      await expect(admin('POST', `/keys/${String(payroll.json['id'])}/revoke`, BILLING_ADMIN_KEY)).resolves.toMatchObject({ status: 404 });
      await expect(admin('GET', `/keys/${acmeId}`, TEST_ADMIN_KEY)).resolves.toMatchObject({ status: 200, json: { status: 'active' } });
      await expect(chat(String(acme.json['key']))).resolves.toMatchObject({ object: 'chat.completion' });
      await expect(chat(String(payroll.json['key']))).resolves.toMatchObject({ object: 'chat.completion' });

      await expect(admin('GET', `/keys/${String(billing.json['id'])}`, BILLING_ADMIN_KEY)).resolves.toMatchObject({ status: 200, json: { project: 'billing' } });
      await expect(admin('POST', `/keys/${String(billing.json['id'])}/revoke`, BILLING_ADMIN_KEY)).resolves.toMatchObject({ status: 200, json: { status: 'revoked' } });
      await expect(admin('DELETE', `/keys/${String(payroll.json['id'])}`, INITECH_ADMIN_KEY)).resolves.toMatchObject({ status: 200, json: { status: 'revoked' } });
      await expect(chat(String(payroll.json['key']))).rejects.toMatchObject({ status: 401 });
    });

    it('adds teams and projects only to its own org, and never organisations; a project key adds none', async () => {
      await expect(admin('POST', '/tenants', INITECH_ADMIN_KEY, { id: 'hooli' })).resolves.toMatchObject({ status: 403, json: { error: { code: 'insufficient_scope', type: 'permission_error' } } });
      await expect(admin('POST', '/tenants/acme/teams', INITECH_ADMIN_KEY, { id: 'intruders' })).resolves.toMatchObject(NOT_FOUND);
      await expect(admin('POST', '/tenants/acme/teams/platform/projects', INITECH_ADMIN_KEY, { id: 'intrusion' })).resolves.toMatchObject(NOT_FOUND);
      await expect(admin('POST', '/tenants/initech/teams', BILLING_ADMIN_KEY, { id: 'shadow' })).resolves.toMatchObject({ status: 403, json: { error: { code: 'insufficient_scope' } } });
      await expect(admin('POST', '/tenants/initech/teams/ops/projects', BILLING_ADMIN_KEY, { id: 'shadow' })).resolves.toMatchObject({ status: 403, json: { error: { code: 'insufficient_scope' } } });
      const after = JSON.stringify((await admin('GET', '/tenants', TEST_ADMIN_KEY)).json);
      for (const id of ['hooli', 'intruders', 'intrusion', 'shadow']) expect(after).not.toContain(`"${id}"`);

      await expect(admin('POST', '/tenants/initech/teams', INITECH_ADMIN_KEY, { id: 'infra' })).resolves.toMatchObject({ status: 201, json: { object: 'team', id: 'infra' } });
      await expect(admin('POST', '/tenants/initech/teams/infra/projects', INITECH_ADMIN_KEY, { id: 'dns' })).resolves.toMatchObject({ status: 201, json: { object: 'project', id: 'dns' } });
    });

    it("reads only its own org's (and project's) entries in the audit log", async () => {
      const acme = await admin('POST', '/keys', TEST_ADMIN_KEY, { org: 'acme' });
      const own = await admin('POST', '/keys', BILLING_ADMIN_KEY, { org: 'initech' });
      const entries = async (key: string) => ((await admin('GET', '/audit?limit=1000', key)).json['data'] as Array<{ target: string; details: Json }>) ?? [];
      expect((await entries(TEST_ADMIN_KEY)).map((e) => e.target)).toEqual(expect.arrayContaining([acme.json['id'], own.json['id']]));
      const orgView = await entries(INITECH_ADMIN_KEY);
      expect(orgView.map((e) => e.target)).toContain(own.json['id']);
      expect(new Set(orgView.map((e) => e.details['org']))).toEqual(new Set(['initech']));
      const projectView = await entries(BILLING_ADMIN_KEY);
      expect(projectView.map((e) => e.target)).toContain(own.json['id']);
      // Each entry names the scope of the key that made the change, when it had one.
      expect(projectView.find((e) => e.target === own.json['id'])?.details).toMatchObject({ org: 'initech', project: 'billing', actor_org: 'initech', actor_project: 'billing' });
      const byUnscoped = (await entries(TEST_ADMIN_KEY)).find((e) => e.target === acme.json['id'])?.details;
      expect(byUnscoped).toMatchObject({ org: 'acme', role: 'admin' });
      expect(byUnscoped).not.toHaveProperty('actor_org');
      expect(new Set(projectView.map((e) => `${String(e.details['org'])}/${String(e.details['project'])}`))).toEqual(new Set(['initech/billing']));
    });
  });

  it("limits an organisation across all its keys and projects, whatever a key's own limit", async () => {
    const [north, south] = CAPPED_KEYS.map((apiKey) => gw.client({ apiKey, maxRetries: 0 }));
    const ask = (client: OpenAI | undefined) => client!.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    await ask(north);
    await ask(south);
    const { response } = await ask(north);
    // The organisation's limit is the tightest: it is the one the headers describe.
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const refused = ask(south);
    await expect(refused).rejects.toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
    await expect(refused).rejects.toThrow(/on org capped: limit 3/);
    await expect(ask(north)).rejects.toMatchObject({ status: 429 });
  });

  it('limits requests per minute with OpenAI headers, a 429 with Retry-After, and honours the reset', async () => {
    const ask = (): Promise<Response> =>
      fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${LIMITED_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      });
    // Twelve a minute: one request refills every 5 s. Each answer shows one fewer left, plus what has
    // refilled since the first (none on a fast machine); served until the limit runs out.
    const begun = Date.now();
    let denied: Response | undefined;
    for (let i = 0; i < 36; i++) {
      const response = await ask();
      if (response.status === 429) {
        denied = response;
        break;
      }
      expect(response.status).toBe(200);
      await response.arrayBuffer();
      expect(response.headers.get('x-ratelimit-limit-requests')).toBe('12');
      expect(response.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(\.\d+)?(ms|s)$|^\d+m\d+(\.\d+)?s$/);
      const refilled = Math.floor((Date.now() - begun) / 5_000);
      const remaining = Number(response.headers.get('x-ratelimit-remaining-requests'));
      expect(remaining).toBeGreaterThanOrEqual(Math.max(0, 11 - i));
      expect(remaining).toBeLessThanOrEqual(11 - i + refilled);
    }
    if (!denied) throw new Error('the limit never ran out');
    expect(denied.status).toBe(429);
    expect(await denied.json()).toMatchObject({ error: { code: 'rate_limit_exceeded', type: 'requests' } });
    const retryAfter = Number(denied.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(5);
    expect(denied.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    // A twelfth of the window refills one request: it is served once that time has passed.
    const retryAfterMs = Number(denied.headers.get('retry-after-ms') ?? retryAfter * 1000);
    const started = Date.now();
    let served = 0;
    while (served === 0 && Date.now() - started < 30_000) {
      const attempt = await ask();
      await attempt.arrayBuffer();
      if (attempt.status === 200) served = Date.now() - started;
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(served).toBeGreaterThan(0);
    expect(served).toBeGreaterThanOrEqual(retryAfterMs - 1_000);
  }, 40_000);

  it('charges tokens before the call and corrects them by the real usage', async () => {
    const client = gw.client({ apiKey: TOKEN_KEY });
    const started = Date.now();
    const first = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one two three' }], max_tokens: 5 }).withResponse();
    const estimateRemaining = Number(first.response.headers.get('x-ratelimit-remaining-tokens'));
    expect(first.response.headers.get('x-ratelimit-limit-tokens')).toBe('200');
    const total = first.data.usage?.total_tokens ?? 0;
    expect(total).toBeGreaterThan(0);
    // The next request sees the correction: the previous request's real total, not its estimate.
    const second = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'one two three' }], max_tokens: 5 }).withResponse();
    const estimate = 200 - estimateRemaining;
    const secondRemaining = Number(second.response.headers.get('x-ratelimit-remaining-tokens'));
    // Less what refilled between the two admissions: a token every 300 ms (none on a fast machine).
    const refilled = Math.ceil((Date.now() - started) / 300);
    expect(200 - secondRemaining).toBeGreaterThanOrEqual(total + estimate - 1 - refilled);
    expect(200 - secondRemaining).toBeLessThanOrEqual(total + estimate + 1);
    // More than the whole limit can never be served: refused at once, and the SDK does not retry it.
    let sent = 0;
    const retrying = new OpenAI({ apiKey: TOKEN_KEY, baseURL: gw.baseURL, maxRetries: 2, fetch: (url: string | URL | Request, init?: RequestInit) => ((sent += 1), fetch(url, init)) });
    const tooLarge = await retrying.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x '.repeat(400) }] }).catch((e: unknown) => e);
    expect(tooLarge).toMatchObject({ status: 429, code: 'rate_limit_exceeded', type: 'tokens' });
    expect((tooLarge as Error).message).toContain('Request too large for tokens per minute (TPM)');
    const headers = (tooLarge as { headers: Headers }).headers;
    expect(headers.get('retry-after')).toBeNull();
    expect(headers.get('x-should-retry')).toBe('false');
    expect(sent).toBe(1);
  });

  it('explains a routing decision and shows deployment health to the roles allowed', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Write a Python function that reverses a list' }] };
    const explained = await admin('POST', '/route/explain', TEST_ADMIN_KEY, body);
    expect(explained.status).toBe(200);
    expect(explained.json).toMatchObject({ requested_model: 'gpt-4o-mini', task_type: 'code' });
    expect(JSON.stringify(explained.json)).toContain('sim-mini');
    await expect(admin('POST', '/route/explain', VIEWER_KEY, body)).resolves.toMatchObject({ status: 403 });
    await expect(admin('POST', '/route/explain', TEST_ADMIN_KEY, { model: 'gpt-4o-mini', messages: 'no' })).resolves.toMatchObject({ status: 400 });
    const health = await admin('GET', '/providers/health', VIEWER_KEY);
    expect(health.status).toBe(200);
    expect(JSON.stringify(health.json)).toContain('sim-mini');
    await expect(admin('GET', '/routing/gray-releases', VIEWER_KEY)).resolves.toMatchObject({ status: 200 });
    await expect(admin('GET', '/providers/health', FINANCE_KEY)).resolves.toMatchObject({ status: 403 });
  });

  it('never writes a key or prompt text into a log line', async () => {
    const client = gw.client();
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: PROMPT_MARKER }] });
    await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer sk-or-v1-wrong-key-in-log-check', 'content-type': 'application/json' }, body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: PROMPT_MARKER }] }) });
    expect(lines.length).toBeGreaterThan(0);
    for (const secret of [TEST_DEV_KEY, TEST_ADMIN_KEY, FINANCE_KEY, LIMITED_KEY, TOKEN_KEY, 'sk-or-v1-wrong-key-in-log-check', PROMPT_MARKER, 'one two three']) {
      expect(lines.filter((line) => line.includes(secret))).toEqual([]);
    }
  });
});

describe('token limits corrected by the usage record, on a real Redis', () => {
  const SETTLE_SECRET = 'settle-e2e-hash-secret';
  // 600 ms a token: what a request is charged drains by less than a token while it runs.
  const TPM = 100;
  const TOKEN_MS = 60_000 / TPM;
  const KEYS = {
    answered: 'sk-or-v1-settle-answered-key-000000000000000',
    left: 'sk-or-v1-settle-client-left-key-0000000000000',
    refused: 'sk-or-v1-settle-budget-refused-key-0000000000',
    failed: 'sk-or-v1-settle-provider-failed-key-000000000',
    socket: 'sk-or-v1-settle-websocket-key-00000000000000',
    reserving: 'sk-or-v1-settle-reserving-key-00000000000000',
    responses: 'sk-or-v1-settle-responses-key-00000000000000',
    messages: 'sk-or-v1-settle-messages-key-000000000000000',
  } as const;
  type KeyId = keyof typeof KEYS;
  // Keys whose requests ask for hundreds of output tokens: a larger limit.
  const RESERVING_TPM = 1000;
  const reserving = new Set<KeyId>(['reserving', 'responses', 'messages']);
  // About 55 tokens: far more than the limit drains during a test, under the limit itself.
  const messages = [{ role: 'user' as const, content: `Tell me a long story about ${'words '.repeat(48)}` }];
  const prefix = `settle-e2e-${randomBytes(4).toString('hex')}:`;
  let gw: TestGateway;
  let redis: Redis;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = {
          ...(doc['access'] as object),
          keyHashSecret: SETTLE_SECRET,
          redis: { url: sharedRedisUrl(), keyPrefix: prefix },
          keys: Object.entries(KEYS).map(([id, key]) => ({ id, hash: hashApiKey(SETTLE_SECRET, key), org: 'default', limits: { tpm: reserving.has(id as KeyId) ? RESERVING_TPM : TPM } })),
        };
        // Production's setting: configured keys only.
        doc['ingress'] = { ...(doc['ingress'] as object), devKey: 'disabled' };
        // Far less than any request's worst case: the key's requests are admitted, then refused with 402.
        doc['budgets'] = { list: [{ id: 'settle-broke', scope: { org: 'default', key: 'refused' }, period: 'daily', amount: '0.000001', enforcement: 'hard' }] };
      },
    });
    redis = new Redis(sharedRedisUrl());
  }, 120_000);
  afterAll(async () => {
    redis?.disconnect();
    await gw?.close();
  });
  beforeEach(() => gw.sim.reset());

  /** The key's token limit as Redis holds it: its theoretical arrival time (0 when unset), and Redis's clock, in ms. */
  async function tokenLimit(id: KeyId): Promise<{ tat: number; now: number }> {
    const [[, tat], [, time]] = (await redis.multi().get(`${prefix}{rl}:rl:key:${id}:tokens`).time().exec()) as [[null, string | null], [null, [string, string]]];
    return { tat: Number(tat ?? 0), now: Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000) };
  }

  /**
   * Waits until the key's limit holds exactly `tokens` charged since its first admission, which came
   * between `start` and `end` (Redis times): counted from `start`, up to (end - start) / TOKEN_MS
   * tokens more (a token at least), however slow the machine was to get the request admitted.
   */
  async function chargedSince(id: KeyId, { start, end }: { start: number; end: number }, tokens: number): Promise<void> {
    const slack = Math.max(1, (end - start + 1) / TOKEN_MS);
    await waitFor(
      async () => {
        const charged = ((await tokenLimit(id)).tat - start) / TOKEN_MS;
        return (charged >= tokens && charged < tokens + slack) || undefined;
      },
      { timeoutMs: 10_000, what: `the ${id} key's token limit to hold ${tokens} tokens` },
    );
  }

  /** Waits until nothing is charged to the key's token limit any more. */
  async function givenBack(id: KeyId): Promise<void> {
    await waitFor(
      async () => {
        const { tat, now } = await tokenLimit(id);
        return tat <= now || undefined;
      },
      { timeoutMs: 10_000, what: `the ${id} key's estimate given back` },
    );
  }

  /** The tokens of a request's usage record, once it is written. */
  async function recorded(requestIdPattern: string): Promise<{ status: string; tokens: number; completion: number }> {
    const [row] = await waitFor(async () => {
      const rows = await queryRows<{ status: string; prompt_tokens: number; completion_tokens: number }>(
        gw.gateway.billing.usage.store,
        'SELECT status, prompt_tokens, completion_tokens FROM {db:Identifier}.usage_events FINAL WHERE request_id LIKE {pattern:String}',
        { pattern: requestIdPattern },
      );
      return rows.length > 0 ? rows : undefined;
    }, { what: `the usage record of ${requestIdPattern}` });
    return { status: row?.status ?? '', tokens: Number(row?.prompt_tokens) + Number(row?.completion_tokens), completion: Number(row?.completion_tokens) };
  }

  const post = (key: string, body: unknown, init: { requestId?: string; signal?: AbortSignal } = {}): Promise<Response> =>
    fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(init.requestId ? { 'x-request-id': init.requestId } : {}) },
      body: JSON.stringify(body),
      signal: init.signal,
    });

  it('has no development key when it is disabled: neither the test key nor the word itself gets in', async () => {
    for (const apiKey of [TEST_DEV_KEY, 'disabled']) {
      await expect(gw.client({ apiKey }).models.list()).rejects.toMatchObject({ status: 401 });
    }
    await expect(gw.client({ apiKey: KEYS.answered }).models.list()).resolves.toBeDefined();
  });

  it('charges answered requests, whole and streamed, with the provider\'s usage', async () => {
    const { now: start } = await tokenLimit('answered');
    const client = gw.client({ apiKey: KEYS.answered });
    // Short, and each reserves its prompt and 20 tokens of answer (the simulator writes 16): both fit the limit.
    const short = [{ role: 'user' as const, content: 'Tell me a short story' }];
    const whole = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: short, max_tokens: 20 });
    // The first admission came before its answer.
    const { now: end } = await tokenLimit('answered');
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: short, max_tokens: 20, stream: true, stream_options: { include_usage: true } });
    let streamed = 0;
    for await (const chunk of stream) streamed += chunk.usage?.total_tokens ?? 0;
    expect(whole.usage?.total_tokens).toBeGreaterThan(0);
    expect(streamed).toBeGreaterThan(0);
    await chargedSince('answered', { start, end }, (whole.usage?.total_tokens ?? 0) + streamed);
  });

  it('charges a stream whose client left with the tokens its usage record holds, not its reservation', async () => {
    gw.sim.configure({ completionTokens: 2_000, tokensPerSecond: 100 });
    const { now: start } = await tokenLimit('left');
    const abort = new AbortController();
    const response = await post(KEYS.left, { model: 'gpt-4o-mini', stream: true, messages }, { requestId: 'settle-client-left', signal: abort.signal });
    // Admitted before its headers came.
    const { now: end } = await tokenLimit('left');
    const admitted = TPM - Number(response.headers.get('x-ratelimit-remaining-tokens'));
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let received = '';
    while ((received.match(/"content":/g) ?? []).length < 20) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended before the client left');
      received += decoder.decode(value);
    }
    abort.abort();
    const record = await recorded('settle-client-left');
    expect(record.status).toBe('cancelled');
    // Asking for no maximum, it held the whole limit (its prompt and the default answer, cut to
    // what the limit holds beside the prompt); it is charged its prompt and the answer so far.
    expect(admitted).toBe(TPM);
    expect(record.completion).toBeGreaterThan(5);
    expect(record.tokens).toBeLessThan(admitted);
    await chargedSince('left', { start, end }, record.tokens);
  });

  it('gives its reservation back to a request its budget refused after it was admitted', async () => {
    const response = await post(KEYS.refused, { model: 'gpt-4o-mini', max_tokens: 40, messages });
    expect(response.status).toBe(402);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('budget_exceeded');
    // It was charged its prompt and its max_tokens at admission.
    expect(Number(response.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(TPM - 90);
    await givenBack('refused');
  });

  it('gives its reservation back to a request whose provider failed', async () => {
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500 }] });
    const response = await post(KEYS.failed, { model: 'gpt-4o-mini', messages }, { requestId: 'settle-provider-failed' });
    expect(response.status).toBeGreaterThanOrEqual(500);
    await response.arrayBuffer();
    expect(Number(response.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(TPM - 40);
    expect(await recorded('settle-provider-failed')).toMatchObject({ status: 'error', tokens: 0 });
    await givenBack('failed');
  });

  it('charges a WebSocket stream cancelled by its client with the tokens its usage record holds', async () => {
    gw.sim.configure({ completionTokens: 2_000, tokensPerSecond: 100 });
    const socket = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/ws`, ['openrouter.v1'], { headers: { authorization: `Bearer ${KEYS.socket}` } });
    const frames: Array<{ type: string; id: string | null; headers?: Record<string, string> }> = [];
    socket.on('message', (data) => frames.push(JSON.parse(data.toString()) as (typeof frames)[number]));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    try {
      // Read once the socket is open, and again once the request was admitted (its start frame came).
      const { now: start } = await tokenLimit('socket');
      socket.send(JSON.stringify({ type: 'chat.completions', id: 'settle-cut', body: { model: 'gpt-4o-mini', stream: true, messages } }));
      await waitFor(() => frames.some((f) => f.type === 'start') || undefined, { what: 'the stream to start' });
      const { now: end } = await tokenLimit('socket');
      await waitFor(() => frames.filter((f) => f.type === 'chunk').length >= 20 || undefined, { what: 'twenty chunks' });
      socket.send(JSON.stringify({ type: 'cancel', id: 'settle-cut' }));
      await waitFor(() => frames.some((f) => f.type === 'error') || undefined, { what: 'the cancelled request\'s error frame' });
      const admitted = TPM - Number(frames.find((f) => f.type === 'start')?.headers?.['x-ratelimit-remaining-tokens']);
      const record = await recorded('%:settle-cut');
      expect(record.status).toBe('cancelled');
      // It held the whole limit, as it asked for no maximum; what its answer did not use is back.
      expect(admitted).toBe(TPM);
      expect(record.completion).toBeGreaterThan(5);
      expect(record.tokens).toBeLessThan(admitted);
      await chargedSince('socket', { start, end }, record.tokens);
    } finally {
      socket.close();
    }
  });

  it('refuses concurrent requests in OpenAI\'s 429 once their prompts and max_tokens pass the limit, and gives back what small answers left', async () => {
    // Every answer takes two seconds: the five requests are all admitted (or refused) before the first settles.
    gw.sim.configure({ latencyMs: 2_000 });
    const client = gw.client({ apiKey: KEYS.reserving });
    const ask = () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 400 }).withResponse();
    const started = Date.now();
    const results = await Promise.allSettled(Array.from({ length: 5 }, ask));
    const served = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as InstanceType<typeof OpenAI.RateLimitError>] : []));
    // About 410 tokens each: two fit in 1,000, the third would not.
    expect(served).toHaveLength(2);
    expect(refused).toHaveLength(3);
    for (const error of refused) {
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      expect(error).toMatchObject({ status: 429, code: 'rate_limit_exceeded', type: 'tokens' });
      expect(error.message).toMatch(/^429 Rate limit reached for tokens per minute \(TPM\) on key reserving: limit 1000, remaining \d+, requested 4\d\d\. Please try again in /);
      expect(Number(error.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(error.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    }
    // One request's reservation: what the first admitted left (the most of the two, whatever their order in `served`).
    const reserved = RESERVING_TPM - Math.max(...served.map((s) => Number(s.response.headers.get('x-ratelimit-remaining-tokens'))));
    expect(reserved).toBeGreaterThan(400);
    expect(reserved).toBeLessThan(420);
    // Each was answered in a few dozen tokens: the rest of its reservation is back, so another one
    // is served at once (without it, 180 tokens were left, and a minute refills 1,000).
    const used = served.reduce((sum, s) => sum + (s.data.usage?.total_tokens ?? 0), 0);
    expect(used).toBeLessThan(100);
    gw.sim.configure({ latencyMs: 0 });
    const next = await ask();
    const left = Number(next.response.headers.get('x-ratelimit-remaining-tokens'));
    const refilled = Math.ceil((Date.now() - started) / (60_000 / RESERVING_TPM));
    expect(left).toBeGreaterThanOrEqual(RESERVING_TPM - used - reserved - 1);
    expect(left).toBeLessThanOrEqual(RESERVING_TPM - used - reserved + refilled);
  });

  it("counts a Responses request's max_output_tokens and a Messages request's max_tokens at admission", async () => {
    const responses = await gw.client({ apiKey: KEYS.responses }).responses.create({ model: 'gpt-4o-mini', input: 'hi', max_output_tokens: 300 }).withResponse();
    const afterResponses = Number(responses.response.headers.get('x-ratelimit-remaining-tokens'));
    expect(afterResponses).toBeLessThanOrEqual(RESERVING_TPM - 300);
    expect(afterResponses).toBeGreaterThan(RESERVING_TPM - 320);
    const messages = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': KEYS.messages, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 500, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(messages.status).toBe(200);
    await messages.arrayBuffer();
    const afterMessages = Number(messages.headers.get('x-ratelimit-remaining-tokens'));
    expect(afterMessages).toBeLessThanOrEqual(RESERVING_TPM - 500);
    expect(afterMessages).toBeGreaterThan(RESERVING_TPM - 520);
  });
});
