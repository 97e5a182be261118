import { createLogger } from '@openrouter/observability';
import { GatewayError } from '@openrouter/errors';
import { ingressTestConfig } from '../test-config.testing';
import { MemoryAccessRepository } from './access.repository';
import { AccessService, type Actor } from './access.service';
import { hashApiKey } from './api-key';
import { MemoryCounterStore } from './counter.store';
import { acceptsHash, graceEndOf, publicView, type ApiKeyRecord } from './key-record';

const SECRET = 'unit-test-secret-000';
const logger = createLogger('key-changes-spec', 'silent');
const admin: Actor = { id: 'ops', role: 'admin' };
const keyInput = { name: 'ci', org: 'acme', project: 'search', allowedModels: [], limits: {}, metadata: { owner: 'ci' }, tags: {} };
const DEV_KEY = 'sk-or-v1-development-key-for-the-unit-spec';

/** Two replicas: two services on one store, whose notices reach both (as Redis pub/sub does). Keys are cached a minute. */
async function replicas(): Promise<{ a: AccessService; b: AccessService; repository: MemoryAccessRepository }> {
  const repository = new MemoryAccessRepository();
  const config = ingressTestConfig({ access: { keyHashSecret: SECRET, keyCacheMs: 60_000, orgs: [{ id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }] }] }] } });
  const [a, b] = [new AccessService(config, repository, new MemoryCounterStore(), logger, DEV_KEY), new AccessService(config, repository, new MemoryCounterStore(), logger, DEV_KEY)];
  await Promise.all([a.start(), b.start()]);
  return { a, b, repository };
}

async function refusal(promise: Promise<unknown>): Promise<GatewayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GatewayError);
  return error as GatewayError;
}

