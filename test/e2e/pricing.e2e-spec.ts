import OpenAI from 'openai';
import { Money, moneyText } from '@openrouter/usage';
import { queryRows } from '../support/infra/clickhouse';
import { waitFor } from '../support/infra/wait-for';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

interface Row {
  request_id: string;
  served_model: string;
  currency: string;
  cost: string;
  price_version: string;
}

/** The stored usage rows, once `ready` says they are all there. */
async function storedRows(gw: TestGateway, ready: (rows: Row[]) => boolean): Promise<Row[]> {
  return waitFor(
    async () => {
      const found = await queryRows<Row>(gw.gateway.billing.usage.store, 'SELECT request_id, served_model, currency, toString(cost) AS cost, price_version FROM {db:Identifier}.usage_events FINAL');
      return ready(found) ? found : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: 'the usage rows' },
  );
}

describe('a legacy completion whose prompts are served by different models', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        // Only the request fees differ, so the cost says which calls were priced where: 0.001 for
        // each call `cheap` served, 1 for each call `dear` served.
        doc['models'] = [
          { id: 'cheap', capabilities: ['chat', 'completions'], fallbacks: ['dear'], pricing: { perRequest: '0.001' }, deployments: [{ id: 'cheap-a', provider: 'simulated', model: 'cheap-a' }] },
          { id: 'dear', capabilities: ['chat', 'completions'], pricing: { perRequest: '1' }, deployments: [{ id: 'dear-a', provider: 'simulated', model: 'dear-a' }] },
        ];
        doc['routing'] = { ...(doc['routing'] as object), retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 } };
      },
    });
  }, 120_000);
  afterAll(async () => gw?.close());
  beforeEach(() => gw.sim.reset());

  it.each([false, true])('prices each prompt at the model that served it, a request fee each, in one record naming the first (stream: %s)', async (stream) => {
    // The first call to `cheap` fails: that prompt falls back to `dear`, the other is served by `cheap`.
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, model: 'cheap-a', remaining: 1 }] });
    const requestId = `legacy-${String(stream)}`;
    const body = { model: 'cheap', prompt: ['one', 'two'], max_tokens: 3 };
    const options = { headers: { 'x-request-id': requestId } };
    let named: string | null;
    if (stream) {
      const { data, response } = await gw.client().completions.create({ ...body, stream: true }, options).withResponse();
      for await (const chunk of data) void chunk;
      named = response.headers.get('x-openrouter-model');
    } else {
      const { response } = await gw.client().completions.create(body, options).withResponse();
      named = response.headers.get('x-openrouter-model');
    }
    const rows = (await storedRows(gw, (found) => found.some((r) => r.request_id === requestId))).filter((r) => r.request_id === requestId);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.cost).toBe('1.001');
    expect(rows[0]?.price_version.split(', ').map((v) => v.split('@')[0]).sort()).toEqual(['cheap', 'dear']);
    // The record names the model the response named: the first prompt's.
    expect(rows[0]?.served_model).toBe(named);
  });

  it('tells the client the cost its record holds, request fee included', async () => {
    const requestId = 'fee-in-header';
    const { data, response } = await gw.client().chat.completions.create({ model: 'cheap', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 }, { headers: { 'x-request-id': requestId } }).withResponse();
    const rows = (await storedRows(gw, (found) => found.some((r) => r.request_id === requestId))).filter((r) => r.request_id === requestId);
    expect(rows[0]?.cost).toBe('0.001');
    expect(response.headers.get('x-openrouter-cost')).toBe('0.001');
    expect((data.usage as (OpenAI.CompletionUsage & { cost?: number }) | undefined)?.cost).toBe(0.001);
  });
});

describe('requests with no price in a catalog priced in EUR only', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        // Every model in EUR, the one without a price too (it would otherwise default to USD).
        doc['models'] = (doc['models'] as Array<Record<string, unknown>>).map((m) => ({ ...m, pricing: { ...(m['pricing'] as object | undefined), currency: 'EUR' } }));
      },
    });
  }, 120_000);
  afterAll(async () => gw?.close());

  it('records them at 0 in EUR, so the usage report still has one total', async () => {
    const client = gw.client();
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }], max_tokens: 5 });
    // Refused by the router (no such model): recorded with no served model and no price.
    const refused = await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hello' }] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.NotFoundError);
    const rows = await storedRows(gw, (found) => found.length === 2);
    const served = moneyText(rows.reduce((sum, r) => sum.plus(r.cost), new Money(0)));
    expect(new Money(served).greaterThan(0)).toBe(true);
    const response = await fetch(`${gw.url}/admin/v1/usage?from=${new Date(Date.now() - 3_600_000).toISOString()}&group_by=model`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
    const report = (await response.json()) as { total: { cost: string | null; requests: number; cost_by_currency: Record<string, string> } };
    expect(report.total).toMatchObject({ requests: 2, cost: served, cost_by_currency: { EUR: served } });
    expect(rows.map((r) => [r.served_model, r.currency]).sort()).toEqual([
      ['', 'EUR'],
      ['gpt-4o-mini', 'EUR'],
    ]);
  });
});
