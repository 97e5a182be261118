import { configSchema } from '@openrouter/config';
import type { budgetv1 } from '@openrouter/contracts';
import { BudgetCatalog, MemoryBudgetLedger, MemoryBudgetStore, type BudgetEventPublisher, type BudgetStore } from '@openrouter/budgets';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { markFormBody, toOpenAIError } from '@openrouter/openai-wire';
import { PriceBook } from '@openrouter/usage';
import { encode } from 'gpt-tokenizer';
import { countTextTokens } from '../access/prompt-tokens';
import { ingressTestConfig } from '../test-config.testing';
import { mp3File, upload, wavFile } from './audio-file.testing';
import { BudgetService } from './budget.service';
import type { Repeat } from './reservation-renewal';

const tenant = { orgId: 'acme', teamId: 't', projectId: 'p', keyId: 'k1' };
const NOW = Date.parse('2025-06-14T12:00:00Z');

function service(budgets: unknown[], extra: Record<string, unknown> = {}, catalog: { models?: unknown[]; routing?: Record<string, unknown> } = {}) {
  // 1 micro-unit per input token, 2 per output token.
  const config = ingressTestConfig({ ...(catalog.models ? { models: catalog.models } : {}), ...(catalog.routing ? { routing: catalog.routing } : {}), budgets: { list: budgets, ...extra } });
  const published: budgetv1.BudgetEvent[] = [];
  const events: BudgetEventPublisher = { publish: async (e) => void published.push(e), close: async () => undefined };
  const ledger = new MemoryBudgetLedger(() => NOW);
  const budgetService = new BudgetService(config, PriceBook.fromModels(config.models), ledger, events, createLogger('test', 'silent'), () => NOW);
  return { budgetService, published, ledger };
}

