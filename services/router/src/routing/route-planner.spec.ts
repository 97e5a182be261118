import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseChatRequest } from '@openrouter/openai-wire';
import { capacityTokens, chatRequestTraits, speechRequestTraits, transcriptionRequestTraits } from './route-planner';
import { configWith, contextFor, engineFor, ManualClock, planRequest, TWO_MODELS } from './test-engine.testing';

const ids = (candidates: Array<{ deployment: { id: string } }>): string[] => candidates.map((c) => c.deployment.id);

describe('RoutePlanner strategies', () => {
  const config = configWith(TWO_MODELS, { aliases: { both: { models: ['cheap', 'premium'] } }, balancing: 'weighted' });

  it('cost: the cheapest model whose quality for the task reaches min_quality', () => {
    const engine = engineFor(config);
    const chat = engine.planner.plan(planRequest('auto', { taskType: 'chat', controls: { route: { strategy: 'cost', minQuality: 0.7 } } }));
    expect(chat.candidates[0]?.model.id).toBe('cheap');
    const code = engine.planner.plan(planRequest('auto', { taskType: 'code', controls: { route: { strategy: 'cost', minQuality: 0.7 } } }));
    expect(code.candidates.map((c) => c.model.id)).toEqual(['premium', 'premium']);
  });

  it("cost: a model's cheapest deployment first, and a flat per-request price counted", () => {
    const models = [
      { id: 'a', pricing: { input: '0.1', output: '0.1', deployments: { 'a-exp': { input: '20', output: '20' } } }, deployments: [{ id: 'a-exp', provider: 'a', model: 'a' }, { id: 'a-cheap', provider: 'b', model: 'a' }] },
      { id: 'b', pricing: { input: '1', output: '1' }, deployments: [{ id: 'b-1', provider: 'a', model: 'b' }] },
    ];
    for (let seed = 1; seed <= 50; seed++) {
      const engine = engineFor(configWith(models, { balancing: 'weighted' }), new ManualClock(), seed);
      expect(ids(engine.planner.plan(planRequest('auto', { controls: { route: { strategy: 'cost' } } })).candidates)).toEqual(['a-cheap', 'a-exp', 'b-1']);
    }
    // 100 + 256 tokens at 0.15 / 0.60 per million cost far less than a flat 0.05 per request.
    const flat = [
      { id: 'flat', pricing: { input: '0', output: '0', perRequest: '0.05' }, deployments: [{ id: 'flat-1', provider: 'a', model: 'f' }] },
      { id: 'tok', pricing: { input: '0.15', output: '0.60' }, deployments: [{ id: 'tok-1', provider: 'a', model: 't' }] },
    ];
    expect(ids(engineFor(configWith(flat)).planner.plan(planRequest('auto', { promptTokens: 100, controls: { route: { strategy: 'cost' } } })).candidates)).toEqual(['tok-1', 'flat-1']);
  });

  it('cost: two costs equal in decimals tie, and quality breaks the tie (floating point would not)', () => {
    // 0.3 a request, against 0.1 a request and 100 prompt tokens at 2000 per million: 0.3 as well.
    const models = [
      { id: 'flat', pricing: { perRequest: '0.3' }, quality: { default: 0.1 }, deployments: [{ id: 'flat-1', provider: 'a', model: 'f' }] },
      { id: 'mixed', pricing: { perRequest: '0.1', input: '2000' }, quality: { default: 0.9 }, deployments: [{ id: 'mixed-1', provider: 'a', model: 'm' }] },
    ];
    const plan = engineFor(configWith(models)).planner.plan(planRequest('auto', { promptTokens: 100, maxOutputTokens: 10, controls: { route: { strategy: 'cost' } } }));
    expect(ids(plan.candidates)).toEqual(['mixed-1', 'flat-1']);
  });

  it("latency: a model's deployments that tie are ordered by the load balancer", () => {
    const engine = engineFor(configWith([{ id: 'm', deployments: [{ id: 'm-a', provider: 'a', model: 'm', weight: 1 }, { id: 'm-b', provider: 'b', model: 'm', weight: 9 }] }], { balancing: 'weighted' }));
    let heavy = 0;
    for (let i = 0; i < 400; i++) if (engine.planner.plan(planRequest('m', { controls: { route: { strategy: 'latency' } } })).candidates[0]?.deployment.id === 'm-b') heavy++;
    expect(heavy / 400).toBeGreaterThan(0.8);
    // Once measured, the faster one leads whatever its weight.
    engine.stats.of('m-a').observeLatency(100);
    engine.stats.of('m-b').observeLatency(900);
    expect(ids(engine.planner.plan(planRequest('m', { controls: { route: { strategy: 'latency' } } })).candidates)).toEqual(['m-a', 'm-b']);
  });

  it('quality: the best model for the task', () => {
    const engine = engineFor(config);
    expect(engine.planner.plan(planRequest('both', { taskType: 'code', controls: { route: { strategy: 'quality' } } })).candidates[0]?.model.id).toBe('premium');
  });

  it('latency: the deployment with the lowest live latency, priors until measured', () => {
    const engine = engineFor(config);
    const plan = () => engine.planner.plan(planRequest('both', { controls: { route: { strategy: 'latency' } } }));
    expect(plan().candidates[0]?.model.id).toBe('premium');
    engine.stats.of('premium-a').observeLatency(2000);
    engine.stats.of('premium-b').observeLatency(900);
    expect(ids(plan().candidates)).toEqual(['cheap-a', 'premium-b', 'premium-a']);
  });

  it('balanced: weighs quality, cost and latency', () => {
    const engine = engineFor(configWith(TWO_MODELS, { balanced: { quality: 0, cost: 1, latency: 0 } }));
    expect(engine.planner.plan(planRequest('auto')).candidates[0]?.model.id).toBe('cheap');
    const qualityFirst = engineFor(configWith(TWO_MODELS, { balanced: { quality: 1, cost: 0, latency: 0 } }));
    expect(qualityFirst.planner.plan(planRequest('auto', { taskType: 'math' })).candidates[0]?.model.id).toBe('premium');
  });

  it('filters by max_price with exact decimals, providers, capabilities and context window', () => {
    const engine = engineFor(config);
    expect(ids(engine.planner.plan(planRequest('auto', { controls: { route: { maxPrice: '0.40' } } })).candidates)).toEqual(['cheap-a']);
    expect(ids(engine.planner.plan(planRequest('premium', { controls: { route: { providers: { only: ['b'] } } } })).candidates)).toEqual(['premium-b']);
    expect(ids(engine.planner.plan(planRequest('premium', { controls: { route: { providers: { ignore: ['b'] } } } })).candidates)).toEqual(['premium-a']);
    expect(engine.planner.plan(planRequest('auto', { needs: ['vision'] })).candidates).toEqual([]);
    expect(engine.planner.plan(planRequest('auto', { promptTokens: 200_000 })).candidates).toEqual([]);
  });

  it('refuses with a client error naming the reason when the request itself rules out every deployment', () => {
    const engine = engineFor(config);
    const refusal = (model: string, overrides: Parameters<typeof planRequest>[1] = {}) => {
      const plan = engine.planner.plan(planRequest(model, overrides));
      expect(plan.candidates).toEqual([]);
      return plan.refusal;
    };
    expect(refusal('cheap', { needs: ['tools'] })).toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'tools', message: 'The model `cheap` cannot serve this request: does not support tools.' });
    expect(refusal('premium', { needs: ['json_schema'] })).toMatchObject({ kind: 'bad_request', code: 'model_not_supported', param: 'response_format' });
    expect(refusal('auto', { needs: ['vision'] })).toMatchObject({
      kind: 'bad_request',
      code: 'model_not_supported',
      param: 'messages',
      message: 'None of the models for `auto` can serve this request (cheap: does not support vision; premium: does not support vision).',
    });
    expect(refusal('premium', { promptTokens: 200_000 })).toMatchObject({ kind: 'context_length_exceeded', code: 'context_length_exceeded', param: 'messages', message: expect.stringContaining('context window 128000') });
    expect(refusal('premium', { promptTokens: 1_000, maxOutputTokens: 127_500 })).toMatchObject({ kind: 'context_length_exceeded', param: 'max_tokens' });
    expect(refusal('auto', { taskType: 'code', controls: { route: { minQuality: 0.95 } } })).toMatchObject({ kind: 'bad_request', code: 'min_quality_not_met', param: 'route.min_quality' });
    expect(refusal('premium', { controls: { route: { maxPrice: '1' } } })).toMatchObject({ kind: 'bad_request', code: 'max_price_exceeded', param: 'route.max_price' });
    expect(refusal('cheap', { controls: { route: { providers: { only: ['b'] } } } })).toMatchObject({ kind: 'bad_request', code: 'provider_not_allowed', param: 'route.providers.only' });
    expect(refusal('cheap', { controls: { route: { providers: { ignore: ['a'] } } } })).toMatchObject({ code: 'provider_not_allowed', param: 'route.providers.ignore' });
    // A key allowed one member of `auto` hears about that member, not about the models it may not use.
    expect(refusal('auto', { needs: ['tools'], context: contextFor({ allowedModels: ['cheap'] }) })).toMatchObject({ code: 'model_not_supported', message: expect.not.stringContaining('premium') });
    expect(engine.planner.plan(planRequest('cheap')).refusal).toBeUndefined();
  });

  it('leaves no refusal (the gateway answers 503) when a deployment is only down or busy', () => {
    const engine = engineFor(configWith(TWO_MODELS, { breaker: { consecutiveFailures: 1 } }));
    engine.breakers.of('cheap-a').failure();
    const plan = engine.planner.plan(planRequest('auto', { controls: { route: { maxPrice: '0.40' } } }));
    expect(plan.candidates).toEqual([]);
    // premium is over max_price, but cheap is only open-circuited: not the request's fault.
    expect(plan.refusal).toBeUndefined();
    expect(engine.planner.plan(planRequest('cheap')).candidates).toEqual([]);
  });

  it('puts providers.order first and appends the models fallback list', () => {
    const engine = engineFor(config);
    const plan = engine.planner.plan(planRequest('premium', { controls: { models: ['cheap'], route: { providers: { order: ['b'] } } } }));
    expect(ids(plan.candidates)).toEqual(['premium-b', 'premium-a', 'cheap-a']);
    const noFallback = engine.planner.plan(planRequest('premium', { controls: { models: ['cheap'], route: { allowFallbacks: false } } }));
    expect(noFallback.candidates.map((c) => c.model.id)).toEqual(['premium', 'premium']);
  });

  it('rejects unknown models and models the key may not use', () => {
    const engine = engineFor(config);
    expect(() => engine.planner.plan(planRequest('nope'))).toThrow(GatewayError);
    expect(() => engine.planner.plan(planRequest('cheap', { controls: { models: ['nope'], route: {} } }))).toThrow(/nope/);
    const request = planRequest('premium');
    request.context.allowedModels = ['cheap'];
    expect(() => engine.planner.plan(request)).toThrow(expect.objectContaining({ kind: 'not_found' }));
  });

  it('reads what a request needs from content parts kept as JSON (`cache_control`, `detail: null`) too', () => {
    const long = 'x'.repeat(40_000);
    const cached = { type: 'ephemeral' };
    const traits = (content: unknown[]) => chatRequestTraits(parseChatRequest({ model: 'm', messages: [{ role: 'user', content }] }));
    const typed = traits([{ type: 'text', text: long }, { type: 'image_url', image_url: { url: 'https://example.com/a.png' } }]);
    expect(typed).toMatchObject({ needs: ['vision'], promptTokens: 10_004 });
    expect(traits([{ type: 'text', text: long, cache_control: cached }, { type: 'image_url', image_url: { url: 'https://example.com/a.png' }, cache_control: cached }])).toEqual(typed);
    expect(traits([{ type: 'text', text: long }, { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: null } }])).toEqual(typed);
  });

  it("keeps a key allowed only some of an alias's members to arms among them, and offers a member under a later name that allows it", () => {
    const engine = engineFor(
      configWith(TWO_MODELS, {
        aliases: { duo: { models: ['cheap', 'premium'] }, top: { models: ['premium'] } },
        experiments: [{ id: 'e', target: 'duo', arms: [{ name: 'all', model: 'duo', weight: 1 }, { name: 'premium', model: 'premium', weight: 1 }] }],
      }),
    );
    // Allowed `cheap` only: `duo` is usable and so is its `all` arm (through `cheap`); its `premium`
    // arm is not, so a caller drawn there stays out of the test rather than getting a 404.
    const drawn = new Set<string | undefined>();
    for (let i = 0; i < 20; i++) {
      const plan = engine.planner.plan(planRequest('duo', { context: contextFor({ allowedModels: ['cheap'], endUser: `u${i}` }) }));
      drawn.add(plan.assignment?.arm);
      expect(ids(plan.candidates)).toEqual(['cheap-a']);
    }
    expect(drawn).toEqual(new Set(['all', undefined]));
    // Allowed `premium` only through another alias (`top`): the arm's models are judged as under
    // the arm, so a caller drawn to it is left out rather than sent to a 404 (and never counted for it).
    let leftOut = 0;
    for (let i = 0; i < 20; i++) {
      const drawnTo = engine.planner.plan(planRequest('duo', { context: contextFor({ endUser: `u${i}` }) })).assignment?.arm;
      const plan = engine.planner.plan(planRequest('duo', { context: contextFor({ allowedModels: ['cheap', 'top'], endUser: `u${i}` }) }));
      expect(ids(plan.candidates)).toEqual(['cheap-a']);
      expect(plan.assignment?.arm).toBe(drawnTo === 'premium' ? undefined : 'all');
      if (drawnTo === 'premium') leftOut++;
    }
    expect(leftOut).toBeGreaterThan(0);
    // Allowed `duo` itself: both arms, as before.
    const arms = new Set(Array.from({ length: 20 }, (_, i) => engine.planner.plan(planRequest('duo', { context: contextFor({ allowedModels: ['duo'], endUser: `u${i}` }) })).assignment?.arm));
    expect(arms).toEqual(new Set(['all', 'premium']));

    // `premium` is not allowed under `cheap`'s name but is under `top`, the request's fallback.
    const plan = engine.planner.plan(planRequest('cheap', { context: contextFor({ allowedModels: ['cheap', 'top'] }), controls: { models: ['top'], route: {} } }), true);
    expect(ids(plan.candidates)).toEqual(['cheap-a', ...ids(plan.candidates).slice(1)]);
    expect(ids(plan.candidates).slice(1).sort()).toEqual(['premium-a', 'premium-b']);
  });

  it('moves to a larger context window only within what the key may name', () => {
    const models = [
      { ...TWO_MODELS[0], contextWindow: 1_000 },
      { id: 'secret', pricing: { input: '1', output: '1' }, contextWindow: 100_000, excludeFromAuto: true, deployments: [{ id: 'secret-a', provider: 'a', model: 's' }] },
      { id: 'wide', pricing: { input: '1', output: '1' }, contextWindow: 50_000, deployments: [{ id: 'wide-a', provider: 'a', model: 'w' }] },
    ];
    const engine = engineFor(configWith(models, { aliases: { vault: { models: ['secret'] } } }));
    const larger = (allowedModels: string[]) => {
      const plan = engine.planner.plan(planRequest('cheap', { context: contextFor({ allowedModels }) }));
      return ids(plan.largerContext(engine.catalog.model('cheap')!, new Set()));
    };
    // `auto` covers `wide` but not `secret`, which is kept out of it.
    expect(larger(['cheap', 'auto'])).toEqual(['wide-a']);
    expect(larger(['cheap'])).toEqual([]);
    expect(larger(['cheap', 'vault'])).toEqual(['secret-a']);
    expect(larger([])).toEqual(['wide-a', 'secret-a']);
  });

  it('leaves deployments with an open circuit or at capacity out', () => {
    const clock = new ManualClock();
    const engine = engineFor(configWith([{ ...TWO_MODELS[1], deployments: [{ id: 'p1', provider: 'a', model: 'p', rpm: 2 }, { id: 'p2', provider: 'b', model: 'p' }] }], { breaker: { consecutiveFailures: 1 } }), clock);
    engine.breakers.of('p2').failure();
    engine.stats.of('p1').begin(clock.now(), 1);
    engine.stats.of('p1').begin(clock.now(), 1);
    const plan = engine.planner.plan(planRequest('premium'), true);
    expect(plan.candidates).toEqual([]);
    expect(plan.considered.map((c) => c.filteredReason)).toEqual([expect.stringContaining('capacity'), 'circuit open']);
    clock.advance(60_001);
    // A minute later the window has room again and the circuit admits a probe.
    expect(ids(engine.planner.plan(planRequest('premium')).candidates).sort()).toEqual(['p1', 'p2']);
  });

  it("refuses with a 400 a request larger than every deployment's whole tokens-per-minute capacity", () => {
    const engine = engineFor(configWith([{ ...TWO_MODELS[1], deployments: [{ id: 'p1', provider: 'a', model: 'p', tpm: 1_000 }, { id: 'p2', provider: 'b', model: 'p', tpm: 1_200 }] }]));
    const plan = engine.planner.plan(planRequest('premium', { promptTokens: 900, maxOutputTokens: 500 }));
    expect(plan.candidates).toEqual([]);
    expect(plan.refusal).toMatchObject({ kind: 'bad_request', code: 'exceeds_deployment_capacity', param: 'max_tokens', message: expect.stringContaining('larger than its whole capacity') });
    // One that fits a whole minute of one of them is served (by that one).
    expect(ids(engine.planner.plan(planRequest('premium', { promptTokens: 900, maxOutputTokens: 200 })).candidates)).toEqual(['p2']);
  });

  it('is deterministic for a seed', () => {
    const run = (): string[] => {
      const engine = engineFor(configWith(TWO_MODELS), new ManualClock(), 99);
      return Array.from({ length: 20 }, () => ids(engine.planner.plan(planRequest('premium')).candidates)[0] ?? '');
    };
    expect(run()).toEqual(run());
  });
});

