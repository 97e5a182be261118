import OpenAI from 'openai';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

describe('changing tenants at run time, end to end', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = {
          ...(doc['access'] as object),
          orgs: [
            { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
            { id: 'acme', costCenter: 'CC-ACME', teams: [{ id: 'platform', projects: [{ id: 'search' }] }] },
          ],
        };
      },
    });
  }, 120_000);
  afterAll(async () => gw?.close());

  async function admin(method: string, path: string, body?: unknown): Promise<Answer> {
    const response = await fetch(`${gw.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  /** The cost centre recorded with a request's usage row, once it is stored. */
  function costCenterOf(requestId: string): Promise<string> {
    return waitFor(
      async () => {
        const rows = await queryRows<{ cost_center: string }>(gw.gateway.billing.usage.store, 'SELECT cost_center FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}', { id: requestId });
        return rows[0]?.cost_center;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `the usage row of ${requestId}` },
    );
  }

  async function ask(client: OpenAI): Promise<string> {
    const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(response.status).toBe(200);
    return response.headers.get('x-request-id') ?? '';
  }

  it("records a project's new cost centre on the requests after the change, and the old one on those before", async () => {
    expect((await admin('POST', '/tenants', { id: 'initech', cost_center: 'CC-INITECH' })).status).toBe(201);
    expect((await admin('POST', '/tenants/initech/teams', { id: 'ops' })).status).toBe(201);
    expect((await admin('POST', '/tenants/initech/teams/ops/projects', { id: 'billing', cost_center: 'CC-OLD' })).status).toBe(201);
    const issued = await admin('POST', '/keys', { org: 'initech', project: 'billing', name: 'billing backend' });
    expect(issued.status).toBe(201);
    const client = gw.client({ apiKey: issued.json['key'] as string });

    const before = await ask(client);
    await expect(admin('PATCH', '/tenants/initech/teams/ops/projects/billing', { cost_center: 'CC-NEW' })).resolves.toEqual({
      status: 200,
      json: { object: 'project', id: 'billing', name: null, cost_center: 'CC-NEW', limits: { rpm: null, tpm: null }, end_user_limits: null, policy: null },
    });
    const after = await ask(client);
    // Cleared: the team has none, so the organisation's.
    expect((await admin('PATCH', '/tenants/initech/teams/ops/projects/billing', { cost_center: null })).status).toBe(200);
    const cleared = await ask(client);

    expect(await costCenterOf(before)).toBe('CC-OLD');
    expect(await costCenterOf(after)).toBe('CC-NEW');
    expect(await costCenterOf(cleared)).toBe('CC-INITECH');
    // Past usage keeps the cost centre it was recorded with.
    expect(await costCenterOf(before)).toBe('CC-OLD');
  });

  it("enforces a project's rate limit from the request after the PATCH that set it, in OpenAI's error shape", async () => {
    expect((await admin('POST', '/tenants/initech/teams/ops/projects', { id: 'payroll' })).status).toBe(201);
    const issued = await admin('POST', '/keys', { org: 'initech', project: 'payroll' });
    const client = gw.client({ apiKey: issued.json['key'] as string });
    await ask(client);
    await ask(client);
    await expect(admin('PATCH', '/tenants/initech/teams/ops/projects/payroll', { limits: { rpm: 1 } })).resolves.toMatchObject({ status: 200, json: { limits: { rpm: 1, tpm: null } } });
    await ask(client);
    const refused = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect((refused as InstanceType<typeof OpenAI.RateLimitError>).error).toMatchObject({ type: expect.any(String) as unknown, message: expect.any(String) as unknown });

    // Cleared: the project's default (none) again.
    expect((await admin('PATCH', '/tenants/initech/teams/ops/projects/payroll', { limits: null })).status).toBe(200);
    await ask(client);
  });

  it('refuses a tenant from the configuration file, an id change and an unknown project, each with its reason', async () => {
    await expect(admin('PATCH', '/tenants/acme/teams/platform/projects/search', { cost_center: 'CC-X' })).resolves.toMatchObject({
      status: 409,
      json: { error: { type: 'invalid_request_error', code: 'configured_tenant', param: 'project', message: expect.stringContaining('declared in the configuration file') as unknown } },
    });
    await expect(admin('PATCH', '/tenants/initech', { id: 'initech-2' })).resolves.toMatchObject({ status: 400, json: { error: { code: 'immutable_field', param: 'id' } } });
    await expect(admin('PATCH', '/tenants/initech', {})).resolves.toMatchObject({ status: 400, json: { error: { code: 'invalid_value' } } });
    await expect(admin('PATCH', '/tenants/initech/teams/ops/projects/nope', { name: 'x' })).resolves.toMatchObject({ status: 404, json: { error: { code: 'not_found', param: 'project' } } });
    const audit = await admin('GET', '/audit?action=project.update&org=initech');
    expect((audit.json['data'] as unknown[]).length).toBe(4);
  });
});
