import { alertRuleSchema, type AlertRuleConfig } from '@openrouter/config';
import type { RouterReplica } from '../aggregation/router-replicas';
import { UsageWindows } from '../aggregation/usage-windows';
import { AlertTracker } from './alert-tracker';
import { evaluateRules, type EvaluationInput } from './rule-evaluator';

const rule = (r: Record<string, unknown>): AlertRuleConfig => alertRuleSchema.parse(r);
const T0 = 1_750_000_000_000;

function traffic(windows: UsageWindows, at: number, provider: string, calls: number, errors: number, latencyMs = 100, deployment = `${provider}-a`): void {
  for (let i = 0; i < calls; i++) windows.recordAttempt(provider, deployment, at, i < errors, latencyMs);
}

function input(windows: UsageWindows, now: number, extra: Partial<EvaluationInput> = {}): EvaluationInput {
  return { now, windows, budgets: [], router: undefined, observingSince: T0 - 24 * 3_600_000, ...extra };
}

describe('rule evaluation', () => {
  it('judges the error rate per provider or deployment over the window, above a minimum of calls', () => {
    const windows = new UsageWindows(1_000, 3_600_000);
    traffic(windows, T0 - 30_000, 'alpha', 10, 5);
    traffic(windows, T0 - 30_000, 'beta', 10, 1);
    traffic(windows, T0 - 30_000, 'gamma', 3, 3);
    traffic(windows, T0 - 400_000, 'beta', 100, 100); // outside the window
    const [byProvider] = evaluateRules([rule({ id: 'errors', kind: 'error_rate', windowMs: 60_000, threshold: 0.3, minRequests: 5 })], input(windows, T0));
    expect(byProvider?.conditions.map((c) => [c.labels, c.value])).toEqual([[{ provider: 'alpha' }, 0.5]]);
    const [byDeployment] = evaluateRules([rule({ id: 'd', kind: 'error_rate', scope: 'deployment', windowMs: 60_000, threshold: 0.3, minRequests: 5 })], input(windows, T0));
    expect(byDeployment?.conditions.map((c) => c.labels)).toEqual([{ provider: 'alpha', deployment: 'alpha-a' }]);
  });

  it('reads p95 latency from the window histogram', () => {
    const windows = new UsageWindows(1_000, 3_600_000);
    traffic(windows, T0 - 1_000, 'slow', 90, 0, 200);
    traffic(windows, T0 - 1_000, 'slow', 10, 0, 15_000);
    traffic(windows, T0 - 1_000, 'fast', 100, 0, 80);
    const [verdict] = evaluateRules([rule({ id: 'p95', kind: 'latency_p95', windowMs: 60_000, thresholdMs: 1_000, minRequests: 10 })], input(windows, T0));
    // The 95th call is the 5th of 10 in the 10–20 s bucket: interpolated, then capped at the slowest call.
    expect(verdict?.conditions.map((c) => [c.labels['provider'], c.value])).toEqual([['slow', 15_000]]);
  });

  it('does not report a healthy provider at the upper bound of its latency bucket', () => {
    const windows = new UsageWindows(1_000, 3_600_000);
    traffic(windows, T0 - 1_000, 'steady', 100, 0, 510);
    const [steady] = evaluateRules([rule({ id: 'p95', kind: 'latency_p95', windowMs: 60_000, thresholdMs: 1_000, minRequests: 10 })], input(windows, T0));
    expect(steady?.conditions).toEqual([]);
    expect(windows.attemptWindows('provider', 60_000, T0)[0]?.p95Ms).toBe(510);
    traffic(windows, T0 - 1_000, 'spread', 100, 0, 600);
    traffic(windows, T0 - 1_000, 'spread', 100, 0, 990);
    // 200 calls in the 500–1000 ms bucket: the 190th reads as 500 + 500 × 190/200.
    expect(windows.attemptWindows('provider', 60_000, T0).find((w) => w.labels['provider'] === 'spread')?.p95Ms).toBe(975);
    const [spread] = evaluateRules([rule({ id: 'p95', kind: 'latency_p95', windowMs: 60_000, thresholdMs: 900, minRequests: 10 })], input(windows, T0));
    expect(spread?.conditions.map((c) => c.summary)).toEqual(['Provider spread: p95 time to first answer about 975 ms over 200 calls in 1 min (threshold 900 ms)']);
  });

  it('turns open circuits and rolled-back canaries into conditions, and keeps state while the router is unknown', () => {
    const windows = new UsageWindows(1_000, 3_600_000);
    const rules = [rule({ id: 'circuits', kind: 'circuit_open' }), rule({ id: 'canary', kind: 'canary_rolled_back' })];
    const status = {
      circuits: [
        { provider: 'p', deployment: 'd1', state: 'open' },
        { provider: 'p', deployment: 'd2', state: 'closed' },
        // Its cooldown over, the breaker waits for a probe to succeed: still down.
        { provider: 'p', deployment: 'd3', state: 'half_open' },
      ],
      grayReleases: [{ id: 'g1', target: 'chat', canary: 'new-model', status: 'rolled_back', rolledBackAtMs: T0, reason: 'error rate 30%' }],
    };
    const router = { replicas: [{ address: 'router:50051', status }] };
    const [circuits, canary] = evaluateRules(rules, input(windows, T0, { router }));
    expect(circuits?.conditions.map((c) => [c.labels, c.summary])).toEqual([
      [{ provider: 'p', deployment: 'd1' }, 'Deployment d1 (p): circuit breaker open'],
      [{ provider: 'p', deployment: 'd3' }, 'Deployment d3 (p): circuit breaker open, probing'],
    ]);
    expect(canary?.conditions[0]?.summary).toContain('rolled back canary new-model');
    expect(evaluateRules(rules, input(windows, T0)).map((v) => v.known)).toEqual([false, false]);
  });

  describe('with several router replicas, each with its own breakers', () => {
    const windows = new UsageWindows(1_000, 3_600_000);
    const replica = (n: number, circuits: Array<[string, string]>, grayStatus = 'active'): RouterReplica => ({
      address: `10.0.0.${n}:50051`,
      status: { circuits: circuits.map(([deployment, state]) => ({ provider: 'p', deployment, state })), grayReleases: [{ id: 'g1', target: 'chat', canary: 'new-model', status: grayStatus, rolledBackAtMs: 0, reason: '' }] },
    });
    const silent = (n: number, failingSinceMs: number): RouterReplica => ({ address: `10.0.0.${n}:50051`, status: undefined, failingSinceMs });

    it('says on how many replicas of how many a breaker is open, and fires on any one or on the configured share', () => {
      const router = {
        replicas: [
          replica(1, [['d1', 'open'], ['d2', 'open']]),
          replica(2, [['d1', 'half_open'], ['d2', 'closed']]),
          replica(3, [['d1', 'closed'], ['d2', 'closed']]),
        ],
      };
      const rules = [rule({ id: 'any', kind: 'circuit_open' }), rule({ id: 'half', kind: 'circuit_open', minReplicaShare: 0.5 }), rule({ id: 'all', kind: 'circuit_open', minReplicaShare: 1 })];
      const [any, half, all] = evaluateRules(rules, input(windows, T0, { router }));
      expect(any?.conditions.map((c) => [c.labels, c.value, c.threshold, c.summary])).toEqual([
        [{ provider: 'p', deployment: 'd1' }, 2, 1, 'Deployment d1 (p): circuit breaker open on 2 of 3 router replicas (1 probing)'],
        [{ provider: 'p', deployment: 'd2' }, 1, 1, 'Deployment d2 (p): circuit breaker open on 1 of 3 router replicas'],
      ]);
      expect(half?.conditions.map((c) => [c.labels['deployment'], c.value, c.threshold])).toEqual([['d1', 2, 2]]);
      expect(all?.conditions).toEqual([]);
      expect([any, half, all].map((v) => v?.incomplete)).toEqual([false, false, false]);
    });

    it('never reads a replica that does not answer as healthy: its alerts fire, but none resolves until it answers', () => {
      const rules = [rule({ id: 'circuits', kind: 'circuit_open' })];
      const tracker = new AlertTracker();
      const round = (at: number, replicas: RouterReplica[]) => tracker.apply(evaluateRules(rules, input(windows, at, { router: { replicas } })), at).map((t) => [t.labels['deployment'], t.status, t.summary]);

      expect(round(T0, [replica(1, [['d1', 'open']]), replica(2, [['d1', 'closed']]), replica(3, [['d1', 'closed']])])).toEqual([['d1', 'firing', 'Deployment d1 (p): circuit breaker open on 1 of 3 router replicas']]);
      // The replica with the open breaker stops answering: the others' closed breakers do not end the alert.
      expect(round(T0 + 10_000, [silent(1, T0 + 10_000), replica(2, [['d1', 'closed']]), replica(3, [['d1', 'closed']])])).toEqual([]);
      // A breaker that opens meanwhile on a replica that answers still fires, and says one is missing.
      const [partial] = evaluateRules(rules, input(windows, T0 + 20_000, { router: { replicas: [silent(1, T0 + 10_000), replica(2, [['d1', 'closed'], ['d2', 'open']]), replica(3, [['d2', 'closed']])] } }));
      expect(partial?.conditions.map((c) => c.summary)).toEqual(['Deployment d2 (p): circuit breaker open on 1 of 2 router replicas, 1 more not answering']);
      expect(partial?.incomplete).toBe(true);
      // Back, with its breaker closed: now the alert has ended.
      expect(round(T0 + 30_000, [replica(1, [['d1', 'closed']]), replica(2, [['d1', 'closed']]), replica(3, [['d1', 'closed']])])).toEqual([['d1', 'resolved', 'Deployment d1 (p): circuit breaker open on 1 of 3 router replicas']]);
      // No replica answering: nothing is known, as with a single router that is down.
      expect(evaluateRules(rules, input(windows, T0, { router: { replicas: [silent(1, T0), silent(2, T0)] } })).map((v) => v.known)).toEqual([false]);
    });

    it('says on how many replicas a gray release is rolled back when they do not agree', () => {
      const rules = [rule({ id: 'canary', kind: 'canary_rolled_back' })];
      const [some] = evaluateRules(rules, input(windows, T0, { router: { replicas: [replica(1, [], 'rolled_back'), replica(2, []), replica(3, [])] } }));
      expect(some?.conditions.map((c) => [c.labels, c.summary])).toEqual([[{ release: 'g1', target: 'chat', canary: 'new-model' }, 'Gray release g1 rolled back canary new-model of chat (on 1 of 3 router replicas)']]);
      // Kept in Redis, every replica reads the same: no count to give.
      const [every] = evaluateRules(rules, input(windows, T0, { router: { replicas: [replica(1, [], 'rolled_back'), replica(2, [], 'rolled_back')] } }));
      expect(every?.conditions.map((c) => c.summary)).toEqual(['Gray release g1 rolled back canary new-model of chat']);
    });

    it('alerts on a replica that has not answered for forMs, and neither fires nor resolves one silent for less', () => {
      const rules = [rule({ id: 'unreachable', kind: 'router_unreachable', forMs: 60_000 })];
      const tracker = new AlertTracker();
      const replicas = [replica(1, []), silent(2, T0 - 30_000), silent(3, T0 - 90_000)];
      const [verdict] = evaluateRules(rules, input(windows, T0, { router: { replicas } }));
      expect(verdict?.conditions.map((c) => [c.labels, c.value, c.threshold, c.summary])).toEqual([
        [{ router: '10.0.0.3:50051' }, 90_000, 60_000, `Router 10.0.0.3:50051 has not answered since ${new Date(T0 - 90_000).toISOString()}: its circuit breakers and gray releases are not watched (1 of 3 router replicas answer)`],
      ]);
      expect(verdict?.undecided).toEqual([{ router: '10.0.0.2:50051' }]);
      expect(tracker.apply(verdict ? [verdict] : [], T0).map((t) => [t.labels['router'], t.status])).toEqual([['10.0.0.3:50051', 'firing']]);
      // It answers again: resolved. (A replica gone from its name, no longer polled, resolves the same way.)
      const [back] = evaluateRules(rules, input(windows, T0 + 10_000, { router: { replicas: [replica(1, []), silent(2, T0 - 30_000), replica(3, [])] } }));
      expect(tracker.apply(back ? [back] : [], T0 + 10_000).map((t) => [t.labels['router'], t.status])).toEqual([['10.0.0.3:50051', 'resolved']]);
      // Not polled yet: nothing is known.
      expect(evaluateRules(rules, input(windows, T0)).map((v) => v.known)).toEqual([false]);
    });
  });

  it('fires budget thresholds at or above the rule minimum until the period ends', () => {
    const windows = new UsageWindows(1_000, 3_600_000);
    const crossing = (thresholdPercent: number) => ({ eventId: `b/2025-06/${thresholdPercent}`, budgetId: 'b', orgId: 'acme', periodKey: '2025-06', periodEndMs: T0 + 60_000, thresholdPercent, spent: '81', limit: '100', currency: 'USD', receivedAtMs: T0 });
    const rules = [rule({ id: 'budget', kind: 'budget_threshold', minPercent: 80 })];
    const [now] = evaluateRules(rules, input(windows, T0, { budgets: [crossing(50), crossing(80)] }));
    expect(now?.conditions.map((c) => c.labels)).toEqual([{ org: 'acme', budget: 'b', period: '2025-06', threshold: '80' }]);
    const [later] = evaluateRules(rules, input(windows, T0 + 61_000, { budgets: [crossing(80)] }));
    expect(later?.conditions).toEqual([]);
  });

  describe('budget thresholds of the kinds a rule takes', () => {
    const windows = new UsageWindows(1_000, 3_600_000);
    const base = { budgetId: 'b', orgId: 'acme', periodKey: '2025-06', periodEndMs: T0 + 60_000, thresholdPercent: 100, spent: '60', limit: '100', currency: 'USD', receivedAtMs: T0 };
    const spent = { ...base, eventId: 'b/2025-06/100', kind: 'spent' as const, spent: '100' };
    // From a producer that sets no kind: a spend crossing.
    const unspecified = { ...base, eventId: 'b/2025-06/90', thresholdPercent: 90, spent: '90' };
    const forecast = { ...base, eventId: 'b/2025-06/forecast-100', kind: 'forecast' as const, projected: '120' };
    const budgets = [spent, unspecified, forecast];
    const taken = (kinds?: string[]) => {
      const [verdict] = evaluateRules([rule({ id: 'budget', kind: 'budget_threshold', minPercent: 80, ...(kinds && { kinds }) })], input(windows, T0, { budgets }));
      return verdict?.conditions.map((c) => [c.labels['threshold'], c.labels['kind'] ?? 'spent']);
    };

    it('takes both spend and forecast crossings by default', () => {
      expect(rule({ id: 'budget', kind: 'budget_threshold' })).toMatchObject({ kinds: ['spent', 'forecast'] });
      expect(taken()).toEqual([
        ['100', 'spent'],
        ['90', 'spent'],
        ['100', 'forecast'],
      ]);
    });

    it('with kinds [forecast], ignores spend crossings (an unspecified kind among them) and takes forecasts', () => {
      expect(taken(['forecast'])).toEqual([['100', 'forecast']]);
    });

    it('with kinds [spent], ignores forecasts and takes spend crossings, an unspecified kind among them', () => {
      expect(taken(['spent'])).toEqual([
        ['100', 'spent'],
        ['90', 'spent'],
      ]);
    });

    it('keeps the labels an alert of either kind always had, so alerts restored from history stay the same alerts', () => {
      const [forecasts] = evaluateRules([rule({ id: 'budget', kind: 'budget_threshold', kinds: ['forecast'] })], input(windows, T0, { budgets }));
      const [spends] = evaluateRules([rule({ id: 'budget', kind: 'budget_threshold', kinds: ['spent'] })], input(windows, T0, { budgets }));
      expect(forecasts?.conditions.map((c) => c.labels)).toEqual([{ org: 'acme', budget: 'b', period: '2025-06', threshold: '100', kind: 'forecast' }]);
      expect(spends?.conditions.map((c) => c.labels)).toEqual([
        { org: 'acme', budget: 'b', period: '2025-06', threshold: '100' },
        { org: 'acme', budget: 'b', period: '2025-06', threshold: '90' },
      ]);
    });
  });

  it('flags spend far above the trailing baseline, only once a baseline was observed', () => {
    const windows = new UsageWindows(1_000, 3_600_000);
    for (let w = 1; w <= 4; w++) windows.recordSpend('acme', 'USD', T0 - w * 60_000 - 1_000, '1');
    windows.recordSpend('acme', 'USD', T0 - 5_000, '10');
    windows.recordSpend('calm', 'USD', T0 - 5_000, '1');
    const rules = [rule({ id: 'spend', kind: 'spend_anomaly', windowMs: 60_000, baselineWindows: 4, factor: 3, minSpend: 2 })];
    const [verdict] = evaluateRules(rules, input(windows, T0));
    expect(verdict?.conditions.map((c) => [c.labels['org'], c.value, c.threshold])).toEqual([['acme', 10, 3]]);
    const [young] = evaluateRules(rules, input(windows, T0, { observingSince: T0 - 60_000 }));
    expect(young?.conditions).toEqual([]);
  });

  it('compares spend with its thresholds in decimal: exactly factor × baseline, or exactly minSpend, fires', () => {
    const windows = new UsageWindows(1_000, 3_600_000);
    // 0.3 is exactly 3 × 0.1, and 0.7 + 0.2 + 0.1 exactly 1 (in binary floating point, 0.3 < 3 × 0.1 and the sum < 1).
    windows.recordSpend('thrice', 'USD', T0 - 61_000, '0.1');
    windows.recordSpend('thrice', 'USD', T0 - 5_000, '0.3');
    for (const amount of ['0.7', '0.2', '0.1']) windows.recordSpend('minimum', 'USD', T0 - 5_000, amount);
    const rules = [rule({ id: 'spend', kind: 'spend_anomaly', windowMs: 60_000, baselineWindows: 1, factor: 3, minSpend: 0.3 }), rule({ id: 'floor', kind: 'spend_anomaly', windowMs: 60_000, baselineWindows: 1, factor: 1, minSpend: 1 })];
    const [spend, floor] = evaluateRules(rules, input(windows, T0));
    expect(spend?.conditions.map((c) => c.labels['org']).sort()).toEqual(['minimum', 'thrice']);
    expect(floor?.conditions.map((c) => c.labels['org'])).toEqual(['minimum']);
  });
  it('flags no organisation that spent nothing in the window, even with minSpend 0', () => {
    const windows = new UsageWindows(1_000, 3_600_000);
    // Spent long before the window and its baseline: still kept (retention), nothing in either.
    windows.recordSpend('idle', 'USD', T0 - 30 * 60_000, '5');
    // Spent before the window only: a drop, not a spike.
    windows.recordSpend('quieter', 'USD', T0 - 90_000, '5');
    windows.recordSpend('spiking', 'USD', T0 - 5_000, '0.01');
    const [verdict] = evaluateRules([rule({ id: 'spend', kind: 'spend_anomaly', windowMs: 60_000, baselineWindows: 2, factor: 3, minSpend: 0 })], input(windows, T0));
    expect(verdict?.conditions.map((c) => c.labels['org'])).toEqual(['spiking']);
  });

  it('keeps the state of a rule it cannot evaluate, with the error, and evaluates the others', () => {
    const windows = new UsageWindows(1_000, 3_600_000);
    traffic(windows, T0 - 1_000, 'alpha', 10, 10);
    // A crossing whose amount is not decimal text (taken without the service's check): the forecast's summary cannot be made.
    const unreadable = { eventId: 'b/2025-06/forecast-100', budgetId: 'b', orgId: 'acme', periodKey: '2025-06', periodEndMs: T0 + 60_000, thresholdPercent: 100, spent: '10', limit: '1,000.00', currency: 'USD', receivedAtMs: T0, kind: 'forecast' as const, projected: '1200' };
    const rules = [rule({ id: 'budget', kind: 'budget_threshold' }), rule({ id: 'errors', kind: 'error_rate', windowMs: 60_000, minRequests: 5 })];
    const [budget, errors] = evaluateRules(rules, input(windows, T0, { budgets: [unreadable] }));
    expect(budget).toMatchObject({ known: false, conditions: [], error: expect.any(Error) });
    expect(errors).toMatchObject({ known: true, conditions: [{ labels: { provider: 'alpha' } }] });
  });
});

