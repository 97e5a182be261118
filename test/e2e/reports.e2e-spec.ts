import { hashApiKey } from '@openrouter/ingress';
import { Money, moneyText } from '@openrouter/usage';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { CLEAR_OF_UTC_MIDNIGHT_MS, clearOfUtcMidnight } from '../support/utc-day';

const SECRET = 'open-router-development-secret';
const keys = {
  search: 'sk-or-test-search-0123456789abcdef',
  ads: 'sk-or-test-ads-0123456789abcdefgh',
  platform: 'sk-or-test-platform-0123456789abc',
  untagged: 'sk-or-test-untagged-0123456789ab',
  finance: 'sk-or-admin-finance-0123456789abc',
  projectSearch: 'sk-or-admin-search-0123456789abcd',
  financeOther: 'sk-or-admin-fin-other-0123456789a',
};

interface EventRow {
  org_id: string;
  project_id: string;
  cost_center: string;
  served_model: string;
  cost: string;
}

function sum(values: Iterable<string>): string {
  let total = new Money(0);
  for (const v of values) total = total.plus(v);
  return moneyText(total);
}

// Spend and reads on the day's (and month's) periods, in real time: not across midnight.
beforeAll(() => clearOfUtcMidnight(), CLEAR_OF_UTC_MIDNIGHT_MS);