describe('policies', () => {
  const config = configWith(TWO_MODELS, {
    defaults: { strategy: 'quality' },
    policies: [
      { id: 'org-cost', match: { org: 'thrifty' }, route: { strategy: 'cost', maxPrice: '1' }, allowOverrides: ['minQuality'] },
    ],
  });

  it('applies the matching policy and refuses overrides it does not allow', () => {
    const engine = engineFor(config);
    const request = planRequest('auto');
    request.context.orgId = 'thrifty';
    expect(engine.planner.plan(request).route.strategy).toBe('cost');
    expect(engine.planner.plan(request).candidates.map((c) => c.model.id)).toEqual(['cheap']);
    expect(() => engine.planner.plan({ ...request, controls: { route: { strategy: 'quality' } } })).toThrow(expect.objectContaining({ kind: 'permission_denied', param: 'route.strategy' }));
    expect(engine.planner.plan({ ...request, controls: { route: { minQuality: 0.1 } } }).route.minQuality).toBe(0.1);
    expect(engine.planner.plan(planRequest('auto')).route.strategy).toBe('quality');
  });
});

describe('tokens-per-minute capacity', () => {
  const oneDeployment = (tpm: number) => configWith([{ id: 'm', deployments: [{ id: 'm-a', provider: 'a', model: 'x', tpm }] }], { breaker: { consecutiveFailures: 1 } });

  it('counts an answer of the default length for a request without max_tokens, as failover charges it', () => {
    const clock = new ManualClock();
    const engine = engineFor(oneDeployment(1_000), clock);
    const request = planRequest('m', { promptTokens: 20, maxOutputTokens: 0 });
    let admitted = 0;
    for (let i = 0; i < 10; i++) {
      if (engine.planner.plan(request).candidates.length === 0) break;
      admitted++;
      engine.stats.of('m-a').begin(clock.now(), 20 + 256);
    }
    // 3 × 276 tokens fit in 1000 a minute, a fourth does not.
    expect(admitted).toBe(3);
    expect(capacityTokens(request)).toBe(20 + 256);
    expect(capacityTokens(planRequest('m', { promptTokens: 20, maxOutputTokens: 10 }))).toBe(30);
  });

  it('refuses a request larger than a whole minute of capacity with the same 400 whatever the circuit’s state', () => {
    const engine = engineFor(oneDeployment(1_000));
    const request = planRequest('m', { promptTokens: 5_000, maxOutputTokens: 0 });
    const refusal = { kind: 'bad_request', code: 'exceeds_deployment_capacity', param: 'messages' };
    expect(engine.planner.plan(request).refusal).toMatchObject(refusal);
    engine.breakers.of('m-a').failure();
    expect(engine.breakers.of('m-a').current()).toBe('open');
    expect(engine.planner.plan(request).refusal).toMatchObject(refusal);
    // A max_tokens the client set can be what does not fit.
    expect(engine.planner.plan(planRequest('m', { promptTokens: 900, maxOutputTokens: 200 })).refusal).toMatchObject({ code: 'exceeds_deployment_capacity', param: 'max_tokens', message: expect.stringContaining('prompt estimate + max_tokens') });
  });

  it('does not refuse a request without max_tokens for the default answer length: it waits for an idle minute instead', () => {
    const clock = new ManualClock();
    const engine = engineFor(oneDeployment(1_000), clock);
    // 900 + 256 > 1000, but the client sent no max_tokens: the answer's length is only a guess.
    const request = planRequest('m', { promptTokens: 900, maxOutputTokens: 0 });
    const idle = engine.planner.plan(request);
    expect(ids(idle.candidates)).toEqual(['m-a']);
    expect(idle.refusal).toBeUndefined();
    // Failover still charges it with the default answer length: the minute is then used up, and
    // the next one is busy (503), not a client error naming a parameter it never sent.
    engine.stats.of('m-a').begin(clock.now(), capacityTokens(request));
    const busy = engine.planner.plan(request);
    expect(busy.candidates).toEqual([]);
    expect(busy.refusal).toBeUndefined();
    // A small request does not fit beside it either (the rolling check counts 256 for its answer).
    expect(engine.planner.plan(planRequest('m', { promptTokens: 20, maxOutputTokens: 0 })).candidates).toEqual([]);
    clock.advance(60_000);
    expect(ids(engine.planner.plan(request).candidates)).toEqual(['m-a']);
  });
});

