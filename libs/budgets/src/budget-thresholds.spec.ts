import { budgetSchema } from '@openrouter/config';
import type { budgetv1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import { accountAt } from './budget-book';
import { InProcessBudgetBus, type BudgetEventPublisher } from './budget-events';
import { REFUSAL_PERCENT, THRESHOLD_CLAIM_MS, ThresholdAlerts } from './budget-thresholds';
import { MemoryBudgetLedger } from './memory-budget-ledger';

const logger = createLogger('test', 'silent');
const START = Date.parse('2025-06-14T12:00:00Z');

describe('ThresholdAlerts', () => {
  const budget = budgetSchema.parse({ id: 'acme-monthly', scope: { org: 'acme' }, period: 'monthly', amount: '10' });
  const account = accountAt(budget, START);

  function setup(publisher?: (bus: InProcessBudgetBus) => BudgetEventPublisher) {
    const clock = { now: START };
    const ledger = new MemoryBudgetLedger(() => clock.now);
    const bus = new InProcessBudgetBus(logger);
    const received: budgetv1.BudgetEvent[] = [];
    bus.subscribe((event) => received.push(event));
    const alerts = new ThresholdAlerts(ledger, publisher ? publisher(bus) : bus, logger, () => clock.now);
    return { clock, ledger, alerts, received };
  }

  it('publishes each threshold reached once per period, with its id and the spend', async () => {
    const { alerts, received } = setup();
    expect(await alerts.publishCrossed([account], [8_500_000])).toBe(2);
    expect(received.map((e) => [e.eventId, e.thresholdPercent, e.spent, e.limit])).toEqual([
      ['acme-monthly/2025-06/50', 50, '8.5', '10'],
      ['acme-monthly/2025-06/80', 80, '8.5', '10'],
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
});
