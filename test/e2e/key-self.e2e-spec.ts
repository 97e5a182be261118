import OpenAI from 'openai';
import { toMicros } from '@openrouter/budgets';
import { hashApiKey } from '@openrouter/ingress';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { CLEAR_OF_UTC_MIDNIGHT_MS, clearOfUtcMidnight } from '../support/utc-day';

const SECRET = 'key-self-e2e-hash-secret';
const CONFIG_KEY = 'sk-or-v1-key-self-e2e-config-key-000000000000';

interface Json {
  [key: string]: unknown;
}

interface SelfBudget {
  id: string;
  level: string;
  amount: string;
  spent: string | null;
  reserved: string | null;
  remaining: string | null;
  resets_at: string;
  unavailable: boolean;
}

/** The tenants, policies and keys both suites start from: `acme` keeps its traffic in the EU and screens it for secrets. */
function configure(doc: Record<string, unknown>, extra: Record<string, unknown> = {}): void {
  const providers = doc['providers'] as Record<string, Record<string, unknown>>;
  providers['simulated'] = { ...providers['simulated'], residency: 'eu' };
  doc['guardrails'] = { rules: [{ id: 'secrets', detect: 'secret', action: 'block' }] };
  doc['access'] = {
    ...(doc['access'] as object),
    keyHashSecret: SECRET,
    orgs: [
      { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
      { id: 'acme', policy: { residency: ['eu'], guardrails: ['secrets'] }, teams: [{ id: 'platform', limits: { tpm: 200_000 }, projects: [{ id: 'search' }] }] },
    ],
    keys: [{ id: 'search-backend', hash: hashApiKey(SECRET, CONFIG_KEY), prefix: 'sk-or-v1-key-s', org: 'acme', project: 'search', limits: { rpm: 2 } }],
    ...extra,
  };
}

/** `GET /v1/key` as an application reads it: the official SDK's raw `get`. */
async function self(gw: TestGateway, apiKey: string): Promise<Json> {
  return gw.client({ apiKey }).get<Json>('/key');
}

/** The SDK's error for a `GET /v1/key` that fails. */
async function refusal(gw: TestGateway, apiKey: string): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await self(gw, apiKey).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof OpenAI.APIError)) throw new Error(`expected an API error, got ${String(error)}`);
  return error;
}

// Spend and reads on the day's (and month's) periods, in real time: not across midnight.
beforeAll(() => clearOfUtcMidnight(), CLEAR_OF_UTC_MIDNIGHT_MS);

