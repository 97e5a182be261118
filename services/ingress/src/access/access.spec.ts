import { accessSchema } from '@openrouter/config';
import { toOpenAIError } from '@openrouter/openai-wire';
import { MemoryAccessRepository } from './access.repository';
import { displayPrefix, generateApiKey, hashApiKey, hashingKey, sameDigest } from './api-key';
import { MemoryCounterStore, TakeReleasedError, type CounterCharge, type CounterStore } from './counter.store';
import { KeyDirectory } from './key-directory';
import type { ApiKeyRecord } from './key-record';
import { formatDuration, RateLimitedError, RateLimiter, reservedTokens, type ApplicableLimit, type TokenDemand } from './rate-limiter';
import { TenantDirectory } from './tenant-directory';

const SECRET = 'unit-test-secret-000';

/** A request whose only tokens are its prompt's. */
const promptOnly = (prompt: number): TokenDemand => ({ prompt, output: 0, outputAsked: true });

function issued(key: string, extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    id: 'k1',
    hash: hashApiKey(SECRET, key),
    prefix: displayPrefix(key),
    name: '',
    orgId: 'acme',
    teamId: '',
    projectId: '',
    appId: '',
    allowedModels: [],
    limits: {},
    metadata: {},
    tags: {},
    createdAt: new Date(0).toISOString(),
    source: 'issued',
    ...extra,
  };
}

describe('api keys', () => {
  it('are 256-bit, prefixed, and stored only as a keyed hash', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a).toMatch(/^sk-or-v1-[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(hashApiKey(SECRET, a)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashApiKey(SECRET, a)).not.toBe(hashApiKey('another-secret-000', a));
    expect(sameDigest(hashApiKey(SECRET, a), hashApiKey(SECRET, a))).toBe(true);
    expect(sameDigest(hashApiKey(SECRET, a), hashApiKey(SECRET, b))).toBe(false);
    expect(sameDigest('', '')).toBe(false);
    // The prepared key object hashes exactly as the secret string does.
    expect(hashApiKey(hashingKey(SECRET), a)).toBe(hashApiKey(SECRET, a));
    expect(hashApiKey(hashingKey('sécret-ünïcode-0001'), a)).toBe(hashApiKey('sécret-ünïcode-0001', a));
  });

  it('resolve through the store, cached, and are forgotten on revocation notices', async () => {
    const repository = new MemoryAccessRepository();
    const key = generateApiKey();
    let now = new Date('2026-06-01T00:00:00Z');
    const directory = new KeyDirectory(SECRET, [], [], repository, 60_000, () => now);
    await repository.saveKey(issued(key, { expiresAt: '2026-07-01T00:00:00Z' }));
    expect((await directory.authenticate(key))?.id).toBe('k1');
    await expect(directory.authenticate(`${key}x`)).resolves.toBeUndefined();
    // Revoked in the store: the cache still answers until the notice arrives.
    await repository.saveKey(issued(key, { revokedAt: now.toISOString() }));
    expect((await directory.authenticate(key))?.id).toBe('k1');
    await repository.publish({ kind: 'key', hash: hashApiKey(SECRET, key) });
    await expect(directory.authenticate(key)).resolves.toBeUndefined();
    // Expiry.
    const other = generateApiKey();
    await repository.saveKey(issued(other, { id: 'k2', expiresAt: '2026-07-01T00:00:00Z' }));
    expect((await directory.authenticate(other))?.id).toBe('k2');
    now = new Date('2026-07-01T00:00:01Z');
    await expect(directory.authenticate(other)).resolves.toBeUndefined();
  });

  it('never caches a lookup that a revocation notice overtook', async () => {
    const key = generateApiKey();
    const hash = hashApiKey(SECRET, key);
    const stale = issued(key);
    let stored: ApiKeyRecord = stale;
    const reads: Array<(record: ApiKeyRecord) => void> = [];
    const repository = new MemoryAccessRepository();
    // The first read answers with what the store held when it was sent, after the notice arrived.
    repository.findKey = (h: string) => (h === hash && reads.length === 0 ? new Promise((resolve) => reads.push(resolve)) : Promise.resolve(stored));
    const directory = new KeyDirectory(SECRET, [], [], repository, 60_000);
    const first = directory.authenticate(key);
    stored = { ...stale, revokedAt: new Date().toISOString() };
    await repository.publish({ kind: 'key', hash });
    reads[0]?.(stale);
    // The overtaken answer is not trusted: the store is asked again, and nothing stale is cached.
    await expect(first).resolves.toBeUndefined();
    await expect(directory.authenticate(key)).resolves.toBeUndefined();
  });
});