describe('experiment arms that cannot take the request', () => {
  // `big` can do everything with a wide window; `small` chats only, in 8k tokens, at a lower quality.
  const MODELS = [
    { id: 'big', capabilities: ['chat', 'tools', 'vision'], contextWindow: 200_000, pricing: { input: '5', output: '15' }, quality: { default: 0.9 }, deployments: [{ id: 'big-a', provider: 'a', model: 'b' }] },
    { id: 'small', capabilities: ['chat'], contextWindow: 8_000, pricing: { input: '0.1', output: '0.4' }, quality: { default: 0.5 }, deployments: [{ id: 'small-a', provider: 'b', model: 's' }] },
  ];
  const experiment = { id: 'e', target: 'big', arms: [{ name: 'control', model: 'big', weight: 1 }, { name: 'test', model: 'small', weight: 1 }] };
  const engine = engineFor(configWith(MODELS, { experiments: [experiment] }));
  /** End users the experiment puts on `arm` (some, whatever the hash). */
  const usersOn = (arm: string): string[] => {
    const users = Array.from({ length: 40 }, (_, i) => `u${i}`).filter((u) => engine.experiments.assign('big', contextFor({ endUser: u }), undefined)?.arm === arm);
    expect(users.length).toBeGreaterThan(0);
    return users;
  };
  const planFor = (user: string, overrides: Parameters<typeof planRequest>[1] = {}, explain = false) => engine.planner.plan(planRequest('big', { context: contextFor({ endUser: user }), ...overrides }), explain);

  it('serves a tools request of a caller on an arm without tools by the target, outside the experiment', () => {
    const [tester] = usersOn('test');
    const [controller] = usersOn('control');
    const plan = planFor(tester!, { needs: ['tools'] });
    expect(plan.refusal).toBeUndefined();
    expect(ids(plan.candidates)).toEqual(['big-a']);
    // Not counted for either arm: the decision and the usage record carry no experiment.
    expect(plan.assignment).toBeUndefined();
    // A request the arm can take stays in the experiment, on the arm.
    expect(planFor(tester!)).toMatchObject({ assignment: { experiment: 'e', arm: 'test' }, candidates: [expect.objectContaining({ via: 'small' })] });
    // The control arm can take it: its caller stays on it.
    expect(planFor(controller!, { needs: ['tools'] })).toMatchObject({ assignment: { arm: 'control' }, candidates: [expect.objectContaining({ via: 'big' })] });
    // An explanation says why the caller was left out.
    const explained = planFor(tester!, { needs: ['tools'] }, true);
    expect(explained.considered.map((c) => [c.deployment.id, c.filteredReason])).toEqual([
      ['big-a', ''],
      ['small-a', 'left out of experiment e (arm test): does not support tools'],
    ]);
  });

  it("serves a prompt larger than the arm's context window by the target, outside the experiment", () => {
    for (const user of usersOn('test')) {
      const plan = planFor(user, { promptTokens: 50_000 });
      expect(plan.refusal).toBeUndefined();
      expect(ids(plan.candidates)).toEqual(['big-a']);
      expect(plan.assignment).toBeUndefined();
    }
  });

  it("leaves the caller out for the route's quality floor, price cap and provider filters too, each under the target's own route", () => {
    const floored = engineFor(configWith(MODELS, { aliases: { best: { models: ['big'], route: { minQuality: 0.8 } } }, experiments: [{ ...experiment, target: 'best', arms: [{ name: 'control', model: 'best', weight: 1 }, { name: 'test', model: 'small', weight: 1 }] }] }));
    const testers = Array.from({ length: 40 }, (_, i) => `u${i}`).filter((u) => floored.experiments.assign('best', contextFor({ endUser: u }), undefined)?.arm === 'test');
    expect(testers.length).toBeGreaterThan(0);
    for (const user of testers) {
      // `small` (quality 0.5) is under the alias's min_quality, which the arm inherits.
      const plan = floored.planner.plan(planRequest('best', { context: contextFor({ endUser: user }) }));
      expect(plan).toMatchObject({ assignment: undefined, refusal: undefined, route: { minQuality: 0.8 } });
      expect(ids(plan.candidates)).toEqual(['big-a']);
    }
    const [tester] = usersOn('test');
    for (const route of [{ maxPrice: '0.05' }, { providers: { only: ['a'] } }, { providers: { ignore: ['b'] } }]) {
      const plan = planFor(tester!, { controls: { route } });
      expect(plan.assignment).toBeUndefined();
      expect(ids(plan.candidates)).toEqual(route.maxPrice ? [] : ['big-a']);
    }
    // The target refuses what it cannot take either: the refusal names what the client asked for.
    expect(planFor(tester!, { controls: { route: { maxPrice: '0.05' } } }).refusal).toMatchObject({ code: 'max_price_exceeded', message: expect.stringContaining('`big`') });
  });

  it('keeps the caller on an arm that is only down: no fallback to the target, and no refusal (503)', () => {
    const down = engineFor(configWith(MODELS, { experiments: [experiment], breaker: { consecutiveFailures: 1 } }));
    down.breakers.of('small-a').failure();
    const [tester] = usersOn('test');
    const plan = down.planner.plan(planRequest('big', { context: contextFor({ endUser: tester }) }));
    expect(plan).toMatchObject({ assignment: { arm: 'test' }, candidates: [], refusal: undefined });
    // A request the arm could not take even when up still leaves the caller out.
    expect(down.planner.plan(planRequest('big', { context: contextFor({ endUser: tester }), needs: ['tools'] })).assignment).toBeUndefined();
  });
});

