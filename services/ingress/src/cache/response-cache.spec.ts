import { Registry } from 'prom-client';
import { cacheSchema } from '@openrouter/config';
import { routerv1, type chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { MemoryAccessRepository } from '../access/access.repository';
import { AccessService } from '../access/access.service';
import { hashApiKey } from '../access/api-key';
import { MemoryCounterStore } from '../access/counter.store';
import type { ApiKeyRecord } from '../access/key-record';
import { openText } from '../access/sealed-text';
import { ingressTestConfig } from '../test-config.testing';
import { lifecycleStarts, ResponseCache, type CachedOrigin } from './response-cache';
import type { Claimed, FleetFlights, Followed } from './fleet-flights';
import { MemoryResponseCacheStore, type ResponseCacheStore } from './response-cache.store';

const context = routerv1.RequestContext.fromPartial({ requestId: 'r', orgId: 'acme', teamId: 't', projectId: 'search', keyId: 'k1' });
const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'What is the secret launch code?' }] };
const origin: CachedOrigin = { model: 'gpt-4o-mini', provider: 'sim', deployment: 'sim-mini', upstreamModel: 'up', cost: { amount: '0.000123', currency: 'USD', priceVersion: 'v1' } };
const usage: chatv1.Usage = { promptTokens: 12, completionTokens: 3, totalTokens: 15, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };
const answer: chatv1.ChatCompletion = { id: 'c1', created: 100, model: 'up', choices: [{ index: 0, message: { role: 'assistant', content: 'It is swordfish.', toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' }], usage };

/** A store that keeps what it was given, so a test can look at (and damage) it. */
class Recording implements ResponseCacheStore {
  readonly values = new Map<string, string>();
  async get(id: string): Promise<string | undefined> {
    return this.values.get(id);
  }
  async set(id: string, value: string): Promise<void> {
    this.values.set(id, value);
  }
}

/** A store whose Redis is away. */
const unreachable: ResponseCacheStore = {
  get: () => Promise.reject(new Error('Connection is closed.')),
  set: () => Promise.reject(new Error('Connection is closed.')),
};

function cacheOf(store: ResponseCacheStore, settings: Record<string, unknown> = {}, secret = 'a-shared-hash-secret', now = () => 1_000_000): { cache: ResponseCache; registry: Registry } {
  const registry = new Registry();
  return { cache: new ResponseCache(cacheSchema.parse({ enabled: true, ...settings }), secret, store, createLogger('test', 'silent'), registry, now), registry };
}

async function results(registry: Registry): Promise<Record<string, number>> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'openrouter_cache_requests_total');
  return Object.fromEntries((metric?.values ?? []).filter((v) => v.value > 0).map((v) => [String(v.labels['result']), v.value]));
}

/** Until the background write has been handed to the store. */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ResponseCache', () => {
  it('reads the mode from x-openrouter-cache, else from cache.mode', () => {
    const { cache } = cacheOf(new Recording());
    expect(cache.plan('/v1/chat/completions', context, body, {}).mode).toBe('bypass');
    expect(cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'use' }).mode).toBe('use');
    expect(cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'Refresh' }).mode).toBe('refresh');
    expect(cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'off' }).mode).toBe('bypass');
    const always = cacheOf(new Recording(), { mode: 'always' }).cache;
    expect(always.plan('/v1/chat/completions', context, body, {}).mode).toBe('use');
    expect(always.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'off' }).mode).toBe('bypass');
  });

  it('leaves a request naming a deprecated or retired model to the router, uncached, from its lifecycle\'s first date', () => {
    let now = Date.parse('2026-02-28T23:59:59Z');
    const starts = lifecycleStarts([
      { id: 'old', lifecycle: { deprecatedAt: '2026-03-01', retiresAt: '2026-06-01' } },
      { id: 'going', lifecycle: { retiresAt: '2026-03-01T00:00:00Z' } },
      { id: 'kept' },
    ]);
    expect([...starts]).toEqual([['old', Date.parse('2026-03-01T00:00:00Z')], ['going', Date.parse('2026-03-01T00:00:00Z')]]);
    const cache = new ResponseCache(cacheSchema.parse({ enabled: true }), 'secret', new Recording(), createLogger('test', 'silent'), new Registry(), () => now, starts);
    const use = { 'x-openrouter-cache': 'use' };
    expect(cache.plan('/v1/chat/completions', context, { ...body, model: 'old' }, use).mode).toBe('use');
    now = Date.parse('2026-03-01T00:00:00Z');
    expect(cache.plan('/v1/chat/completions', context, { ...body, model: 'old' }, use).mode).toBe('bypass');
    expect(cache.plan('/v1/embeddings', context, { model: 'going', input: 'x' }, use).mode).toBe('bypass');
    expect(cache.plan('/v1/chat/completions', context, { ...body, model: 'kept' }, use).mode).toBe('use');
  });

  it('refuses an unknown mode and a TTL outside 1..maxTtlSeconds as bad input naming the header', () => {
    const { cache } = cacheOf(new Recording(), { maxTtlSeconds: 600, defaultTtlSeconds: 60 });
    const refusal = (headers: Record<string, string>): GatewayError | undefined => {
      try {
        cache.plan('/v1/chat/completions', context, body, headers);
        return undefined;
      } catch (error) {
        return error as GatewayError;
      }
    };
    expect(refusal({ 'x-openrouter-cache': 'sometimes' })).toMatchObject({ kind: 'bad_request', param: 'x-openrouter-cache', code: 'invalid_value' });
    for (const ttl of ['0', '601', '-5', '1.5', 'soon', ''])
      expect(refusal({ 'x-openrouter-cache': 'use', 'x-openrouter-cache-ttl': ttl })).toMatchObject({ kind: 'bad_request', param: 'x-openrouter-cache-ttl', code: 'invalid_value' });
    expect(cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'use', 'x-openrouter-cache-ttl': '600' }).ttlMs).toBe(600_000);
    expect(cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'use' }).ttlMs).toBe(60_000);
  });

  it('keys entries by a keyed hash: the same for another field order, different in another project or under another secret', () => {
    const { cache } = cacheOf(new Recording());
    const use = { 'x-openrouter-cache': 'use' };
    const id = cache.plan('/v1/chat/completions', context, body, use).id;
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(cache.plan('/v1/chat/completions', context, { messages: body.messages, stream: true, model: body.model }, use).id).toBe(id);
    expect(cache.plan('/v1/chat/completions', { ...context, projectId: 'ads' }, body, use).id).not.toBe(id);
    expect(cache.plan('/v1/chat/completions', { ...context, orgId: 'initech' }, body, use).id).not.toBe(id);
    expect(cacheOf(new Recording(), {}, 'another-hash-secret').cache.plan('/v1/chat/completions', context, body, use).id).not.toBe(id);
    // Another key of the project, or another request of the same key: the same entry.
    expect(cache.plan('/v1/chat/completions', { ...context, keyId: 'k2', requestId: 'other', endUser: 'u', appId: 'a' }, body, use).id).toBe(id);
    // A key that may use other models shares nothing: a hit skips the router, which would refuse it.
    expect(cache.plan('/v1/chat/completions', { ...context, keyId: 'k2', allowedModels: ['text-embedding-3-small'] }, body, use).id).not.toBe(id);
  });

  it('keys a legacy completion on its whole body, every legacy field and every prompt in order, apart from chat completions', () => {
    const { cache } = cacheOf(new Recording());
    const use = { 'x-openrouter-cache': 'use' };
    const legacy = { model: 'gpt-4o-mini', prompt: ['Say one.', 'Say two.'], max_tokens: 8 };
    const id = cache.plan('/v1/completions', context, legacy, use).id;
    expect(cache.plan('/v1/completions', context, { ...legacy, stream: true, stream_options: { include_usage: true } }, use).id).toBe(id);
    const others = [
      { ...legacy, prompt: ['Say two.', 'Say one.'] },
      { ...legacy, prompt: ['Say one.'] },
      { ...legacy, prompt: 'Say one.' },
      { ...legacy, max_tokens: 9 },
      { ...legacy, n: 2 },
      { ...legacy, stop: ['\n'] },
      { ...legacy, logit_bias: { '50256': -100 } },
      { ...legacy, echo: false },
      { ...legacy, suffix: '' },
      { ...legacy, best_of: 1 },
      { ...legacy, user: 'u1' },
      { ...legacy, temperature: 0 },
    ];
    const ids = others.map((other) => cache.plan('/v1/completions', context, other, use).id);
    expect(new Set([id, ...ids]).size).toBe(others.length + 1);
    // The same body under the chat endpoint (which a WebSocket's requests share) is another entry.
    expect(cache.plan('/v1/chat/completions', context, legacy, use).id).not.toBe(id);
  });

  it('stores the answer sealed: the store holds neither prompt nor answer, and the entry opens to the same answer', async () => {
    const store = new Recording();
    let now = 1_000_000;
    const { cache, registry } = cacheOf(store, {}, 'a-shared-hash-secret', () => now);
    const plan = cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'use' });
    await expect(cache.lookup(plan, 'r1')).resolves.toBeUndefined();
    cache.storeCompletion(plan, origin, answer, 'r1');
    await settled();
    const [[id, sealed]] = [...store.values] as [[string, string]];
    expect(id).toBe(plan.id);
    const raw = Buffer.from(sealed, 'base64').toString('latin1');
    for (const secret of ['swordfish', 'launch code', '0.000123', 'gpt-4o-mini']) {
      expect(sealed).not.toContain(secret);
      expect(raw).not.toContain(secret);
    }
    now += 42_500;
    const hit = await cache.lookup(plan, 'r2');
    expect(hit).toMatchObject({ ...origin, ageSeconds: 42 });
    expect(hit?.completion?.choices[0]?.message?.content).toBe('It is swordfish.');
    expect(hit?.completion?.usage).toEqual(usage);
    await expect(results(registry)).resolves.toEqual({ miss: 1, hit: 1 });
  });

  it('keeps the Responses and Messages APIs\' entries apart from chat completions\' and each other\'s, and opens them as chat completions', async () => {
    const store = new Recording();
    // Lookups one after the other, none of them settled as a request's route would: none waits for another.
    const { cache } = cacheOf(store, { coalesceWaitMs: 0 });
    const use = { 'x-openrouter-cache': 'use' };
    const plans = (['/v1/chat/completions', '/v1/responses', '/v1/messages'] as const).map((endpoint) => cache.plan(endpoint, context, body, use));
    expect(new Set(plans.map((p) => p.id)).size).toBe(3);
    const [, responses, messages] = plans as [unknown, (typeof plans)[number], (typeof plans)[number]];
    cache.storeCompletion(responses, origin, answer, 'r1');
    await settled();
    for (const plan of plans.filter((p) => p !== responses)) await expect(cache.lookup(plan, 'r2')).resolves.toBeUndefined();
    // An entry moved under another endpoint's id does not open there either.
    store.values.set(messages.id, store.values.get(responses.id) ?? '');
    await expect(cache.lookup(messages, 'r3')).resolves.toBeUndefined();
    const hit = await cache.lookup(responses, 'r4');
    expect(hit?.completion?.choices[0]?.message?.content).toBe('It is swordfish.');
    expect(hit?.embedding).toBeUndefined();
  });

  it('treats an entry that does not open as a miss: damaged, moved under another key, or sealed under another secret', async () => {
    const store = new Recording();
    // Lookups one after the other, none of them settled as a request's route would: none waits for another.
    const { cache, registry } = cacheOf(store, { coalesceWaitMs: 0 });
    const use = { 'x-openrouter-cache': 'use' };
    const plan = cache.plan('/v1/chat/completions', context, body, use);
    cache.storeCompletion(plan, origin, answer, 'r1');
    await settled();
    const sealed = store.values.get(plan.id) ?? '';
    // Moved under another request's id: bound to its own, it does not open there.
    const other = cache.plan('/v1/chat/completions', context, { ...body, temperature: 1 }, use);
    store.values.set(other.id, sealed);
    await expect(cache.lookup(other, 'r2')).resolves.toBeUndefined();
    // Damaged.
    const bytes = Buffer.from(sealed, 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    store.values.set(plan.id, bytes.toString('base64'));
    await expect(cache.lookup(plan, 'r3')).resolves.toBeUndefined();
    store.values.set(plan.id, 'not sealed at all');
    await expect(cache.lookup(plan, 'r4')).resolves.toBeUndefined();
    // Sealed under another secret (rotated).
    const rotated = cacheOf(store, {}, 'a-rotated-hash-secret').cache;
    rotated.storeCompletion(plan, origin, answer, 'r5');
    await settled();
    await expect(cache.lookup(plan, 'r6')).resolves.toBeUndefined();
    await expect(results(registry)).resolves.toEqual({ miss: 4 });
  });

  it('derives its keys apart from every API key hash: the hash of a key named like the derivation opens nothing', async () => {
    const store = new Recording();
    const secret = 'a-shared-hash-secret';
    const { cache } = cacheOf(store, {}, secret);
    const plan = cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'use' });
    cache.storeCompletion(plan, origin, answer, 'r1');
    await settled();
    const sealed = store.values.get(plan.id) ?? '';
    expect(sealed).not.toBe('');
    // Key hashes sit in the configuration and the access store; none may be a key of the cache.
    for (const name of ['response-cache:seal', 'response-cache:key']) {
      expect(() => openText(Buffer.from(hashApiKey(secret, name), 'hex'), sealed, plan.id)).toThrow();
    }
  });

  it('does not store an entry over maxEntryBytes, nor an answer of a bypassed request', async () => {
    const store = new Recording();
    const { cache, registry } = cacheOf(store, { maxEntryBytes: 200 });
    const plan = cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'use' });
    cache.storeCompletion(plan, origin, { ...answer, choices: [{ index: 0, message: { role: 'assistant', content: 'x'.repeat(500), toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' }] }, 'r1');
    const bypass = cache.plan('/v1/chat/completions', context, body, {});
    cache.storeCompletion(bypass, origin, answer, 'r2');
    await settled();
    expect(store.values.size).toBe(0);
    await expect(results(registry)).resolves.toEqual({ skipped: 1 });
  });

  it('gathers a stream for storing only up to maxEntryBytes', () => {
    const { cache } = cacheOf(new Recording(), { maxEntryBytes: 64 });
    const gathered = cache.gathering();
    gathered.add({ id: 'c1', created: 100, model: 'up', choices: [{ index: 0, delta: { content: 'x'.repeat(100), toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' }] });
    expect(gathered.whole(usage)).toBeUndefined();
  });

  it('serves uncached when the store cannot be reached: no error to the caller, counted as error', async () => {
    const { cache, registry } = cacheOf(unreachable);
    const plan = cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'use' });
    await expect(cache.lookup(plan, 'r1')).resolves.toBeUndefined();
    cache.storeCompletion(plan, origin, answer, 'r1');
    await settled();
    await expect(results(registry)).resolves.toEqual({ error: 2 });
  });

  it('counts refresh and bypass without reading the store', async () => {
    const { cache, registry } = cacheOf(unreachable);
    await expect(cache.lookup(cache.plan('/v1/embeddings', context, { model: 'e', input: 'x' }, { 'x-openrouter-cache': 'refresh' }), 'r1')).resolves.toBeUndefined();
    await expect(cache.lookup(cache.plan('/v1/embeddings', context, { model: 'e', input: 'x' }, {}), 'r2')).resolves.toBeUndefined();
    await expect(results(registry)).resolves.toEqual({ refresh: 1, bypass: 1 });
  });
});

describe('ResponseCache for tenants that keep nothing of their responses (storeResponses: false)', () => {
  const SECRET = 'zero-retention-spec-secret';
  const vault = routerv1.RequestContext.fromPartial({ requestId: 'r', orgId: 'acme', teamId: 'platform', projectId: 'vault', keyId: 'vault-1' });
  const search = routerv1.RequestContext.fromPartial({ requestId: 'r', orgId: 'acme', teamId: 'platform', projectId: 'search', keyId: 'search-1' });

  /** The real access layer over in-memory stores: the project `vault` keeps nothing, nor does the key `search-private` of `search`. */
  async function keysOf(): Promise<{ access: AccessService; key: (presented: string) => Promise<ApiKeyRecord> }> {
    const config = ingressTestConfig({
      access: {
        keyHashSecret: SECRET,
        orgs: [{ id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'vault', policy: { storeResponses: false } }] }] }],
        keys: [
          { id: 'search-1', hash: hashApiKey(SECRET, 'sk-search-1'), org: 'acme', team: 'platform', project: 'search' },
          { id: 'search-private', hash: hashApiKey(SECRET, 'sk-search-private'), org: 'acme', team: 'platform', project: 'search', policy: { storeResponses: false } },
          { id: 'vault-1', hash: hashApiKey(SECRET, 'sk-vault-1'), org: 'acme', team: 'platform', project: 'vault' },
        ],
      },
    });
    const access = new AccessService(config, new MemoryAccessRepository(), new MemoryCounterStore(), createLogger('test', 'silent'), undefined);
    await access.start();
    const key = async (presented: string): Promise<ApiKeyRecord> => {
      const record = await access.keyOf(presented);
      if (!record) throw new Error(`no key ${presented}`);
      return record;
    };
    return { access, key };
  }

  function cacheWith(access: Pick<AccessService, 'responsesUnstoredBy'>, store: ResponseCacheStore, settings: Record<string, unknown> = {}): { cache: ResponseCache; registry: Registry } {
    const registry = new Registry();
    return { cache: new ResponseCache(cacheSchema.parse({ enabled: true, ...settings }), SECRET, store, createLogger('test', 'silent'), registry, () => 1_000_000, new Map(), access), registry };
  }

  it('bypasses the cache for them whatever the request or cache.mode asks, and uses it for the others', async () => {
    const { access, key } = await keysOf();
    const { cache } = cacheWith(access, new Recording(), { mode: 'always' });
    const [vaultKey, privateKey, searchKey] = await Promise.all([key('sk-vault-1'), key('sk-search-private'), key('sk-search-1')]);
    for (const headers of [{}, { 'x-openrouter-cache': 'use' }, { 'x-openrouter-cache': 'refresh' }]) {
      expect(await cache.planFor('/v1/chat/completions', vault, body, headers, vaultKey)).toMatchObject({ mode: 'bypass', id: '' });
      expect(await cache.planFor('/v1/embeddings', search, { model: 'e', input: 'x' }, headers, privateKey)).toMatchObject({ mode: 'bypass', id: '' });
      expect((await cache.planFor('/v1/chat/completions', search, body, headers, searchKey)).mode).not.toBe('bypass');
    }
    // A bad header is still the client's error.
    await expect(cache.planFor('/v1/chat/completions', vault, body, { 'x-openrouter-cache': 'sometimes' }, vaultKey)).rejects.toMatchObject({ kind: 'bad_request', param: 'x-openrouter-cache' });
  });

  it('neither stores their answers nor serves them an entry stored before, and counts them as bypass', async () => {
    const { access, key } = await keysOf();
    const store = new Recording();
    const { cache, registry } = cacheWith(access, store);
    const vaultKey = await key('sk-vault-1');
    const use = { 'x-openrouter-cache': 'use' };
    const plan = await cache.planFor('/v1/chat/completions', vault, body, use, vaultKey);
    await expect(cache.lookup(plan, 'r1')).resolves.toBeUndefined();
    cache.storeCompletion(plan, origin, answer, 'r1');
    const embedding = await cache.planFor('/v1/embeddings', vault, { model: 'e', input: 'x' }, use, vaultKey);
    cache.storeEmbedding(embedding, origin, { model: 'e', data: [], usage }, 'r2');
    await settled();
    expect(store.values.size).toBe(0);
    // An entry of the project stored before its policy said so is not served to it.
    const before = cache.plan('/v1/chat/completions', vault, body, use);
    cache.storeCompletion(before, origin, answer, 'r0');
    await settled();
    expect(store.values.size).toBe(1);
    await expect(cache.lookup(await cache.planFor('/v1/chat/completions', vault, body, use, vaultKey), 'r3')).resolves.toBeUndefined();
    await expect(results(registry)).resolves.toEqual({ bypass: 2 });
  });

  it('keeps nothing of a request whose policy cannot be read now', async () => {
    const { key } = await keysOf();
    const unreadable = { responsesUnstoredBy: () => Promise.reject(new GatewayError('unavailable', 'The key\'s organisation cannot be resolved right now.')) };
    const { cache } = cacheWith(unreadable, new Recording());
    expect((await cache.planFor('/v1/chat/completions', search, body, { 'x-openrouter-cache': 'use' }, await key('sk-search-1'))).mode).toBe('bypass');
  });
});

