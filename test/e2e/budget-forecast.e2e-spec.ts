import { InProcessBudgetBus } from '@openrouter/budgets';
import { budgetv1 } from '@openrouter/contracts';
import { hashApiKey } from '@openrouter/ingress';
import { Money } from '@openrouter/usage';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';
import { CLEAR_OF_UTC_MIDNIGHT_MS, clearOfUtcMidnight, msLeftInUtcDay } from '../support/utc-day';
import { WebhookReceiver } from '../support/webhook-receiver';

const SECRET = 'budget-forecast-e2e-hash-secret';
const SEARCH_KEY = 'sk-or-v1-search-forecast-e2e-key-0000000000';

interface Json {
  [key: string]: unknown;
}

interface Alert {
  labels: Record<string, string>;
  summary: string;
}

/**
 * Spend forecasts on the embedded gateway: a budget's view (admin API and `GET /v1/key`) projects
 * the period's spend, its forecast thresholds are set and changed through the admin API, and a
 * settle that brings the projection to one publishes a forecast event that alerting notifies.
 */
describe('budget forecasts', () => {
  let gw: TestGateway;
  let hooks: WebhookReceiver;
  const events: budgetv1.BudgetEvent[] = [];

  beforeAll(async () => {
    hooks = await WebhookReceiver.start();
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = {
          keyHashSecret: SECRET,
          admin: { devKey: TEST_ADMIN_KEY },
          orgs: [
            { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
            { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }] }] },
          ],
          keys: [{ id: 'search-backend', hash: hashApiKey(SECRET, SEARCH_KEY), org: 'acme', project: 'search' }],
        };
        // A budget created now is projected after a millionth of its day (86 ms): a test cannot wait for 10 %.
        doc['budgets'] = { forecast: { minElapsedFraction: 0.000001 } };
        doc['observability'] = {
          alerting: {
            evaluateIntervalMs: 100,
            delivery: { initialBackoffMs: 50, maxBackoffMs: 200, timeoutMs: 2_000 },
            channels: [{ id: 'finance', kind: 'webhook', url: hooks.url('/finance') }],
            rules: [{ id: 'budget-80', kind: 'budget_threshold', minPercent: 80, channels: ['finance'] }],
          },
        };
      },
    });
    const bus = gw.gateway.ingress.budgetEvents;
    if (!(bus instanceof InProcessBudgetBus)) throw new Error('expected the in-process budget bus');
    bus.subscribe((e) => events.push(e));
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    await hooks?.close();
  });

  async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
    const response = await fetch(`${gw.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Json };
  }

  it('sets forecast thresholds at creation and by PATCH, kept sorted and audited, and refuses invalid ones naming the param', async () => {
    const created = await admin('POST', '/budgets', { id: 'search-weekly', scope: { org: 'acme', project: 'search' }, period: 'weekly', amount: '100', forecast_thresholds: [100, 90, 100] });
    expect(created).toMatchObject({ status: 201, json: { id: 'search-weekly', forecast_thresholds: [90, 100] } });
    expect(created.json).toHaveProperty('forecast');
    await expect(admin('PATCH', '/budgets/search-weekly', { forecast_thresholds: [120, 75] })).resolves.toMatchObject({ status: 200, json: { forecast_thresholds: [75, 120] } });
    await expect(admin('GET', '/budgets/search-weekly')).resolves.toMatchObject({ status: 200, json: { forecast_thresholds: [75, 120] } });

    for (const [body, param] of [
      [{ forecast_thresholds: [0] }, 'forecast_thresholds[0]'],
      [{ forecast_thresholds: [50, 1001] }, 'forecast_thresholds[1]'],
      [{ forecast_thresholds: 'soon' }, 'forecast_thresholds'],
    ] as const) {
      await expect(admin('PATCH', '/budgets/search-weekly', body)).resolves.toMatchObject({ status: 400, json: { error: { type: 'invalid_request_error', code: 'invalid_value', param } } });
    }
    await expect(admin('POST', '/budgets', { id: 'bad-forecast', scope: { org: 'acme' }, period: 'daily', amount: '1', forecast_thresholds: [2000] })).resolves.toMatchObject({
      status: 400,
      json: { error: { param: 'forecast_thresholds[0]' } },
    });

    const audit = await admin('GET', '/audit?limit=20');
    const change = (audit.json['data'] as Json[]).find((e) => e['target'] === 'search-weekly' && e['action'] === 'budget.update');
    expect((change?.['details'] as Json)['changes']).toEqual({ forecast_thresholds: { from: [90, 100], to: [75, 120] } });
    expect((await admin('DELETE', '/budgets/search-weekly')).status).toBe(200);
  });

  it('projects spend on a budget view and GET /v1/key, and alerts once the projection reaches a forecast threshold', async () => {
    // A budget created now is projected over what is left of its UTC day, which late in the day is
    // short: its amount is sized so that one request (at least the 50 output tokens asked for, at 0.60
    // a million) projects past it for the next two minutes, whatever the time of day. In the day's
    // last five minutes the test waits for the next day, which its period could not outlast.
    await clearOfUtcMidnight();
    const amount = new Money('0.00003').times(msLeftInUtcDay()).dividedBy(2 * 60_000).toDecimalPlaces(6, Money.ROUND_FLOOR).toFixed();
    // A soft budget (never refusing) of a day, which a few requests in its first seconds project far past.
    const created = await admin('POST', '/budgets', { id: 'search-forecast', scope: { org: 'acme', project: 'search' }, period: 'daily', amount, enforcement: 'soft', alert_thresholds: [1000], forecast_thresholds: [100] });
    expect(created.status).toBe(201);
    expect(msLeftInUtcDay(Date.parse(String((created.json['current_period'] as Json)['end'])))).toBe(86_400_000);
    const client = gw.client({ apiKey: SEARCH_KEY });
    const forecastEvent = () => events.find((e) => e.budgetId === 'search-forecast' && e.kind === budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_FORECAST);
    // A settle within the first 86 ms of the budget projects nothing: requests until one has.
    await waitFor(
      async () => {
        await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
        return forecastEvent();
      },
      { timeoutMs: 30_000, what: 'the forecast event' },
    );
    const event = forecastEvent();
    expect(event).toMatchObject({ schemaVersion: 2, thresholdPercent: 100, limit: amount, periodKey: (created.json['current_period'] as Json)['key'] });
    expect(event?.eventId).toMatch(/^search-forecast~[0-9a-f]+\/\d{4}-\d{2}-\d{2}\/forecast-100$/);
    expect(new Money(event?.projected ?? '0').gte(amount)).toBe(true);

    const view = await waitFor(
      async () => {
        const { json } = await admin('GET', '/budgets/search-forecast');
        return json['reserved'] === '0' ? json : undefined;
      },
      { what: 'the budget with nothing reserved' },
    );
    const forecast = view['forecast'] as { spend: string; exceeds: boolean; exceeds_at: string | null };
    expect(forecast.exceeds).toBe(true);
    // Projected from the spend so far to the day's end: more than spent, and the amount reached before the day ends.
    expect(new Money(forecast.spend).gt(String(view['spent']))).toBe(true);
    const end = Date.parse(String((view['current_period'] as Json)['end']));
    expect(Date.parse(forecast.exceeds_at ?? '')).toBeLessThanOrEqual(end);

    const self = await client.get<Json>('/key');
    const shown = (self['budgets'] as Json[]).find((b) => b['id'] === 'search-forecast');
    expect(shown).toMatchObject({ unavailable: false, forecast: { exceeds: true } });

    // Notified as a forecast: its own alert, worded as one.
    const alerts = await waitFor(
      async () => {
        const firing = hooks.on('/finance').flatMap((h) => ((h.json as { status: string }).status === 'firing' ? (h.json as { alerts: Alert[] }).alerts : []));
        const found = firing.filter((a) => a.labels['budget'] === 'search-forecast');
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 30_000, what: 'the forecast alert' },
    );
    expect(alerts.map((a) => a.labels)).toEqual([{ org: 'acme', budget: 'search-forecast', period: event?.periodKey, threshold: '100', kind: 'forecast' }]);
    expect(alerts[0]?.summary).toMatch(/^Forecast: budget search-forecast \(org acme\) is projected to reach \d+% of its [\d,]+\.\d+ USD by the end of \d{4}-\d{2}-\d{2} on its run rate so far/);
    // Once per period: more requests publish no second forecast for the threshold.
    await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    expect(events.filter((e) => e.budgetId === 'search-forecast' && e.kind === budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_FORECAST)).toHaveLength(1);
  }, 90_000 + CLEAR_OF_UTC_MIDNIGHT_MS);
});
