import OpenAI from 'openai';
import { InProcessBudgetBus, toMicros } from '@openrouter/budgets';
import type { budgetv1 } from '@openrouter/contracts';
import { hashApiKey } from '@openrouter/ingress';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { CLEAR_OF_UTC_MIDNIGHT_MS, clearOfUtcMidnight } from '../support/utc-day';

const SECRET = 'budget-admin-e2e-hash-secret';
const FINANCE_KEY = 'sk-or-admin-finance-budget-e2e-00000000000';
const PROJECT_KEY = 'sk-or-admin-project-budget-e2e-00000000000';
const SEARCH_ADMIN_KEY = 'sk-or-admin-search-budget-e2e-000000000000';
const SEARCH_KEY = 'sk-or-v1-search-budget-e2e-key-000000000000';

interface Json {
  [key: string]: unknown;
}

/**
 * Budgets managed through the admin API on the embedded gateway (memory mode): created, spent
 * through chat with the official SDK, raised, read and deleted, each change audited, each key
 * seeing what its role and scope allow.
 */
// Spend and reads on the day's (and month's) periods, in real time: not across midnight.
beforeAll(() => clearOfUtcMidnight(), CLEAR_OF_UTC_MIDNIGHT_MS);

describe('budgets through the admin API', () => {
  let gw: TestGateway;
  const events: budgetv1.BudgetEvent[] = [];

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = {
          keyHashSecret: SECRET,
          admin: {
            devKey: TEST_ADMIN_KEY,
            keys: [
              { id: 'fin', hash: hashApiKey(SECRET, FINANCE_KEY), role: 'finance' },
              { id: 'proj', hash: hashApiKey(SECRET, PROJECT_KEY), role: 'project', org: 'acme', project: 'search' },
              { id: 'search-ops', hash: hashApiKey(SECRET, SEARCH_ADMIN_KEY), role: 'admin', org: 'acme', project: 'search' },
            ],
          },
          orgs: [
            { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
            { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }] }] },
          ],
          keys: [{ id: 'search-backend', hash: hashApiKey(SECRET, SEARCH_KEY), org: 'acme', project: 'search' }],
        };
        // Configured: shown by the API, changed only in the file.
        doc['budgets'] = { list: [{ id: 'acme-soft', scope: { org: 'acme' }, period: 'monthly', amount: '1000', enforcement: 'soft' }] };
      },
    });
    const bus = gw.gateway.ingress.budgetEvents;
    if (!(bus instanceof InProcessBudgetBus)) throw new Error('expected the in-process budget bus');
    bus.subscribe((e) => events.push(e));
  }, 120_000);
  afterAll(async () => gw?.close());

  async function admin(method: string, path: string, key = TEST_ADMIN_KEY, body?: unknown): Promise<{ status: number; json: Json }> {
    const response = await fetch(`${gw.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Json };
  }

  /** One chat request of the search backend: its status and what it cost. */
  async function chat(): Promise<{ status: number; cost: string; code?: string | null | undefined }> {
    try {
      const { response } = await gw.client({ apiKey: SEARCH_KEY }).chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
      return { status: response.status, cost: response.headers.get('x-openrouter-cost') ?? '0' };
    } catch (error) {
      if (!(error instanceof OpenAI.APIError)) throw error;
      return { status: error.status ?? 0, cost: '0', code: error.code };
    }
  }

  /** The budget once no request holds a reservation on it. */
  const settled = (id: string): Promise<Json> => waitFor(async () => {
    const { json } = await admin('GET', `/budgets/${id}`);
    return json['reserved'] === '0' ? json : undefined;
  }, { what: `budget ${id} with nothing reserved` });

  it('creates a hard budget that refuses with 402 once spent, admits again at once when raised, shows spend move, and deletes it — all audited', async () => {
    // gpt-4o-mini: 0.15 in / 0.60 out per 1M tokens; "hi" with max_tokens 50 reserves 34 micro-units.
    const created = await admin('POST', '/budgets', TEST_ADMIN_KEY, { id: 'search-daily', scope: { org: 'acme', project: 'search' }, period: 'daily', amount: '0.0002', alert_thresholds: [50, 100] });
    expect(created).toMatchObject({ status: 201, json: { object: 'budget', id: 'search-daily', source: 'api', amount: '0.0002', enforcement: 'hard', spent: '0', reserved: '0', remaining: '0.0002', scope: { org: 'acme', project: 'search' } } });
    const window = created.json['current_period'] as { start: string; end: string };
    expect(Date.parse(window.end) - Date.parse(window.start)).toBe(86_400_000);

    const costs: string[] = [];
    let refused: Awaited<ReturnType<typeof chat>> | undefined;
    for (let i = 0; i < 40 && !refused; i++) {
      const outcome = await chat();
      if (outcome.status === 200) costs.push(outcome.cost);
      else refused = outcome;
    }
    expect(costs.length).toBeGreaterThan(0);
    expect(refused).toMatchObject({ status: 402, code: 'budget_exceeded' });
    const spent = await settled('search-daily');
    const total = costs.reduce((sum, c) => sum + toMicros(c), 0);
    expect(toMicros(String(spent['spent']))).toBe(total);
    expect(toMicros(String(spent['remaining']))).toBe(toMicros('0.0002') - total);
    // The refusal announced the budget's 100 % (and 50 %), as a configured budget's does.
    await waitFor(() => events.some((e) => e.budgetId === 'search-daily' && e.thresholdPercent === 100), { what: 'the 100 % event of the API budget' });

    const raised = await admin('PATCH', '/budgets/search-daily', TEST_ADMIN_KEY, { amount: '0.5' });
    expect(raised).toMatchObject({ status: 200, json: { amount: '0.5', spent: spent['spent'] } });
    const admitted = await chat();
    expect(admitted.status).toBe(200);
    const after = await settled('search-daily');
    expect(toMicros(String(after['spent']))).toBe(total + toMicros(admitted.cost));
    expect(toMicros(String(after['remaining']))).toBe(toMicros('0.5') - total - toMicros(admitted.cost));

    // Its spend key cannot change; a configured budget cannot change at all.
    await expect(admin('PATCH', '/budgets/search-daily', TEST_ADMIN_KEY, { period: 'monthly' })).resolves.toMatchObject({ status: 400, json: { error: { code: 'immutable_field', param: 'period' } } });
    await expect(admin('PATCH', '/budgets/acme-soft', TEST_ADMIN_KEY, { amount: '5' })).resolves.toMatchObject({ status: 403, json: { error: { code: 'budget_in_configuration' } } });
    await expect(admin('DELETE', '/budgets/acme-soft')).resolves.toMatchObject({ status: 403, json: { error: { code: 'budget_in_configuration' } } });
    await expect(admin('POST', '/budgets', TEST_ADMIN_KEY, { id: 'acme-soft', scope: { org: 'acme' }, period: 'daily', amount: '1' })).resolves.toMatchObject({ status: 409, json: { error: { type: 'invalid_request_error', code: 'already_exists' } } });

    // Lowered below its spend it refuses again; deleted, it no longer applies.
    expect((await admin('PATCH', '/budgets/search-daily', TEST_ADMIN_KEY, { amount: '0.0001' })).status).toBe(200);
    expect((await chat()).status).toBe(402);
    await expect(admin('DELETE', '/budgets/search-daily')).resolves.toMatchObject({ status: 200, json: { object: 'budget', id: 'search-daily', deleted: true } });
    expect((await chat()).status).toBe(200);
    await expect(admin('GET', '/budgets/search-daily')).resolves.toMatchObject({ status: 404, json: { error: { code: 'not_found', param: 'id' } } });

    const audit = await admin('GET', '/audit?limit=20');
    const entries = (audit.json['data'] as Json[]).filter((e) => e['target'] === 'search-daily').map((e) => [e['action'], (e['details'] as Json)['org'], (e['details'] as Json)['project']]);
    expect(entries).toEqual([
      ['budget.delete', 'acme', 'search'],
      ['budget.update', 'acme', 'search'],
      ['budget.update', 'acme', 'search'],
      ['budget.create', 'acme', 'search'],
    ]);

    // Created again under the deleted id: another budget, which starts from nothing, not from the deleted one's spend.
    const again = await admin('POST', '/budgets', TEST_ADMIN_KEY, { id: 'search-daily', scope: { org: 'acme', project: 'search' }, period: 'daily', amount: '0.0002' });
    expect(again).toMatchObject({ status: 201, json: { spent: '0', reserved: '0', remaining: '0.0002' } });
    expect((await chat()).status).toBe(200);
    await expect(admin('DELETE', '/budgets/search-daily')).resolves.toMatchObject({ status: 200 });
  }, 120_000);

  it('refuses a budget whose scope names a tenant or key that does not exist, naming the field (it would never apply)', async () => {
    const refused = async (scope: Json) => (await admin('POST', '/budgets', TEST_ADMIN_KEY, { id: 'never', scope, period: 'daily', amount: '1' })).json['error'];
    await expect(refused({ org: 'nosuchorg' })).resolves.toMatchObject({ type: 'invalid_request_error', code: 'invalid_value', param: 'scope.org' });
    await expect(refused({ org: 'acme', project: 'serach' })).resolves.toMatchObject({ code: 'invalid_value', param: 'scope.project' });
    await expect(refused({ org: 'acme', key: 'key_doesnotexist' })).resolves.toMatchObject({ code: 'invalid_value', param: 'scope.key' });
    await expect(admin('GET', '/budgets/never')).resolves.toMatchObject({ status: 404 });
  });

  it('shows a finance key every budget without letting it change one, and a project key only those of its project', async () => {
    expect((await admin('POST', '/budgets', TEST_ADMIN_KEY, { id: 'ads-weekly', scope: { org: 'acme', project: 'ads' }, period: 'weekly', amount: '50', enforcement: 'soft' })).status).toBe(201);
    // An admin key scoped to the search project creates for its own project.
    const own = await admin('POST', '/budgets', SEARCH_ADMIN_KEY, { id: 'search-monthly', scope: { org: 'acme' }, period: 'monthly', amount: '20' });
    expect(own).toMatchObject({ status: 201, json: { scope: { org: 'acme', project: 'search' } } });
    await expect(admin('POST', '/budgets', SEARCH_ADMIN_KEY, { id: 'not-mine', scope: { org: 'acme', project: 'ads' }, period: 'monthly', amount: '20' })).resolves.toMatchObject({ status: 404 });

    const ids = (list: { json: Json }): unknown[] => (list.json['data'] as Json[]).map((b) => b['id']);
    const finance = await admin('GET', '/budgets', FINANCE_KEY);
    expect(finance.status).toBe(200);
    expect(ids(finance)).toEqual(['acme-soft', 'ads-weekly', 'search-monthly']);
    expect(finance.json).toMatchObject({ object: 'list', first_id: 'acme-soft', last_id: 'search-monthly', has_more: false });
    await expect(admin('PATCH', '/budgets/ads-weekly', FINANCE_KEY, { amount: '60' })).resolves.toMatchObject({ status: 403, json: { error: { code: 'insufficient_role' } } });
    await expect(admin('POST', '/budgets', FINANCE_KEY, { id: 'fin', scope: { org: 'acme' }, period: 'daily', amount: '1' })).resolves.toMatchObject({ status: 403 });

    const project = await admin('GET', '/budgets', PROJECT_KEY);
    expect(ids(project)).toEqual(['search-monthly']);
    await expect(admin('GET', '/budgets/ads-weekly', PROJECT_KEY)).resolves.toMatchObject({ status: 404 });
    await expect(admin('GET', '/budgets/acme-soft', PROJECT_KEY)).resolves.toMatchObject({ status: 404 });
    await expect(admin('GET', '/budgets?project=ads', PROJECT_KEY)).resolves.toMatchObject({ status: 404 });
    await expect(admin('DELETE', '/budgets/search-monthly', PROJECT_KEY)).resolves.toMatchObject({ status: 403, json: { error: { code: 'insufficient_role' } } });

    // Filters and pages.
    expect(ids(await admin('GET', '/budgets?source=api&limit=1'))).toEqual(['ads-weekly']);
    const next = await admin('GET', '/budgets?source=api&limit=1&after=ads-weekly');
    expect(next.json).toMatchObject({ data: [expect.objectContaining({ id: 'search-monthly' })], has_more: false });
    await expect(admin('GET', '/budgets?team=platform&color=red')).resolves.toMatchObject({ status: 400, json: { error: { param: 'color' } } });
  });
});