describe('tenant directory', () => {
  const config = accessSchema.parse({
    orgs: [{ id: 'acme', costCenter: 'CC-1', teams: [{ id: 'platform', costCenter: 'CC-2', projects: [{ id: 'search', costCenter: 'CC-3' }, { id: 'ads' }] }, { id: 'ops', projects: [{ id: 'infra' }] }] }],
  });
  const tenants = new TenantDirectory(config.orgs);

  it('inherits the cost centre from project, team, org, or the org id', () => {
    expect(tenants.place('acme', undefined, 'search')).toMatchObject({ teamId: 'platform', costCenter: 'CC-3' });
    expect(tenants.place('acme', undefined, 'ads').costCenter).toBe('CC-2');
    expect(tenants.place('acme', undefined, 'infra').costCenter).toBe('CC-1');
    expect(tenants.place('solo', undefined, undefined).costCenter).toBe('solo');
  });

  it('refuses teams and projects that do not exist', () => {
    expect(() => tenants.place('acme', 'nope', undefined)).toThrow(/team "nope"/);
    expect(() => tenants.place('acme', 'ops', 'search')).toThrow(/project "search"/);
  });

  it('adds run-time teams and projects without overriding configuration', () => {
    const directory = new TenantDirectory(config.orgs);
    directory.replaceRuntime([
      { id: 'acme', costCenter: 'IGNORED', limits: {}, teams: [{ id: 'platform', limits: {}, projects: [{ id: 'new', limits: {} }] }, { id: 'research', limits: {}, projects: [] }] },
      { id: 'beta', limits: {}, teams: [] },
    ]);
    expect(directory.org('acme')?.costCenter).toBe('CC-1');
    expect(directory.org('acme')?.teams.map((t) => t.id).sort()).toEqual(['ops', 'platform', 'research']);
    expect(directory.place('acme', undefined, 'new').costCenter).toBe('CC-2');
    expect(directory.org('beta')).toBeDefined();
  });
});