describe('changing an issued key', () => {
  it('changes the fields given, keeps the id and secret, and every replica sees it at once', async () => {
    const { a, b, repository } = await replicas();
    const { key, record } = await a.issueKey(admin, { ...keyInput, expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    // Replica b has the key cached (for a minute) as issued.
    expect((await b.authenticate(key, 'r1', {}, undefined))?.context.allowedModels).toEqual([]);

    const changed = await a.updateKey(admin, record.id, { name: 'ci-2', allowedModels: ['m'], limits: { rpm: 5 }, expiresAt: null, tags: { env: 'prod' } });
    expect(changed).toMatchObject({ id: record.id, name: 'ci-2', allowedModels: ['m'], limits: { rpm: 5 }, tags: { env: 'prod' }, metadata: { owner: 'ci' } });
    expect(changed.expiresAt).toBeUndefined();
    const seen = await b.authenticate(key, 'r2', {}, undefined);
    expect(seen?.context.allowedModels).toEqual(['m']);
    expect(seen?.record).toMatchObject({ id: record.id, name: 'ci-2', limits: { rpm: 5 } });

    const [entry] = (await repository.readAudit({ direction: 'older', count: 1 })).entries;
    expect(entry).toMatchObject({ action: 'key.update', target: record.id, actor: 'ops', details: { org: 'acme', project: 'search', fields: ['name', 'allowed_models', 'limits', 'expires_at', 'tags'] } });
    // Which fields, never their values.
    expect(JSON.stringify(entry)).not.toContain('ci-2');
  });

  it('validates as at issue: a model no request can name, an expiry in the past, nothing to change', async () => {
    const { a } = await replicas();
    const { record } = await a.issueKey(admin, keyInput);
    expect(await refusal(a.updateKey(admin, record.id, { allowedModels: ['m', 'gpt-5-typo'] }))).toMatchObject({ kind: 'bad_request', param: 'allowed_models[1]', code: 'invalid_value' });
    expect(await refusal(a.updateKey(admin, record.id, { expiresAt: '2020-01-01T00:00:00Z' }))).toMatchObject({ kind: 'bad_request', param: 'expires_at' });
    expect(await refusal(a.updateKey(admin, record.id, {}))).toMatchObject({ kind: 'bad_request', code: 'invalid_value' });
    expect((await a.getKey(admin, record.id)).allowedModels).toEqual([]);
  });

  it('refuses a revoked key (409 key_revoked), another scope\'s key and a configured key (404)', async () => {
    const { a, repository } = await replicas();
    const { record } = await a.issueKey(admin, keyInput);
    const adsAdmin: Actor = { id: 'ads-ops', role: 'admin', org: 'acme', project: 'ads' };
    expect(await refusal(a.updateKey(adsAdmin, record.id, { name: 'x' }))).toMatchObject({ kind: 'not_found', code: 'not_found' });
    expect(await refusal(a.rotateKey(adsAdmin, record.id, 60))).toMatchObject({ kind: 'not_found', code: 'not_found' });
    // The development key is a configured key, as revocation treats it: not an issued one.
    expect(await refusal(a.updateKey(admin, 'dev', { name: 'x' }))).toMatchObject({ kind: 'not_found' });
    expect(await refusal(a.rotateKey(admin, 'dev', 60))).toMatchObject({ kind: 'not_found' });
    const scoped: Actor = { id: 'search-ops', role: 'admin', org: 'acme', project: 'search' };
    expect((await a.updateKey(scoped, record.id, { name: 'mine' })).name).toBe('mine');

    await a.revokeKey(admin, record.id);
    const audited = (await repository.readAudit({ direction: 'older', count: 100 })).entries.length;
    expect(await refusal(a.updateKey(admin, record.id, { name: 'x' }))).toMatchObject({ kind: 'conflict', code: 'key_revoked' });
    expect(await refusal(a.rotateKey(admin, record.id, 60))).toMatchObject({ kind: 'conflict', code: 'key_revoked' });
    expect((await repository.readAudit({ direction: 'older', count: 100 })).entries).toHaveLength(audited);
  });

  it('refuses to rotate an expired key (409 key_expired), whose new secret would never be accepted, until its expiry is moved', async () => {
    const { a, repository } = await replicas();
    const { record } = await a.issueKey(admin, { ...keyInput, expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    const stored = await repository.keyById(record.id);
    if (!stored) throw new Error('expected the key');
    await repository.saveKey({ ...stored, expiresAt: '2026-01-01T00:00:00.000Z' });
    const audited = (await repository.readAudit({ direction: 'older', count: 100 })).entries.length;
    const refused = await refusal(a.rotateKey(admin, record.id, 60));
    expect(refused).toMatchObject({ kind: 'conflict', code: 'key_expired', param: 'id' });
    expect(refused.message).toContain('expired at 2026-01-01T00:00:00.000Z');
    expect((await repository.keyById(record.id))?.hash).toBe(stored.hash);
    expect((await repository.readAudit({ direction: 'older', count: 100 })).entries).toHaveLength(audited);
    // Given a later expiry, it rotates, and its new secret is accepted.
    await a.updateKey(admin, record.id, { expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    const rotated = await a.rotateKey(admin, record.id, 0);
    expect(await a.keyOf(rotated.key)).toBeDefined();
  });

  it('refuses a key revoked between its read and its write, writing nothing', async () => {
    const { a, repository } = await replicas();
    const { record } = await a.issueKey(admin, keyInput);
    const stored = await repository.keyById(record.id);
    const revokeFirst = repository.updateKey.bind(repository);
    // Another replica revokes it while this change is on its way to the store.
    repository.updateKey = async (id, change, audit) => {
      await repository.saveKey({ ...stored!, revokedAt: new Date().toISOString() });
      return revokeFirst(id, change, audit);
    };
    expect(await refusal(a.updateKey(admin, record.id, { name: 'x' }))).toMatchObject({ code: 'key_revoked' });
    expect((await a.getKey(admin, record.id)).name).toBe('ci');
  });
});

describe('rotating a key', () => {
  it('gives a new secret under the same id; the old one works on every replica during the grace', async () => {
    const { a, b, repository } = await replicas();
    const { key: first, record } = await a.issueKey(admin, keyInput);
    expect(await b.keyOf(first)).toBeDefined();

    const { key: second, record: rotated } = await a.rotateKey(admin, record.id, 3_600);
    expect(second).not.toBe(first);
    expect(rotated).toMatchObject({ id: record.id, name: 'ci', createdAt: record.createdAt, prefix: second.slice(0, 14) });
    expect(rotated).not.toHaveProperty('hash');
    expect(rotated).not.toHaveProperty('previousHash');
    expect(Date.parse(rotated.previousExpiresAt ?? '')).toBeGreaterThan(Date.now() + 3_500_000);
    for (const replica of [a, b]) {
      expect((await replica.keyOf(first))?.id).toBe(record.id);
      expect((await replica.keyOf(second))?.id).toBe(record.id);
    }
    expect((await a.getKey(admin, record.id)).prefix).toBe(second.slice(0, 14));
    const { records } = await repository.listKeys({ limit: 10 });
    expect(records.map((r) => r.id)).toEqual([record.id]);

    const [entry] = (await repository.readAudit({ direction: 'older', count: 1 })).entries;
    expect(entry).toMatchObject({ action: 'key.rotate', target: record.id, details: { prefix: second.slice(0, 14), previous_prefix: first.slice(0, 14), grace_seconds: 3_600 } });
    const written = JSON.stringify(entry);
    for (const secret of [first, second, hashApiKey(SECRET, first), hashApiKey(SECRET, second)]) expect(written).not.toContain(secret);
  });

  it('refuses the old secret at once with no grace, on a replica that had it cached too', async () => {
    const { a, b } = await replicas();
    const { key: first, record } = await a.issueKey(admin, keyInput);
    expect(await b.keyOf(first)).toBeDefined();
    const { key: second, record: rotated } = await a.rotateKey(admin, record.id, 0);
    expect(rotated.previousExpiresAt).toBeUndefined();
    for (const replica of [a, b]) {
      expect(await replica.keyOf(first)).toBeUndefined();
      expect((await replica.keyOf(second))?.id).toBe(record.id);
    }
  });

  it('ends the earlier grace when rotated again: two secrets at most', async () => {
    const { a, b } = await replicas();
    const { key: first, record } = await a.issueKey(admin, keyInput);
    const { key: second } = await a.rotateKey(admin, record.id, 3_600);
    expect(await b.keyOf(first)).toBeDefined();
    const { key: third } = await b.rotateKey(admin, record.id, 3_600);
    for (const replica of [a, b]) {
      expect(await replica.keyOf(first)).toBeUndefined();
      expect((await replica.keyOf(second))?.id).toBe(record.id);
      expect((await replica.keyOf(third))?.id).toBe(record.id);
    }
  });

  it('applies a change to the old secret too during the grace, on a replica that had it cached', async () => {
    const { a, b } = await replicas();
    const { key: first, record } = await a.issueKey(admin, keyInput);
    await a.rotateKey(admin, record.id, 3_600);
    expect((await b.authenticate(first, 'r1', {}, undefined))?.context.allowedModels).toEqual([]);
    await a.updateKey(admin, record.id, { allowedModels: ['m'] });
    expect((await b.authenticate(first, 'r2', {}, undefined))?.context.allowedModels).toEqual(['m']);
  });

  it('refuses both secrets of a rotated key once it is revoked, on every replica', async () => {
    const { a, b } = await replicas();
    const { key: first, record } = await a.issueKey(admin, keyInput);
    const { key: second } = await a.rotateKey(admin, record.id, 3_600);
    expect(await b.keyOf(first)).toBeDefined();
    expect(await b.keyOf(second)).toBeDefined();
    await a.revokeKey(admin, record.id);
    for (const replica of [a, b]) {
      expect(await replica.keyOf(first)).toBeUndefined();
      expect(await replica.keyOf(second)).toBeUndefined();
    }
  });
});

describe('changes of one key racing', () => {
  it('refuses a rotation that another one overtook (409 key_changed): the secret clients hold keeps its grace, and the audit names what was replaced', async () => {
    const { a, b, repository } = await replicas();
    const { key: first, record } = await a.issueKey(admin, keyInput);
    // Replica a rotates between b's read of the key and b's write.
    const rotate = repository.rotateKey.bind(repository);
    let second: string | undefined;
    repository.rotateKey = async (...args) => {
      repository.rotateKey = rotate;
      second = (await a.rotateKey({ id: 'pipeline-1', role: 'admin' }, record.id, 86_400)).key;
      return rotate(...args);
    };
    const refused = await refusal(b.rotateKey({ id: 'pipeline-2', role: 'admin' }, record.id, 86_400));
    expect(refused).toMatchObject({ kind: 'conflict', code: 'key_changed', param: 'id' });
    expect(refused.message).toContain('read it again');
    // The first rotation stands as made: its new secret, and the one every client held during its grace.
    for (const replica of [a, b]) {
      expect((await replica.keyOf(first))?.id).toBe(record.id);
      expect((await replica.keyOf(second ?? ''))?.id).toBe(record.id);
    }
    const { entries } = await repository.readAudit({ direction: 'older', count: 5 });
    expect(entries.map((e) => [e.action, e.actor, e.details['previous_prefix']])).toEqual([
      ['key.rotate', 'pipeline-1', first.slice(0, 14)],
      ['key.issue', 'ops', undefined],
    ]);
  });

  it('makes one of two rotations sent at once and refuses the other: one record, its secret and the one it replaced', async () => {
    const { a, b, repository } = await replicas();
    const { key: first, record } = await a.issueKey(admin, keyInput);
    const answers = await Promise.allSettled([a.rotateKey(admin, record.id, 3_600), b.rotateKey(admin, record.id, 3_600)]);
    const made = answers.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value] : []));
    const refused = answers.flatMap((answer) => (answer.status === 'rejected' ? [answer.reason as unknown] : []));
    expect(made).toHaveLength(1);
    expect(refused).toEqual([expect.objectContaining({ kind: 'conflict', code: 'key_changed' })]);
    expect((await repository.listKeys({ limit: 10 })).records.map((r) => r.prefix)).toEqual([made[0]?.key.slice(0, 14)]);
    expect((await a.keyOf(first))?.id).toBe(record.id);
    expect((await b.keyOf(made[0]?.key ?? ''))?.id).toBe(record.id);
  });

  it('rotates a key changed otherwise meanwhile (its secret the same), keeping the change', async () => {
    const { a, b, repository } = await replicas();
    const { key: first, record } = await a.issueKey(admin, keyInput);
    const rotate = repository.rotateKey.bind(repository);
    repository.rotateKey = async (...args) => {
      repository.rotateKey = rotate;
      await a.updateKey(admin, record.id, { name: 'ci-2' });
      return rotate(...args);
    };
    const { key: second, record: rotated } = await b.rotateKey(admin, record.id, 3_600);
    expect(rotated).toMatchObject({ name: 'ci-2', prefix: second.slice(0, 14) });
    expect((await a.keyOf(first))?.id).toBe(record.id);
  });

  it('revokes a key rotated (without a grace) between the revocation reading it and writing it: under its new secret', async () => {
    const { a, b, repository } = await replicas();
    const { record } = await a.issueKey(admin, keyInput);
    const revoke = repository.revokeKey.bind(repository);
    let second: string | undefined;
    repository.revokeKey = async (...args) => {
      repository.revokeKey = revoke;
      second = (await b.rotateKey(admin, record.id, 0)).key;
      return revoke(...args);
    };
    const revoked = await a.revokeKey(admin, record.id);
    expect(revoked).toMatchObject({ id: record.id, prefix: second?.slice(0, 14), revokedAt: expect.any(String) });
    for (const replica of [a, b]) expect(await replica.keyOf(second ?? '')).toBeUndefined();
    expect((await b.getKey(admin, record.id)).revokedAt).toBe(revoked.revokedAt);
  });
});

describe('acceptsHash', () => {
  const hash = (c: string) => c.repeat(64);
  const record: ApiKeyRecord = {
    ...publicView({ id: 'k', hash: hash('a'), prefix: 'p', name: '', orgId: 'o', teamId: '', projectId: '', appId: '', allowedModels: [], limits: {}, metadata: {}, tags: {}, createdAt: '2025-01-01T00:00:00Z', source: 'issued' }),
    hash: hash('a'),
    previousHash: hash('b'),
    previousExpiresAt: '2025-06-01T00:00:00.000Z',
  };

  it('accepts the current hash always and the replaced one only before its grace ends', () => {
    expect(acceptsHash(record, hash('a'), new Date('2030-01-01T00:00:00Z'))).toBe(true);
    expect(acceptsHash(record, hash('b'), new Date('2025-05-31T23:59:59Z'))).toBe(true);
    expect(acceptsHash(record, hash('b'), new Date('2025-06-01T00:00:00Z'))).toBe(false);
    expect(acceptsHash(record, hash('c'), new Date('2025-01-02T00:00:00Z'))).toBe(false);
    const { previousHash: _h, previousExpiresAt: _t, ...unrotated } = record;
    expect(acceptsHash(unrotated, hash('b'), new Date('2025-01-02T00:00:00Z'))).toBe(false);
  });

  it('names the end of the grace for the replaced secret only, under any hash secret it is known by (graceEndOf)', () => {
    expect(graceEndOf(record, [hash('b')])).toEqual(new Date('2025-06-01T00:00:00.000Z'));
    expect(graceEndOf({ ...record, previousFormerHashes: [hash('d')] }, [hash('e'), hash('d')])).toEqual(new Date('2025-06-01T00:00:00.000Z'));
    // The current secret (also under an earlier hash secret) has no end; nor has a secret the record does not name.
    expect(graceEndOf(record, [hash('a')])).toBeUndefined();
    expect(graceEndOf({ ...record, formerHashes: [hash('f')] }, [hash('e'), hash('f')])).toBeUndefined();
    expect(graceEndOf(record, [hash('c')])).toBeUndefined();
  });
});
