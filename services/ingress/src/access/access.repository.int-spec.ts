import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createLogger } from '@openrouter/observability';
import { ingressTestConfig } from '../test-config.testing';
import { connectBudgetStore } from '@openrouter/budgets';
import { auditLogOf, RedisAccessRepository, type AuditEntry } from './access.repository';
import { AccessService, type Actor } from './access.service';
import { auditEntry, describeAuditLog } from './audit-log.cases.testing';
import { hashApiKey } from './api-key';
import { MemoryCounterStore } from './counter.store';
import type { ApiKeyRecord, PublicApiKey } from './key-record';

const SECRET = 'redis-access-spec-secret';
const logger = createLogger('access-redis-spec', 'silent');
const admin: Actor = { id: 'ops', role: 'admin' };
const keyInput = { name: '', org: 'acme', allowedModels: [], limits: {}, metadata: {}, tags: {} };
const config = ingressTestConfig({
  access: {
    keyHashSecret: SECRET,
    orgs: [
      { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }] }] },
      { id: 'initech', teams: [{ id: 'ops', projects: [{ id: 'search' }] }] },
    ],
  },
});

/** A replica whose pub/sub is broken: it hears of no change (tenant or key) from the others. */
class DeafRedisAccessRepository extends RedisAccessRepository {
  override onChange(): void {
    // Nothing reaches it.
  }
}

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

/** Appends to the audit log under `prefix` as the gateway's scripts do (with the log's own append_audit), pipelined: one atomic script per entry. */
async function appendAudit(prefix: string, entries: AuditEntry[]): Promise<void> {
  const log = auditLogOf(prefix);
  const control = new Redis(redisUrl());
  try {
    const sha = String(await control.script('LOAD', `${log.appendLua}return append_audit(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))`));
    for (let i = 0; i < entries.length; i += 2_000) {
      const write = control.pipeline();
      for (const entry of entries.slice(i, i + 2_000)) write.evalsha(sha, 2, log.key, log.sequence, JSON.stringify(entry), log.keep);
      await write.exec();
    }
  } finally {
    control.disconnect();
  }
}

