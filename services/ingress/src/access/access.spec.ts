import { accessSchema } from '@openrouter/config';
import { MemoryAccessRepository } from './access.repository';
import { displayPrefix, generateApiKey, hashApiKey, hashingKey, sameDigest } from './api-key';
import { MemoryCounterStore } from './counter.store';
import { KeyDirectory } from './key-directory';
import type { ApiKeyRecord } from './key-record';
import { formatDuration, RateLimitedError, RateLimiter, type ApplicableLimit } from './rate-limiter';
import { TenantDirectory } from './tenant-directory';

const SECRET = 'unit-test-secret-000';

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
    const first = await limiter.admit(limits, 10);
    expect(first.headers).toEqual({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '1',
      'x-ratelimit-reset-requests': '30s',
      'x-ratelimit-limit-tokens': '100',
      'x-ratelimit-remaining-tokens': '90',
      'x-ratelimit-reset-tokens': '6s',
    });
    await limiter.admit(limits, 10);
    const denied = await limiter.admit(limits, 10).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(RateLimitedError);
    expect(denied).toMatchObject({ kind: 'rate_limited', code: 'rate_limit_exceeded', retryAfterMs: 30_000 });
    expect((denied as RateLimitedError).headers['x-ratelimit-remaining-requests']).toBe('0');
    // The refused request was not charged: the token limit shows what two requests left.
    expect((denied as RateLimitedError).headers['x-ratelimit-remaining-tokens']).toBe('80');
    expect((denied as RateLimitedError).headers['x-ratelimit-reset-tokens']).toBe('12s');
    now = 30_000;
    await expect(limiter.admit(limits, 10)).resolves.toBeDefined();
  });

  it('refuses a request larger than a token limit as too large, without Retry-After and charging nothing', async () => {
    const store = new MemoryCounterStore(() => 0);
    const limiter = new RateLimiter(store, 'open', () => undefined);
    const tooLarge = await limiter.admit(limits, 101).catch((e: unknown) => e);
    expect(tooLarge).toBeInstanceOf(RateLimitedError);
    expect(tooLarge).toMatchObject({ kind: 'rate_limited', code: 'rate_limit_exceeded', retryAfterMs: undefined, headers: { 'x-should-retry': 'false' } });
    expect((tooLarge as RateLimitedError).message).toMatch(/^Request too large for tokens per minute \(TPM\) on key k: Limit 100, Requested 101\./);
    const next = await limiter.admit(limits, 100);
    expect(next.headers['x-ratelimit-remaining-requests']).toBe('1');
    expect(next.headers['x-ratelimit-remaining-tokens']).toBe('0');
  });

  it('corrects the token charge by the real usage', async () => {
    const limiter = new RateLimiter(new MemoryCounterStore(() => 0), 'open', () => undefined);
    const tokenOnly = limits.filter((l) => l.kind === 'tokens');
    const admission = await limiter.admit(tokenOnly, 10);
    await admission.settle(60);
    const next = await limiter.admit(tokenOnly, 10);
    expect(next.headers['x-ratelimit-remaining-tokens']).toBe('30');
  });

  it('corrects the token charge once, whatever calls settle again', async () => {
    const limiter = new RateLimiter(new MemoryCounterStore(() => 0), 'open', () => undefined);
    const tokenOnly = limits.filter((l) => l.kind === 'tokens');
    const admission = await limiter.admit(tokenOnly, 10);
    await Promise.all([admission.settle(60), admission.settle(60)]);
    await admission.settle(0);
    const next = await limiter.admit(tokenOnly, 10);
    expect(next.headers['x-ratelimit-remaining-tokens']).toBe('30');
  });

  it('follows the fail mode when the store fails', async () => {
    const broken = { take: () => Promise.reject(new Error('down')), adjust: () => Promise.reject(new Error('down')), close: async () => undefined };
    const failures: unknown[] = [];
    await expect(new RateLimiter(broken, 'open', (e) => failures.push(e)).admit(limits, 1)).resolves.toMatchObject({ headers: {} });
    expect(failures).toHaveLength(1);
    await expect(new RateLimiter(broken, 'closed', () => undefined).admit(limits, 1)).rejects.toMatchObject({ kind: 'unavailable', code: 'rate_limiter_unavailable' });
  });

  it('formats durations as OpenAI does', () => {
    expect([formatDuration(20), formatDuration(1500), formatDuration(360_000), formatDuration(61_250)]).toEqual(['20ms', '1.5s', '6m0s', '1m1.25s']);
  });
});