/** Flights of a fleet in which this replica claims every flight: what it asks of them, recorded. */
class ClaimingFlights implements FleetFlights {
  readonly renewed: string[] = [];
  readonly released: Array<{ owner: string; outcome: string }> = [];
  owner = '';
  async claim(_id: string, owner: string): Promise<Claimed> {
    this.owner = owner;
    return { kind: 'claimed' };
  }
  async renew(_id: string, owner: string): Promise<boolean> {
    this.renewed.push(owner);
    return true;
  }
  async release(_id: string, owner: string, outcome: 'stored' | 'abandoned'): Promise<void> {
    this.released.push({ owner, outcome });
  }
  follow(): Promise<Followed> {
    return Promise.resolve({ outcome: 'abandoned' });
  }
}

describe('ResponseCache leading a flight of the fleet', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('keeps its claim while the leader\'s call runs, past the claim\'s time to live, and lets it go once the lead is settled', async () => {
    for (const end of ['stored', 'abandoned'] as const) {
      const flights = new ClaimingFlights();
      const store = Object.assign(new Recording(), { flights });
      const { cache } = cacheOf(store, { coalesceWaitMs: 3_000 });
      const plan = cache.plan('/v1/chat/completions', context, body, { 'x-openrouter-cache': 'use' });
      await expect(cache.lookup(plan, 'r1')).resolves.toBeUndefined();
      expect(flights.owner).not.toBe('');
      // Three times the claim's time to live: renewed every third of it, with the leader's own token.
      await jest.advanceTimersByTimeAsync(9_000);
      expect(flights.renewed).toHaveLength(9);
      expect(new Set(flights.renewed)).toEqual(new Set([flights.owner]));
      if (end === 'stored') cache.storeCompletion(plan, origin, answer, 'r1');
      else cache.abandon(plan);
      await jest.advanceTimersByTimeAsync(0);
      expect(flights.released).toEqual([{ owner: flights.owner, outcome: end }]);
      await jest.advanceTimersByTimeAsync(9_000);
      expect(flights.renewed).toHaveLength(9);
    }
  });
});

describe('MemoryResponseCacheStore', () => {
  it('keeps at most maxEntries, dropping the least recently used, and forgets expired entries', async () => {
    let now = 0;
    const store = new MemoryResponseCacheStore(2, () => now);
    await store.set('a', 'A', 1_000);
    await store.set('b', 'B', 1_000);
    await expect(store.get('a')).resolves.toBe('A');
    await store.set('c', 'C', 1_000);
    // b was the least recently used.
    await expect(store.get('b')).resolves.toBeUndefined();
    await expect(store.get('a')).resolves.toBe('A');
    await expect(store.get('c')).resolves.toBe('C');
    expect(store.size).toBe(2);
    now = 1_000;
    await expect(store.get('a')).resolves.toBeUndefined();
    expect(store.size).toBe(1);
  });
});
