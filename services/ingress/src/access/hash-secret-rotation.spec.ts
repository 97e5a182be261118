import { createLogger } from '@openrouter/observability';
import { ingressTestConfig } from '../test-config.testing';
import { AdminAuth } from '../admin/admin-auth';
import { MemoryAccessRepository } from './access.repository';
import { AccessService, type Actor } from './access.service';
import { hashApiKey } from './api-key';
import { MemoryCounterStore } from './counter.store';
import { MemoryIdempotencyStore } from './idempotency.store';
import { IdempotentResponses } from './idempotent-responses';
import { KeyDirectory } from './key-directory';
import { acceptsHash, reindexed, type ApiKeyRecord } from './key-record';

const OLD = 'the-old-hash-secret-0001';
const NEW = 'the-new-hash-secret-0002';
const logger = createLogger('hash-secret-rotation-spec', 'silent');
const admin: Actor = { id: 'ops', role: 'admin' };
const keyInput = { name: 'ci', org: 'acme', project: 'search', allowedModels: [], limits: {}, metadata: {}, tags: {} };
const orgs = [{ id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }] }] }];

/** A store that counts its lookups, to see how many a presented key costs. */
class CountingStore extends MemoryAccessRepository {
  readonly lookups: string[] = [];
  override async findKey(hash: string) {
    this.lookups.push(hash);
    return super.findKey(hash);
  }
}

/** An ingress replica on `repository` hashing with `current`, still accepting `previous`. Keys are cached a minute. */
async function replica(repository: MemoryAccessRepository, current: string, previous: string[] = [], extra: object = {}): Promise<AccessService> {
  const config = ingressTestConfig({ access: { keyHashSecret: current, previousKeyHashSecrets: previous, keyCacheMs: 60_000, orgs, ...extra } });
  const service = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
  await service.start();
  return service;
}

