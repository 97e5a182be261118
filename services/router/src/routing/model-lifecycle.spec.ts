import type { adapterv1, chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { RouterService } from '../router.service';
import { configWith, contextFor, engineFor, ManualClock, planRequest } from './test-engine.testing';
import { UnusedAdapters } from '../adapter-port.testing';

const DAY = 86_400_000;
const DEPRECATED = '2025-07-01';
const RETIRES = '2025-09-01T12:00:00Z';
const at = (iso: string): ManualClock => new ManualClock(Date.parse(iso));
const seconds = (iso: string): number => Date.parse(iso) / 1000;

const model = (id: string, extra: Record<string, unknown> = {}) => ({ id, deployments: [{ id: `${id}-a`, provider: 'a', model: `up-${id}` }], ...extra });

/** old: deprecated, retired later, replaced by new; lone: retired with no replacement; chained: retired, replaced by old. */
const MODELS = [
  model('old', { quality: { default: 0.9 }, lifecycle: { deprecatedAt: DEPRECATED, retiresAt: RETIRES, replacement: 'new' } }),
  model('new', { quality: { default: 0.6 } }),
  model('lone', { quality: { default: 0.95 }, lifecycle: { retiresAt: RETIRES } }),
  model('chained', { lifecycle: { retiresAt: '2025-06-15', replacement: 'old' } }),
  model('emb', { capabilities: ['embeddings'] }),
];
const config = configWith(MODELS, { aliases: { smart: { models: ['old', 'lone', 'new'], route: { strategy: 'quality' } } } });

const served = (clock: ManualClock, name: string, overrides: Parameters<typeof planRequest>[1] = {}) => {
  const plan = engineFor(config, clock).planner.plan(planRequest(name, overrides));
  return { models: [...new Set(plan.candidates.map((c) => c.model.id))], plan };
};

describe('model lifecycle: routing', () => {
  it('before deprecatedAt: served as always, no notice', () => {
    const { models, plan } = served(at('2025-06-30T23:59:59Z'), 'old');
    expect(models).toEqual(['old']);
    expect(plan.deprecation).toBeUndefined();
    expect(plan.replaced).toBeUndefined();
  });

  it('between deprecatedAt and retiresAt: served as always, with a notice naming both dates and the replacement', () => {
    const { models, plan } = served(at(DEPRECATED), 'old');
    expect(models).toEqual(['old']);
    expect(plan.deprecation).toEqual({ model: 'old', deprecatedAt: seconds(DEPRECATED), retiresAt: seconds(RETIRES), replacement: 'new', retired: false });
    expect(plan.replaced).toBeUndefined();
    // Deprecation alone changes no routing: aliases and auto still pick it.
    expect(served(at(DEPRECATED), 'smart').models[0]).toBe('lone');
    expect(served(at(DEPRECATED), 'auto').models).toContain('old');
  });

  it('a model with only retiresAt is announced (Sunset) from the start, without a deprecation date', () => {
    expect(served(at('2025-01-01'), 'lone').plan.deprecation).toEqual({ model: 'lone', deprecatedAt: 0, retiresAt: seconds(RETIRES), replacement: '', retired: false });
  });

  it('from retiresAt on: the replacement serves in its place, under the retired name', () => {
    const clock = at('2025-09-01T11:59:59Z');
    const engine = engineFor(config, clock);
    expect(engine.planner.plan(planRequest('old')).candidates.map((c) => c.model.id)).toEqual(['old']);
    clock.advance(1_000);
    const plan = engine.planner.plan(planRequest('old'));
    expect(plan.candidates.map((c) => c.model.id)).toEqual(['new']);
    expect(plan.replaced).toEqual({ model: 'old', by: 'new' });
    expect(plan.primary).toBe('new');
    expect(plan.deprecation).toMatchObject({ model: 'old', retired: true, replacement: 'new' });
  });

  it('after retiresAt, a model with no replacement is a 404 model_not_found naming its retirement', () => {
    const refuse = (name: string, overrides: Parameters<typeof planRequest>[1] = {}) => {
      try {
        served(at('2025-10-01'), name, overrides);
      } catch (error) {
        return error;
      }
      throw new Error('not refused');
    };
    expect(refuse('lone')).toMatchObject({ kind: 'not_found', code: 'model_not_found', param: 'model', message: 'The model `lone` was retired on 2025-09-01T12:00:00Z; name another model.' });
    // Named in the request's `models` list it is refused too, under that parameter.
    expect(refuse('new', { controls: { route: {}, models: ['lone'] } })).toMatchObject({ code: 'model_not_found', param: 'models' });
    expect(refuse('lone')).toBeInstanceOf(GatewayError);
  });

  it('follows a replacement that is retired itself to the first model that is not', () => {
    expect(served(at('2025-08-01'), 'chained')).toMatchObject({ models: ['old'], plan: { replaced: { model: 'chained', by: 'old' } } });
    expect(served(at('2025-10-01'), 'chained')).toMatchObject({ models: ['new'], plan: { replaced: { model: 'chained', by: 'new' }, deprecation: { replacement: 'new' } } });
  });

  it('leaves a retired model out of every alias and auto, and of context-window fallbacks', () => {
    const after = at('2025-10-01');
    expect(served(after, 'smart').models).toEqual(['new']);
    expect(served(after, 'auto').models).toEqual(['new']);
    const big = configWith([model('small', { contextWindow: 1_000 }), model('huge', { contextWindow: 1_000_000, lifecycle: { retiresAt: '2025-01-01' } })]);
    const plan = engineFor(big, after).planner.plan(planRequest('small'));
    expect(plan.largerContext(plan.candidates[0]!.model, new Set())).toEqual([]);
  });

  it("takes a retired model's configured fallback as its replacement", () => {
    const models = [model('main', { fallbacks: ['was'] }), model('was', { lifecycle: { retiresAt: '2025-01-01', replacement: 'now' } }), model('now'), model('gone-fb', { lifecycle: { retiresAt: '2025-01-01' } })];
    const engine = engineFor(configWith(models), at('2025-10-01'));
    expect(engine.planner.plan(planRequest('main')).candidates.map((c) => c.model.id)).toEqual(['main', 'now']);
    const orphan = engineFor(configWith([model('main', { fallbacks: ['gone-fb'] }), ...models.slice(3)]), at('2025-10-01'));
    expect(orphan.planner.plan(planRequest('main')).candidates.map((c) => c.model.id)).toEqual(['main']);
  });

  it("lets a key allowed the retired model use its replacement, and no other key's permission widens", () => {
    const allowedOld = contextFor({ allowedModels: ['old'] });
    expect(served(at('2025-10-01'), 'old', { context: allowedOld }).models).toEqual(['new']);
    expect(() => served(at('2025-10-01'), 'old', { context: contextFor({ allowedModels: ['emb'] }) })).toThrow(expect.objectContaining({ code: 'model_not_found', message: expect.stringContaining('does not exist') }));
  });

  it('moves an experiment arm whose model retired to its replacement', () => {
    const experiments = [{ id: 'x', target: 'smart', stickiness: 'request', arms: [{ name: 'a', model: 'old', weight: 1 }, { name: 'b', model: 'old', weight: 1 }] }];
    const engine = engineFor(configWith(MODELS, { aliases: { smart: { models: ['new'] } }, experiments }), at('2025-10-01'));
    const plan = engine.planner.plan(planRequest('smart'));
    expect(plan.assignment).toMatchObject({ experiment: 'x', model: 'new' });
    expect(plan.candidates.map((c) => c.model.id)).toEqual(['new']);
    expect(plan.replaced).toBeUndefined();
  });

  it('says a request naming a retired model was replaced when an experiment on that model puts it on the arm of that same model', () => {
    const experiments = [{ id: 'x', target: 'old', stickiness: 'request', arms: [{ name: 'a', model: 'old', weight: 1 }, { name: 'b', model: 'old', weight: 1 }] }];
    const engine = engineFor(configWith(MODELS, { experiments }), at('2025-10-01'));
    const plan = engine.planner.plan(planRequest('old'));
    expect(plan.assignment).toMatchObject({ experiment: 'x', model: 'new' });
    expect(plan.candidates.map((c) => c.model.id)).toEqual(['new']);
    expect(plan.replaced).toEqual({ model: 'old', by: 'new' });
  });

  it("serves a request put on a gray release's baseline that retired with no replacement by the target, not a 404 naming the baseline", () => {
    const models = [model('current'), model('base', { lifecycle: { retiresAt: '2025-01-01' } }), model('canary')];
    const grayReleases = [{ id: 'g', target: 'svc', baseline: 'base', canary: 'canary', steps: [{ afterMinutes: 0, percent: 0 }] }];
    const engine = engineFor(configWith(models, { aliases: { svc: { models: ['current'] } }, grayReleases }), at('2025-10-01'));
    const plan = engine.planner.plan(planRequest('svc'));
    expect(plan.assignment).toBeUndefined();
    expect(plan.candidates.map((c) => c.model.id)).toEqual(['current']);
  });
});

class Adapters extends UnusedAdapters {
  override chat(request: adapterv1.ChatRequest): AsyncIterator<adapterv1.ChatResponse> {
    return (async function* () {
      yield { completion: { id: 'c', created: 1, model: request.upstreamModel, choices: [] } };
    })();
  }
  override embed(): Promise<adapterv1.EmbedResponse> {
    return Promise.resolve({ response: { model: 'e', data: [] } as never });
  }
}

const chat = (model: string, extra: Record<string, unknown> = {}): routerv1.ChatRequest => ({
  context: contextFor(),
  request: { model, messages: [{ role: 'user', text: 'hi', contentIsNull: false, toolCalls: [], extraJson: '' }], tools: [], stop: [], stream: false, logitBias: {}, metadata: {}, modalities: [], extraJson: JSON.stringify(extra) } as chatv1.ChatRequest,
});

async function decisionFor(service: RouterService, model: string, extra: Record<string, unknown> = {}): Promise<routerv1.RouteDecision | undefined> {
  for await (const event of service.chat(chat(model, extra), new AbortController().signal)) if (event.routed) return event.routed.decision;
  return undefined;
}

describe('model lifecycle: decisions, counting and listing', () => {
  it('carries the notice and the replaced model in the decision, and counts every request naming such a model', async () => {
    const clock = at('2025-08-01');
    const counted: string[] = [];
    const service = new RouterService(engineFor(config, clock), new Adapters(), undefined, (m) => counted.push(m));
    expect(await decisionFor(service, 'old')).toMatchObject({ model: 'old', replacedModel: undefined, reason: 'requested model', deprecation: { model: 'old', deprecatedAt: seconds(DEPRECATED), retiresAt: seconds(RETIRES), replacement: 'new' } });
    expect(await decisionFor(service, 'new')).toMatchObject({ model: 'new', deprecation: undefined });
    expect(await decisionFor(service, 'smart')).toMatchObject({ model: 'lone', deprecation: undefined });
    clock.advance(60 * DAY);
    expect(await decisionFor(service, 'old')).toMatchObject({ model: 'new', replacedModel: 'old', reason: 'replacement for retired old', deprecation: { model: 'old', replacement: 'new' } });
    await expect(decisionFor(service, 'lone')).rejects.toMatchObject({ code: 'model_not_found' });
    expect(counted).toEqual(['old', 'old', 'lone']);
  });

  it('counts a deprecated or retired model named in `models` too, served or refused, once per request', async () => {
    const clock = at('2025-08-01');
    const counted: string[] = [];
    const service = new RouterService(engineFor(config, clock), new Adapters(), undefined, (m) => counted.push(m));
    // Served by `new`: the deprecated fallback is named all the same.
    expect(await decisionFor(service, 'new', { models: ['old'] })).toMatchObject({ model: 'new', deprecation: undefined });
    expect(counted).toEqual(['old']);
    clock.advance(60 * DAY);
    // Retired: `old` replaced, `lone` (no replacement) refused with param `models`; both counted, `old` once.
    await expect(decisionFor(service, 'old', { models: ['old', 'lone'] })).rejects.toMatchObject({ code: 'model_not_found', param: 'models' });
    expect(counted).toEqual(['old', 'old', 'lone']);
    expect(await decisionFor(service, 'new', { models: ['old'] })).toMatchObject({ model: 'new' });
    expect(counted).toEqual(['old', 'old', 'lone', 'old']);
  });

  it('explains a replaced request with the decision saying so', () => {
    const service = new RouterService(engineFor(config, at('2025-10-01')), new Adapters());
    const explained = service.explain({ context: contextFor(), request: chat('old').request });
    expect(explained.decision).toMatchObject({ model: 'new', replacedModel: 'old', reason: expect.stringContaining('replacement for retired old') });
    expect(explained.candidates.map((c) => c.model)).toEqual(['new']);
  });

  it('lists deprecated models with their dates and replacement, and no retired model', () => {
    const clock = at('2025-08-01');
    const service = new RouterService(engineFor(config, clock), new Adapters());
    const listed = () => Object.fromEntries(service.listModels(contextFor()).models.map((m) => [m.id, m]));
    expect(listed()['old']).toMatchObject({ deprecatedAt: seconds(DEPRECATED), retiresAt: seconds(RETIRES), replacement: 'new' });
    expect(listed()['new']).toMatchObject({ deprecatedAt: 0, retiresAt: 0, replacement: '' });
    expect(listed()['chained']).toBeUndefined();
    clock.advance(60 * DAY);
    expect(Object.keys(listed())).toEqual(['new', 'emb', 'smart', 'auto']);
  });
});