describe('BudgetService', () => {
  it('parses as part of the configuration', () => {
    expect(configSchema.shape.budgets).toBeDefined();
  });

  it('reserves the worst case from the prompt, max_tokens and the dearest price, and refuses when it does not fit', async () => {
    const { budgetService } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.0005' }]);
    const body = { model: 'm', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };
    // prompt "hi": 4 + 1 = 5 tokens, padded to ceil(5.5) + 16 = 22 → 22 + 100 × 2 = 222 micro-units.
    const r = await budgetService.reserve({ requestId: 'a', tenant, body });
    expect(r?.amountMicros).toBe(222);
    expect(r?.capped).toBe(false);
    await budgetService.reserve({ requestId: 'b', tenant, body });
    const refused = await budgetService.reserve({ requestId: 'c', tenant, body }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GatewayError);
    expect(refused).toMatchObject({ kind: 'budget_exceeded', code: 'budget_exceeded' });
    await r?.settle('0.0001');
    const [status] = await budgetService.status();
    expect(status).toMatchObject({ spent: '0.0001', reserved: '0.000222' });
  });

  it("prices the worst case over the deployments the tenant's routing policy lets the router use, never a provider it excludes", async () => {
    const config = ingressTestConfig({
      providers: {
        'sim-eu': { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', residency: 'eu' },
        'sim-us': { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', residency: 'us' },
      },
      // One model, two deployments: 1 and 2 micro-units a token in the EU, 10 and 20 in the US.
      models: [
        {
          id: 'm',
          pricing: { input: '1', output: '2', deployments: { us: { input: '10', output: '20' } } },
          deployments: [
            { id: 'eu', provider: 'sim-eu', model: 'u' },
            { id: 'us', provider: 'sim-us', model: 'u' },
          ],
        },
      ],
      budgets: { list: [{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '1' }] },
    });
    const events: BudgetEventPublisher = { publish: async () => undefined, close: async () => undefined };
    const budgetService = new BudgetService(config, PriceBook.fromModels(config.models), new MemoryBudgetLedger(() => NOW), events, createLogger('test', 'silent'), () => NOW);
    const body = { model: 'm', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };
    const reserved = async (policy?: Parameters<BudgetService['reserve']>[0]['tenant']['policy']): Promise<number | undefined> =>
      (await budgetService.reserve({ requestId: `r-${Math.random()}`, tenant: { ...tenant, policy }, body }))?.amountMicros;
    // Unrestricted: the US deployment may serve it, 22 × 10 + 100 × 20.
    expect(await reserved()).toBe(2_220);
    // Kept in the EU (by residency, by provider, or with the US provider excluded): 22 × 1 + 100 × 2.
    expect(await reserved({ residency: { values: ['eu'] }, excludeProviders: [], guardrails: [] })).toBe(222);
    expect(await reserved({ providers: { values: ['sim-eu'] }, excludeProviders: [], guardrails: [] })).toBe(222);
    expect(await reserved({ excludeProviders: ['sim-us'], guardrails: [] })).toBe(222);
    // A policy that leaves no deployment (the router refuses the request with a 404) reserves nothing.
    expect(await reserved({ residency: { values: ['apac'] }, excludeProviders: [], guardrails: [] })).toBe(0);
  });

  it('gives back a reservation whose reply never came (Redis timed out after making it), in either fail mode', async () => {
    for (const failMode of ['closed', 'open'] as const) {
      const config = ingressTestConfig({ budgets: { failMode, list: [{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.0005' }] } });
      const ledger = new MemoryBudgetLedger(() => NOW);
      // Redis made the reservation, but its answer was lost: the caller sees a timeout.
      const slow = Object.assign(Object.create(ledger) as MemoryBudgetLedger, {
        reserve: async (request: Parameters<MemoryBudgetLedger['reserve']>[0]) => {
          await ledger.reserve(request);
          throw new Error('Command timed out');
        },
      });
      const events: BudgetEventPublisher = { publish: async () => undefined, close: async () => undefined };
      const budgetService = new BudgetService(config, PriceBook.fromModels(config.models), slow, events, createLogger('test', 'silent'), () => NOW);
      const body = { model: 'm', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };
      const outcome = await budgetService.reserve({ requestId: 'a', tenant, body }).catch((e: unknown) => e);
      if (failMode === 'closed') expect(outcome).toMatchObject({ code: 'budget_store_unavailable' });
      else expect(outcome).toBeUndefined();
      await budgetService.idle();
      // Not held for the reservation ttl by a request that holds nothing.
      expect(await ledger.read(['b:2025-06-14'])).toEqual([{ spentMicros: 0, reservedMicros: 0 }]);
    }
  });

  it('settles again after a failure (a timeout, a failover), and counts the spend once', async () => {
    const config = ingressTestConfig({ budgets: { list: [{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.0005' }] } });
    const ledger = new MemoryBudgetLedger(() => NOW);
    let failures = 1;
    const flaky = Object.assign(Object.create(ledger) as MemoryBudgetLedger, {
      settle: async (...args: Parameters<MemoryBudgetLedger['settle']>) => {
        if (failures-- > 0) throw new Error('Connection is closed.');
        return ledger.settle(...args);
      },
    });
    const events: BudgetEventPublisher = { publish: async () => undefined, close: async () => undefined };
    const budgetService = new BudgetService(config, PriceBook.fromModels(config.models), flaky, events, createLogger('test', 'silent'), () => NOW);
    const r = await budgetService.reserve({ requestId: 'a', tenant, body: { model: 'm', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] } });
    await r?.settle('0.0001');
    expect(await ledger.read(['b:2025-06-14'])).toEqual([{ spentMicros: 100, reservedMicros: 0 }]);
  });

  it('closes only once the settles and releases under way have reached the ledger, so no reservation is left held for its ttl', async () => {
    const config = ingressTestConfig({ budgets: { list: [{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.0005' }] } });
    const ledger = new MemoryBudgetLedger(() => NOW);
    const order: string[] = [];
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    // A store whose answers to settles are slow to come back.
    const slow = Object.assign(Object.create(ledger) as MemoryBudgetLedger, {
      settle: async (...args: Parameters<MemoryBudgetLedger['settle']>) => {
        await answered;
        const spent = await ledger.settle(...args);
        order.push(`settled ${args[0].split(':')[0] ?? ''}`);
        return spent;
      },
      close: async () => void order.push('closed'),
    });
    const events: BudgetEventPublisher = { publish: async () => undefined, close: async () => undefined };
    const budgetService = new BudgetService(config, PriceBook.fromModels(config.models), slow, events, createLogger('test', 'silent'), () => NOW);
    const body = () => ({ model: 'm', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
    const spent = await budgetService.reserve({ requestId: 'spent', tenant, body: body() });
    const released = await budgetService.reserve({ requestId: 'released', tenant, body: body() });
    // The requests end as the process shuts down: nobody awaits their settles.
    void spent?.settle('0.0001');
    void released?.release();
    let closed = false;
    const closing = budgetService.close().then(() => (closed = true));
    // Everything else closing does is done by the next turn of the event loop: it is still waiting.
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(false);
    answer();
    await closing;
    expect(order).toHaveLength(3);
    expect(order.slice(0, 2).sort()).toEqual(['settled released', 'settled spent']);
    expect(order[2]).toBe('closed');
    expect(await ledger.read(['b:2025-06-14'])).toEqual([{ spentMicros: 100, reservedMicros: 0 }]);
  });

  it('reserves the prompt an earlier turn\'s tool-call arguments carry, not only message text', async () => {
    const { budgetService } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '1' }]);
    const args = JSON.stringify({ rows: Array.from({ length: 100 }, (_, i) => ({ id: i, name: `item ${i}` })) });
    const body = {
      model: 'm',
      max_tokens: 100,
      messages: [
        { role: 'user', content: 'Summarise.' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'store', arguments: args } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'ok' },
      ],
    };
    const r = await budgetService.reserve({ requestId: 'a', tenant, body });
    // 1 micro-unit a prompt token: the arguments' tokens, padded, plus 100 × 2 of output.
    expect(r?.amountMicros).toBeGreaterThan(Math.ceil(encode(args).length * 1.1) + 200);
  });

  it('ignores tenants no budget names', async () => {
    const { budgetService } = service([{ id: 'b', scope: { org: 'globex' }, period: 'daily', amount: '0.000001' }]);
    expect(await budgetService.reserve({ requestId: 'a', tenant, body: { model: 'm', messages: [] } })).toBeUndefined();
  });

  it('starts a stream with what is left and lowers its max_tokens to what that pays for', async () => {
    const { budgetService } = service([{ id: 'b', scope: { org: 'acme' }, period: 'monthly', amount: '0.0001' }]);
    const body: Record<string, unknown> = { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] };
    const r = await budgetService.reserve({ requestId: 'a', tenant, body });
    expect(r).toMatchObject({ amountMicros: 100, capped: true });
    // (100 − 22) / 2 = 39 output tokens.
    expect(body['max_tokens']).toBe(39);
    // 39 tokens fit; a quarter of a token more (one letter) would be the 40th.
    expect(r?.admitDelta(39)).toBe(true);
    expect(r?.admitDelta(0.25)).toBe(false);
  });

  it('publishes each threshold once per period', async () => {
    const { budgetService, published } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.001', enforcement: 'soft', alertThresholds: [80, 50, 100] }]);
    for (const cost of ['0.0006', '0.0001', '0.0002', '0.0005']) {
      const r = await budgetService.reserve({ requestId: cost, tenant, body: { model: 'm', max_tokens: 1, messages: [] } });
      await r?.settle(cost);
    }
    expect(published.map((e) => [e.thresholdPercent, e.spent, e.periodKey])).toEqual([
      [50, '0.0006', '2025-06-14'],
      [80, '0.0009', '2025-06-14'],
      [100, '0.0014', '2025-06-14'],
    ]);
    expect(published[0]?.eventId).toBe('b/2025-06-14/50');
  });

  describe('prices the dearest model the router may use for the request', () => {
    // Every model costs 1 micro-unit per input token; the output price tells them apart.
    const model = (id: string, output: string, more: Record<string, unknown> = {}) => ({ id, pricing: { input: '1', output }, deployments: [{ id: `${id}-d`, provider: 'sim', model: id }], ...more });
    const hard = [{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100' }];
    const hi = [{ role: 'user', content: 'hi' }];
    // "hi" pads to 22 prompt tokens: the worst case is 22 + 10 × (the dearest output price).
    const worst = (output: number, maxTokens = 10) => 22 + maxTokens * output;

    async function reserved(body: Record<string, unknown>, catalog: { models?: unknown[]; routing?: Record<string, unknown> }, headers: Record<string, string> = {}): Promise<number | undefined> {
      const { budgetService } = service(hard, {}, catalog);
      return (await budgetService.reserve({ requestId: 'r', tenant, body: { max_tokens: 10, messages: hi, ...body }, headers }))?.amountMicros;
    }

    it('follows configured fallbacks transitively, unless the request forbids fallbacks', async () => {
      const models = [model('m', '2', { fallbacks: ['f1'] }), model('f1', '3', { fallbacks: ['f2'] }), model('f2', '50')];
      expect(await reserved({ model: 'm' }, { models })).toBe(worst(50));
      expect(await reserved({ model: 'm', route: { allow_fallbacks: false } }, { models })).toBe(worst(2));
    });

    it('reads the fallback list and route from the x-openrouter-models and x-openrouter-route headers', async () => {
      const models = [model('m', '2'), model('dear', '40')];
      expect(await reserved({ model: 'm' }, { models }, { 'x-openrouter-models': 'dear' })).toBe(worst(40));
      expect(await reserved({ model: 'm' }, { models }, { 'x-openrouter-models': 'dear', 'x-openrouter-route': '{"allow_fallbacks":false}' })).toBe(worst(2));
    });

    it('keeps a policy that does not let requests turn fallbacks off', async () => {
      const models = [model('m', '2', { fallbacks: ['dear'] }), model('dear', '40')];
      const routing = { policies: [{ id: 'p', match: { org: 'acme' }, route: { allowFallbacks: true }, allowOverrides: false }] };
      expect(await reserved({ model: 'm', route: { allow_fallbacks: false } }, { models, routing })).toBe(worst(40));
    });

    it('includes experiment arms and both sides of a gray release', async () => {
      const models = [model('m', '2'), model('arm', '30'), model('canary', '45'), model('base', '7')];
      expect(await reserved({ model: 'm' }, { models, routing: { experiments: [{ id: 'e', target: 'm', arms: [{ name: 'a', model: 'm', weight: 1 }, { name: 'b', model: 'arm', weight: 1 }] }] } })).toBe(worst(30));
      expect(await reserved({ model: 'm' }, { models, routing: { grayReleases: [{ id: 'g', target: 'm', baseline: 'base', canary: 'canary', steps: [{ afterMinutes: 0, percent: 5 }] }] } })).toBe(worst(45));
    });

    it('includes models with a larger context window when the padded request does not fit, context fallback is on and fallbacks are allowed', async () => {
      const models = [model('m', '2', { contextWindow: 40 }), model('long', '60', { contextWindow: 1_000_000 })];
      // 22 padded prompt tokens plus max_tokens 10 fit a window of 40; plus 30 they do not.
      expect(await reserved({ model: 'm' }, { models })).toBe(worst(2));
      expect(await reserved({ model: 'm', max_tokens: 30 }, { models })).toBe(worst(60, 30));
      expect(await reserved({ model: 'm', max_tokens: 30 }, { models, routing: { contextFallback: false } })).toBe(worst(2, 30));
      expect(await reserved({ model: 'm', max_tokens: 30, route: { allow_fallbacks: false } }, { models })).toBe(worst(2, 30));
    });

    it('prices a retired model at its replacement, which serves it: followed past retired ones, with the replacement’s fallbacks', async () => {
      const retired = (replacement: string, retiresAt = '2025-01-01') => ({ lifecycle: { retiresAt, replacement } });
      // old (2) retired into new (20), whose fallback is dear (50).
      const models = [model('old', '2', retired('new')), model('new', '20', { fallbacks: ['dear'] }), model('dear', '50')];
      expect(await reserved({ model: 'old' }, { models })).toBe(worst(50));
      // No fallbacks: the replacement still serves it.
      expect(await reserved({ model: 'old', route: { allow_fallbacks: false } }, { models })).toBe(worst(20));
      // A replacement retired too is followed to its own.
      const chain = [model('old', '2', retired('mid')), model('mid', '3', retired('new')), model('new', '20')];
      expect(await reserved({ model: 'old' }, { models: chain })).toBe(worst(20));
      // A retired fallback (configured or the request's) and a retired experiment arm are their replacements.
      const named = [model('m', '1', { fallbacks: ['old'] }), model('n', '1'), model('old', '2', retired('new')), model('new', '20')];
      expect(await reserved({ model: 'm' }, { models: named })).toBe(worst(20));
      expect(await reserved({ model: 'n', models: ['old'] }, { models: named })).toBe(worst(20));
      const arms = { experiments: [{ id: 'e', target: 'n', arms: [{ name: 'a', model: 'n', weight: 1 }, { name: 'b', model: 'old', weight: 1 }] }] };
      expect(await reserved({ model: 'n', route: { allow_fallbacks: false } }, { models: named, routing: arms })).toBe(worst(20));
      // Not yet retired (a year ahead): served by itself, at its own price.
      expect(await reserved({ model: 'old', route: { allow_fallbacks: false } }, { models: [model('old', '2', retired('new', '2026-06-14')), model('new', '20')] })).toBe(worst(2));
    });

    it('cuts a stream of a retired model at its replacement’s output price', async () => {
      const models = [model('old', '2', { lifecycle: { retiresAt: '2025-01-01', replacement: 'new' } }), model('new', '20')];
      // 100 micro-units: 22 for the prompt, then 78 / 20 = 3 output tokens.
      const { budgetService } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.0001' }], { minStreamOutputTokens: 1 }, { models });
      const body: Record<string, unknown> = { model: 'old', stream: true, max_tokens: 10, messages: hi };
      const r = await budgetService.reserve({ requestId: 's', tenant, body });
      expect(r).toMatchObject({ amountMicros: 100, capped: true });
      expect(body['max_tokens']).toBe(3);
      expect(r?.admitDelta(3)).toBe(true);
      expect(r?.admitDelta(1)).toBe(false);
    });

    it('reserves the output, prompt margin and request fee once per legacy prompt', async () => {
      const models = [{ id: 'm', pricing: { input: '1', output: '2', perRequest: '0.000005' }, deployments: [{ id: 'd', provider: 'sim', model: 'u' }] }];
      // "a", "b", "c": 3 tokens, ceil(3.3) + 3 × 16 = 52 prompt; 3 × 10 × 2 = 60 output; 3 × 5 fees.
      expect(await reserved({ model: 'm', prompt: ['a', 'b', 'c'], messages: undefined }, { models })).toBe(52 + 60 + 15);
    });
  });

  it('tells the provider the output cap it reserved for when a hard budget applies, and only then', async () => {
    const hardBody: Record<string, unknown> = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    await service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100' }], { defaultMaxOutputTokens: 300 }).budgetService.reserve({ requestId: 'a', tenant, body: hardBody });
    expect(hardBody['max_tokens']).toBe(300);
    const softBody: Record<string, unknown> = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };
    await service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100', enforcement: 'soft' }], { defaultMaxOutputTokens: 300 }).budgetService.reserve({ requestId: 'a', tenant, body: softBody });
    expect(softBody['max_tokens']).toBeUndefined();
  });

  it("reserves a request's images at the image cost its model declares, a low-detail one at its low cost", async () => {
    const deployments = [{ id: 'd', provider: 'sim', model: 'u' }];
    // m bills gpt-4o-mini's image cost: up to 2,833 + 8 tiles of 5,667; 2,833 at low detail.
    const models = [{ id: 'm', imageTokens: { max: 48_169, low: 2_833 }, pricing: { input: '1', output: '2' }, deployments }];
    const { budgetService } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '1' }], {}, { models });
    const image = (detail: string) => ({ type: 'image_url', image_url: { url: 'https://example.com/a.png', detail } });
    const body = (detail: string) => ({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }, image(detail)] }] });
    // 4 + 1 + 48,169 = 48,174 prompt tokens, padded to ceil(52,991.4) + 16 = 53,008; 10 output tokens × 2.
    await expect(budgetService.reserve({ requestId: 'high', tenant, body: body('high') })).resolves.toMatchObject({ amountMicros: 53_008 + 20 });
    // 4 + 1 + 2,833 = 2,838, padded to ceil(3,121.8) + 16 = 3,138.
    await expect(budgetService.reserve({ requestId: 'low', tenant, body: body('low') })).resolves.toMatchObject({ amountMicros: 3_138 + 20 });
    // A hard budget of 50,000 micro-units cannot pay for the high-detail image: refused, not admitted to settle past it.
    const small = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.05' }], {}, { models }).budgetService;
    await expect(small.reserve({ requestId: 'small', tenant, body: body('auto') })).rejects.toMatchObject({ kind: 'budget_exceeded' });
    // Through an alias, the dearest image cost of its models.
    const aliased = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '1' }], {}, {
      models: [...models, { id: 'n', pricing: { input: '1', output: '2' }, deployments: [{ id: 'e', provider: 'sim', model: 'u' }] }],
      routing: { aliases: { vision: { models: ['n', 'm'] } } },
    }).budgetService;
    await expect(aliased.reserve({ requestId: 'alias', tenant, body: { ...body('high'), model: 'vision' } })).resolves.toMatchObject({ amountMicros: 53_008 + 20 });
  });

  it('refuses a service_tier that a model the request may reach declares no price for, and reserves a declared one at its price', async () => {
    const deployments = [{ id: 'd', provider: 'sim', model: 'u' }];
    const plain = service([]).budgetService;
    const body = (tier: unknown, extra: Record<string, unknown> = {}) => ({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], service_tier: tier, ...extra });
    // Under no budget too: the tier's price would be recorded nowhere.
    for (const tier of ['priority', 'flex', 'scale', 'turbo', 'constructor']) {
      const refused = await plain.reserve({ requestId: tier, tenant, body: body(tier) }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(GatewayError);
      expect(refused).toMatchObject({ kind: 'bad_request', param: 'service_tier', code: 'invalid_value', message: expect.stringContaining(`"${tier}"`) });
    }
    for (const tier of ['auto', 'default', null, undefined]) await expect(plain.reserve({ requestId: 'ok', tenant, body: body(tier) })).resolves.toBeUndefined();

    const catalog = {
      models: [
        { id: 'm', pricing: { input: '1', output: '2', tiers: { priority: { input: '2', output: '4' } } }, fallbacks: ['n'], deployments },
        { id: 'n', pricing: { input: '1', output: '2' }, deployments: [{ id: 'e', provider: 'sim', model: 'u' }] },
      ],
    };
    const { budgetService } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '1' }], {}, catalog);
    // m declares priority, but its fallback n does not and may serve the request.
    await expect(budgetService.reserve({ requestId: 'a', tenant, body: body('priority') })).rejects.toMatchObject({ param: 'service_tier', message: expect.stringContaining('on n, which may serve it') });
    // Without fallbacks, only m: reserved at its priority price, 2 and 4 micro-units a token (22 × 2 + 10 × 4).
    await expect(budgetService.reserve({ requestId: 'b', tenant, body: body('priority', { route: { allow_fallbacks: false } }) })).resolves.toMatchObject({ amountMicros: 44 + 40 });
    await expect(budgetService.reserve({ requestId: 'c', tenant, body: body('default') })).resolves.toMatchObject({ amountMicros: 22 + 20 });
  });

  it('reads a model named like an object property as an unknown model, not an alias', async () => {
    const { budgetService } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100' }], {}, { routing: { aliases: { fast: { models: ['m'] } } } });
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const body = { model: name, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
      // Priced as any model of the catalog (the router answers 404 for it), never a TypeError.
      await expect(budgetService.reserve({ requestId: name, tenant, body })).resolves.toMatchObject({ amountMicros: 22 + 10 * 2 });
      await expect(budgetService.reserve({ requestId: name, tenant, body: { ...body, model: 'm' }, headers: { 'x-openrouter-models': `m,${name}` } })).resolves.toMatchObject({ amountMicros: 42 });
    }
  });

  it('reserves a legacy completion that sets no max_tokens for OpenAI’s 16, and never raises its limit', async () => {
    const hard = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100' }], { defaultMaxOutputTokens: 4096 }).budgetService;
    const body: Record<string, unknown> = { model: 'm', prompt: 'Write a story' };
    // "Write a story": 3 tokens, padded to ceil(3.3) + 16 = 20; 16 output tokens × 2.
    await expect(hard.reserve({ requestId: 'a', tenant, body })).resolves.toMatchObject({ amountMicros: 20 + 16 * 2, capped: false });
    expect(body['max_tokens']).toBe(16);
    // What is left pays for the 16 tokens, not for the configured default's 4 096: admitted whole.
    const nearlySpent = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.00006' }], { defaultMaxOutputTokens: 4096 }).budgetService;
    await expect(nearlySpent.reserve({ requestId: 'b', tenant, body: { model: 'm', prompt: 'Write a story', stream: true } })).resolves.toMatchObject({ amountMicros: 52, capped: false });
    const chat: Record<string, unknown> = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 10, stream: true };
    const tight = service([{ id: 'b', scope: { org: 'acme' }, period: 'monthly', amount: '0.00003' }], { minStreamOutputTokens: 1 }).budgetService;
    await expect(tight.reserve({ requestId: 'c', tenant, body: chat })).resolves.toMatchObject({ amountMicros: 30, capped: true });
    // (30 − 22) / 2 = 4 output tokens, below the 10 asked: lowered, never raised.
    expect(chat['max_tokens']).toBe(4);
  });

  it('reserves a legacy completion for its max_tokens, whatever max_completion_tokens (which its handler refuses) says', async () => {
    const { budgetService } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '1' }]);
    // "hi": 1 token, padded to ceil(1.1) + 16 = 18; 1,000 output tokens × 2.
    const body = { model: 'm', prompt: 'hi', max_tokens: 1_000, max_completion_tokens: 1 };
    await expect(budgetService.reserve({ requestId: 'a', tenant, body, endpoint: '/v1/completions' })).resolves.toMatchObject({ amountMicros: 18 + 2_000, capped: false });
  });

  it('reserves each generated image whole at its model’s maximum output, never as a legacy completion, and leaves the body alone', async () => {
    const models = [{ id: 'm', capabilities: ['images', 'completions'], pricing: { input: '1', output: '2' }, deployments: [{ id: 'd', provider: 'sim', model: 'u' }] }];
    const hard = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100' }], { defaultMaxOutputTokens: 4096, maxOutputTokens: { m: 1000 } }, { models }).budgetService;
    const body: Record<string, unknown> = { model: 'm', prompt: 'Write a story', n: 3 };
    // "Write a story": 3 tokens, padded to ceil(3.3) + 16 = 20; 3 images × 1 000 tokens × 2.
    await expect(hard.reserve({ requestId: 'a', tenant, body, endpoint: '/v1/images/generations' })).resolves.toMatchObject({ amountMicros: 20 + 3 * 1000 * 2, capped: false });
    // The Images API takes no token limit: nothing is added for the provider.
    expect(body).toEqual({ model: 'm', prompt: 'Write a story', n: 3 });
    // The same body through the legacy completions endpoint is a completion: 16 tokens an answer, told to the provider.
    const completion: Record<string, unknown> = { model: 'm', prompt: 'Write a story', n: 3 };
    await expect(hard.reserve({ requestId: 'b', tenant, body: completion, endpoint: '/v1/completions' })).resolves.toMatchObject({ amountMicros: 20 + 3 * 16 * 2 });
    // Never part of an image: a budget that cannot pay for all of it refuses, even asked to stream.
    const short = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.005' }], { maxOutputTokens: { m: 1000 }, minStreamOutputTokens: 1 }, { models }).budgetService;
    await expect(short.reserve({ requestId: 'c', tenant, body: { model: 'm', prompt: 'x', n: 3, stream: true }, endpoint: '/v1/images/generations' })).rejects.toMatchObject({ code: 'budget_exceeded' });
  });

  it('reserves each image asked for at its per-image price (DALL·E), and only image models’ prices for an image request', async () => {
    const deployments = (id: string) => [{ id, provider: 'sim', model: 'u' }];
    const models = [
      // 0.02 an image (DALL·E 2): 20,000 micro-units each.
      { id: 'dall-e-2', capabilities: ['images'], pricing: { input: '0', output: '0', perImage: '0.02' }, deployments: deployments('dalle') },
      // A dear chat model the request can never reach: the router sends image requests to image models only.
      { id: 'dear-chat', pricing: { input: '75', output: '75' }, deployments: deployments('chat') },
      { id: 'embed', capabilities: ['embeddings'], pricing: { input: '0.02' }, deployments: deployments('embed') },
    ];
    const routing = { aliases: { house: { models: ['dall-e-2', 'dear-chat'] } } };
    const { budgetService } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '1' }], { defaultMaxOutputTokens: 1000 }, { models, routing });
    const GENERATIONS = '/v1/images/generations';
    // Ten images: 10 × 20,000, and no token price.
    await expect(budgetService.reserve({ requestId: 'a', tenant, body: { model: 'dall-e-2', prompt: 'a cat', n: 10 }, endpoint: GENERATIONS })).resolves.toMatchObject({ amountMicros: 200_000 });
    // No model named (the SDK's default when the server picks), or an alias with a chat member: still the image model's price alone, not 75 per 1M × 1,000 output tokens an image.
    await expect(budgetService.reserve({ requestId: 'b', tenant, body: { prompt: 'a cat', n: 2 }, endpoint: GENERATIONS })).resolves.toMatchObject({ amountMicros: 40_000 });
    await expect(budgetService.reserve({ requestId: 'c', tenant, body: { model: 'house', prompt: 'a cat' }, endpoint: GENERATIONS })).resolves.toMatchObject({ amountMicros: 20_000 });
    // An embedding through `auto` is priced at the embedding models: "hi" is 1 token, padded to 18, at 0.02 per 1M.
    const embedding = await budgetService.reserve({ requestId: 'd', tenant, body: { model: 'auto', input: 'hi' }, endpoint: '/v1/embeddings' });
    expect(embedding?.amountMicros).toBe(1);
  });

  it('reserves an image edit as a generation, plus its uploaded images as prompt tokens at its models’ imageTokens, never their bytes as text', async () => {
    const deployments = [{ id: 'd', provider: 'sim', model: 'u' }];
    const models = [
      { id: 'm', capabilities: ['images'], imageTokens: { max: 765 }, pricing: { input: '1', output: '2' }, deployments },
      { id: 'plain', capabilities: ['images'], pricing: { input: '1', output: '2' }, deployments: [{ id: 'e', provider: 'sim', model: 'u' }] },
    ];
    const hard = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100' }], { maxOutputTokens: { m: 1000, plain: 1000 } }, { models }).budgetService;
    const png = (bytes: number) => upload(new Uint8Array(bytes).fill(0x89, 0, 1), 'a.png', 'image/png');
    const edit = (fields: Record<string, unknown>): Record<string, unknown> => markFormBody({ model: 'm', prompt: 'Write a story', ...fields });
    const EDITS = '/v1/images/edits';
    const body = edit({ image: [png(64), png(64)], mask: png(64), n: '3' });
    // "Write a story": 3 tokens, and 2 images × 765 (the mask is no input image): 1,533, padded to
    // ceil(1,686.3) + 16 = 1,703; 3 images × 1,000 tokens × 2.
    await expect(hard.reserve({ requestId: 'a', tenant, body, endpoint: EDITS })).resolves.toMatchObject({ amountMicros: 1_703 + 3 * 1000 * 2, capped: false });
    // The Images API takes no token limit: nothing is added for the provider.
    expect(body['max_tokens']).toBeUndefined();
    expect(Object.keys(body)).toEqual(['model', 'prompt', 'image', 'mask', 'n']);
    // The images' bytes are never text: 8 MiB of them count as 64 bytes do, through image[] as through image.
    await expect(hard.reserve({ requestId: 'b', tenant, body: edit({ 'image[]': [png(8 * 1024 * 1024), png(64)], n: '3' }), endpoint: EDITS })).resolves.toMatchObject({ amountMicros: 1_703 + 6_000 });
    // A model that declares no imageTokens: each image at the default 1,600. 3 + 1,600 = 1,603, padded to 1,780; one image.
    await expect(hard.reserve({ requestId: 'c', tenant, body: edit({ model: 'plain', image: png(64) }), endpoint: EDITS })).resolves.toMatchObject({ amountMicros: 1_780 + 2_000 });
    // A form without images (refused with a 400) reserves its prompt alone: 20.
    await expect(hard.reserve({ requestId: 'd', tenant, body: edit({}), endpoint: EDITS })).resolves.toMatchObject({ amountMicros: 20 + 2_000 });
    // Never part of an image: a budget that cannot pay for all of it refuses.
    const short = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.005' }], { maxOutputTokens: { m: 1000 }, minStreamOutputTokens: 1 }, { models }).budgetService;
    await expect(short.reserve({ requestId: 'e', tenant, body: edit({ image: png(64), n: '3', stream: 'true' }), endpoint: EDITS })).rejects.toMatchObject({ code: 'budget_exceeded' });
  });

  describe('audio', () => {
    const TRANSCRIPTIONS = '/v1/audio/transcriptions';
    const SPEECH = '/v1/audio/speech';
    const deployments = (id: string) => [{ id, provider: 'sim', model: id }];
    const models = [
      // Whisper: 0.006 a minute, 100 micro-units a second; no tokens billed.
      { id: 'whisper', capabilities: ['transcription'], pricing: { input: '0', output: '0', perAudioMinute: '0.006' }, deployments: deployments('whisper-d') },
      // gpt-4o-transcribe: 6 micro-units an input (audio) token, 10 an output token.
      { id: 'transcribe', capabilities: ['transcription'], pricing: { input: '6', output: '10' }, deployments: deployments('transcribe-d') },
      // tts-1: 15 per 1M characters, 15 micro-units a character.
      { id: 'tts', capabilities: ['speech'], pricing: { input: '0', output: '0', perMillionCharacters: '15' }, deployments: deployments('tts-d') },
      // gpt-4o-mini-tts: text in at 1, audio out at 2 a token.
      { id: 'mini-tts', capabilities: ['speech'], pricing: { input: '1', output: '2', perRequest: '0.000005' }, deployments: deployments('mini-tts-d') },
      { id: 'chat', pricing: { input: '1', output: '50' }, deployments: deployments('chat-d') },
    ];
    const extra = { maxOutputTokens: { transcribe: 2_000, 'mini-tts': 100 }, audio: { maxSeconds: 600, tokensPerSecond: 25 } };
    const audioService = (amount = '100', more: Record<string, unknown> = {}, routing?: Record<string, unknown>) =>
      service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount }], { ...extra, ...more }, { models, ...(routing ? { routing } : {}) }).budgetService;
    const form = (model: string, file: Uint8Array, fields: Record<string, unknown> = {}) => ({ model, file: upload(file), ...fields });

    it('reserves an uploaded WAV file at its length and any other file at budgets.audio.maxSeconds, whole, and leaves the form alone', async () => {
      const budgets = audioService();
      for (const endpoint of [TRANSCRIPTIONS, '/v1/audio/translations']) {
        const body = form('whisper', wavFile(3_000), { response_format: 'json' });
        // 3 s at 100 micro-units a second; no token is billed by Whisper.
        await expect(budgets.reserve({ requestId: 'wav', tenant, body, endpoint })).resolves.toMatchObject({ amountMicros: 300, capped: false });
        // A hard budget applies: still nothing is added to the form (the Audio API has no max_tokens).
        expect(Object.keys(body)).toEqual(['model', 'file', 'response_format']);
      }
      // 2.47 s is billed as 3 (OpenAI reports whole seconds, rounded up).
      await expect(budgets.reserve({ requestId: 'short', tenant, body: form('whisper', wavFile(2_470)), endpoint: TRANSCRIPTIONS })).resolves.toMatchObject({ amountMicros: 300 });
      // An MP3's length is not read: budgets.audio.maxSeconds (600 s) at 100 a second.
      await expect(budgets.reserve({ requestId: 'mp3', tenant, body: form('whisper', mp3File()), endpoint: TRANSCRIPTIONS })).resolves.toMatchObject({ amountMicros: 60_000 });
    });

    it('reserves a token-billed transcription’s audio at tokensPerSecond, its prompt hint padded, and its model’s maximum output', async () => {
      const budgets = audioService();
      // 4 s × 25 = 100 audio tokens + (0 text tokens, padded: 16) at 6; 2 000 output tokens at 10.
      await expect(budgets.reserve({ requestId: 'a', tenant, body: form('transcribe', wavFile(4_000)), endpoint: TRANSCRIPTIONS })).resolves.toMatchObject({ amountMicros: 116 * 6 + 2_000 * 10 });
      const hint = 'Zyxel routers, Quetzalcoatl, Ngũgĩ wa Thiong’o.';
      const padded = Math.ceil(countTextTokens(hint) * 1.1) + 16;
      await expect(budgets.reserve({ requestId: 'b', tenant, body: form('transcribe', wavFile(4_000), { prompt: hint }), endpoint: TRANSCRIPTIONS })).resolves.toMatchObject({
        amountMicros: (100 + padded) * 6 + 2_000 * 10,
      });
    });

    it('never reads a transcription’s prompt as legacy prompts: one call, one fee, its model’s output, not 16 an answer', async () => {
      const perCall = [{ id: 'call', capabilities: ['transcription', 'completions'], pricing: { input: '1', output: '2', perRequest: '0.000005' }, deployments: deployments('call-d') }];
      const budgets = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100' }], { maxOutputTokens: { call: 100 } }, { models: perCall }).budgetService;
      // A repeated `prompt` field arrives as a list: three one-token hints, padded once, ceil(3.3) + 16 = 20.
      const body = form('call', wavFile(4_000), { prompt: ['a', 'b', 'c'] });
      await expect(budgets.reserve({ requestId: 'a', tenant, body, endpoint: TRANSCRIPTIONS })).resolves.toMatchObject({ amountMicros: 100 + 20 + 100 * 2 + 5 });
      expect(body).not.toHaveProperty('max_tokens');
      // The same prompts as a legacy completion: three calls of 16 tokens each, three fees.
      await expect(budgets.reserve({ requestId: 'b', tenant, body: { model: 'call', prompt: ['a', 'b', 'c'] }, endpoint: '/v1/completions' })).resolves.toMatchObject({ amountMicros: 52 + 3 * 16 * 2 + 15 });
    });

    it('never counts the uploaded file’s bytes as text', async () => {
      const budgets = audioService();
      const big = await budgets.reserve({ requestId: 'big', tenant, body: form('transcribe', mp3File(2 * 1024 * 1024)), endpoint: TRANSCRIPTIONS });
      const tiny = await budgets.reserve({ requestId: 'tiny', tenant, body: form('transcribe', mp3File(16)), endpoint: TRANSCRIPTIONS });
      // Both at 600 s: 15 000 audio tokens + 16, at 6; 2 000 output tokens at 10.
      expect(big?.amountMicros).toBe((15_000 + 16) * 6 + 2_000 * 10);
      expect(tiny?.amountMicros).toBe(big?.amountMicros);
    });

    it('prices a transcription at the dearest perAudioMinute of the deployments it may reach, among the models that transcribe', async () => {
      const dear = [
        { id: 'whisper', capabilities: ['transcription'], pricing: { input: '0', output: '0', perAudioMinute: '0.006', deployments: { 'whisper-dear': { perAudioMinute: '0.012' } } }, deployments: [...deployments('whisper-d'), ...deployments('whisper-dear')] },
        { id: 'chat', pricing: { input: '1', output: '50', perAudioMinute: '1' }, deployments: deployments('chat-d') },
      ];
      const routing = { aliases: { listen: { models: ['chat', 'whisper'] } } };
      const budgets = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100' }], { audio: { maxSeconds: 600, tokensPerSecond: 25 } }, { models: dear, routing }).budgetService;
      // 10 s at 0.012 a minute: 2 000 micro-units. The chat model cannot serve it: never its prices.
      await expect(budgets.reserve({ requestId: 'a', tenant, body: form('whisper', wavFile(10_000)), endpoint: TRANSCRIPTIONS })).resolves.toMatchObject({ amountMicros: 2_000 });
      await expect(budgets.reserve({ requestId: 'b', tenant, body: form('listen', wavFile(10_000)), endpoint: TRANSCRIPTIONS })).resolves.toMatchObject({ amountMicros: 2_000 });
      await expect(budgets.reserve({ requestId: 'c', tenant, body: form('auto', wavFile(10_000)), endpoint: TRANSCRIPTIONS })).resolves.toMatchObject({ amountMicros: 2_000 });
    });

    it('refuses (402 budget_exceeded) a transcription a hard budget cannot pay for, whole, while a shorter WAV file passes', async () => {
      // 500 micro-units left: 5 s of Whisper.
      const budgets = audioService('0.0005');
      const refused = await budgets.reserve({ requestId: 'long', tenant, body: form('whisper', wavFile(6_000)), endpoint: TRANSCRIPTIONS }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(GatewayError);
      expect(refused).toMatchObject({ kind: 'budget_exceeded', code: 'budget_exceeded' });
      expect(toOpenAIError(refused as GatewayError)).toMatchObject({ status: 402, body: { error: { code: 'budget_exceeded' } } });
      // A file whose length is not read is reserved at 600 s: refused as well.
      await expect(budgets.reserve({ requestId: 'mp3', tenant, body: form('whisper', mp3File()), endpoint: TRANSCRIPTIONS })).rejects.toMatchObject({ code: 'budget_exceeded' });
      await expect(budgets.reserve({ requestId: 'short', tenant, body: form('whisper', wavFile(4_000)), endpoint: TRANSCRIPTIONS })).resolves.toMatchObject({ amountMicros: 400, capped: false });
      // Never partly reserved, even asked to stream with a minimum for streams that would fit.
      const tight = audioService('0.02', { minStreamOutputTokens: 1 });
      await expect(tight.reserve({ requestId: 's', tenant, body: form('transcribe', wavFile(4_000), { stream: true }), endpoint: TRANSCRIPTIONS })).rejects.toMatchObject({ code: 'budget_exceeded' });
    });

    it('reserves a speech of N characters at perMillionCharacters exactly, and a token-billed one by its text and maximum output', async () => {
      const budgets = audioService();
      const input = 'The quick brown 🦊 jumps over the lazy dog. '.repeat(10);
      const characters = [...input].length;
      expect(characters).toBeLessThan(input.length);
      const body = { model: 'tts', input, voice: 'alloy', response_format: 'mp3' };
      // 15 micro-units a character; tts-1 bills no token (its padded text prices at 0).
      await expect(budgets.reserve({ requestId: 'tts', tenant, body, endpoint: SPEECH })).resolves.toMatchObject({ amountMicros: characters * 15, capped: false });
      expect(body).toEqual({ model: 'tts', input, voice: 'alloy', response_format: 'mp3' });
      // Input and instructions padded at 1, 100 output tokens at 2, one fee of 5; the input is no embedding's.
      const text = countTextTokens(input) + countTextTokens('Whisper it.');
      const mini: Record<string, unknown> = { model: 'mini-tts', input, voice: 'alloy', instructions: 'Whisper it.' };
      await expect(budgets.reserve({ requestId: 'mini', tenant, body: mini, endpoint: SPEECH })).resolves.toMatchObject({ amountMicros: Math.ceil(text * 1.1) + 16 + 100 * 2 + 5 });
      expect(mini).not.toHaveProperty('max_tokens');
      // What is left after those cannot pay for another, whole: refused.
      const spent = audioService('0.001');
      await expect(spent.reserve({ requestId: 'one', tenant, body: { model: 'tts', input: 'x'.repeat(60) }, endpoint: SPEECH })).resolves.toMatchObject({ amountMicros: 900 });
      await expect(spent.reserve({ requestId: 'two', tenant, body: { model: 'tts', input: 'x'.repeat(7) }, endpoint: SPEECH })).rejects.toMatchObject({ code: 'budget_exceeded' });
      await expect(spent.reserve({ requestId: 'three', tenant, body: { model: 'tts', input: 'x'.repeat(6) }, endpoint: SPEECH })).resolves.toMatchObject({ amountMicros: 90 });
    });

    it('prices a speech at the dearest perMillionCharacters of the deployments it may reach, among the models that speak', async () => {
      const dear = [
        { id: 'tts', capabilities: ['speech'], pricing: { input: '0', output: '0', perMillionCharacters: '15', deployments: { 'tts-hd': { perMillionCharacters: '30' } } }, deployments: [...deployments('tts-d'), ...deployments('tts-hd')] },
        { id: 'chat', pricing: { input: '0', output: '0', perMillionCharacters: '1000' }, deployments: deployments('chat-d') },
      ];
      const budgets = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100' }], {}, { models: dear, routing: { aliases: { voice: { models: ['chat', 'tts'] } } } }).budgetService;
      for (const model of ['tts', 'voice', 'auto']) {
        await expect(budgets.reserve({ requestId: model, tenant, body: { model, input: 'x'.repeat(100) }, endpoint: SPEECH })).resolves.toMatchObject({ amountMicros: 3_000 });
      }
    });
  });

  it('leaves a limit the request may not ask for to the handler’s 400, and holds an amount no ledger could count at its bound', async () => {
    const { budgetService } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100' }], { defaultMaxOutputTokens: 300 });
    const body: Record<string, unknown> = { model: 'm', max_tokens: 1e15, n: 1e9, messages: [{ role: 'user', content: 'hi' }] };
    // Priced as a request that sets neither (one choice of 300 tokens); the handler then refuses it.
    await expect(budgetService.reserve({ requestId: 'a', tenant, body })).resolves.toMatchObject({ amountMicros: 22 + 300 * 2 });
    expect(body['max_tokens']).toBe(1e15);
    // A price no budget could hold: refused as over budget, not as a ledger failure.
    const dear = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '1000000' }], {}, { models: [{ id: 'm', pricing: { input: '1', output: '9000000000' }, deployments: [{ id: 'd', provider: 'sim', model: 'u' }] }] }).budgetService;
    const refused = await dear.reserve({ requestId: 'b', tenant, body: { model: 'm', max_tokens: 4_000_000_000, n: 128, messages: [] } }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ kind: 'budget_exceeded' });
  });

  it('charges a request to the period it arrived in, though its reservation is made after the period ended', async () => {
    const { budgetService } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '100' }]);
    const arrived = Date.parse('2025-06-14T23:59:59.995Z');
    // The service's clock is not asked: the arrival decides the period (the reservation itself may come after midnight).
    const r = await budgetService.reserve({ requestId: 'a', tenant, body: { model: 'm', max_tokens: 1, messages: [] }, receivedAtMs: arrived });
    expect(r?.accounts.map((a) => a.line.account)).toEqual([expect.stringContaining('2025-06-14')]);
    const later = await budgetService.reserve({ requestId: 'b', tenant, body: { model: 'm', max_tokens: 1, messages: [] }, receivedAtMs: arrived + 10 });
    expect(later?.accounts.map((a) => a.line.account)).toEqual([expect.stringContaining('2025-06-15')]);
  });

  describe('a reservation outlives its ttl only while its request runs', () => {
    const TTL = 3_000;

    /** A clock and a `Repeat` the test drives: `tick` advances time and runs what is due. */
    function driven() {
      const clock = { now: NOW };
      const tasks = new Map<() => Promise<void>, { everyMs: number; nextAt: number }>();
      const repeat: Repeat = (task, everyMs) => {
        tasks.set(task, { everyMs, nextAt: clock.now + everyMs });
        return () => void tasks.delete(task);
      };
      async function advance(ms: number): Promise<void> {
        const until = clock.now + ms;
        for (;;) {
          const due = [...tasks].filter(([, t]) => t.nextAt <= until).sort((a, b) => a[1].nextAt - b[1].nextAt)[0];
          if (!due) break;
          clock.now = due[1].nextAt;
          due[1].nextAt += due[1].everyMs;
          await due[0]();
        }
        clock.now = until;
      }
      return { clock, repeat, advance, scheduled: () => tasks.size };
    }

    function renewing() {
      const time = driven();
      const config = ingressTestConfig({ budgets: { reservationTtlMs: TTL, list: [{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.0001' }] } });
      const ledger = new MemoryBudgetLedger(() => time.clock.now);
      const events: BudgetEventPublisher = { publish: async () => undefined, close: async () => undefined };
      const budgetService = new BudgetService(config, PriceBook.fromModels(config.models), ledger, events, createLogger('test', 'silent'), () => time.clock.now, time.repeat);
      return { ...time, ledger, budgetService };
    }

    const stream = () => ({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });

    it('keeps a stream longer than the ttl holding its room, so a concurrent request is still refused', async () => {
      const { budgetService, advance, scheduled } = renewing();
      // The stream reserves all 100 micro-units the budget has.
      const long = await budgetService.reserve({ requestId: 'long', tenant, body: stream() });
      expect(long?.amountMicros).toBe(100);
      // Asked at 0.5 s, 2.5 s, 4 s and 9 s: still running at 3 × the ttl, its room is never swept back to others.
      for (const step of [500, 2_000, 1_500, 5_000]) {
        await advance(step);
        await expect(budgetService.reserve({ requestId: `late-${step}`, tenant, body: stream() })).rejects.toMatchObject({ kind: 'budget_exceeded' });
      }
      await long?.settle('0.00003');
      expect(scheduled()).toBe(0);
      const [status] = await budgetService.status();
      expect(status).toMatchObject({ spent: '0.00003', reserved: '0' });
      await expect(budgetService.reserve({ requestId: 'next', tenant, body: stream() })).resolves.toMatchObject({ amountMicros: 70 });
    });

    it('lets the reservation of a holder that stopped renewing (a crashed process) expire after the ttl', async () => {
      const { budgetService, ledger, advance } = renewing();
      const [status] = await budgetService.status();
      if (!status) throw new Error('the budget applies to the tenant');
      // Reserved by another process that then died: nobody renews it.
      expect(await ledger.reserve({ id: 'dead', lines: [status.account.line], worstMicros: 100, floorMicros: 100, ttlMs: TTL })).toMatchObject({ ok: true });
      await expect(budgetService.reserve({ requestId: 'a', tenant, body: stream() })).rejects.toMatchObject({ kind: 'budget_exceeded' });
      await advance(TTL + 1);
      await expect(budgetService.reserve({ requestId: 'b', tenant, body: stream() })).resolves.toMatchObject({ amountMicros: 100 });
      // A renewal after the expiry never revives a reservation.
      expect(await ledger.renew('dead', TTL)).toBe(false);
    });

    it('stops renewing when the request is released, and when the service closes', async () => {
      const { budgetService, advance, scheduled } = renewing();
      const first = await budgetService.reserve({ requestId: 'a', tenant, body: { model: 'm', max_tokens: 1, messages: [] } });
      await budgetService.reserve({ requestId: 'b', tenant, body: { model: 'm', max_tokens: 1, messages: [] } });
      expect(scheduled()).toBe(2);
      await first?.release();
      expect(scheduled()).toBe(1);
      await advance(TTL * 2);
      const [status] = await budgetService.status();
      expect(status?.reserved).toBe('0.000018');
      await budgetService.close();
      expect(scheduled()).toBe(0);
    });
  });

  describe('before the budgets created through the admin API have loaded (their store was away at start)', () => {
    /** A store that cannot be reached: nothing it holds is known here. */
    function unreachable(): BudgetStore {
      const down = (): Promise<never> => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379'));
      return { ready: async () => false, list: down, update: down, version: down, publish: down, onChange: () => undefined, close: async () => undefined };
    }

    function unloaded(failMode: 'open' | 'closed') {
      const configured = [{ id: 'soft-org', scope: { org: 'acme' }, period: 'daily', amount: '1', enforcement: 'soft' }];
      const config = ingressTestConfig({ budgets: { list: configured, failMode } });
      const lines: string[] = [];
      const logger = createLogger('test', 'warn', { write: (line: string) => void lines.push(line) });
      const catalog = new BudgetCatalog(config.budgets.list, unreachable());
      const events: BudgetEventPublisher = { publish: async () => undefined, close: async () => undefined };
      const budgetService = new BudgetService(config, PriceBook.fromModels(config.models), new MemoryBudgetLedger(() => NOW), events, logger, () => NOW, undefined, catalog);
      return { budgetService, catalog, lines };
    }
    const body = { model: 'm', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };

    it('refuses every request with 503 budget_store_unavailable when budgets.failMode is closed', async () => {
      const { budgetService, catalog } = unloaded('closed');
      expect(await catalog.start(0)).toBe(false);
      // Any budget created through the API may apply, to any tenant: none is admitted unchecked.
      for (const who of [tenant, { ...tenant, orgId: 'initech' }]) {
        await expect(budgetService.reserve({ requestId: 'a', tenant: who, body: { ...body } })).rejects.toMatchObject({ kind: 'unavailable', code: 'budget_store_unavailable' });
      }
      await catalog.close();
    });

    it('admits under the configured budgets alone when budgets.failMode is open, and says so once', async () => {
      const { budgetService, catalog, lines } = unloaded('open');
      await catalog.start(0);
      const held = await budgetService.reserve({ requestId: 'a', tenant, body: { ...body } });
      expect(held?.accounts.map((a) => a.budget.id)).toEqual(['soft-org']);
      await expect(budgetService.reserve({ requestId: 'b', tenant: { ...tenant, orgId: 'initech' }, body: { ...body } })).resolves.toBeUndefined();
      expect(lines.filter((l) => l.includes('have not loaded yet'))).toHaveLength(1);
      await catalog.close();
    });

    it('enforces as usual once they have loaded', async () => {
      const store = new MemoryBudgetStore();
      const catalog = new BudgetCatalog([], store);
      const config = ingressTestConfig({ budgets: { failMode: 'closed' } });
      const events: BudgetEventPublisher = { publish: async () => undefined, close: async () => undefined };
      const budgetService = new BudgetService(config, PriceBook.fromModels(config.models), new MemoryBudgetLedger(() => NOW), events, createLogger('test', 'silent'), () => NOW, undefined, catalog);
      expect(catalog.loaded).toBe(false);
      await catalog.start();
      await expect(budgetService.reserve({ requestId: 'a', tenant, body: { ...body } })).resolves.toBeUndefined();
    });
  });

  it('announces the thresholds a hard budget\'s refusal implies, its 100 % included, once per period', async () => {
    // The review's case: each request reserves 22 + 4,096 × 2 = 8,214 micro-units and costs 150, so
    // after 12 of them (18 % spent) 8,200 are left and every further request is refused.
    const { budgetService, published } = service([{ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '0.01', alertThresholds: [50, 80, 90, 100, 120] }], { defaultMaxOutputTokens: 4096 });
    const body = () => ({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      const r = await budgetService.reserve({ requestId: `r${i}`, tenant, body: body() }).catch((e: unknown) => e);
      if (r instanceof GatewayError) refused++;
      else await (r as Awaited<ReturnType<typeof budgetService.reserve>>)?.settle('0.00015');
    }
    await budgetService.idle();
    expect(refused).toBe(188);
    const [status] = await budgetService.status();
    expect(status?.spent).toBe('0.0018');
    // Every threshold up to 100 %, each once, with the spend as it stood; 120 % needs real spend.
    expect(published.map((e) => [e.thresholdPercent, e.spent, e.eventId])).toEqual([
      [50, '0.0018', 'b/2025-06-14/50'],
      [80, '0.0018', 'b/2025-06-14/80'],
      [90, '0.0018', 'b/2025-06-14/90'],
      [100, '0.0018', 'b/2025-06-14/100'],
    ]);
  });
});
