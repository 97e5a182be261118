import type { FastifyRequest } from 'fastify';
import { Registry } from 'prom-client';
import { cacheSchema } from '@openrouter/config';
import { routerv1, type chatv1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import type { UsageTrack } from '../usage/usage-recorder';
import { ChatAnswerStoring } from './chat-answer-storing';
import { ResponseCache, type CachePlan } from './response-cache';
import { MemoryResponseCacheStore } from './response-cache.store';

const context = routerv1.RequestContext.fromPartial({ requestId: 'r', orgId: 'acme', projectId: 'search', keyId: 'k1' });
const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello?' }] };
const usage: chatv1.Usage = { promptTokens: 4, completionTokens: 2, totalTokens: 6, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };
const decision = routerv1.RouteDecision.fromPartial({ model: 'gpt-4o-mini', provider: 'sim', deployment: 'sim-mini', upstreamModel: 'up', attempts: 1 });
const track = { tokens: () => usage, cost: () => ({ amount: '0.0001', currency: 'USD', priceVersion: 'v1' }) } as unknown as UsageTrack;
const req = { id: 'r1' } as FastifyRequest;
const completion = (finishReason: string): chatv1.ChatCompletion => ({ id: 'c1', created: 1, model: 'up', choices: [{ index: 0, message: { role: 'assistant', content: 'Hi.', toolCalls: [], extraJson: '' }, finishReason, logprobsJson: '' }], usage });
const chunk = (delta: Partial<chatv1.Delta>, finishReason?: string): chatv1.ChatChunk => ({ id: 'c1', created: 1, model: 'up', choices: [{ index: 0, delta: { toolCalls: [], extraJson: '', ...delta }, finishReason, logprobsJson: '' }] });
/** Until the background write has been handed to the store. */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(header: string, endpoint: '/v1/responses' | '/v1/messages' = '/v1/responses'): { cache: ResponseCache; plan: CachePlan; registry: Registry } {
  const registry = new Registry();
  const cache = new ResponseCache(cacheSchema.parse({ enabled: true }), 'secret', new MemoryResponseCacheStore(10), createLogger('test', 'silent'), registry);
  return { cache, plan: cache.plan(endpoint, context, body, { 'x-openrouter-cache': header }), registry };
}

async function skippedCount(registry: Registry): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'openrouter_cache_requests_total');
  return metric?.values.find((v) => v.labels['result'] === 'skipped')?.value ?? 0;
}

describe('ChatAnswerStoring', () => {
  it('stores a whole answer that finished, and skips one that did not', async () => {
    const { cache, plan, registry } = setup('use');
    new ChatAnswerStoring(cache, plan, req, decision, track, false).whole(completion('content_filter'));
    await settled();
    await expect(cache.lookup(plan, 'r2')).resolves.toBeUndefined();
    expect(await skippedCount(registry)).toBe(1);
    new ChatAnswerStoring(cache, plan, req, decision, track, false).whole(completion('stop'));
    await settled();
    const hit = await cache.lookup(plan, 'r3');
    expect(hit).toMatchObject({ model: 'gpt-4o-mini', provider: 'sim', cost: { amount: '0.0001' } });
    expect(hit?.completion?.choices[0]?.message?.content).toBe('Hi.');
  });

  it('stores a stream gathered from what it observed only once it completed', async () => {
    const { cache, plan } = setup('refresh', '/v1/messages');
    const cut = new ChatAnswerStoring(cache, plan, req, decision, track, true);
    for (const c of [chunk({ role: 'assistant', content: 'Hi' }), chunk({ content: '.' }, 'stop')]) cut.observe?.(c);
    cut.streamEnded(false);
    await settled();
    const use = cache.plan('/v1/messages', context, body, { 'x-openrouter-cache': 'use' });
    await expect(cache.lookup(use, 'r2')).resolves.toBeUndefined();

    const completed = new ChatAnswerStoring(cache, plan, req, decision, track, true);
    for (const c of [chunk({ role: 'assistant', content: 'Hi' }), chunk({ content: '.' }, 'stop')]) completed.observe?.(c);
    completed.streamEnded(true);
    await settled();
    expect((await cache.lookup(use, 'r3'))?.completion?.choices[0]?.message?.content).toBe('Hi.');
  });

  it('stores nothing for a bypass, a budget-capped answer or an experiment\'s, and gathers no stream for them', async () => {
    const bypass = setup('off');
    const capped = setup('use');
    const experiment = setup('use');
    const cases = [
      { ...bypass, storing: new ChatAnswerStoring(bypass.cache, bypass.plan, req, decision, track, true) },
      { ...capped, storing: new ChatAnswerStoring(capped.cache, capped.plan, { id: 'r1', budget: { capped: true } } as unknown as FastifyRequest, decision, track, true) },
      { ...experiment, storing: new ChatAnswerStoring(experiment.cache, experiment.plan, req, { ...decision, experiment: 'trial', experimentArm: 'a' }, track, true) },
    ];
    for (const { storing } of cases) {
      expect(storing.observe).toBeUndefined();
      storing.whole(completion('stop'));
    }
    await settled();
    for (const { cache } of [capped, experiment]) await expect(cache.lookup(cache.plan('/v1/responses', context, body, { 'x-openrouter-cache': 'use' }), 'r2')).resolves.toBeUndefined();
    expect(await skippedCount(bypass.registry)).toBe(0);
    expect(await skippedCount(capped.registry)).toBe(1);
  });

  it('counts only the first end it is told of: a stream stored stays stored when a later failure ends it again (a socket\'s request)', async () => {
    const { cache, plan, registry } = setup('use');
    const storing = new ChatAnswerStoring(cache, plan, { id: 'sock:q1', budget: undefined }, decision, track, true);
    for (const c of [chunk({ role: 'assistant', content: 'Hi' }), chunk({ content: '.' }, 'stop')]) storing.observe?.(c);
    storing.streamEnded(true);
    storing.streamEnded(false);
    await settled();
    expect((await cache.lookup(cache.plan('/v1/responses', context, body, { 'x-openrouter-cache': 'use' }), 'r2'))?.completion?.choices[0]?.message?.content).toBe('Hi.');
    expect(await skippedCount(registry)).toBe(0);
  });

  it('does nothing without a cache', () => {
    const storing = new ChatAnswerStoring(undefined, undefined, req, decision, track, true);
    expect(storing.observe).toBeUndefined();
    expect(() => storing.whole(completion('stop'))).not.toThrow();
    expect(() => storing.streamEnded(true)).not.toThrow();
  });
});
