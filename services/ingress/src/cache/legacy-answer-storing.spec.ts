import { Registry } from 'prom-client';
import { cacheSchema } from '@openrouter/config';
import { routerv1, type chatv1 } from '@openrouter/contracts';
import { createLogger } from '@openrouter/observability';
import type { UsageTrack } from '../usage/usage-recorder';
import { LegacyAnswerStoring } from './legacy-answer-storing';
import { ResponseCache, type CachePlan } from './response-cache';
import { MemoryResponseCacheStore } from './response-cache.store';

const context = routerv1.RequestContext.fromPartial({ requestId: 'r', orgId: 'acme', projectId: 'search', keyId: 'k1' });
const body = { model: 'gpt-4o-mini', prompt: ['One?', 'Two?'], n: 2 };
const usage: chatv1.Usage = { promptTokens: 8, completionTokens: 6, totalTokens: 14, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };
const first = routerv1.RouteDecision.fromPartial({ model: 'gpt-4o-mini', provider: 'sim', deployment: 'sim-mini', upstreamModel: 'up', attempts: 1 });
const second = routerv1.RouteDecision.fromPartial({ model: 'gpt-4o-mini', provider: 'other', deployment: 'other-mini', upstreamModel: 'up2', attempts: 1 });
const track = { tokens: () => usage, cost: () => ({ amount: '0.0002', currency: 'USD', priceVersion: 'v1' }) } as unknown as UsageTrack;
const req = { id: 'r1' };
/** Prompt `p`'s whole answer: two choices, each finished for `finishReason`. */
const completion = (p: number, finishReason = 'stop'): chatv1.ChatCompletion => ({
  id: `c${p}`,
  created: 1 + p,
  model: 'up',
  choices: [0, 1].map((index) => ({ index, message: { role: 'assistant', content: `p${p}c${index}`, toolCalls: [], extraJson: '' }, finishReason, logprobsJson: '' })),
});
const chunk = (p: number, index: number, delta: Partial<chatv1.Delta>, finishReason?: string): chatv1.ChatChunk => ({
  id: `c${p}`,
  created: 1 + p,
  model: 'up',
  choices: [{ index, delta: { toolCalls: [], extraJson: '', ...delta }, finishReason, logprobsJson: '' }],
});
/** Until the background write has been handed to the store. */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(header = 'use'): { cache: ResponseCache; plan: CachePlan; registry: Registry; lookup(): Promise<chatv1.ChatCompletion | undefined> } {
  const registry = new Registry();
  // Lookups one after the other, none settled as a route would: none waits for another.
  const cache = new ResponseCache(cacheSchema.parse({ enabled: true, coalesceWaitMs: 0 }), 'secret', new MemoryResponseCacheStore(10), createLogger('test', 'silent'), registry);
  const plan = cache.plan('/v1/completions', context, body, { 'x-openrouter-cache': header });
  const lookup = async (): Promise<chatv1.ChatCompletion | undefined> => (await cache.lookup(cache.plan('/v1/completions', context, body, { 'x-openrouter-cache': 'use' }), 'r2'))?.completion;
  return { cache, plan, registry, lookup };
}

async function counted(registry: Registry, result: string): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'openrouter_cache_requests_total');
  return metric?.values.find((v) => v.labels['result'] === result)?.value ?? 0;
}

describe('LegacyAnswerStoring', () => {
  it('stores every prompt\'s whole answer as one entry, its choices numbered across prompts, under the first prompt\'s route', async () => {
    const { cache, plan, lookup } = setup();
    const storing = new LegacyAnswerStoring(cache, plan, req, track, false, 2);
    storing.routed(first);
    storing.routed(second);
    storing.whole([completion(0), completion(1)]);
    await settled();
    const stored = await lookup();
    expect(stored?.choices.map((c) => [c.index, c.message?.content])).toEqual([
      [0, 'p0c0'],
      [1, 'p0c1'],
      [2, 'p1c0'],
      [3, 'p1c1'],
    ]);
    expect(stored?.usage).toEqual(usage);
    const hit = await cache.lookup(plan, 'r3');
    expect(hit).toMatchObject({ model: 'gpt-4o-mini', provider: 'sim', deployment: 'sim-mini', cost: { amount: '0.0002' } });
  });

  it('stores nothing when any prompt\'s answer may not be stored: a choice filtered, or a prompt an experiment\'s arm answered', async () => {
    const filtered = setup();
    const storing = new LegacyAnswerStoring(filtered.cache, filtered.plan, req, track, false, 2);
    storing.routed(first);
    storing.routed(first);
    storing.whole([completion(0), completion(1, 'content_filter')]);
    await settled();
    await expect(filtered.lookup()).resolves.toBeUndefined();
    expect(await counted(filtered.registry, 'skipped')).toBe(1);

    const experiment = setup();
    const arm = new LegacyAnswerStoring(experiment.cache, experiment.plan, req, track, false, 2);
    arm.routed(first);
    arm.routed({ ...second, experiment: 'trial', experimentArm: 'b' });
    arm.whole([completion(0), completion(1)]);
    await settled();
    await expect(experiment.lookup()).resolves.toBeUndefined();
    expect(await counted(experiment.registry, 'skipped')).toBe(1);
  });

  it('stores a stream gathered over every prompt once it completed, and nothing of one that did not', async () => {
    const { cache, plan, lookup } = setup('refresh');
    const play = (storing: LegacyAnswerStoring): void => {
      for (const p of [0, 1]) {
        storing.routed(p === 0 ? first : second);
        for (const index of [0, 1]) {
          storing.observe(p, chunk(p, index, { role: 'assistant', content: `p${p}` }));
          storing.observe(p, chunk(p, index, { content: `c${index}` }, 'stop'));
        }
      }
    };
    const cut = new LegacyAnswerStoring(cache, plan, req, track, true, 2);
    play(cut);
    cut.streamEnded(false);
    await settled();
    await expect(lookup()).resolves.toBeUndefined();

    const completed = new LegacyAnswerStoring(cache, plan, req, track, true, 2);
    play(completed);
    completed.streamEnded(true);
    // A second end told changes nothing.
    completed.streamEnded(false);
    await settled();
    const stored = await lookup();
    expect(stored?.choices.map((c) => [c.index, c.message?.content, c.finishReason])).toEqual([
      [0, 'p0c0', 'stop'],
      [1, 'p0c1', 'stop'],
      [2, 'p1c0', 'stop'],
      [3, 'p1c1', 'stop'],
    ]);
    expect(stored?.id).toBe('c0');
  });

  it('stores nothing for a bypass or a budget-capped answer, and counts only the latter as skipped', async () => {
    const bypass = setup('off');
    const capped = setup('use');
    for (const { cache, plan, registry } of [bypass, capped]) {
      const storing = new LegacyAnswerStoring(cache, plan, { id: 'r1', budget: { capped: plan.mode === 'use' } }, track, false, 2);
      storing.routed(first);
      storing.whole([completion(0), completion(1)]);
      await settled();
      expect(await counted(registry, 'skipped')).toBe(plan.mode === 'use' ? 1 : 0);
    }
    await expect(capped.lookup()).resolves.toBeUndefined();
  });

  it('does nothing without a cache', () => {
    const storing = new LegacyAnswerStoring(undefined, undefined, req, track, true, 1);
    storing.routed(first);
    expect(() => storing.observe(0, chunk(0, 0, { content: 'x' }, 'stop'))).not.toThrow();
    expect(() => storing.streamEnded(true)).not.toThrow();
  });
});