describe('the access store on Redis (redis-server)', () => {
  const services: AccessService[] = [];
  let control: Redis;

  beforeAll(() => {
    control = new Redis(redisUrl());
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.close()));
    control.disconnect();
  });

  /** A replica of its own (own connections) on the keys under `prefix`. */
  async function replica(prefix: string, orgLockWaitMs?: number): Promise<AccessService> {
    return replicaOn(new RedisAccessRepository({ url: redisUrl() }, prefix, orgLockWaitMs === undefined ? {} : { orgLockWaitMs }));
  }

  /** A replica on this store (a test can then step in between its reads and its writes). */
  async function replicaOn(repository: RedisAccessRepository): Promise<AccessService> {
    expect(await repository.ready()).toBe(true);
    const service = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
    services.push(service);
    await service.start();
    return service;
  }

  const freshPrefix = (): string => `access-spec-${randomBytes(4).toString('hex')}:`;

  async function auditActions(prefix: string): Promise<string[]> {
    return (await control.lrange(`${prefix}audit`, 0, -1)).map((e) => (JSON.parse(e) as AuditEntry).action);
  }

  it('revokes a key once when replicas race to revoke it: one audit entry, and one revoked_at that every answer shows', async () => {
    const prefix = freshPrefix();
    const [a, b] = await Promise.all([replica(prefix), replica(prefix)]);
    const { record } = await a!.issueKey(admin, keyInput);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a! : b!).revokeKey(admin, record.id)));
    const stored = await b!.getKey(admin, record.id);
    expect(stored.revokedAt).toBeDefined();
    expect(new Set(answers.map((k) => k.revokedAt))).toEqual(new Set([stored.revokedAt]));
    expect(await auditActions(prefix)).toEqual(['key.revoke', 'key.issue']);
  });

  it('refuses a rotation another replica made between its read of the key and its write (409 key_changed): the secret clients hold keeps its grace', async () => {
    const prefix = freshPrefix();
    const a = await replica(prefix);
    const repository = new RedisAccessRepository({ url: redisUrl() }, prefix);
    const b = await replicaOn(repository);
    const { key: first, record } = await a.issueKey(admin, keyInput);
    const rotate = repository.rotateKey.bind(repository);
    let second = '';
    repository.rotateKey = async (...args) => {
      repository.rotateKey = rotate;
      second = (await a.rotateKey({ id: 'pipeline-1', role: 'admin' }, record.id, 86_400)).key;
      return rotate(...args);
    };
    await expect(b.rotateKey({ id: 'pipeline-2', role: 'admin' }, record.id, 86_400)).rejects.toMatchObject({ kind: 'conflict', code: 'key_changed' });
    for (const service of [a, b]) {
      expect((await service.keyOf(first))?.id).toBe(record.id);
      expect((await service.keyOf(second))?.id).toBe(record.id);
    }
    const entries = (await control.lrange(`${prefix}audit`, 0, -1)).map((e) => JSON.parse(e) as AuditEntry);
    expect(entries.map((e) => [e.action, e.actor, e.details['previous_prefix']])).toEqual([
      ['key.rotate', 'pipeline-1', first.slice(0, 14)],
      ['key.issue', 'ops', undefined],
    ]);
  });

  it('revokes a key another replica rotated without a grace between the revocation reading it and writing it', async () => {
    const prefix = freshPrefix();
    const a = await replica(prefix);
    const repository = new RedisAccessRepository({ url: redisUrl() }, prefix);
    const b = await replicaOn(repository);
    const { record } = await a.issueKey(admin, keyInput);
    const revoke = repository.revokeKey.bind(repository);
    let second = '';
    repository.revokeKey = async (...args) => {
      repository.revokeKey = revoke;
      second = (await a.rotateKey(admin, record.id, 0)).key;
      return revoke(...args);
    };
    const revoked = await b.revokeKey(admin, record.id);
    expect(revoked).toMatchObject({ id: record.id, prefix: second.slice(0, 14), revokedAt: expect.any(String) });
    for (const service of [a, b]) expect(await service.keyOf(second)).toBeUndefined();
    expect(await auditActions(prefix)).toEqual(['key.revoke', 'key.rotate', 'key.issue']);
  });

  it("answers a change that waited out another's hold on the org's lock with a retryable tenant_busy, not as Redis unreachable", async () => {
    const prefix = freshPrefix();
    const access = await replica(prefix, 300);
    await control.set(`${prefix}org-lock:acme`, 'another-request', 'PX', 60_000);
    const busy = await access.addTeam(admin, 'acme', { id: 'late' }).catch((error: unknown) => error);
    expect(busy).toMatchObject({ kind: 'overloaded', code: 'tenant_busy', retryable: true, message: 'The organisation "acme" is being changed by other requests. Please retry in a moment.' });
    expect(await auditActions(prefix)).toEqual([]);
    await control.del(`${prefix}org-lock:acme`);
    await expect(access.addTeam(admin, 'acme', { id: 'late' })).resolves.toMatchObject({ id: 'late' });
  });

  it("waits out a lock whose holder died (it expires) instead of failing the change", async () => {
    const prefix = freshPrefix();
    const access = await replica(prefix);
    await control.set(`${prefix}org-lock:acme`, 'a-replica-that-died', 'PX', 500);
    await expect(access.addTeam(admin, 'acme', { id: 'patient' })).resolves.toMatchObject({ id: 'patient' });
  });

  it("keeps tenants' and keys' routing policies in Redis: another replica routes a key under them", async () => {
    const prefix = freshPrefix();
    const [a, b] = await Promise.all([replica(prefix), replica(prefix)]);
    await a.addOrg(admin, { id: 'globex', policy: { providers: ['sim'] } });
    const { key } = await a.issueKey(admin, { ...keyInput, org: 'globex', policy: { excludeProviders: ['sim'] } });
    await b.reloadTenants();
    const seen = await b.authenticate(key, 'r', {}, undefined);
    expect(seen?.record.policy).toEqual({ excludeProviders: ['sim'] });
    expect(seen?.context.policy).toEqual({ providers: { values: ['sim'] }, excludeProviders: ['sim'], guardrails: [] });
  });

  it("routes an issued key under its org's policy on a replica that has not heard of the org yet: it reloads the tenants before placing the key", async () => {
    const prefix = freshPrefix();
    const a = await replica(prefix);
    // B's pub/sub is broken and its version check far off: nothing tells it of the new org.
    const repository = new DeafRedisAccessRepository({ url: redisUrl() }, prefix);
    expect(await repository.ready()).toBe(true);
    const b = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined, undefined, { checkEveryMs: 3_600_000 });
    services.push(b);
    await b.start();
    await a.addOrg(admin, { id: 'restricted', costCenter: 'cc-r', policy: { providers: ['sim'] } });
    const { key } = await a.issueKey(admin, { ...keyInput, org: 'restricted' });
    expect(b.tenants.org('restricted')).toBeUndefined();
    const seen = await b.authenticate(key, 'r', {}, undefined);
    expect(seen?.context.policy).toEqual({ providers: { values: ['sim'] }, excludeProviders: [], guardrails: [] });
    expect(seen?.context.costCenter).toBe('cc-r');
  });

  it('reads an organisation a newer replica stored with a field it does not know, and keeps its teams when it changes it', async () => {
    const prefix = freshPrefix();
    const written = { id: 'globex', name: 'Globex', costCenter: 'cc-9', limits: { rpm: 100 }, teams: [{ id: 'search', projects: [{ id: 'p1' }] }], budgetPolicy: 'strict' };
    await control.hset(`${prefix}orgs`, 'globex', JSON.stringify(written));
    const repository = new RedisAccessRepository({ url: redisUrl() }, prefix);
    expect(await repository.ready()).toBe(true);
    try {
      const [org] = await repository.listOrgs();
      expect(org).toMatchObject({ id: 'globex', name: 'Globex', costCenter: 'cc-9', limits: { rpm: 100 }, teams: [{ id: 'search', projects: [{ id: 'p1' }] }] });
      await repository.updateOrg('globex', (stored) => ({ ...(stored ?? { id: 'globex', limits: {}, teams: [] }), teams: [...(stored?.teams ?? []), { id: 'ads', limits: {}, projects: [] }] }));
      const after = JSON.parse((await control.hget(`${prefix}orgs`, 'globex')) ?? '{}') as { teams: Array<{ id: string }>; name: string };
      expect(after.teams.map((t) => t.id)).toEqual(['search', 'ads']);
      expect(after.name).toBe('Globex');

      // A record that cannot be read at all is left as it is, never replaced as if there were none.
      await control.hset(`${prefix}orgs`, 'broken', '{"id":"broken","teams":"not a list"}');
      await expect(repository.updateOrg('broken', () => ({ id: 'broken', limits: {}, teams: [] }))).rejects.toThrow(/cannot be read/);
      expect(await control.hget(`${prefix}orgs`, 'broken')).toBe('{"id":"broken","teams":"not a list"}');
    } finally {
      await repository.close();
    }
  });

  it('keeps the latest time a key was used, whichever replica writes last, and reads only the keys asked for', async () => {
    const prefix = freshPrefix();
    const [one, two] = [new RedisAccessRepository({ url: redisUrl() }, prefix), new RedisAccessRepository({ url: redisUrl() }, prefix)];
    expect(await Promise.all([one.ready(), two.ready()])).toEqual([true, true]);
    try {
      await one.recordKeyUses(new Map([['key_a', 2_000], ['key_b', 1_000]]));
      // Replica two saw key_a earlier but writes later: the stored time does not go back.
      await two.recordKeyUses(new Map([['key_a', 1_500], ['key_b', 3_000]]));
      await two.recordKeyUses(new Map());
      expect(await one.keysLastUsed(['key_a', 'key_b', 'key_never'])).toEqual(new Map([['key_a', 2_000], ['key_b', 3_000]]));
      expect(await two.keysLastUsed([])).toEqual(new Map());
      expect(await control.hgetall(`${prefix}key-last-used`)).toEqual({ key_a: '2000', key_b: '3000' });
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('advances the tenant version in the write itself, so a replica that never heard of a change loads it at its next check', async () => {
    const prefix = freshPrefix();
    const writer = new RedisAccessRepository({ url: redisUrl() }, prefix);
    const repository = new RedisAccessRepository({ url: redisUrl() }, prefix);
    expect((await Promise.all([writer.ready(), repository.ready()])).every(Boolean)).toBe(true);
    const reader = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined, undefined, { checkEveryMs: 10 });
    services.push(reader);
    try {
      await reader.start();
      const before = Number(await writer.tenantsVersion());
      // Stored by another replica, and never announced (its publish failed every time).
      await writer.updateOrg('unheard', () => ({ id: 'unheard', limits: {}, teams: [] }));
      expect(Number(await writer.tenantsVersion())).toBe(before + 1);
      for (let i = 0; i < 200 && !reader.tenants.org('unheard'); i++) await new Promise((done) => setTimeout(done, 10));
      expect(reader.tenants.org('unheard')).toMatchObject({ id: 'unheard' });
    } finally {
      await writer.close();
    }
  });

  describe('key lists', () => {
    const places = [{ org: 'acme' }, { org: 'acme', project: 'search' }, { org: 'acme', project: 'ads' }, { org: 'initech', project: 'search' }];

    /** Every page of a list, following `after` from each page's last key. */
    async function allPages(access: AccessService, actor: Actor, filter: { org?: string; project?: string }, limit: number): Promise<PublicApiKey[][]> {
      const pages: PublicApiKey[][] = [];
      for (let after: string | undefined; ; ) {
        const page = await access.listKeys(actor, { ...filter, limit, after });
        pages.push(page.data);
        if (!page.hasMore) return pages;
        after = page.data.at(-1)?.id;
      }
    }

    /** A key as a version without list indexes stored it: the record and its id, nothing else. */
    async function storeUnindexed(prefix: string, i: number): Promise<ApiKeyRecord> {
      const hash = hashApiKey(SECRET, `sk-or-v1-legacy-${i}`);
      const place = places[i % places.length]!;
      const record: ApiKeyRecord = {
        ...{ id: `key_${hash.slice(0, 16)}`, hash, prefix: 'sk-or-v1-legac', name: `legacy${i}`, orgId: place.org, teamId: '', projectId: place.project ?? '', appId: '' },
        ...{ allowedModels: [], limits: {}, metadata: {}, tags: {}, createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(), source: 'issued' },
      };
      await control.multi().set(`${prefix}key:${hash}`, JSON.stringify(record)).hset(`${prefix}key-ids`, record.id, hash).exec();
      return record;
    }

    const byPosition = (a: { createdAt: string; id: string }, b: { createdAt: string; id: string }): number => a.createdAt.localeCompare(b.createdAt) || (a.id < b.id ? -1 : 1);

    it('pages a few hundred keys: complete, disjoint, oldest first, keys stored before the indexes existed included; scoped admins see their scope only', async () => {
      const prefix = freshPrefix();
      const legacy: ApiKeyRecord[] = [];
      for (let i = 0; i < 60; i++) legacy.push(await storeUnindexed(prefix, i));
      const [a, b] = await Promise.all([replica(prefix), replica(prefix)]);
      const issued: PublicApiKey[] = [];
      for (let i = 0; i < 240; i++) issued.push((await (i % 2 ? a! : b!).issueKey(admin, { ...keyInput, name: `k${i}`, ...places[i % places.length] })).record);
      const every = [...legacy, ...issued].sort(byPosition);

      const pages = await allPages(a!, admin, {}, 64);
      expect(pages.map((p) => p.length)).toEqual([64, 64, 64, 64, 44]);
      expect(pages.flat().map((k) => k.id)).toEqual(every.map((k) => k.id));
      expect(new Set(pages.flat().map((k) => k.id)).size).toBe(300);

      const acmeAdmin: Actor = { id: 'acme-ops', role: 'admin', org: 'acme' };
      expect((await allPages(b!, acmeAdmin, {}, 50)).flat().map((k) => k.id)).toEqual(every.filter((k) => k.orgId === 'acme').map((k) => k.id));
      const searchAdmin: Actor = { id: 'search-ops', role: 'admin', org: 'acme', project: 'search' };
      const search = await allPages(b!, searchAdmin, {}, 20);
      expect(search.flat().map((k) => k.id)).toEqual(every.filter((k) => k.orgId === 'acme' && k.projectId === 'search').map((k) => k.id));
      expect(search.slice(0, -1).every((p) => p.length === 20)).toBe(true);
      expect((await allPages(a!, admin, { project: 'search' }, 41)).flat().map((k) => k.id)).toEqual(every.filter((k) => k.projectId === 'search').map((k) => k.id));
      expect((await allPages(a!, admin, { org: 'initech' }, 1000)).flat().map((k) => k.id)).toEqual(every.filter((k) => k.orgId === 'initech').map((k) => k.id));

      // A key stored without its indexes later (a replica still on the old version) is listed too.
      const late = await storeUnindexed(prefix, 61);
      const all = (await allPages(a!, admin, {}, 1000)).flat();
      expect(all).toHaveLength(301);
      expect(all.map((k) => k.id)).toContain(late.id);
    }, 60_000);
  });

  describe('the audit log', () => {
    /** Entries as a version without ids wrote them (before this one, or an older replica during a rolling upgrade). */
    async function appendWithoutIds(prefix: string, entries: AuditEntry[]): Promise<void> {
      for (const entry of entries) await control.lpush(`${prefix}audit`, JSON.stringify(entry));
    }

    async function allIds(access: AccessService): Promise<Array<[number, string]>> {
      const page = await access.auditPage(admin, { limit: 1000 });
      expect(page.hasMore).toBe(false);
      return page.data.map((e) => [e.id, e.target]);
    }

    it('gives entries of two replicas and a budget store appending at once unique ids, increasing in the order the log holds them, stored with each entry', async () => {
      const prefix = freshPrefix();
      const [a, b] = await Promise.all([replica(prefix), replica(prefix)]);
      const budgets = connectBudgetStore({ url: redisUrl() }, prefix, { auditLog: auditLogOf(prefix) });
      try {
        expect(await budgets.ready(3_000)).toBe(true);
        const budget = (id: string) => ({ id, scope: { org: 'acme' }, period: 'daily' as const, timezone: 'UTC', amount: '1', currency: 'USD', enforcement: 'hard' as const, alertThresholds: [100], createdAt: '2025-06-01T00:00:00.000Z', updatedAt: '2025-06-01T00:00:00.000Z' });
        await Promise.all([
          ...Array.from({ length: 30 }, (_, i) => (i % 2 ? a! : b!).issueKey(admin, { ...keyInput, name: `k${i}` })),
          ...Array.from({ length: 6 }, (_, i) => (i % 2 ? a! : b!).addTeam(admin, 'acme', { id: `team${i}` })),
          ...Array.from({ length: 20 }, (_, i) => budgets.update(`b${i}`, () => budget(`b${i}`), auditEntry(i, { action: 'budget.create', target: `b${i}` }))),
        ]);
        const stored = (await control.lrange(`${prefix}audit`, 0, -1)).map((e) => JSON.parse(e) as { id: number; action: string });
        expect(stored.map((e) => e.id)).toEqual(Array.from({ length: 56 }, (_, i) => 56 - i));
        expect(stored.filter((e) => e.action === 'budget.create')).toHaveLength(20);
        expect(await control.get(`${prefix}audit:seq`)).toBe('56');
        // Each replica reads the same ids.
        expect(await allIds(a!)).toEqual(await allIds(b!));
        expect((await allIds(a!)).map(([id]) => id)).toEqual(stored.map((e) => e.id));
      } finally {
        await budgets.close();
      }
    });

    it('numbers the entries written before ids existed by their place, and keeps their numbers as entries are appended, with ids or without (a rolling upgrade), and as the oldest are trimmed', async () => {
      const prefix = freshPrefix();
      await appendWithoutIds(prefix, [auditEntry(0), auditEntry(1), auditEntry(2)]);
      // One entry a newer version cannot read (not an audit entry): numbered all the same, never shown.
      await control.lpush(`${prefix}audit`, '"not an entry"');
      await appendWithoutIds(prefix, [auditEntry(4)]);
      const access = await replica(prefix);
      const before = [[5, 't4'], [3, 't2'], [2, 't1'], [1, 't0']];
      expect(await allIds(access)).toEqual(before);

      await appendAudit(prefix, [auditEntry(5)]);
      // An older replica appends without an id, then this version again, then the older one.
      await appendWithoutIds(prefix, [auditEntry(6), auditEntry(7)]);
      await access.addTeam(admin, 'acme', { id: 'upgraded' });
      await appendWithoutIds(prefix, [auditEntry(9)]);
      const after = [[10, 't9'], [9, 'upgraded'], [8, 't7'], [7, 't6'], [6, 't5'], ...before];
      expect(await allIds(access)).toEqual(after);
      const raw = await control.lrange(`${prefix}audit`, 0, -1);
      expect(raw.map((e) => (JSON.parse(e) as { id?: number }).id ?? null)).toEqual([null, 9, null, null, 6, null, null, null, null, null]);

      // Paged, from either end, each entry once.
      const older = [];
      for (let after: number | undefined, page; (page = await access.auditPage(admin, { limit: 3, after })); after = page.lastId) {
        older.push(...page.data.map((e) => e.id));
        if (!page.hasMore) break;
      }
      expect(older).toEqual([10, 9, 8, 7, 6, 5, 3, 2, 1]);
      await expect(access.auditPage(admin, { limit: 4, before: 2 })).resolves.toMatchObject({ data: [{ id: 7 }, { id: 6 }, { id: 5 }, { id: 3 }], firstId: 7, lastId: 3, hasMore: true });

      // The oldest entries trimmed away (as the log's bound does): the others keep their ids.
      await control.ltrim(`${prefix}audit`, 0, 5);
      expect(await allIds(access)).toEqual(after.slice(0, 6));
      await appendAudit(prefix, [auditEntry(10)]);
      expect((await allIds(access)).slice(0, 2)).toEqual([[11, 't10'], [10, 't9']]);
    });

    it('goes on numbering from the last id given when the log holds no entry with one (deleted)', async () => {
      const prefix = freshPrefix();
      await appendAudit(prefix, [auditEntry(0), auditEntry(1)]);
      await control.del(`${prefix}audit`);
      await appendWithoutIds(prefix, [auditEntry(2)]);
      await appendAudit(prefix, [auditEntry(3)]);
      const access = await replica(prefix);
      expect(await allIds(access)).toEqual([[4, 't3'], [3, 't2']]);
    });
  });
});

describeAuditLog('Redis', async () => {
  const prefix = `audit-cases-${randomBytes(4).toString('hex')}:`;
  const repository = new RedisAccessRepository({ url: redisUrl() }, prefix);
  expect(await repository.ready()).toBe(true);
  return { repository, append: (entries) => appendAudit(prefix, entries) };
});