describe('alert tracking', () => {
  const errors = rule({ id: 'errors', kind: 'error_rate', cooldownMs: 60_000 });
  const holding = (...providers: string[]) => [{ rule: errors, known: true, conditions: providers.map((provider) => ({ rule: errors, labels: { provider }, value: 0.5, threshold: 0.2, summary: provider })) }];

  it('notifies a firing alert once, however long it holds, and its resolution once', () => {
    const tracker = new AlertTracker();
    const fired = tracker.apply(holding('a'), T0);
    expect(fired.map((t) => [t.status, t.notify, t.fingerprint])).toEqual([['firing', true, 'errors|provider=a']]);
    for (let i = 1; i <= 20; i++) expect(tracker.apply(holding('a'), T0 + i * 1_000)).toEqual([]);
    const resolved = tracker.apply(holding(), T0 + 30_000);
    expect(resolved.map((t) => [t.status, t.notify, t.startedAt])).toEqual([['resolved', true, T0]]);
    expect(tracker.apply(holding(), T0 + 31_000)).toEqual([]);
  });

  it('holds back a flapping alert within the cooldown and notifies it when the cooldown ends if it still fires', () => {
    const tracker = new AlertTracker();
    tracker.apply(holding('a'), T0);
    // Its firing reached a channel: the cooldown starts.
    tracker.notified('errors|provider=a', T0);
    tracker.apply(holding(), T0 + 5_000);
    const again = tracker.apply(holding('a'), T0 + 10_000);
    expect(again.map((t) => [t.status, t.notify])).toEqual([['firing', false]]);
    expect(tracker.apply(holding('a'), T0 + 30_000)).toEqual([]);
    const reminded = tracker.apply(holding('a'), T0 + 60_000);
    expect(reminded.map((t) => [t.status, t.notify])).toEqual([['firing', true]]);
  });

  it('keeps a cooldown longer than a day while it holds, also when many alerts have been notified', () => {
    const daily = rule({ id: 'daily', kind: 'error_rate', cooldownMs: 48 * 60 * 60_000 });
    const firing = (...providers: string[]) => [{ rule: daily, known: true, conditions: providers.map((provider) => ({ rule: daily, labels: { provider }, value: 0.5, threshold: 0.2, summary: provider })) }];
    const tracker = new AlertTracker();
    tracker.apply(firing('a'), T0);
    tracker.notified('daily|provider=a', T0);
    tracker.apply(firing(), T0 + 1_000);
    // Enough other alerts notified that the tracker prunes the deliveries it remembers.
    for (let i = 0; i < 10_000; i++) tracker.notified(`other|n=${i}`, T0);
    expect(tracker.apply(firing(), T0 + 24 * 60 * 60_000 + 1_000)).toEqual([]);
    const again = tracker.apply(firing('a'), T0 + 25 * 60 * 60_000);
    expect(again.map((t) => [t.status, t.notify])).toEqual([['firing', false]]);
  });

  it('starts the cooldown when a firing reached a channel, not when it was made', () => {
    const tracker = new AlertTracker();
    tracker.apply(holding('a'), T0);
    tracker.apply(holding(), T0 + 5_000);
    // Its notification never got through: the next episode is not held back.
    expect(tracker.apply(holding('a'), T0 + 10_000).map((t) => [t.status, t.notify])).toEqual([['firing', true]]);
    // Delivered late, at T0 + 20 s: the cooldown runs from then.
    tracker.notified('errors|provider=a', T0 + 20_000);
    tracker.apply(holding(), T0 + 25_000);
    expect(tracker.apply(holding('a'), T0 + 70_000).map((t) => [t.status, t.notify])).toEqual([['firing', false]]);
    tracker.apply(holding(), T0 + 75_000);
    expect(tracker.apply(holding('a'), T0 + 80_000).map((t) => [t.status, t.notify])).toEqual([['firing', true]]);
  });

  it('resolves a held-back episode silently, and groups alerts by their labels', () => {
    const tracker = new AlertTracker();
    tracker.apply(holding('a'), T0);
    tracker.notified('errors|provider=a', T0);
    tracker.apply(holding(), T0 + 1_000);
    tracker.apply(holding('a', 'b'), T0 + 2_000);
    const out = tracker.apply(holding('b'), T0 + 3_000);
    expect(out.map((t) => [t.labels['provider'], t.status, t.notify])).toEqual([['a', 'resolved', false]]);
    expect(tracker.firing().map((f) => f.labels['provider'])).toEqual(['b']);
  });

  it('neither resolves nor fires a rate alert on too few calls while failures are still in the window', () => {
    const windows = new UsageWindows(10_000, 3_600_000);
    const failing = rule({ id: 'errors', kind: 'error_rate', windowMs: 60_000, threshold: 0.5, minRequests: 20, cooldownMs: 0 });
    const tracker = new AlertTracker();
    // Four failing calls per 10 s bucket fire the alert; then the breaker drains the traffic to two,
    // every one still failing.
    for (let b = 0; b < 6; b++) traffic(windows, T0 + b * 10_000, 'alpha', 4, 4);
    expect(tracker.apply(evaluateRules([failing], input(windows, T0 + 55_000)), T0 + 55_000).map((t) => t.status)).toEqual(['firing']);
    for (let b = 6; b < 14; b++) {
      traffic(windows, T0 + b * 10_000, 'alpha', 2, 2);
      expect(tracker.apply(evaluateRules([failing], input(windows, T0 + b * 10_000 + 5_000)), T0 + b * 10_000 + 5_000)).toEqual([]);
    }
    // The failures leave the window (no calls at all): resolved.
    const later = T0 + 14 * 10_000 + 70_000;
    expect(tracker.apply(evaluateRules([failing], input(windows, later)), later).map((t) => t.status)).toEqual(['resolved']);
  });

  it('keeps alerts of a rule whose data is unknown', () => {
    const tracker = new AlertTracker();
    tracker.apply(holding('a'), T0);
    expect(tracker.apply([{ rule: errors, known: false, conditions: [] }], T0 + 1_000)).toEqual([]);
    expect(tracker.firing()).toHaveLength(1);
  });
});
