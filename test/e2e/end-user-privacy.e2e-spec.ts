import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const SECRET = 'e2e-end-user-secret-0123456789abcdef';

/**
 * `usage.endUsers: pseudonymized`: the usage records of a request made for an end user (often an
 * e-mail address) carry a keyed pseudonym, never the id; the admin API tells which pseudonym is a
 * user's, so a data subject's request can still be answered.
 */
describe('end users in usage records, pseudonymized', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['usage'] = { ...(doc['usage'] as Record<string, unknown>), endUsers: 'pseudonymized', endUserSecret: SECRET };
      },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  const endUserOf = (id: string) =>
    waitFor(
      async () => {
        const rows = await queryRows<{ end_user: string }>(gw.gateway.billing.usage.store, 'SELECT end_user FROM {db:Identifier}.usage_events FINAL WHERE request_id = {id:String}', { id });
        return rows[0]?.end_user;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `the usage row of ${id}` },
    );

  const lookup = async (body: unknown, key = TEST_ADMIN_KEY): Promise<{ status: number; json: Record<string, unknown> }> => {
    const response = await fetch(`${gw.url}/admin/v1/end-users/lookup`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };

  it('records a pseudonym, the same for every request of the user, and the admin API names it', async () => {
    const client = gw.client();
    const first = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], user: 'jane@example.com' }).withResponse();
    const second = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'again' }] }, { headers: { 'x-openrouter-user': 'jane@example.com' } })
      .withResponse();
    const other = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'x', user: 'john@example.com' }).withResponse();
    const [a, b, c] = await Promise.all([first, second, other].map((r) => endUserOf(r.response.headers.get('x-request-id') ?? '')));
    expect(a).toMatch(/^eu_[A-Za-z0-9_-]{32}$/);
    expect(a).not.toContain('jane');
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    const found = await lookup({ org: 'default', end_user: 'jane@example.com' });
    expect(found).toEqual({ status: 200, json: { object: 'end_user_id', org: 'default', end_users: 'pseudonymized', end_user_id: a } });
    // The provider still gets the user the client named: only the gateway's records are pseudonymized.
    expect(gw.sim.requests().at(0)?.body).toMatchObject({ user: 'jane@example.com' });
  });

  it('refuses a lookup without an org or a user, or with unknown fields, naming the field', async () => {
    expect(await lookup({ end_user: 'jane@example.com' })).toMatchObject({ status: 400, json: { error: { param: 'org', type: 'invalid_request_error' } } });
    expect(await lookup({ org: 'default', end_user: '' })).toMatchObject({ status: 400, json: { error: { param: 'end_user' } } });
    expect(await lookup({ org: 'default', end_user: 'jane@example.com', user: 'x' })).toMatchObject({ status: 400, json: { error: { param: 'user' } } });
    expect(await lookup({ org: 'default', end_user: 'jane@example.com' }, 'sk-or-admin-wrong')).toMatchObject({ status: 401 });
  });
});