describe('rotating access.keyHashSecret', () => {
  it('finds an issued key under the current secret with one lookup, and tries a previous secret only on a miss', async () => {
    const store = new CountingStore();
    const issuer = await replica(store, OLD);
    const { key: oldKey } = await issuer.issueKey(admin, keyInput);
    const rotated = await replica(store, NEW, [OLD]);
    const { key: newKey } = await rotated.issueKey(admin, keyInput);

    store.lookups.length = 0;
    expect(await rotated.keyOf(newKey)).toBeDefined();
    expect(store.lookups).toEqual([hashApiKey(NEW, newKey)]);

    store.lookups.length = 0;
    expect(await rotated.keyOf(oldKey)).toBeDefined();
    // The current secret's hash first (a miss), then the previous one's.
    expect(store.lookups).toEqual([hashApiKey(NEW, oldKey), hashApiKey(OLD, oldKey)]);

    // Re-indexed: the next use (on a fresh replica, nothing cached) is one lookup under the current secret.
    const fresh = await replica(store, NEW, [OLD]);
    store.lookups.length = 0;
    expect(await fresh.keyOf(oldKey)).toBeDefined();
    expect(store.lookups).toEqual([hashApiKey(NEW, oldKey)]);

    // An unknown key: one lookup under each accepted secret, then refused.
    store.lookups.length = 0;
    expect(await fresh.keyOf('sk-or-v1-never-issued')).toBeUndefined();
    expect(store.lookups).toHaveLength(2);
  });

  it('re-indexes a key found under a previous secret under the current one, keeping its id; the old replica still finds it', async () => {
    const repository = new MemoryAccessRepository();
    const old = await replica(repository, OLD);
    const { key, record } = await old.issueKey(admin, keyInput);
    const overlap = await replica(repository, NEW, [OLD]);

    expect((await overlap.keyOf(key))?.id).toBe(record.id);
    const moved = await repository.findKey(hashApiKey(NEW, key));
    expect(moved).toMatchObject({ id: record.id, hash: hashApiKey(NEW, key), formerHashes: [hashApiKey(OLD, key)] });
    expect((await repository.keyById(record.id))?.hash).toBe(hashApiKey(NEW, key));
    // The hashes stay out of the admin API's view.
    expect(Object.keys(await overlap.getKey(admin, record.id))).not.toContain('formerHashes');

    // A replica still on the old secret (not restarted yet) finds it by its old hash.
    const stillOld = await replica(repository, OLD);
    expect((await stillOld.keyOf(key))?.id).toBe(record.id);
    // Once the previous secret is dropped everywhere: used during the overlap, it still works.
    const after = await replica(repository, NEW);
    expect((await after.keyOf(key))?.id).toBe(record.id);
  });

  it('indexes a key issued during the overlap under the previous secret too: a replica not yet restarted accepts it', async () => {
    const repository = new MemoryAccessRepository();
    const old = await replica(repository, OLD);
    const overlap = await replica(repository, NEW, [OLD]);
    const { key, record } = await overlap.issueKey(admin, keyInput);
    expect((await old.keyOf(key))?.id).toBe(record.id);
    expect((await overlap.keyOf(key))?.id).toBe(record.id);
    expect((await (await replica(repository, NEW)).keyOf(key))?.id).toBe(record.id);
  });

  it('refuses after the previous secret is dropped a key that was never used during the overlap', async () => {
    const repository = new MemoryAccessRepository();
    const old = await replica(repository, OLD);
    const { key } = await old.issueKey(admin, keyInput);
    const after = await replica(repository, NEW);
    expect(await after.keyOf(key)).toBeUndefined();
  });

  it('revokes a re-indexed key on every replica, whichever secret each hashes with', async () => {
    const repository = new MemoryAccessRepository();
    const old = await replica(repository, OLD);
    const overlap = await replica(repository, NEW, [OLD]);
    const { key, record } = await old.issueKey(admin, keyInput);
    // Both have it cached (for a minute); the new one re-indexed it.
    expect(await old.keyOf(key)).toBeDefined();
    expect(await overlap.keyOf(key)).toBeDefined();

    await old.revokeKey(admin, record.id);
    expect(await old.keyOf(key)).toBeUndefined();
    expect(await overlap.keyOf(key)).toBeUndefined();
    expect(await (await replica(repository, NEW)).keyOf(key)).toBeUndefined();
  });

  it('revokes from the new replica a key re-indexed there, on the old replica too', async () => {
    const repository = new MemoryAccessRepository();
    const old = await replica(repository, OLD);
    const overlap = await replica(repository, NEW, [OLD]);
    const { key, record } = await old.issueKey(admin, keyInput);
    expect(await overlap.keyOf(key)).toBeDefined();
    expect(await old.keyOf(key)).toBeDefined();
    expect((await overlap.revokeKey(admin, record.id)).revokedAt).toBeDefined();
    expect(await old.keyOf(key)).toBeUndefined();
    expect(await overlap.keyOf(key)).toBeUndefined();
  });

  it('rotates a re-indexed key: during the grace the replaced secret works on both replicas, without a grace on neither', async () => {
    const repository = new MemoryAccessRepository();
    const old = await replica(repository, OLD);
    const overlap = await replica(repository, NEW, [OLD]);
    const { key, record } = await old.issueKey(admin, keyInput);
    expect(await overlap.keyOf(key)).toBeDefined();

    const { key: second } = await overlap.rotateKey(admin, record.id, 3_600);
    for (const service of [old, overlap]) {
      expect((await service.keyOf(key))?.id).toBe(record.id);
      expect((await service.keyOf(second))?.id).toBe(record.id);
    }
    const { key: third } = await overlap.rotateKey(admin, record.id, 0);
    for (const service of [old, overlap]) {
      expect(await service.keyOf(key)).toBeUndefined();
      expect(await service.keyOf(second)).toBeUndefined();
      expect((await service.keyOf(third))?.id).toBe(record.id);
    }
  });

  it('rotates a key re-indexed under the new secret between the rotation reading it and writing it: the same secret, not another rotation', async () => {
    const repository = new MemoryAccessRepository();
    const old = await replica(repository, OLD);
    const { key, record } = await old.issueKey(admin, keyInput);
    const rotate = repository.rotateKey.bind(repository);
    repository.rotateKey = async (...args) => {
      repository.rotateKey = rotate;
      expect(await repository.reindexKey(hashApiKey(OLD, key), hashApiKey(NEW, key))).toBeDefined();
      return rotate(...args);
    };
    const { key: second } = await old.rotateKey(admin, record.id, 3_600);
    for (const service of [await replica(repository, OLD), await replica(repository, NEW, [OLD])]) {
      expect((await service.keyOf(key))?.id).toBe(record.id);
      expect((await service.keyOf(second))?.id).toBe(record.id);
    }
  });

  it('re-indexes the replaced secret of a rotation made under the old secret for the rest of its grace', async () => {
    const repository = new MemoryAccessRepository();
    const old = await replica(repository, OLD);
    const { key: first, record } = await old.issueKey(admin, keyInput);
    const { key: second } = await old.rotateKey(admin, record.id, 3_600);
    const overlap = await replica(repository, NEW, [OLD]);
    expect((await overlap.keyOf(first))?.id).toBe(record.id);
    expect((await overlap.keyOf(second))?.id).toBe(record.id);
    const stored = await repository.keyById(record.id);
    expect(stored).toMatchObject({ hash: hashApiKey(NEW, second), previousHash: hashApiKey(OLD, first), previousFormerHashes: [hashApiKey(NEW, first)] });
    // Both secrets, under both hash secrets, on a replica of either.
    for (const service of [await replica(repository, OLD), await replica(repository, NEW)]) {
      expect((await service.keyOf(first))?.id).toBe(record.id);
      expect((await service.keyOf(second))?.id).toBe(record.id);
    }
  });

  it('accepts a configured key whose hash was made with a previous secret, until that secret is dropped', async () => {
    const key = 'sk-or-v1-a-configured-key-for-rotation';
    const keys = [{ id: 'configured', hash: hashApiKey(OLD, key), org: 'acme' }];
    const repository = new MemoryAccessRepository();
    expect((await (await replica(repository, NEW, [OLD], { keys })).keyOf(key))?.id).toBe('configured');
    expect(await (await replica(repository, NEW, [], { keys })).keyOf(key)).toBeUndefined();
    // Recomputed under the new secret, it no longer needs the old one.
    expect((await (await replica(repository, NEW, [], { keys: [{ ...keys[0], hash: hashApiKey(NEW, key) }] })).keyOf(key))?.id).toBe('configured');
  });

  it('hashes the development key with the current secret', async () => {
    const repository = new MemoryAccessRepository();
    const directory = new KeyDirectory({ current: NEW, previous: [OLD] }, [], [devRecord(hashApiKey(NEW, 'sk-or-dev'))], repository, 0);
    expect((await directory.authenticate('sk-or-dev'))?.id).toBe('dev');
    expect(await directory.authenticate('sk-or-other')).toBeUndefined();
  });

  it('accepts configured admin keys hashed under a previous secret, and the development admin key under the current one', () => {
    const adminKey = 'sk-or-admin-configured-for-rotation';
    const keys = [{ id: 'ops', role: 'admin' as const, hash: hashApiKey(OLD, adminKey) }];
    const overlap = new AdminAuth({ current: NEW, previous: [OLD] }, keys, 'sk-or-admin-dev');
    expect(overlap.authenticateKey(adminKey)).toEqual({ id: 'ops', role: 'admin', org: undefined, project: undefined });
    expect(overlap.authenticateKey('sk-or-admin-dev')).toMatchObject({ id: 'dev-admin' });
    expect(overlap.authenticateKey('sk-or-admin-unknown')).toBeUndefined();
    const after = new AdminAuth({ current: NEW }, keys, 'sk-or-admin-dev');
    expect(after.authenticateKey(adminKey)).toBeUndefined();
    expect(after.authenticateKey('sk-or-admin-dev')).toMatchObject({ id: 'dev-admin' });
  });

  it('replays an idempotent answer recorded under a previous secret, and records new ones under the current one', async () => {
    const store = new MemoryIdempotencyStore();
    const answer = { status: 201, body: { key: 'sk-or-v1-issued' } };
    const before = new IdempotentResponses<typeof answer>(store, OLD);
    const attempt = await before.begin('ops', 'retry-1', 'fp');
    if (attempt.kind !== 'first') throw new Error('expected a first attempt');
    await attempt.complete(answer);

    const overlap = new IdempotentResponses<typeof answer>(store, NEW, { previousSecrets: [OLD] });
    await expect(overlap.begin('ops', 'retry-1', 'fp')).resolves.toEqual({ kind: 'replay', answer });
    await expect(overlap.begin('ops', 'retry-1', 'other')).rejects.toMatchObject({ code: 'idempotency_key_reused' });
    // A new key: recorded under the current secret, which a replica without the old one replays.
    const fresh = await overlap.begin('ops', 'retry-2', 'fp');
    if (fresh.kind !== 'first') throw new Error('expected a first attempt');
    await fresh.complete(answer);
    await expect(new IdempotentResponses<typeof answer>(store, NEW).begin('ops', 'retry-2', 'fp')).resolves.toEqual({ kind: 'replay', answer });
    // A replica still on the old secret finds what a restarted one recorded: its claim (in progress), then its answer.
    const stillOld = new IdempotentResponses<typeof answer>(store, OLD);
    const during = await overlap.begin('ops', 'retry-3', 'fp');
    if (during.kind !== 'first') throw new Error('expected a first attempt');
    await expect(stillOld.begin('ops', 'retry-3', 'fp')).rejects.toMatchObject({ code: 'idempotency_key_in_use' });
    await during.complete(answer);
    await expect(stillOld.begin('ops', 'retry-3', 'fp')).resolves.toEqual({ kind: 'replay', answer });
    // The old secret dropped: the record made only under it is not found (a first attempt).
    expect((await new IdempotentResponses<typeof answer>(store, NEW).begin('ops', 'retry-1', 'fp')).kind).toBe('first');
  });

  it('accepts a re-indexed record under its former hashes, and the replaced secret under its own only during the grace', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const base = devRecord('a'.repeat(64));
    const moved = reindexed({ ...base, source: 'issued' }, 'a'.repeat(64), 'b'.repeat(64), now);
    expect(moved).toMatchObject({ move: true, record: { hash: 'b'.repeat(64), formerHashes: ['a'.repeat(64)] } });
    const record = moved?.record as ApiKeyRecord;
    expect(acceptsHash(record, 'a'.repeat(64), now)).toBe(true);
    expect(acceptsHash(record, 'b'.repeat(64), now)).toBe(true);
    expect(acceptsHash(record, 'c'.repeat(64), now)).toBe(false);
    // Nothing to do twice.
    expect(reindexed(record, 'a'.repeat(64), 'b'.repeat(64), now)).toBeUndefined();
    const rotated = { ...record, previousHash: 'c'.repeat(64), previousExpiresAt: '2030-01-01T01:00:00Z', previousFormerHashes: ['d'.repeat(64)] };
    expect(acceptsHash(rotated, 'd'.repeat(64), now)).toBe(true);
    expect(acceptsHash(rotated, 'd'.repeat(64), new Date('2030-01-01T02:00:00Z'))).toBe(false);
  });
});

function devRecord(hash: string): ApiKeyRecord {
  return { id: 'dev', hash, prefix: 'sk-or-dev', name: 'dev', orgId: 'acme', teamId: '', projectId: '', appId: '', allowedModels: [], limits: {}, metadata: {}, tags: {}, createdAt: new Date(0).toISOString(), source: 'config' };
}