describe('rate limiter', () => {
  const limits: ApplicableLimit[] = [
    { scope: 'key', id: 'k', kind: 'requests', perMinute: 2 },
    { scope: 'key', id: 'k', kind: 'tokens', perMinute: 100 },
    { scope: 'project', id: 'p', kind: 'requests', perMinute: 10 },
  ];

  it('reports the tightest limits in OpenAI headers and refuses with Retry-After', async () => {
    let now = 0;
    const limiter = new RateLimiter(new MemoryCounterStore(() => now), 'open', () => undefined);
    const first = await limiter.admit(limits, promptOnly(10));
    expect(first.headers).toEqual({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '1',
      'x-ratelimit-reset-requests': '30s',
      'x-ratelimit-limit-tokens': '100',
      'x-ratelimit-remaining-tokens': '90',
      'x-ratelimit-reset-tokens': '6s',
    });
    await limiter.admit(limits, promptOnly(10));
    const denied = await limiter.admit(limits, promptOnly(10)).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(RateLimitedError);
    expect(denied).toMatchObject({ kind: 'rate_limited', code: 'rate_limit_exceeded', retryAfterMs: 30_000, limitKind: 'requests' });
    // OpenAI's body names the kind of limit in its type.
    expect(toOpenAIError(denied as RateLimitedError).body.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
    expect((denied as RateLimitedError).headers['x-ratelimit-remaining-requests']).toBe('0');
    // The refused request was not charged: the token limit shows what two requests left.
    expect((denied as RateLimitedError).headers['x-ratelimit-remaining-tokens']).toBe('80');
    expect((denied as RateLimitedError).headers['x-ratelimit-reset-tokens']).toBe('12s');
    now = 30_000;
    await expect(limiter.admit(limits, promptOnly(10))).resolves.toBeDefined();
  });

  it('refuses a request larger than a token limit as too large, without Retry-After and charging nothing', async () => {
    const store = new MemoryCounterStore(() => 0);
    const limiter = new RateLimiter(store, 'open', () => undefined);
    const tooLarge = await limiter.admit(limits, promptOnly(101)).catch((e: unknown) => e);
    expect(tooLarge).toBeInstanceOf(RateLimitedError);
    expect(tooLarge).toMatchObject({ kind: 'rate_limited', code: 'rate_limit_exceeded', retryAfterMs: undefined, headers: { 'x-should-retry': 'false' }, limitKind: 'tokens' });
    expect((tooLarge as RateLimitedError).message).toMatch(/^Request too large for tokens per minute \(TPM\) on key k: Limit 100, Requested 101\./);
    const next = await limiter.admit(limits, promptOnly(100));
    expect(next.headers['x-ratelimit-remaining-requests']).toBe('1');
    expect(next.headers['x-ratelimit-remaining-tokens']).toBe('0');
  });

  it('corrects the token charge by the real usage', async () => {
    const limiter = new RateLimiter(new MemoryCounterStore(() => 0), 'open', () => undefined);
    const tokenOnly = limits.filter((l) => l.kind === 'tokens');
    const admission = await limiter.admit(tokenOnly, promptOnly(10));
    await admission.settle(60);
    const next = await limiter.admit(tokenOnly, promptOnly(10));
    expect(next.headers['x-ratelimit-remaining-tokens']).toBe('30');
  });

  it('corrects the token charge once, whatever calls settle again', async () => {
    const limiter = new RateLimiter(new MemoryCounterStore(() => 0), 'open', () => undefined);
    const tokenOnly = limits.filter((l) => l.kind === 'tokens');
    const admission = await limiter.admit(tokenOnly, promptOnly(10));
    await Promise.all([admission.settle(60), admission.settle(60)]);
    await admission.settle(0);
    const next = await limiter.admit(tokenOnly, promptOnly(10));
    expect(next.headers['x-ratelimit-remaining-tokens']).toBe('30');
  });

  it('ignores a correction that is not a finite number, in the store: the limit stays as charged', async () => {
    const store = new MemoryCounterStore(() => 0);
    const charge = { key: 'rl:key:k:tokens', limit: 100, windowMs: 60_000, cost: 60 };
    await store.take([charge]);
    await store.adjust([{ ...charge, cost: Number.NaN }, { ...charge, cost: Number.POSITIVE_INFINITY }, { ...charge, cost: Number.NEGATIVE_INFINITY }]);
    const [refused] = await store.take([{ ...charge, cost: 41 }]);
    expect(refused).toMatchObject({ allowed: false, remaining: 40 });
  });

  it('keeps the reservation of a request settled with a token count that is negative or not a number', async () => {
    const limiter = new RateLimiter(new MemoryCounterStore(() => 0), 'open', () => undefined);
    const tokenOnly = limits.filter((l) => l.kind === 'tokens');
    for (const count of [Number.NaN, -5, Number.POSITIVE_INFINITY]) await (await limiter.admit(tokenOnly, promptOnly(10))).settle(count);
    const next = await limiter.admit(tokenOnly, promptOnly(10));
    expect(next.headers['x-ratelimit-remaining-tokens']).toBe('60');
  });

  it('follows the fail mode when the store fails, and releases a take that may have run all the same', async () => {
    const takes: string[] = [];
    const released: Array<{ id: string; charges: readonly CounterCharge[] }> = [];
    const broken = (message: string): CounterStore => ({
      take: (_charges, id) => {
        takes.push(id ?? '');
        return Promise.reject(new Error(message));
      },
      adjust: () => Promise.reject(new Error(message)),
      settle: () => Promise.reject(new Error(message)),
      release: async (id, charges) => void released.push({ id, charges }),
      close: async () => undefined,
    });
    const failures: unknown[] = [];
    await expect(new RateLimiter(broken('Command timed out'), 'open', (e) => failures.push(e)).admit(limits, promptOnly(1))).resolves.toMatchObject({ headers: {} });
    expect(failures).toHaveLength(1);
    await expect(new RateLimiter(broken('Command timed out'), 'closed', () => undefined).admit(limits, promptOnly(1))).rejects.toMatchObject({ kind: 'unavailable', code: 'rate_limiter_unavailable' });
    // Each take has an id of its own, and is released with what it charged.
    expect(takes).toHaveLength(2);
    expect(takes.every((id) => id.length > 0)).toBe(true);
    expect(new Set(takes).size).toBe(2);
    expect(released.map((r) => r.id)).toEqual(takes);
    expect(released[0]?.charges.map((c) => [c.key, c.cost])).toEqual([
      ['rl:key:k:requests', 1],
      ['rl:key:k:tokens', 1],
      ['rl:project:p:requests', 1],
    ]);
    // A take refused unsent (no connection) never ran: nothing to release.
    await new RateLimiter(broken("Stream isn't writeable and enableOfflineQueue options is false"), 'open', () => undefined).admit(limits, promptOnly(1));
    expect(released).toHaveLength(2);
  });

  it('sends a settle again whose answer was lost, and the store gives the refund back once', async () => {
    const memory = new MemoryCounterStore(() => 0);
    let sent = 0;
    // The first settle runs, but its answer times out: the limiter cannot tell, and sends it again.
    const lossy: CounterStore = {
      take: (charges, id) => memory.take(charges, id),
      adjust: (charges) => memory.adjust(charges),
      settle: async (id, charges) => {
        await memory.settle(id, charges);
        if (++sent === 1) throw new Error('Command timed out');
      },
      release: (id, charges) => memory.release(id, charges),
      close: () => memory.close(),
    };
    const failures: unknown[] = [];
    const limiter = new RateLimiter(lossy, 'open', (e) => failures.push(e));
    const tokenOnly = limits.filter((l) => l.kind === 'tokens');
    const admission = await limiter.admit(tokenOnly, promptOnly(50));
    await admission.settle(10);
    expect(sent).toBe(2);
    expect(failures).toEqual([]);
    // 40 of the 50 came back, once: 90 left, not 100 (the limit full) nor more.
    const next = await limiter.admit(tokenOnly, promptOnly(0));
    expect(next.headers['x-ratelimit-remaining-tokens']).toBe('90');
  });

  it('in memory, releases a take once, makes one released before it charge nothing, and settles once', async () => {
    const store = new MemoryCounterStore(() => 0);
    const tokens = (cost: number): CounterCharge => ({ key: 'rl:key:k:tokens', limit: 100, windowMs: 60_000, cost });
    await store.take([tokens(60)], 'a');
    await store.release('a', [tokens(60)]);
    await store.release('a', [tokens(60)]);
    expect((await store.take([tokens(0)]))[0]).toMatchObject({ remaining: 100 });
    await store.release('late', [tokens(30)]);
    await expect(store.take([tokens(30)], 'late')).rejects.toBeInstanceOf(TakeReleasedError);
    const [taken] = await store.take([tokens(50)], 'b');
    const refund = { ...tokens(-40), until: taken?.nextTat ?? 0 };
    await store.settle('b', [refund]);
    await store.settle('b', [refund]);
    expect((await store.take([tokens(0)]))[0]).toMatchObject({ remaining: 90 });
  });

  it('names the limit that is refused the longest, and says to wait as long as Retry-After', async () => {
    const limiter = new RateLimiter(new MemoryCounterStore(() => 0), 'open', () => undefined);
    const both: ApplicableLimit[] = [
      { scope: 'key', id: 'k', kind: 'tokens', perMinute: 600 },
      { scope: 'org', id: 'o', kind: 'requests', perMinute: 1 },
    ];
    await limiter.admit(both, promptOnly(600));
    // The key's tokens refill in 1 s, the organisation's request in 60 s.
    const refused = await limiter.admit(both, promptOnly(10)).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'rate_limit_exceeded', retryAfterMs: 60_000 });
    expect((refused as RateLimitedError).message).toBe('Rate limit reached for requests per minute (RPM) on org o: limit 1, remaining 0. Please try again in 1m0s.');
  });

  it('formats durations as OpenAI does', () => {
    expect([formatDuration(20), formatDuration(1500), formatDuration(360_000), formatDuration(61_250)]).toEqual(['20ms', '1.5s', '6m0s', '1m1.25s']);
    // Waits of an hour or more in hours, as OpenAI words a requests-per-day wait: `1h2m3s`.
    expect([formatDuration(4_500_000), formatDuration(3_600_000), formatDuration(3_723_500), formatDuration(90_000_000)]).toEqual(['1h15m0s', '1h0m0s', '1h2m3.5s', '25h0m0s']);
  });
});