describe('gray release canaries that cannot take the request', () => {
  // `big` (the baseline, behind the target `svc`) has tools; `small` (the canary) chats only.
  const MODELS = [
    { id: 'big', capabilities: ['chat', 'tools', 'vision'], contextWindow: 200_000, pricing: { input: '5', output: '15' }, deployments: [{ id: 'big-a', provider: 'a', model: 'b' }] },
    { id: 'small', capabilities: ['chat'], contextWindow: 8_000, pricing: { input: '0.1', output: '0.4' }, deployments: [{ id: 'small-a', provider: 'b', model: 's' }] },
  ];
  const releaseConfig = (routing: Record<string, unknown> = {}) =>
    configWith(MODELS, { aliases: { svc: { models: ['big'] } }, grayReleases: [{ id: 'g', target: 'svc', baseline: 'big', canary: 'small', steps: [{ afterMinutes: 0, percent: 50 }] }], ...routing });
  const engine = engineFor(releaseConfig());
  /** End users the release puts on `arm` (some, whatever the hash). */
  const usersOn = (arm: string): string[] => {
    const users = Array.from({ length: 40 }, (_, i) => `u${i}`).filter((u) => engine.grayReleases.forTarget('svc')?.assign(contextFor({ endUser: u }), undefined).arm === arm);
    expect(users.length).toBeGreaterThan(0);
    return users;
  };
  const planWith = (on: typeof engine, user: string, overrides: Parameters<typeof planRequest>[1] = {}, explain = false) => on.planner.plan(planRequest('svc', { context: contextFor({ endUser: user }), ...overrides }), explain);

  it('serves a tools request of a canary caller by the target, outside the release, whatever allow_fallbacks says', () => {
    const [canary] = usersOn('canary');
    const [baseline] = usersOn('baseline');
    for (const allowFallbacks of [false, true]) {
      const controls = { route: { allowFallbacks } };
      const plan = planWith(engine, canary!, { needs: ['tools'], controls });
      // Neither a 400 naming the canary nor the baseline serving it under the canary's name: the
      // decision and the usage record carry no release, and the rollback counts it for no arm.
      expect(plan).toMatchObject({ assignment: undefined, refusal: undefined, candidates: [expect.objectContaining({ via: 'svc' })] });
      expect(ids(plan.candidates)).toEqual(['big-a']);
      // A request the canary can take stays on it; the baseline keeps its callers.
      const kept = planWith(engine, canary!, { controls });
      expect(kept.assignment).toMatchObject({ kind: 'gray_release', experiment: 'g', arm: 'canary' });
      expect(kept.candidates[0]?.via).toBe('small');
      const onBaseline = planWith(engine, baseline!, { needs: ['tools'], controls });
      expect(onBaseline.assignment).toMatchObject({ arm: 'baseline' });
      expect(onBaseline.candidates.map((c) => c.via)).toEqual(['big']);
    }
    const explained = planWith(engine, canary!, { needs: ['tools'] }, true);
    expect(explained.considered.map((c) => [c.deployment.id, c.filteredReason])).toEqual([
      ['big-a', ''],
      ['small-a', 'left out of gray release g (arm canary): does not support tools'],
    ]);
  });

  it('keeps a canary caller whose canary is only down on the canary: the baseline serves it when fallbacks are allowed, else a 503', () => {
    const down = engineFor(releaseConfig({ breaker: { consecutiveFailures: 1 } }));
    down.breakers.of('small-a').failure();
    const [canary] = usersOn('canary');
    const served = planWith(down, canary!);
    expect(served).toMatchObject({ assignment: { arm: 'canary' }, refusal: undefined });
    expect(served.candidates.map((c) => [c.deployment.id, c.via])).toEqual([['big-a', 'big']]);
    expect(planWith(down, canary!, { controls: { route: { allowFallbacks: false } } })).toMatchObject({ assignment: { arm: 'canary' }, candidates: [], refusal: undefined });
    // A request the canary could not take even when up still leaves the caller out.
    expect(planWith(down, canary!, { needs: ['tools'] })).toMatchObject({ assignment: undefined, candidates: [expect.objectContaining({ via: 'svc' })] });
  });
});

