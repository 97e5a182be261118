import { budgetSchema } from '@openrouter/config';
import { budgetv1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import { accountAt } from './budget-book';
import { InProcessBudgetBus, type BudgetEventPublisher } from './budget-events';
import { REFUSAL_PERCENT, THRESHOLD_CLAIM_MS, ThresholdAlerts, type ThresholdAlertOptions } from './budget-thresholds';
import { MemoryBudgetLedger } from './memory-budget-ledger';

const logger = createLogger('test', 'silent');
const START = Date.parse('2025-06-14T12:00:00Z');

describe('ThresholdAlerts', () => {
  const budget = budgetSchema.parse({ id: 'acme-monthly', scope: { org: 'acme' }, period: 'monthly', amount: '10' });
  const account = accountAt(budget, START);

  function setup(publisher?: (bus: InProcessBudgetBus) => BudgetEventPublisher, options: ThresholdAlertOptions = {}) {
    const clock = { now: START };
    const ledger = new MemoryBudgetLedger(() => clock.now);
    const bus = new InProcessBudgetBus(logger);
    const received: budgetv1.BudgetEvent[] = [];
    bus.subscribe((event) => received.push(event));
    const alerts = new ThresholdAlerts(ledger, publisher ? publisher(bus) : bus, logger, () => clock.now, options);
    return { clock, ledger, alerts, received };
  }

  it('publishes each threshold reached once per period, with its id and the spend', async () => {
    const { alerts, received } = setup();
    expect(await alerts.publishCrossed([account], [8_500_000])).toBe(2);
    expect(received.map((e) => [e.eventId, e.thresholdPercent, e.spent, e.limit])).toEqual([
      ['acme-monthly/2025-06/50', 50, '8.5', '10'],
      ['acme-monthly/2025-06/80', 80, '8.5', '10'],
    ]);
    // A spend crossing stays version 1 (every consumer reads it), its kind said, no projection.
    expect(received.map((e) => [e.schemaVersion, e.kind, e.projected, e.exceedsAtMs])).toEqual([
      [1, budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_SPENT, undefined, undefined],
      [1, budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_SPENT, undefined, undefined],
    ]);
    expect(await alerts.publishCrossed([account], [9_000_000])).toBe(0);
    expect(await alerts.publishCrossed([account], [10_000_000])).toBe(1);
    expect(received.map((e) => e.eventId)).toEqual(['acme-monthly/2025-06/50', 'acme-monthly/2025-06/80', 'acme-monthly/2025-06/100']);
  });

  it('compares spend with a threshold exactly at the largest amount a budget may have', async () => {
    const { alerts, received } = setup();
    const largest = accountAt(budgetSchema.parse({ id: 'largest', scope: { org: 'acme' }, period: 'monthly', amount: '9007199254.740991', alertThresholds: [80] }), START);
    // One micro-unit short of 80 %: times 100, both sides are past what a double holds exactly (they compare equal there).
    expect(await alerts.publishCrossed([largest], [7_205_759_403_792_792])).toBe(0);
    expect(await alerts.publishCrossed([largest], [7_205_759_403_792_793])).toBe(1);
    expect(received.map((e) => e.thresholdPercent)).toEqual([80]);
  });

  it("publishes a budget created again under a deleted one's id as another budget: its own markers and event ids", async () => {
    const { alerts, received } = setup();
    const first = accountAt({ ...budget, id: 'team-daily', creation: { atMs: START - 60_000, id: 'aaaa' } }, START);
    const again = accountAt({ ...budget, id: 'team-daily', creation: { atMs: START, id: 'bbbb' } }, START);
    expect(await alerts.publishCrossed([first], [5_000_000])).toBe(1);
    expect(await alerts.publishCrossed([again], [5_000_000])).toBe(1);
    expect(received.map((e) => [e.eventId, e.budgetId])).toEqual([
      ['team-daily~aaaa/2025-06/50', 'team-daily'],
      ['team-daily~bbbb/2025-06/50', 'team-daily'],
    ]);
  });

  it('publishes again after a failed publish', async () => {
    let failures = 1;
    const { alerts, received } = setup((bus) => ({
      publish: async (event) => {
        if (failures-- > 0) throw new Error('Kafka send timed out');
        await bus.publish(event);
      },
      close: () => bus.close(),
    }));
    expect(await alerts.publishCrossed([account], [5_000_000])).toBe(0);
    expect(received).toHaveLength(0);
    expect(await alerts.publishCrossed([account], [5_000_000])).toBe(1);
    expect(received.map((e) => e.eventId)).toEqual(['acme-monthly/2025-06/50']);
  });

  it('publishes a crossing whose claimant died before publishing, once its claim has run out', async () => {
    const { clock, ledger, alerts, received } = setup();
    // Another replica claimed the 50 % crossing, then died before publishing it.
    expect(await ledger.markOnce(`${account.line.account}:50`, THRESHOLD_CLAIM_MS)).toBe(true);
    expect(await alerts.publishCrossed([account], [5_000_000])).toBe(0);
    clock.now += THRESHOLD_CLAIM_MS + 1;
    expect(await alerts.publishCrossed([account], [5_000_000])).toBe(1);
    // Published, the marker is kept for the period: the claim's expiry no longer matters.
    clock.now += THRESHOLD_CLAIM_MS * 10;
    expect(await alerts.publishCrossed([account], [5_000_000])).toBe(0);
    expect(received.map((e) => e.eventId)).toEqual(['acme-monthly/2025-06/50']);
  });

  describe('when a hard budget refuses a request', () => {
    const hard = budgetSchema.parse({ id: 'acme-daily', scope: { org: 'acme' }, period: 'daily', amount: '10', alertThresholds: [50, 80, 100, 150] });
    const refusing = accountAt(hard, START);

    it('publishes every threshold up to 100 % nobody has published, with the spend as it stands', async () => {
      const { alerts, received } = setup();
      // 50 % was crossed by a settle; the budget then refuses at 62 % (a large worst case).
      expect(await alerts.publishCrossed([refusing], [5_000_000])).toBe(1);
      expect(await alerts.publishRefused(refusing, 6_200_000)).toBe(2);
      expect(received.map((e) => [e.eventId, e.thresholdPercent, e.spent])).toEqual([
        ['acme-daily/2025-06-14/50', 50, '5'],
        ['acme-daily/2025-06-14/80', 80, '6.2'],
        ['acme-daily/2025-06-14/100', REFUSAL_PERCENT, '6.2'],
      ]);
      // Once per period: a later crossing by real spend publishes nothing again (150 % is not reached).
      expect(await alerts.publishCrossed([refusing], [10_000_000])).toBe(0);
    });

    it('asks the ledger once per claim period however many requests are refused, and retries a failed publish after it', async () => {
      let failures = 1;
      const { clock, ledger, alerts, received } = setup((bus) => ({
        publish: async (event) => {
          if (failures-- > 0) throw new Error('Kafka send timed out');
          await bus.publish(event);
        },
        close: () => bus.close(),
      }));
      const markOnce = jest.spyOn(ledger, 'markOnce');
      // The first threshold's publish fails; the others go out.
      expect(await alerts.publishRefused(refusing, 9_000_000)).toBe(2);
      const asked = markOnce.mock.calls.length;
      for (let i = 0; i < 100; i++) expect(await alerts.publishRefused(refusing, 9_000_000)).toBe(0);
      expect(markOnce.mock.calls.length).toBe(asked);
      clock.now += THRESHOLD_CLAIM_MS;
      expect(await alerts.publishRefused(refusing, 9_000_000)).toBe(1);
      expect(received.map((e) => e.thresholdPercent)).toEqual([80, 100, 50]);
    });
  });

  describe('forecast thresholds', () => {
    const DAY = 86_400_000;
    // June 2025 (UTC), thirty days; START is 13.5 days in (45 %).
    const JUNE = Date.parse('2025-06-01T00:00:00Z');
    const forecasting = budgetSchema.parse({ id: 'acme-forecast', scope: { org: 'acme' }, period: 'monthly', amount: '2500', alertThresholds: [100], forecastThresholds: [80, 100] });

    it('publishes each forecast threshold the projection reaches, once per period, as a forecast event of its own', async () => {
      const { clock, alerts, received } = setup();
      clock.now = JUNE + 10 * DAY;
      const june = accountAt(forecasting, clock.now);
      // 700 in ten days of thirty projects 2100: 84 %.
      expect(await alerts.publishCrossed([june], [700_000_000])).toBe(1);
      // 1000 projects 3000 (120 %), reaching the amount on day 25; 80 % is not published again.
      expect(await alerts.publishCrossed([june], [1_000_000_000])).toBe(1);
      expect(await alerts.publishCrossed([june], [1_100_000_000])).toBe(0);
      expect(received.map((e) => [e.eventId, e.schemaVersion, e.kind, e.thresholdPercent, e.spent, e.projected, e.exceedsAtMs, e.limit])).toEqual([
        ['acme-forecast/2025-06/forecast-80', 2, budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_FORECAST, 80, '700', '2100', undefined, '2500'],
        ['acme-forecast/2025-06/forecast-100', 2, budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_FORECAST, 100, '1000', '3000', JUNE + 25 * DAY, '2500'],
      ]);
    });

    it('keeps a forecast crossing apart from the spend crossing of the same percentage: its own id and marker', async () => {
      const { clock, alerts, received } = setup();
      clock.now = JUNE + 15 * DAY;
      const june = accountAt(forecasting, clock.now);
      // 100 % forecast first (1300 projects 2600), then the spend reaches 100 % too.
      expect(await alerts.publishCrossed([june], [1_300_000_000])).toBe(2);
      expect(await alerts.publishCrossed([june], [2_500_000_000])).toBe(1);
      expect(received.map((e) => e.eventId)).toEqual(['acme-forecast/2025-06/forecast-80', 'acme-forecast/2025-06/forecast-100', 'acme-forecast/2025-06/100']);
    });

    it('publishes no forecast before the minimum share of the period has passed, and does once it has', async () => {
      const { clock, alerts, received } = setup(undefined, { forecastMinElapsedFraction: 0.5 });
      // 45 % of the period: a projection of 1200 in 13.5 days (2667, 107 %) is not made yet.
      expect(await alerts.publishCrossed([accountAt(forecasting, clock.now)], [1_200_000_000])).toBe(0);
      clock.now = JUNE + 15 * DAY;
      expect(await alerts.publishCrossed([accountAt(forecasting, clock.now)], [1_200_000_000])).toBe(1);
      expect(received.map((e) => [e.eventId, e.projected])).toEqual([['acme-forecast/2025-06/forecast-80', '2400']]);
    });

    it('publishes no forecast from no spend, nor for a budget without forecast thresholds', async () => {
      const { clock, alerts, received } = setup();
      clock.now = JUNE + 20 * DAY;
      expect(await alerts.publishCrossed([accountAt(forecasting, clock.now)], [0])).toBe(0);
      expect(await alerts.publishCrossed([accountAt({ ...forecasting, forecastThresholds: undefined, alertThresholds: [] }, clock.now)], [2_400_000_000])).toBe(0);
      expect(received).toEqual([]);
    });

    it("counts a budget created during the period from its creation: its young projection waits, as its spend does", async () => {
      const { clock, alerts, received } = setup();
      const created = { ...forecasting, creation: { atMs: JUNE + 20 * DAY, id: 'c0ffee' } };
      // Half a day after creation (5 % of its ten days): nothing, although 2/3 of June has passed.
      clock.now = JUNE + 20 * DAY + DAY / 2;
      expect(await alerts.publishCrossed([accountAt(created, clock.now)], [200_000_000])).toBe(0);
      // A day after: 200 projects 2000 (80 %).
      clock.now = JUNE + 21 * DAY;
      expect(await alerts.publishCrossed([accountAt(created, clock.now)], [200_000_000])).toBe(1);
      expect(received.map((e) => [e.eventId, e.projected])).toEqual([['acme-forecast~c0ffee/2025-06/forecast-80', '2000']]);
    });

    it('projects against a lowered amount at the next settle', async () => {
      const { clock, alerts, received } = setup();
      clock.now = JUNE + 10 * DAY;
      // 600 projects 1800: 72 % of 2500.
      expect(await alerts.publishCrossed([accountAt(forecasting, clock.now)], [600_000_000])).toBe(0);
      // Lowered to 2000, the same spend projects 90 %.
      expect(await alerts.publishCrossed([accountAt({ ...forecasting, amount: '2000' }, clock.now)], [600_000_000])).toBe(1);
      expect(received.map((e) => [e.thresholdPercent, e.limit, e.projected])).toEqual([[80, '2000', '1800']]);
    });

    it('starts every period afresh, and carries no forecast over from one that has ended', async () => {
      const { clock, alerts, received } = setup();
      clock.now = JUNE + 20 * DAY;
      const june = accountAt(forecasting, clock.now);
      expect(await alerts.publishCrossed([june], [2_000_000_000])).toBe(2);
      // A request of June settled in July (it arrived before midnight): no projection for June, which has ended.
      clock.now = Date.parse('2025-07-01T00:00:10Z');
      expect(await alerts.publishCrossed([june], [2_400_000_000])).toBe(0);
      // July has its own forecasts, published anew once 10 % of it has passed.
      const july = accountAt(forecasting, clock.now);
      expect(await alerts.publishCrossed([july], [100_000_000])).toBe(0);
      // Four days of 31 (13 %): 400 projects 3100.
      clock.now = Date.parse('2025-07-05T00:00:00Z');
      expect(await alerts.publishCrossed([accountAt(forecasting, clock.now)], [400_000_000])).toBe(2);
      expect(received.map((e) => e.eventId)).toEqual([
        'acme-forecast/2025-06/forecast-80',
        'acme-forecast/2025-06/forecast-100',
        'acme-forecast/2025-07/forecast-80',
        'acme-forecast/2025-07/forecast-100',
      ]);
    });

    it('publishes a forecast again after a failed publish', async () => {
      let failures = 1;
      const { clock, alerts, received } = setup((bus) => ({
        publish: async (event) => {
          if (failures-- > 0) throw new Error('Kafka send timed out');
          await bus.publish(event);
        },
        close: () => bus.close(),
      }));
      clock.now = JUNE + 10 * DAY;
      const june = accountAt({ ...forecasting, forecastThresholds: [80] }, clock.now);
      expect(await alerts.publishCrossed([june], [700_000_000])).toBe(0);
      expect(await alerts.publishCrossed([june], [700_000_000])).toBe(1);
      expect(received.map((e) => e.eventId)).toEqual(['acme-forecast/2025-06/forecast-80']);
    });
  });
});