describe('token reservations', () => {
  const tpm = (perMinute: number, scope: ApplicableLimit['scope'] = 'key'): ApplicableLimit => ({ scope, id: scope === 'key' ? 'k' : 'o', kind: 'tokens', perMinute });
  const asked = (prompt: number, output: number): TokenDemand => ({ prompt, output, outputAsked: true });
  const assumed = (prompt: number, output: number): TokenDemand => ({ prompt, output, outputAsked: false });
  const remaining = (admission: { headers: Record<string, string> }): number => Number(admission.headers['x-ratelimit-remaining-tokens']);

  it('reserves the prompt and the output asked for whole, and an assumed output up to what the tightest limit holds beside the prompt', () => {
    expect(reservedTokens([tpm(1000)], asked(10, 400))).toBe(410);
    expect(reservedTokens([tpm(1000)], asked(10, 4000))).toBe(4010);
    expect(reservedTokens([tpm(1000)], assumed(10, 400))).toBe(410);
    expect(reservedTokens([tpm(1000), tpm(300, 'org')], assumed(10, 4096))).toBe(300);
    // A prompt over the limit is reserved alone: it is too large by itself.
    expect(reservedTokens([tpm(100)], assumed(150, 4096))).toBe(150);
    expect(reservedTokens([], assumed(10, 4096))).toBe(4106);
  });

  it('refuses concurrent requests once their reservations of prompt and max output exceed the limit, and admits again once they settle small', async () => {
    const limiter = new RateLimiter(new MemoryCounterStore(() => 0), 'open', () => undefined);
    const limits = [tpm(1000)];
    const first = await limiter.admit(limits, asked(10, 400));
    const second = await limiter.admit(limits, asked(10, 400));
    expect([remaining(first), remaining(second)]).toEqual([590, 180]);
    const refused = await limiter.admit(limits, asked(10, 400)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect(refused).toMatchObject({ code: 'rate_limit_exceeded', retryAfterMs: 230 * 60, limitKind: 'tokens' });
    expect((refused as RateLimitedError).message).toContain('limit 1000, remaining 180, requested 410');
    // Small answers: 26 tokens each are charged, the rest of each reservation given back.
    await first.settle(26);
    await second.settle(26);
    const third = await limiter.admit(limits, asked(10, 400));
    expect(remaining(third)).toBe(1000 - 26 - 26 - 410);
  });

  it('refuses a request whose prompt and asked-for output exceed the limit as too large, but never for an output it did not ask for', async () => {
    const limiter = new RateLimiter(new MemoryCounterStore(() => 0), 'open', () => undefined);
    const tooLarge = await limiter.admit([tpm(1000)], asked(10, 1000)).catch((e: unknown) => e);
    expect(tooLarge).toMatchObject({ retryAfterMs: undefined, headers: { 'x-should-retry': 'false' } });
    expect((tooLarge as RateLimitedError).message).toMatch(/^Request too large for tokens per minute \(TPM\) on key k: Limit 1000, Requested 1010\./);
    // Nothing was charged; a request with no maximum of its own holds the whole limit until it settles.
    const unbounded = await limiter.admit([tpm(1000)], assumed(10, 4096));
    expect(remaining(unbounded)).toBe(0);
    await expect(limiter.admit([tpm(1000)], asked(10, 5))).rejects.toBeInstanceOf(RateLimitedError);
    await unbounded.settle(40);
    expect(remaining(await limiter.admit([tpm(1000)], asked(10, 5)))).toBe(1000 - 40 - 15);
  });

  it('gives the whole reservation back to a request that used nothing, to every token limit, once', async () => {
    const limiter = new RateLimiter(new MemoryCounterStore(() => 0), 'open', () => undefined);
    const limits = [tpm(1000), tpm(5000, 'org')];
    const failed = await limiter.admit(limits, asked(10, 400));
    await Promise.all([failed.settle(0), failed.settle(0)]);
    await failed.settle(0);
    const next = await limiter.admit([tpm(5000, 'org')], asked(10, 400));
    expect(remaining(next)).toBe(5000 - 410);
    expect(remaining(await limiter.admit([tpm(1000)], asked(0, 1000)))).toBe(0);
  });

  it('charges an answer longer than its reservation the difference', async () => {
    const limiter = new RateLimiter(new MemoryCounterStore(() => 0), 'open', () => undefined);
    const unbounded = await limiter.admit([tpm(1000)], assumed(100, 4096));
    // 100 prompt tokens and 2,000 written: 1,100 more than the whole limit it reserved.
    await unbounded.settle(2_100);
    const refused = await limiter.admit([tpm(1000)], asked(1, 0)).catch((e: unknown) => e);
    expect(refused).toMatchObject({ retryAfterMs: 1_101 * 60 });
  });

  it('gives back no more than the limit holds: a refund after the limit refilled leaves it full, not fuller', async () => {
    let now = 0;
    const limiter = new RateLimiter(new MemoryCounterStore(() => now), 'open', () => undefined);
    const slow = await limiter.admit([tpm(1000)], asked(10, 400));
    now = 60_000;
    await slow.settle(20);
    expect(remaining(await limiter.admit([tpm(1000)], asked(10, 400)))).toBe(590);
  });

  it("gives back only what of a long request's reservation is still to refill, never the charges of requests admitted behind it", async () => {
    let now = 0;
    const limiter = new RateLimiter(new MemoryCounterStore(() => now), 'open', () => undefined);
    const limits = [tpm(10_000)];
    // 4,196 reserved at 0 s (refilled by 25.2 s); two more of 4,100 at 26 s; the first ends at 30 s having used 300.
    const long = await limiter.admit(limits, asked(96, 4_100));
    now = 26_000;
    await limiter.admit(limits, asked(0, 4_100));
    await limiter.admit(limits, asked(0, 4_100));
    now = 30_000;
    await long.settle(300);
    // What the two later requests hold, less what refilled since 26 s (4 s at a token every 6 ms), and the 1.
    const next = await limiter.admit(limits, asked(0, 1));
    expect(remaining(next)).toBe(Math.floor(10_000 - (8_200 - 4_000 / 6) - 1));
  });

  it('follows the fail mode when the store fails, and a request admitted unlimited settles nothing', async () => {
    let adjusted = 0;
    const broken: CounterStore = {
      take: () => Promise.reject(new Error('down')),
      adjust: async () => void (adjusted += 1),
      settle: async () => void (adjusted += 1),
      release: async () => undefined,
      close: async () => undefined,
    };
    const open = await new RateLimiter(broken, 'open', () => undefined).admit([tpm(1000)], asked(10, 400));
    await open.settle(20);
    expect(adjusted).toBe(0);
    await expect(new RateLimiter(broken, 'closed', () => undefined).admit([tpm(1000)], asked(10, 400))).rejects.toMatchObject({ code: 'rate_limiter_unavailable' });
  });
});