describe('images against tokens per minute', () => {
  // One vision model that declares its image cost, one that does not (the gateway's default, 1,600).
  const MODELS = [
    { id: 'declared', capabilities: ['chat', 'vision'], imageTokens: { max: 3_000, low: 100 }, deployments: [{ id: 'declared-a', provider: 'a', model: 'd', tpm: 5_000 }] },
    { id: 'plain', capabilities: ['chat', 'vision'], deployments: [{ id: 'plain-a', provider: 'a', model: 'p', tpm: 2_000 }] },
  ];
  const engine = engineFor(configWith(MODELS));
  const images = (any: number, low = 0) => ({ needs: ['vision' as const], promptTokens: 500, maxOutputTokens: 0, images: { any, low } });

  it("counts each image part at its model's imageTokens (low for detail: low), else at 1,600, in a request's size against a deployment's whole tpm", () => {
    // 500 + 1,600 > 2,000: one image is more than a minute of `plain`'s deployment.
    expect(engine.planner.plan(planRequest('plain', images(1))).refusal).toMatchObject({ code: 'exceeds_deployment_capacity', param: 'messages', message: expect.stringContaining('~2100 tokens') });
    // 500 + 3,000 fits `declared`'s 5,000; two images do not, two low-detail ones do.
    expect(ids(engine.planner.plan(planRequest('declared', images(1))).candidates)).toEqual(['declared-a']);
    expect(engine.planner.plan(planRequest('declared', images(2))).refusal).toMatchObject({ code: 'exceeds_deployment_capacity', message: expect.stringContaining('~6500 tokens') });
    expect(ids(engine.planner.plan(planRequest('declared', images(2, 2))).candidates)).toEqual(['declared-a']);
    expect(capacityTokens(planRequest('m', images(3, 1)), engine.catalog.model('declared'))).toBe(500 + 2 * 3_000 + 100 + 256);
    expect(capacityTokens(planRequest('m', images(3, 1)))).toBe(500 + 3 * 1_600 + 256);
  });

  it('counts images in the rolling tokens-per-minute check too', () => {
    const clock = new ManualClock();
    const busy = engineFor(configWith(MODELS), clock);
    busy.stats.of('declared-a').begin(clock.now(), 1_500);
    // 1,500 used + 500 + 3,000 + 256 > 5,000: busy (a 503), not a refusal; a low-detail image fits.
    expect(busy.planner.plan(planRequest('declared', images(1)))).toMatchObject({ candidates: [], refusal: undefined });
    expect(ids(busy.planner.plan(planRequest('declared', images(1, 1))).candidates)).toEqual(['declared-a']);
  });

  it('counts image parts once per request, typed or kept as JSON, low-detail ones apart', () => {
    const traits = (content: unknown[]) => chatRequestTraits(parseChatRequest({ model: 'm', messages: [{ role: 'user', content }] }));
    const url = 'https://example.com/a.png';
    const cached = { type: 'ephemeral' };
    expect(traits([{ type: 'text', text: 'hi' }]).images).toEqual({ any: 0, low: 0 });
    expect(traits([{ type: 'image_url', image_url: { url } }, { type: 'image_url', image_url: { url, detail: 'low' } }]).images).toEqual({ any: 2, low: 1 });
    const asJson = traits([
      { type: 'image_url', image_url: { url, detail: 'low' }, cache_control: cached },
      { type: 'image_url', image_url: { url: 'https://example.com/"low".png', detail: 'high' }, cache_control: cached },
      { type: 'image_url', image_url: { url }, cache_control: cached },
    ]);
    expect(asJson).toMatchObject({ needs: ['vision'], images: { any: 3, low: 1 } });
  });
});