describe('usage reports through the admin API', () => {
  let gw: TestGateway;
  // Read once the run is clear of midnight (the file's first hook).
  let month = '';

  const get = async (path: string, key = TEST_ADMIN_KEY): Promise<{ status: number; body: unknown; text: string; type: string | null }> => {
    const response = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.status, body, text, type: response.headers.get('content-type') };
  };

  beforeAll(async () => {
    month = new Date().toISOString().slice(0, 7);
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = {
          ...(doc['access'] as object),
          orgs: [
            { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
            {
              id: 'acme',
              costCenter: 'platform',
              teams: [
                {
                  id: 'web',
                  projects: [
                    { id: 'search', costCenter: 'cc-search' },
                    { id: 'ads', costCenter: 'cc-ads' },
                  ],
                },
              ],
            },
            { id: 'other', costCenter: 'platform' },
          ],
          keys: [
            { id: 'k-search', hash: hashApiKey(SECRET, keys.search), org: 'acme', team: 'web', project: 'search' },
            { id: 'k-ads', hash: hashApiKey(SECRET, keys.ads), org: 'acme', team: 'web', project: 'ads' },
            { id: 'k-platform', hash: hashApiKey(SECRET, keys.platform), org: 'acme' },
            { id: 'k-other', hash: hashApiKey(SECRET, keys.untagged), org: 'other' },
          ],
          admin: {
            devKey: TEST_ADMIN_KEY,
            keys: [
              { id: 'finance', hash: hashApiKey(SECRET, keys.finance), role: 'finance' },
              { id: 'search-admin', hash: hashApiKey(SECRET, keys.projectSearch), role: 'project', org: 'acme', project: 'search' },
              { id: 'other-finance', hash: hashApiKey(SECRET, keys.financeOther), role: 'finance', org: 'other' },
            ],
          },
        };
        doc['billing'] = { ...(doc['billing'] as object), chargeback: { sharedCostCenters: ['platform'], fixedShares: { 'cc-search': '3', 'cc-ads': '1' } } };
        doc['routing'] = {
          aliases: { 'ab-model': { models: ['gpt-4o-mini', 'vendor/model-with-slash'] } },
          experiments: [{ id: 'exp-1', target: 'ab-model', stickiness: 'request', arms: [{ name: 'control', model: 'gpt-4o-mini', weight: 1 }, { name: 'treatment', model: 'vendor/model-with-slash', weight: 1 }] }],
        };
      },
    });
    const traffic: Array<[string, number]> = [
      [keys.search, 23],
      [keys.ads, 11],
      [keys.platform, 7],
      [keys.untagged, 5],
    ];
    let sent = 0;
    for (const [key, count] of traffic) {
      const client = gw.client({ apiKey: key });
      await Promise.all(
        Array.from({ length: count }, (_, i) => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${i} ${'x'.repeat(i)}` }], max_tokens: 5 + i })),
      );
      sent += count;
    }
    const client = gw.client({ apiKey: keys.search });
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.chat.completions.create({ model: 'ab-model', messages: [{ role: 'user', content: `ab ${i}` }] })));
    sent += 20;
    await waitFor(async () => (await events()).length === sent, { timeoutMs: 60_000, intervalMs: 100, what: `${sent} stored usage events` });
  }, 180_000);
  afterAll(async () => gw?.close());

  const events = (): Promise<EventRow[]> =>
    queryRows<EventRow>(gw.gateway.billing.usage.store, 'SELECT org_id, project_id, cost_center, served_model, toString(cost) AS cost FROM {db:Identifier}.usage_events FINAL');

  it('invoices an org per model with totals equal to the sum of its events', async () => {
    const all = await events();
    const acme = all.filter((e) => e.org_id === 'acme');
    const { status, body } = await get(`/admin/v1/invoices/acme/${month}`);
    expect(status).toBe(200);
    const invoice = body as { lines: Array<{ model: string; amount: string; requests: number }>; totals: Record<string, string> };
    expect(invoice.totals).toEqual({ USD: sum(acme.map((e) => e.cost)) });
    for (const line of invoice.lines) expect(line.amount).toBe(sum(acme.filter((e) => e.served_model === line.model).map((e) => e.cost)));
    expect(invoice.lines.reduce((n, l) => n + l.requests, 0)).toBe(acme.length);
    const csv = await get(`/admin/v1/invoices/acme/${month}?format=csv`);
    expect(csv.type).toMatch(/^text\/csv/);
    expect(csv.text.split('\r\n')[0]).toBe('model,currency,requests,prompt_tokens,completion_tokens,cached_read_tokens,cache_write_tokens,amount,cache_hits,cache_saved_cost');
  });

  it.each(['proportional', 'fixed'] as const)('charges every cent back to cost centres (%s allocation)', async (allocation) => {
    const all = await events();
    const { status, body } = await get(`/admin/v1/chargeback?month=${month}&allocation=${allocation}`);
    expect(status).toBe(200);
    const report = body as { lines: Array<{ org: string; cost_center: string; direct: string; allocated: string; total: string }>; unallocated: Array<{ org: string; total: string }>; totals: Record<string, string> };
    expect(report.totals).toEqual({ USD: sum(all.map((e) => e.cost)) });
    expect(sum([...report.lines, ...report.unallocated].map((l) => l.total))).toBe(sum(all.map((e) => e.cost)));
    const acme = report.lines.filter((l) => l.org === 'acme');
    expect(acme.map((l) => l.cost_center).sort()).toEqual(['cc-ads', 'cc-search']);
    // The shared platform spend is spread over the two project cost centres, to the last unit.
    const shared = sum(all.filter((e) => e.org_id === 'acme' && e.cost_center === 'platform').map((e) => e.cost));
    expect(sum(acme.map((l) => l.allocated))).toBe(shared);
    for (const l of acme) expect(l.direct).toBe(sum(all.filter((e) => e.org_id === 'acme' && e.cost_center === l.cost_center).map((e) => e.cost)));
    if (allocation === 'fixed') {
      const search = new Money(acme.find((l) => l.cost_center === 'cc-search')?.allocated ?? '0');
      expect(search.minus(new Money(shared).times(0.75)).abs().lessThanOrEqualTo('0.000000000000000001')).toBe(true);
    }
    // The other org has only shared spend: no direct spend to be proportional to, so it stays
    // unallocated; fixed shares carry it to the named cost centres.
    const other = sum(all.filter((e) => e.org_id === 'other').map((e) => e.cost));
    if (allocation === 'proportional') expect(report.unallocated).toEqual([expect.objectContaining({ org: 'other', cost_center: '', total: other })]);
    else {
      expect(report.unallocated).toEqual([]);
      expect(sum(report.lines.filter((l) => l.org === 'other').map((l) => l.allocated))).toBe(other);
    }
  });

  it('reports usage grouped by any dimension, in JSON and CSV, from the rollup', async () => {
    const all = await events();
    const { body } = await get(`/admin/v1/usage?from=${month}-01&group_by=org,project,model`);
    const report = body as { source: string; data: Array<Record<string, string | number>>; total: { cost: string | null; requests: number; cost_by_currency: Record<string, string> } };
    expect(report.source).toBe('rollup');
    expect(report.total).toMatchObject({ cost: sum(all.map((e) => e.cost)), requests: all.length, cost_by_currency: { USD: sum(all.map((e) => e.cost)) } });
    const search = report.data.filter((r) => r['org'] === 'acme' && r['project'] === 'search');
    expect(sum(search.map((r) => String(r['cost'])))).toBe(sum(all.filter((e) => e.project_id === 'search').map((e) => e.cost)));
    const csv = await get(`/admin/v1/usage?from=${month}-01&group_by=cost_center&format=csv`);
    expect(csv.text.split('\r\n')[0]).toBe('cost_center,currency,requests,errors,prompt_tokens,completion_tokens,cached_read_tokens,cache_write_tokens,reasoning_tokens,cost,cache_hits,cache_saved_cost');
    const raw = await get(`/admin/v1/usage?from=${new Date(Date.now() - 3_600_000).toISOString()}&group_by=experiment_arm&experiment=exp-1`);
    expect((raw.body as { source: string }).source).toBe('events');
    // What the clients asked for beside what served them: the experiment's target, split over its arms.
    const asked = await get(`/admin/v1/usage?from=${month}-01&group_by=requested_model,model`);
    const askedRows = (asked.body as { source: string; data: Array<{ requested_model: string; model: string; requests: number }> }).data;
    expect((asked.body as { source: string }).source).toBe('events');
    const ab = askedRows.filter((r) => r.requested_model === 'ab-model');
    expect(ab.reduce((n, r) => n + r.requests, 0)).toBe(20);
    expect(ab.map((r) => r.model).sort()).toEqual(['gpt-4o-mini', 'vendor/model-with-slash']);
    expect(askedRows.reduce((n, r) => n + r.requests, 0)).toBe(all.length);
    const bad = await get('/admin/v1/usage?group_by=colour');
    expect(bad.status).toBe(400);
    expect((bad.body as { error: { param: string } }).error.param).toBe('group_by');
  });

  it('exports FOCUS rows whose billed cost adds up to the invoice', async () => {
    const all = await events();
    const { body } = await get(`/admin/v1/exports/focus?month=${month}&org=acme`);
    const rows = (body as { data: Array<Record<string, unknown>> }).data;
    expect(sum(rows.map((r) => String(r['BilledCost'])))).toBe(sum(all.filter((e) => e.org_id === 'acme').map((e) => e.cost)));
    expect(rows[0]).toEqual(
      expect.objectContaining({ ConsumedUnit: 'Tokens', BillingAccountId: 'acme', ServiceName: 'Open-Router', ChargeCategory: 'Usage', BillingCurrency: 'USD', Tags: expect.any(Object) }),
    );
    const csv = await get(`/admin/v1/exports/focus?month=${month}&format=csv`);
    const header = csv.text.split('\r\n')[0];
    expect(header).toContain('BilledCost,EffectiveCost,ListCost,ConsumedQuantity,ConsumedUnit');
    // A month without usage is still a FOCUS file: every column, no rows.
    const empty = await get('/admin/v1/exports/focus?month=2001-01&format=csv');
    expect(empty.text).toBe(`${header}\r\n`);
    const noArms = await get('/admin/v1/experiments/never-run/report?format=csv');
    expect(noArms.text.split('\r\n')[0]).toBe('arm,currency,requests,errors,error_rate,latency_p50_ms,latency_p95_ms,ttft_p50_ms,ttft_p95_ms,prompt_tokens_per_request,completion_tokens_per_request,cost,cost_per_request,currency_requests');
    // A day the calendar does not have, or a year the store cannot hold, is a 400, not another period.
    for (const path of ['/admin/v1/usage?from=2025-02-30', `/admin/v1/invoices/acme/0070-01`, '/admin/v1/chargeback?month=1969-12']) {
      const bad = await get(path);
      expect(bad.status).toBe(400);
      expect((bad.body as { error: { code: string; type: string } }).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value' });
    }
  });

  it('compares the arms of an experiment', async () => {
    const { status, body } = await get('/admin/v1/experiments/exp-1/report');
    expect(status).toBe(200);
    const arms = (body as { arms: Array<{ arm: string; requests: number; error_rate: string; latency_p95_ms: number; cost_per_request: string }> }).arms;
    expect(arms.map((a) => a.arm).sort()).toEqual(['control', 'treatment']);
    expect(arms.reduce((n, a) => n + a.requests, 0)).toBe(20);
    for (const a of arms) expect(a.error_rate).toBe('0');
  });

  it('lets a project key see only its own project: another project or org is a 404', async () => {
    const all = await events();
    const own = await get(`/admin/v1/usage?from=${month}-01&group_by=project`, keys.projectSearch);
    expect(own.status).toBe(200);
    const data = (own.body as { data: Array<{ project: string; cost: string }> }).data;
    expect(data.map((d) => d.project)).toEqual(['search']);
    expect(sum(data.map((d) => d.cost))).toBe(sum(all.filter((e) => e.project_id === 'search').map((e) => e.cost)));
    expect((await get(`/admin/v1/usage?project=ads`, keys.projectSearch)).status).toBe(404);
    expect((await get(`/admin/v1/usage?org=other`, keys.projectSearch)).status).toBe(404);
    expect((await get(`/admin/v1/invoices/other/${month}`, keys.projectSearch)).status).toBe(404);
    const invoice = await get(`/admin/v1/invoices/acme/${month}`, keys.projectSearch);
    expect((invoice.body as { totals: Record<string, string> }).totals).toEqual({ USD: sum(all.filter((e) => e.project_id === 'search').map((e) => e.cost)) });
    expect((await get(`/admin/v1/chargeback?month=${month}&org=other`, keys.projectSearch)).status).toBe(404);
  });

  it('lets a finance key read reports but not issue keys', async () => {
    expect((await get(`/admin/v1/chargeback?month=${month}`, keys.finance)).status).toBe(200);
    expect((await get(`/admin/v1/invoices/acme/${month}`, keys.finance)).status).toBe(200);
    const issue = await fetch(`${gw.url}/admin/v1/keys`, { method: 'POST', headers: { authorization: `Bearer ${keys.finance}`, 'content-type': 'application/json' }, body: JSON.stringify({ org: 'acme' }) });
    expect(issue.status).toBe(403);
    expect(((await issue.json()) as { error: { code: string } }).error.code).toBe('insufficient_role');
  });

  it('lets a finance key scoped to an org read only that org: every report, export and the tenants list', async () => {
    const all = await events();
    const own = all.filter((e) => e.org_id === 'other');
    expect(own.length).toBe(5);
    const usage = await get(`/admin/v1/usage?from=${month}-01&group_by=org`, keys.financeOther);
    expect(usage.status).toBe(200);
    const rows = (usage.body as { data: Array<{ org: string; cost: string }> }).data;
    expect(rows.map((r) => r.org)).toEqual(['other']);
    expect(sum(rows.map((r) => r.cost))).toBe(sum(own.map((e) => e.cost)));
    expect((await get(`/admin/v1/usage?org=acme`, keys.financeOther)).status).toBe(404);
    expect((await get(`/admin/v1/invoices/acme/${month}`, keys.financeOther)).status).toBe(404);
    expect((await get(`/admin/v1/invoices/acme/${month}?format=csv`, keys.financeOther)).status).toBe(404);
    const invoice = await get(`/admin/v1/invoices/other/${month}`, keys.financeOther);
    expect((invoice.body as { totals: Record<string, string> }).totals).toEqual({ USD: sum(own.map((e) => e.cost)) });
    const chargeback = await get(`/admin/v1/chargeback?month=${month}`, keys.financeOther);
    const lines = (chargeback.body as { lines: Array<{ org: string }>; unallocated: Array<{ org: string }> });
    expect(new Set([...lines.lines, ...lines.unallocated].map((l) => l.org))).toEqual(new Set(['other']));
    expect((await get(`/admin/v1/chargeback?month=${month}&org=acme`, keys.financeOther)).status).toBe(404);
    const focus = await get(`/admin/v1/exports/focus?month=${month}`, keys.financeOther);
    const focusRows = (focus.body as { data: Array<{ BilledCost: string }> }).data;
    expect(sum(focusRows.map((r) => r.BilledCost))).toBe(sum(own.map((e) => e.cost)));
    expect((await get(`/admin/v1/exports/focus?month=${month}&org=acme`, keys.financeOther)).status).toBe(404);
    // The experiment's traffic came from acme: none of it is visible.
    const experiment = await get('/admin/v1/experiments/exp-1/report', keys.financeOther);
    expect((experiment.body as { arms: Array<{ requests: number }> }).arms.reduce((n, a) => n + a.requests, 0)).toBe(0);
    const tenants = await get('/admin/v1/tenants', keys.financeOther);
    expect((tenants.body as { data: Array<{ id: string }> }).data.map((o) => o.id)).toEqual(['other']);
    const unscoped = await get('/admin/v1/tenants', keys.finance);
    expect((unscoped.body as { data: Array<{ id: string }> }).data.map((o) => o.id)).toEqual(['default', 'acme', 'other']);
  });

  it('refuses group_by names of Object.prototype as unknown dimensions (400)', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      const { status, body } = await get(`/admin/v1/usage?group_by=${name}`);
      expect(status).toBe(400);
      expect((body as { error: { code: string; param: string } }).error).toMatchObject({ code: 'invalid_value' });
    }
  });

  it('answers experiment ids with line breaks with 400 and sends any other id as a well-formed CSV file name', async () => {
    for (const id of ['a%0D%0Ab', 'a%0Ab', 'x%7F']) {
      const { status, body } = await get(`/admin/v1/experiments/${id}/report?format=csv`);
      expect(status).toBe(400);
      expect((body as { error: { code: string } }).error.code).toBe('invalid_value');
    }
    const response = await fetch(`${gw.url}/admin/v1/experiments/${encodeURIComponent('exp "1" 実験')}/report?format=csv`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="experiment-exp__1____.csv"; filename*=UTF-8''experiment-exp%20%221%22%20%E5%AE%9F%E9%A8%93.csv`);
    const plain = await fetch(`${gw.url}/admin/v1/experiments/exp-1/report?format=csv`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    expect(plain.headers.get('content-disposition')).toBe('attachment; filename="experiment-exp-1.csv"');
  });
});