describe('GET /v1/key: a key reads itself', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({ configure: (doc) => configure(doc) });
  }, 120_000);
  afterAll(async () => gw?.close());

  async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
    const response = await fetch(`${gw.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Json };
  }

  async function issue(body: Record<string, unknown>): Promise<{ id: string; key: string }> {
    const issued = await admin('POST', '/keys', body);
    expect(issued.status).toBe(201);
    return { id: String(issued.json['id']), key: String(issued.json['key']) };
  }

  it("shows a configured key, its organisation's residency and guardrail policy, and its limits, charging none of them", async () => {
    const shown = await self(gw, CONFIG_KEY);
    expect(shown).toMatchObject({
      object: 'api_key',
      id: 'search-backend',
      prefix: 'sk-or-v1-key-s',
      org: 'acme',
      team: 'platform',
      project: 'search',
      app: null,
      expires_at: null,
      allowed_models: [],
      policy: { providers: null, exclude_providers: [], residency: ['eu'], guardrails: ['secrets'] },
      limits: { rpm: 2, tpm: 200_000, scopes: [{ scope: 'key', rpm: 2, tpm: null }, { scope: 'team', rpm: null, tpm: 200_000 }] },
      budgets: [],
    });
    expect(JSON.stringify(shown)).not.toContain(hashApiKey(SECRET, CONFIG_KEY));

    // Read many times over the key's 2 requests a minute: none of them is charged, and no limit headers are sent.
    for (let i = 0; i < 4; i++) {
      const response = await fetch(`${gw.baseURL}/key`, { headers: { 'x-api-key': CONFIG_KEY } });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-ratelimit-remaining-requests')).toBeNull();
      expect(((await response.json()) as Json)['id']).toBe('search-backend');
    }
    const { response } = await gw.client({ apiKey: CONFIG_KEY }).chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(response.status).toBe(200);
    // The chat request is the first the limit counted.
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('1');
  });

  it('shows an issued key the budgets its requests count against, with the spend of a chat request once it is settled, as the admin API shows them', async () => {
    const { id, key } = await issue({ name: 'search app', org: 'acme', project: 'search', app: 'search-ui', allowed_models: ['gpt-4o-mini'], limits: { tpm: 10_000 }, metadata: { owner: 'ops@acme.example' } });
    const created = await admin('POST', '/budgets', { id: 'key-self-search-daily', scope: { org: 'acme', project: 'search' }, period: 'daily', amount: '5' });
    expect(created.status).toBe(201);
    const own = await admin('POST', '/budgets', { id: 'key-self-own', scope: { org: 'acme', key: id }, period: 'monthly', amount: '1.5', enforcement: 'soft' });
    expect(own.status).toBe(201);
    // Another org's budget and another key's never show.
    expect((await admin('POST', '/budgets', { id: 'key-self-default', scope: { org: 'default' }, period: 'daily', amount: '1' })).status).toBe(201);

    const before = await self(gw, key);
    expect(before).toMatchObject({ id, name: 'search app', org: 'acme', team: 'platform', project: 'search', app: 'search-ui', allowed_models: ['gpt-4o-mini'], limits: { tpm: 10_000 } });
    expect((before['budgets'] as SelfBudget[]).map((b) => [b.id, b.level, b.amount, b.spent, b.remaining])).toEqual([
      ['key-self-own', 'key', '1.5', '0', '1.5'],
      ['key-self-search-daily', 'project', '5', '0', '5'],
    ]);

    const { response } = await gw.client({ apiKey: key }).chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    const cost = response.headers.get('x-openrouter-cost') ?? '';
    expect(toMicros(cost)).toBeGreaterThan(0);

    const budgetOf = (shown: Json): SelfBudget | undefined => (shown['budgets'] as SelfBudget[]).find((b) => b.id === 'key-self-search-daily');
    const after = await waitFor(async () => {
      const shown = await self(gw, key);
      const budget = budgetOf(shown);
      return budget?.reserved === '0' && budget.spent !== '0' ? shown : undefined;
    }, { what: 'the chat request settled in the project budget' });
    const budget = budgetOf(after);
    expect(toMicros(String(budget?.spent))).toBe(toMicros(cost));
    expect(toMicros(String(budget?.remaining))).toBe(toMicros('5') - toMicros(cost));
    // The same money, in the same format, as the admin API.
    const adminView = await admin('GET', '/budgets/key-self-search-daily');
    expect(budget).toMatchObject({ amount: adminView.json['amount'], spent: adminView.json['spent'], remaining: adminView.json['remaining'], resets_at: (adminView.json['current_period'] as Json)['end'], unavailable: false });

    const text = JSON.stringify(after);
    expect(text).not.toContain(hashApiKey(SECRET, key));
    expect(text).not.toContain(key);
    expect(text).not.toContain('ops@acme.example');
  });

  it('answers the old secret of a rotated key during its grace as the same key, saying when that secret stops working', async () => {
    const { id, key: old } = await issue({ org: 'acme', project: 'search' });
    const rotated = await admin('POST', `/keys/${id}/rotate`, { grace_seconds: 600 });
    expect(rotated.status).toBe(200);
    const fresh = String(rotated.json['key']);

    const byOld = await self(gw, old);
    expect(byOld).toMatchObject({ id, secret_expires_at: rotated.json['previous_key_expires_at'] });
    const byNew = await self(gw, fresh);
    expect(byNew).toMatchObject({ id, secret_expires_at: null });
    for (const hash of [hashApiKey(SECRET, old), hashApiKey(SECRET, fresh)]) expect(JSON.stringify(byOld)).not.toContain(hash);
  });

  it("refuses a bad, a missing and a revoked key with 401 in OpenAI's error shape", async () => {
    const bad = await refusal(gw, 'sk-or-v1-not-a-key-of-this-gateway-000000000000');
    expect(bad.status).toBe(401);
    expect(bad.error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });

    const missing = await fetch(`${gw.baseURL}/key`);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ error: { code: 'missing_api_key', message: expect.stringContaining('API key') } });

    const { id, key } = await issue({ org: 'acme', project: 'search' });
    expect(await self(gw, key)).toMatchObject({ id });
    expect((await admin('POST', `/keys/${id}/revoke`)).status).toBe(200);
    const revoked = await refusal(gw, key);
    expect(revoked.status).toBe(401);
    expect(revoked.error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
  });
});

describe('GET /v1/key with the budget store (Redis) down', () => {
  let redis: RedisServer;
  let gw: TestGateway;

  beforeAll(async () => {
    redis = await RedisServer.start();
    gw = await startTestGateway({
      configure: (doc) => {
        configure(doc, { redis: { url: redis.url, keyPrefix: 'key-self-down:' } });
        doc['budgets'] = { list: [{ id: 'acme-monthly', scope: { org: 'acme' }, period: 'monthly', amount: '2500.00' }] };
      },
    });
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    await redis?.stop();
  });

  it('still answers 200 with the key, its budgets listed but marked unavailable, with no standing', async () => {
    const up = await self(gw, CONFIG_KEY);
    expect(up['budgets']).toEqual([expect.objectContaining({ id: 'acme-monthly', amount: '2500', spent: '0', remaining: '2500', unavailable: false })]);

    await redis.stop();
    const down = await self(gw, CONFIG_KEY);
    expect(down).toMatchObject({ id: 'search-backend', org: 'acme', policy: { residency: ['eu'] } });
    expect(down['budgets']).toEqual([expect.objectContaining({ id: 'acme-monthly', level: 'org', amount: '2500', spent: null, reserved: null, remaining: null, unavailable: true })]);
  }, 60_000);
});