describe('audio requests', () => {
  const transcription = (durationMs: number, prompt?: string): chatv1.AudioTranscriptionRequest => ({
    model: 'm',
    file: Buffer.from('RIFF'),
    filename: 'a.wav',
    contentType: 'audio/wav',
    translate: false,
    ...(prompt !== undefined && { prompt }),
    extraFields: [],
    durationMs,
  });
  const speech = (input: string): chatv1.SpeechRequest => ({ model: 'm', input, voice: 'alloy', extraJson: '' });
  const whole = { controls: { route: { strategy: 'cost' as const } }, taskType: undefined, maxOutputTokens: 0 };

  it("reads a transcription's prompt tokens, plus the audio's at tokensPerSecond when its length is known; a speech request's input tokens and code points", () => {
    // 10 s at 25 tokens a second, and a 9-character prompt (3 tokens).
    expect(transcriptionRequestTraits(transcription(10_000, 'Acme, Inc'), 25)).toEqual({ promptTokens: 253, audioMs: 10_000 });
    // Unknown length: the prompt alone; no prompt, nothing.
    expect(transcriptionRequestTraits(transcription(0, 'Acme, Inc'), 25)).toEqual({ promptTokens: 3, audioMs: 0 });
    expect(transcriptionRequestTraits(transcription(0), 25)).toEqual({ promptTokens: 0, audioMs: 0 });
    // Two code points outside the BMP are four UTF-16 units, two characters.
    expect(speechRequestTraits(speech('hello 👋👋'))).toEqual({ promptTokens: 3, characters: 8 });
  });

  it('cost: prices audio per minute and speech per character, beside the tokens', () => {
    const models = [
      { id: 'per-minute', capabilities: ['transcription'], pricing: { perAudioMinute: '0.006' }, deployments: [{ id: 'per-minute-a', provider: 'a', model: 'whisper-1' }] },
      { id: 'per-token', capabilities: ['transcription'], pricing: { input: '1', output: '1' }, deployments: [{ id: 'per-token-a', provider: 'a', model: 'gpt-4o-mini-transcribe' }] },
      { id: 'per-character', capabilities: ['speech'], pricing: { perMillionCharacters: '15' }, deployments: [{ id: 'per-character-a', provider: 'a', model: 'tts-1' }] },
      { id: 'tts-tokens', capabilities: ['speech'], pricing: { input: '0.6', output: '12' }, deployments: [{ id: 'tts-tokens-a', provider: 'a', model: 'gpt-4o-mini-tts' }] },
    ];
    const engine = engineFor(configWith(models));
    // A minute: 0.006 per minute, against (1,500 audio tokens + 256 of answer) at 1 per million.
    const minute = transcriptionRequestTraits(transcription(60_000), 25);
    expect(ids(engine.planner.plan(planRequest('auto', { capability: 'transcription', ...whole, ...minute })).candidates)).toEqual(['per-token-a', 'per-minute-a']);
    // 4,000 characters: 0.06 at 15 per million, against 1,000 tokens at 0.6 and 256 at 12 per million.
    const long = speechRequestTraits(speech('a'.repeat(4_000)));
    expect(ids(engine.planner.plan(planRequest('auto', { capability: 'speech', ...whole, ...long })).candidates)).toEqual(['tts-tokens-a', 'per-character-a']);
    // A deployment's own per-minute price is laid over its model's.
    const cheaper = models.map((m) => (m.id === 'per-minute' ? { ...m, pricing: { perAudioMinute: '0.006', deployments: { 'per-minute-a': { perAudioMinute: '0.0001' } } } } : m));
    expect(ids(engineFor(configWith(cheaper)).planner.plan(planRequest('auto', { capability: 'transcription', ...whole, ...minute })).candidates)).toEqual(['per-minute-a', 'per-token-a']);
  });

  it('cost: prices each image to make at perImage, beside a flat fee', () => {
    // Image models answer no tokens before they run: per image (DALL·E 2) against per request.
    const models = [
      { id: 'per-image', capabilities: ['images'], pricing: { perImage: '0.02' }, deployments: [{ id: 'per-image-a', provider: 'a', model: 'dall-e-2' }] },
      { id: 'per-request', capabilities: ['images'], pricing: { perRequest: '0.05' }, deployments: [{ id: 'per-request-a', provider: 'a', model: 'flat' }] },
    ];
    const engine = engineFor(configWith(models));
    // Two images: 0.04 against 0.05; five: 0.10 against 0.05.
    expect(ids(engine.planner.plan(planRequest('auto', { capability: 'images', ...whole, imagesMade: 2 })).candidates)).toEqual(['per-image-a', 'per-request-a']);
    expect(ids(engine.planner.plan(planRequest('auto', { capability: 'images', ...whole, imagesMade: 5 })).candidates)).toEqual(['per-request-a', 'per-image-a']);
  });

  it("refuses a request larger than a deployment's whole tpm naming the speech input or the audio file", () => {
    const models = [
      { id: 'stt', capabilities: ['transcription'], deployments: [{ id: 'stt-a', provider: 'a', model: 'whisper-1', tpm: 1_000 }] },
      { id: 'tts', capabilities: ['speech'], deployments: [{ id: 'tts-a', provider: 'a', model: 'tts-1', tpm: 1_000 }] },
    ];
    const engine = engineFor(configWith(models));
    // 60 s at 25 tokens a second: 1,500 tokens, more than a minute of the deployment.
    expect(engine.planner.plan(planRequest('stt', { capability: 'transcription', ...whole, ...transcriptionRequestTraits(transcription(60_000), 25) })).refusal).toMatchObject({ code: 'exceeds_deployment_capacity', param: 'file' });
    expect(ids(engine.planner.plan(planRequest('stt', { capability: 'transcription', ...whole, ...transcriptionRequestTraits(transcription(30_000), 25) })).candidates)).toEqual(['stt-a']);
    expect(engine.planner.plan(planRequest('tts', { capability: 'speech', ...whole, ...speechRequestTraits(speech('a'.repeat(4_096))) })).refusal).toMatchObject({ code: 'exceeds_deployment_capacity', param: 'input' });
    // A speech model is no transcription model, nor the other way round.
    expect(() => engine.planner.plan(planRequest('tts', { capability: 'transcription', ...whole }))).toThrow(expect.objectContaining({ code: 'model_not_supported', param: 'model' }));
    expect(() => engine.planner.plan(planRequest('stt', { capability: 'speech', ...whole }))).toThrow(expect.objectContaining({ code: 'model_not_supported', param: 'model' }));
  });
});
