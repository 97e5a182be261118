import type { adapterv1, chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { RouterService } from '../router.service';
import { NO_PERMITTED_DEPLOYMENT, type PlanRequest } from './route-planner';
import { policyConfig } from './policy-config.testing';
import { contextFor, engineFor, planRequest } from './test-engine.testing';
import { UnusedAdapters } from '../adapter-port.testing';

const ids = (candidates: Array<{ deployment: { id: string } }>): string[] => candidates.map((c) => c.deployment.id);

const EU: routerv1.TenantPolicy = { excludeProviders: [], guardrails: [], residency: { values: ['eu'] } };
const inEu = (overrides: Partial<PlanRequest> = {}): Partial<PlanRequest> => ({ context: contextFor({ policy: EU }), ...overrides });

describe('tenant policies in routing', () => {
  const engine = engineFor(policyConfig());

  it('serves a residency-bound request only by deployments with that residency, even when another is cheaper', () => {
    const open = engine.planner.plan(planRequest('gpt', { controls: { route: { strategy: 'cost' } } }));
    expect(ids(open.candidates)[0]).toBe('gpt-us');
    const eu = engine.planner.plan(planRequest('gpt', inEu({ controls: { route: { strategy: 'cost' } } })));
    expect(new Set(ids(eu.candidates))).toEqual(new Set(['gpt-eu', 'gpt-eu2', 'other-eu']));
    expect(eu.refusal).toBeUndefined();
  });

  it('excludes a provider with no residency label whenever a residency list applies, and honours allow and exclude lists', () => {
    const plain = engine.planner.plan(planRequest('gpt', { context: contextFor({ policy: { providers: { values: ['plain', 'us'] }, excludeProviders: ['us'], guardrails: [] } }), controls: { route: { allowFallbacks: false } } }));
    expect(ids(plain.candidates)).toEqual(['gpt-plain']);
    const labelled = engine.planner.plan(planRequest('gpt', { context: contextFor({ policy: { providers: { values: ['plain', 'eu-2'] }, excludeProviders: [], guardrails: [], residency: { values: ['eu', 'us'] } } }) }));
    expect(ids(labelled.candidates)).toEqual(['gpt-eu2']);
    const excluded = engine.planner.plan(planRequest('gpt', { context: contextFor({ policy: { excludeProviders: ['eu-1'], guardrails: [], residency: { values: ['eu'] } } }) }));
    expect(ids(excluded.candidates)).toEqual(['gpt-eu2']);
  });

  it('routes `auto` only among permitted deployments', () => {
    for (const strategy of ['cost', 'quality', 'latency', 'balanced'] as const) {
      const plan = engine.planner.plan(planRequest('auto', inEu({ taskType: 'code', controls: { route: { strategy } } })));
      expect(plan.candidates.length).toBeGreaterThan(0);
      expect(plan.candidates.every((c) => c.deployment.provider.startsWith('eu-'))).toBe(true);
    }
  });

  it('keeps fallbacks (the `models` list and model fallbacks) and the failover order inside the policy', () => {
    const plan = engine.planner.plan(planRequest('us-only', inEu({ controls: { route: {}, models: ['gpt'] } })));
    // `us-only` has nothing in the EU: the `models` entry, then its own fallback, EU deployments only.
    expect(ids(plan.candidates).slice(-1)).toEqual(['other-eu']);
    expect(new Set(ids(plan.candidates))).toEqual(new Set(['gpt-eu', 'gpt-eu2', 'other-eu']));
    expect(plan.candidates.map((c) => c.via)).toEqual(['gpt', 'gpt', 'other']);
  });

  it('refuses a model with no permitted deployment before any call, naming the policy dimension', () => {
    const refused = engine.planner.plan(planRequest('us-only', inEu()));
    expect(refused.candidates).toEqual([]);
    expect(refused.refusal).toMatchObject({ kind: 'not_found', param: 'model', code: NO_PERMITTED_DEPLOYMENT });
    expect(refused.refusal?.message).toBe("No deployment of `us-only` is permitted by the data-residency policy (allowed residency: eu) that applies to this key's organisation, team, project or key.");
    const byProvider = engine.planner.plan(planRequest('us-only', { context: contextFor({ policy: { excludeProviders: ['us'], guardrails: [] } }) }));
    expect(byProvider.refusal).toMatchObject({ code: NO_PERMITTED_DEPLOYMENT, message: expect.stringContaining('the provider policy') });
    // Neither message names a provider or deployment.
    for (const message of [refused.refusal?.message, byProvider.refusal?.message]) expect(message).not.toMatch(/us-only-us|provider us|"us"/);
    // A reason of the permitted deployments' own (here the context window) wins over the policy.
    const tooLong = engine.planner.plan(planRequest('gpt', inEu({ promptTokens: 1_000_000, controls: { route: { allowFallbacks: false } } })));
    expect(tooLong.refusal).toMatchObject({ code: 'context_length_exceeded' });
    // A permitted deployment that is only down is the gateway's 503, never a way out of the policy.
    const down = engineFor(policyConfig({ breaker: { consecutiveFailures: 1 } }));
    for (const id of ['gpt-eu', 'gpt-eu2', 'other-eu']) down.breakers.of(id).failure();
    expect(down.planner.plan(planRequest('gpt', inEu()))).toMatchObject({ candidates: [], refusal: undefined });
  });

  it('gives a larger-context fallback only among permitted deployments', () => {
    const big = engineFor(
      policyConfig({}, [
        { id: 'small', contextWindow: 1_000, deployments: [{ id: 'small-eu', provider: 'eu-1', model: 's' }] },
        { id: 'large-us', contextWindow: 100_000, deployments: [{ id: 'large-us-1', provider: 'us', model: 'l' }] },
        { id: 'large-eu', contextWindow: 200_000, deployments: [{ id: 'large-eu-1', provider: 'eu-2', model: 'l' }] },
      ]),
    );
    const plan = big.planner.plan(planRequest('small', inEu({ promptTokens: 10 })));
    const small = plan.candidates[0]?.model;
    expect(small?.id).toBe('small');
    expect(ids(plan.largerContext(small!, new Set()))).toEqual(['large-eu-1']);
  });

  it('leaves a caller whose A/B arm is outside the policy out of the experiment, served by the target inside it', () => {
    const ab = engineFor(policyConfig({ experiments: [{ id: 'e', target: 'other', arms: [{ name: 'control', model: 'other', weight: 1 }, { name: 'test', model: 'us-only', weight: 1 }] }] }));
    const testers = Array.from({ length: 40 }, (_, i) => `u${i}`).filter((u) => ab.experiments.assign('other', contextFor({ endUser: u }), undefined)?.arm === 'test');
    expect(testers.length).toBeGreaterThan(0);
    for (const user of testers) {
      const plan = ab.planner.plan(planRequest('other', { context: contextFor({ endUser: user, policy: EU }) }), true);
      expect(plan.assignment).toBeUndefined();
      expect(ids(plan.candidates)).toEqual(['other-eu']);
      expect(plan.considered.find((c) => c.deployment.id === 'us-only-us')?.filteredReason).toBe('left out of experiment e (arm test): excluded by policy: provider us has residency us (allowed residency: eu)');
      // Without a policy the same caller is on the arm.
      expect(ab.planner.plan(planRequest('other', { context: contextFor({ endUser: user }) })).assignment?.arm).toBe('test');
    }
  });

  it("serves a gray release's canary caller by the target when the canary is outside the policy", () => {
    const gray = engineFor(policyConfig({ aliases: { svc: { models: ['other'] } }, grayReleases: [{ id: 'g', target: 'svc', baseline: 'other', canary: 'us-only', steps: [{ afterMinutes: 0, percent: 50 }] }] }));
    const canaries = Array.from({ length: 40 }, (_, i) => `u${i}`).filter((u) => gray.grayReleases.forTarget('svc')?.assign(contextFor({ endUser: u }), undefined).arm === 'canary');
    expect(canaries.length).toBeGreaterThan(0);
    for (const user of canaries) {
      const plan = gray.planner.plan(planRequest('svc', { context: contextFor({ endUser: user, policy: EU }) }));
      expect(plan.assignment).toBeUndefined();
      expect(ids(plan.candidates)).toEqual(['other-eu']);
    }
  });

  it('explains the deployments the policy left out, with the reason', () => {
    const explained = engine.planner.plan(planRequest('gpt', inEu({ controls: { route: { allowFallbacks: false } } })), true);
    const reasons = Object.fromEntries(explained.considered.map((c) => [c.deployment.id, c.filteredReason]));
    expect(reasons).toMatchObject({
      'gpt-us': 'excluded by policy: provider us has residency us (allowed residency: eu)',
      'gpt-plain': 'excluded by policy: provider plain has no residency label (allowed residency: eu)',
      'gpt-eu': '',
      'gpt-eu2': '',
    });
  });
});

const message = (text: string): chatv1.Message => ({ role: 'user', text, contentIsNull: false, toolCalls: [], extraJson: '' });
const chatRequest = (model: string): chatv1.ChatRequest => ({ model, messages: [message('hi')], tools: [], stop: [], stream: false, logitBias: {}, metadata: {}, modalities: [], extraJson: '' }) as chatv1.ChatRequest;

/** Adapters in process: each call is recorded; a deployment's upstream model listed in `failing` fails every time. */
class RecordingAdapters extends UnusedAdapters {
  readonly called: string[] = [];
  constructor(private readonly failing: ReadonlySet<string>) {
    super();
  }
  override chat(request: adapterv1.ChatRequest): AsyncIterator<adapterv1.ChatResponse> {
    this.called.push(request.upstreamModel);
    const fails = this.failing.has(request.upstreamModel);
    return (async function* () {
      if (fails) throw new GatewayError('upstream_error', 'boom', { upstreamStatus: 500 });
      yield { completion: { id: 'c', created: 1, model: request.upstreamModel, choices: [] } };
    })();
  }
}

describe('tenant policies in the router service', () => {
  it('fails over only to permitted deployments, and fails when every permitted one fails', async () => {
    const adapters = new RecordingAdapters(new Set(['gpt-eu', 'gpt-eu2', 'other-eu']));
    const service = new RouterService(engineFor(policyConfig({ retry: { baseDelayMs: 0, maxDelayMs: 0, maxAttempts: 10 } })), adapters);
    const run = async () => {
      for await (const _ of service.chat({ context: contextFor({ policy: EU }), request: chatRequest('gpt') }, new AbortController().signal)) {
        // drained
      }
    };
    await expect(run()).rejects.toMatchObject({ kind: 'upstream_error' });
    expect(adapters.called.length).toBeGreaterThan(0);
    expect(adapters.called.every((m) => ['gpt-eu', 'gpt-eu2', 'other-eu'].includes(m))).toBe(true);
  });

  it('lists only the models with a permitted deployment', () => {
    const service = new RouterService(engineFor(policyConfig()), new RecordingAdapters(new Set()));
    const listed = service.listModels(contextFor({ policy: EU })).models.map((m) => m.id);
    expect(listed).toEqual(expect.arrayContaining(['gpt', 'other', 'auto']));
    expect(listed).not.toContain('us-only');
    expect(service.listModels(contextFor()).models.map((m) => m.id)).toContain('us-only');
  });

  it('explains a refusal with the policy error', () => {
    const service = new RouterService(engineFor(policyConfig()), new RecordingAdapters(new Set()));
    const explained = service.explain({ context: contextFor({ policy: EU }), request: chatRequest('us-only') });
    expect(explained.error).toContain('data-residency policy');
    expect(explained.candidates.map((c) => [c.deployment, c.eligible, c.filteredReason])).toEqual([['us-only-us', false, 'excluded by policy: provider us has residency us (allowed residency: eu)']]);
  });
});
