import { createHash } from 'node:crypto';
import type { OrgConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { AdminAuth } from '../admin/admin-auth';
import { hashApiKey } from './api-key';
import { auditQuery, keyListQuery, parseInput } from '../admin/admin-input';
import { GatewayError } from '@openrouter/errors';
import { markFormBody, messagesToChatBody, responsesToChatBody } from '@openrouter/openai-wire';
import { MemoryAccessRepository, type AccessChange, type AccessEvent } from './access.repository';
import type { PublicApiKey } from './key-record';
import { AccessService, type Actor, type KeyChange } from './access.service';
import { MemoryCounterStore } from './counter.store';
import { countPromptTokens, countTextTokens } from './prompt-tokens';
import { RateLimitedError, type ApplicableLimit } from './rate-limiter';
import { ingressTestConfig } from '../test-config.testing';
import { mp3File, upload, wavFile } from '../budgets/audio-file.testing';

const SECRET = 'unit-test-secret-000';
const config = ingressTestConfig({ access: { keyHashSecret: SECRET, orgs: [{ id: 'acme', teams: [{ id: 'platform' }] }] } });
const logger = createLogger('access-service-spec', 'silent');
const admin: Actor = { id: 'ops', role: 'admin' };
const keyInput = { name: '', org: 'acme', allowedModels: [], limits: {}, metadata: {}, tags: {} };

/** A store whose tenant reads see the store as it was when they were sent, and answer later. */
class SlowTenantReads extends MemoryAccessRepository {
  private readonly pending: Array<() => void> = [];

  override async listOrgs(): Promise<OrgConfig[]> {
    const snapshot = await super.listOrgs();
    await new Promise<void>((answer) => this.pending.push(answer));
    return snapshot;
  }

  /** Answers the reads sent so far. */
  answer(): void {
    for (const answer = this.pending.splice(0); answer.length > 0; ) answer.shift()?.();
  }

  get waiting(): number {
    return this.pending.length;
  }
}

/** A store whose replica can be told it may have missed notices (its pub/sub connection came back). */
class ResyncingStore extends MemoryAccessRepository {
  private readonly heard: Array<(event: AccessEvent) => void> = [];

  override onChange(listener: (event: AccessEvent) => void): void {
    this.heard.push(listener);
    super.onChange(listener);
  }

  resync(): void {
    for (const listener of this.heard) listener({ kind: 'resync' });
  }
}

/** An org as another replica stores it: in the shared store, its notice not (yet) heard here. */
async function storedElsewhere(repository: MemoryAccessRepository, org: OrgConfig): Promise<void> {
  await repository.updateOrg(org.id, () => org);
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !condition(); i++) await new Promise((done) => setImmediate(done));
  expect(condition()).toBe(true);
}

/** Like `until`, for what a timer does: polls for up to about 2 s. */
async function eventually(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000 && !condition(); i++) await new Promise((done) => setTimeout(done, 1));
  expect(condition()).toBe(true);
}

/** A store that counts its tenant reads (each reload is one). */
class CountedTenantReads extends MemoryAccessRepository {
  reads = 0;

  override async listOrgs(): Promise<OrgConfig[]> {
    this.reads++;
    return super.listOrgs();
  }
}

/** A store whose tenant reads fail while `failReads` is set (Redis dropped after the write). */
class FailingTenantReads extends MemoryAccessRepository {
  failReads = false;

  override async listOrgs(): Promise<OrgConfig[]> {
    if (this.failReads) throw new Error('Redis went away');
    return super.listOrgs();
  }
}

describe('AccessService admin changes', () => {
  it('audits a team and a project with the names they were given, and the project for its own keys', async () => {
    const repository = new MemoryAccessRepository();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
    await access.start();
    await access.addTeam(admin, 'acme', { id: 'search' });
    await access.addProject(admin, 'acme', 'search', { id: 'ranking' });
    const entries = await access.listAudit(admin, 10);
    expect(entries.map((e) => [e.action, e.target, e.details])).toEqual([
      ['project.create', 'ranking', { org: 'acme', team: 'search', project: 'ranking', role: 'admin' }],
      ['team.create', 'search', { org: 'acme', team: 'search', role: 'admin' }],
    ]);
    // A key scoped to the project sees the project's creation, and nothing of the org's other changes.
    const projectAdmin: Actor = { id: 'proj', role: 'project', org: 'acme', project: 'ranking' };
    expect((await access.listAudit(projectAdmin, 10)).map((e) => e.action)).toEqual(['project.create']);
  });

  it('revokes a key once: a second revocation changes nothing and writes no second entry', async () => {
    const repository = new MemoryAccessRepository();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
    await access.start();
    const { key, record } = await access.issueKey(admin, keyInput);
    const notices: KeyChange[] = [];
    access.onKeyChange((change) => notices.push(change));
    const first = await access.revokeKey(admin, record.id);
    const second = await access.revokeKey(admin, record.id);
    expect(second).toEqual(first);
    expect((await access.listAudit(admin, 10)).map((e) => e.action)).toEqual(['key.revoke', 'key.issue']);
    // Every replica is told again, in case it missed the first notice.
    expect(notices).toHaveLength(2);
    expect(await access.authenticate(key, 'r1', {}, undefined)).toBeUndefined();
  });

  it('records a revocation with its audit entry in one write, so a retry after a failed notice audits it once', async () => {
    const repository = new MemoryAccessRepository();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
    await access.start();
    const { record } = await access.issueKey(admin, keyInput);
    const publish = repository.publish.bind(repository);
    repository.publish = async () => {
      throw new Error('Redis went away');
    };
    // Answered as revoked: the revocation is stored, whatever its notice does.
    await expect(access.revokeKey(admin, record.id)).resolves.toMatchObject({ revokedAt: expect.any(String) });
    repository.publish = publish;
    await access.revokeKey(admin, record.id);
    expect((await access.listAudit(admin, 10)).map((e) => e.action)).toEqual(['key.revoke', 'key.issue']);
    await access.close();
  });

  it('revokes once when revocations race: one audit entry, and every answer has the one revoked_at stored', async () => {
    const repository = new MemoryAccessRepository();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
    await access.start();
    const { record } = await access.issueKey(admin, keyInput);
    const answers = await Promise.all(Array.from({ length: 5 }, () => access.revokeKey(admin, record.id)));
    const stored = await access.getKey(admin, record.id);
    expect(stored.revokedAt).toBeDefined();
    expect(new Set(answers.map((a) => a.revokedAt))).toEqual(new Set([stored.revokedAt]));
    expect((await access.listAudit(admin, 10)).map((e) => e.action)).toEqual(['key.revoke', 'key.issue']);
  });

  it('issues keys and adds teams and projects for tenants another replica stored a moment ago, before their notice arrives', async () => {
    const repository = new MemoryAccessRepository();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
    await access.start();
    await storedElsewhere(repository, { id: 'fresh', limits: {}, teams: [] });
    await expect(access.issueKey(admin, { ...keyInput, org: 'fresh' })).resolves.toMatchObject({ record: { orgId: 'fresh' } });

    await storedElsewhere(repository, { id: 'newer', limits: {}, teams: [] });
    await expect(access.addTeam(admin, 'newer', { id: 'search' })).resolves.toMatchObject({ id: 'search' });

    await storedElsewhere(repository, { id: 'newest', limits: {}, teams: [{ id: 'ml', limits: {}, projects: [] }] });
    await expect(access.addProject(admin, 'newest', 'ml', { id: 'ranking' })).resolves.toMatchObject({ id: 'ranking' });

    // A tenant that exists nowhere is still 404, after that one reload.
    await expect(access.issueKey(admin, { ...keyInput, org: 'nowhere' })).rejects.toMatchObject({ kind: 'not_found', code: 'not_found', param: 'org' });
    await expect(access.addProject(admin, 'newest', 'nope', { id: 'x' })).rejects.toMatchObject({ kind: 'not_found', code: 'not_found', param: 'team' });
  });

  it("answers an issued key whose org it cannot load 503 tenant_unavailable, never routed as a bare tenant without the org's policy", async () => {
    const repository = new CountedTenantReads();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
    await access.start();
    // Stored by a replica whose org write this store never got (or lost).
    const key = 'sk-or-v1-orphaned-key-orphaned-key-orphaned-key00';
    const hash = hashApiKey(SECRET, key);
    await repository.saveKey({ id: 'key_orphan', hash, prefix: 'sk-or-v1-orph', name: '', orgId: 'vanished', teamId: '', projectId: '', appId: '', allowedModels: [], limits: {}, metadata: {}, tags: {}, createdAt: new Date().toISOString(), source: 'issued' });
    const reads = repository.reads;
    const refused = await access.authenticate(key, 'r', {}, undefined).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GatewayError);
    expect(refused).toMatchObject({ kind: 'unavailable', code: 'tenant_unavailable', retryable: true });
    expect((refused as GatewayError).message).toBe("The key's organisation, team or project cannot be resolved right now. Please retry.");
    expect(repository.reads).toBe(reads + 1);

    // Once the org is there, the key is placed in it.
    await storedElsewhere(repository, { id: 'vanished', costCenter: 'cc-v', limits: {}, teams: [] });
    await expect(access.authenticate(key, 'r', {}, undefined)).resolves.toMatchObject({ context: { orgId: 'vanished', costCenter: 'cc-v' } });
  });

  it('places configured keys and the development key of orgs declared nowhere (bare tenants) without reloading the tenants', async () => {
    const devKey = 'sk-or-v1-development-key-development-key-000';
    const configured = 'sk-or-v1-configured-bare-configured-bare-000';
    const bareConfig = ingressTestConfig({
      access: { keyHashSecret: SECRET, orgs: [{ id: 'acme', teams: [] }], keys: [{ id: 'gitops', hash: hashApiKey(SECRET, configured), prefix: 'sk-or-v1-conf', org: 'small-shop' }] },
    });
    const repository = new CountedTenantReads();
    const access = new AccessService(bareConfig, repository, new MemoryCounterStore(), logger, devKey);
    await access.start();
    const reads = repository.reads;
    await expect(access.authenticate(configured, 'r', {}, undefined)).resolves.toMatchObject({ context: { orgId: 'small-shop', costCenter: 'small-shop' } });
    await expect(access.authenticate(devKey, 'r', {}, undefined)).resolves.toMatchObject({ context: { orgId: 'default', costCenter: 'default' } });
    expect(repository.reads).toBe(reads);
  });

  it('drops every cached key and reloads tenants when it may have missed notices (its pub/sub connection came back)', async () => {
    const repository = new ResyncingStore();
    const access = new AccessService(ingressTestConfig({ access: { keyHashSecret: SECRET, keyCacheMs: 60_000, orgs: [{ id: 'acme' }] } }), repository, new MemoryCounterStore(), logger, undefined);
    await access.start();
    const { key } = await access.issueKey(admin, keyInput);
    expect(await access.authenticate(key, 'r1', {}, undefined)).toBeDefined();
    // Another replica revokes the key and adds an org; neither notice reaches this one.
    const stored = await repository.findKey(access.keys.hash(key));
    await repository.saveKey({ ...stored!, revokedAt: new Date().toISOString() });
    await storedElsewhere(repository, { id: 'unheard', limits: {}, teams: [] });
    expect(await access.authenticate(key, 'r2', {}, undefined)).toBeDefined();

    repository.resync();
    await until(() => access.tenants.org('unheard') !== undefined);
    expect(await access.authenticate(key, 'r3', {}, undefined)).toBeUndefined();
  });

  it('tells the listeners of key changes when it may have missed notices, after forgetting every cached key', async () => {
    const repository = new ResyncingStore();
    const access = new AccessService(ingressTestConfig({ access: { keyHashSecret: SECRET, keyCacheMs: 60_000, orgs: [{ id: 'acme' }] } }), repository, new MemoryCounterStore(), logger, undefined);
    await access.start();
    const { key } = await access.issueKey(admin, keyInput);
    expect(await access.authenticate(key, 'r1', {}, undefined)).toBeDefined();
    // Revoked on another replica while this one's pub/sub connection was down: no notice here.
    const stored = await repository.findKey(access.keys.hash(key));
    await repository.saveKey({ ...stored!, revokedAt: new Date().toISOString() });
    // What a listener sees when told (an open WebSocket checking its key again).
    const seen: Array<{ change: KeyChange; valid: boolean }> = [];
    access.onKeyChange((change) => void access.authenticate(key, 'r2', {}, undefined).then((found) => seen.push({ change, valid: found !== undefined })));

    repository.resync();
    await until(() => seen.length > 0);
    expect(seen).toEqual([{ change: { kind: 'resync' }, valid: false }]);
  });

  it('answers a team stored and audited as added though announcing it fails, and announces it again in the background', async () => {
    const repository = new MemoryAccessRepository();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined, undefined, { reannounceDelaysMs: [0, 0, 0] });
    await access.start();
    const publish = repository.publish.bind(repository);
    let failures = 2;
    const announced = new Promise<AccessChange>((heard) => {
      repository.publish = async (change) => {
        if (failures-- > 0) throw new Error('Redis went away');
        await publish(change);
        heard(change);
      };
    });
    await expect(access.addTeam(admin, 'acme', { id: 'search' })).resolves.toMatchObject({ id: 'search' });
    // The first retry fails too; the second gets through.
    await expect(announced).resolves.toEqual({ kind: 'tenants' });
    await expect(access.addTeam(admin, 'acme', { id: 'search' })).rejects.toMatchObject({ kind: 'conflict', code: 'already_exists' });
    expect((await access.listAudit(admin, 10)).map((e) => [e.action, e.target])).toEqual([['team.create', 'search']]);
    await access.close();
  });

  it('answers a key rotated, changed or revoked though announcing it fails, and announces it again in the background', async () => {
    const repository = new MemoryAccessRepository();
    const access = new AccessService(ingressTestConfig({ access: { keyHashSecret: SECRET, keyCacheMs: 60_000, orgs: [{ id: 'acme' }] } }), repository, new MemoryCounterStore(), logger, undefined, undefined, { reannounceDelaysMs: [0, 0, 0] });
    await access.start();
    const { key: original, record } = await access.issueKey(admin, keyInput);
    const publish = repository.publish.bind(repository);
    let failures = 0;
    const heard: AccessChange[] = [];
    repository.publish = async (change) => {
      if (failures > 0) {
        failures--;
        throw new Error('Redis went away');
      }
      await publish(change);
      heard.push(change);
    };
    failures = 2;
    // Answered as made: a retry would rotate again, ending the grace the client asked for.
    const rotated = await access.rotateKey(admin, record.id, 3_600);
    expect(await access.keyOf(original)).toBeDefined();
    expect(await access.keyOf(rotated.key)).toBeDefined();
    await eventually(() => heard.filter((c) => c.kind === 'key').length >= 1);
    expect(new Set(heard.map((c) => (c.kind === 'key' ? c.hash : c.kind)))).toEqual(new Set([access.keys.hash(original)]));
    failures = 1;
    await expect(access.updateKey(admin, record.id, { name: 'renamed' })).resolves.toMatchObject({ name: 'renamed' });
    const before = heard.length;
    failures = 1;
    await expect(access.revokeKey(admin, record.id)).resolves.toMatchObject({ revokedAt: expect.any(String) });
    // Told after the revocation (one notice may stand for both changes: it says "forget this key").
    await eventually(() => heard.slice(before).some((c) => c.kind === 'key' && c.hash === access.keys.hash(rotated.key)));
    expect((await access.listAudit(admin, 10)).map((e) => e.action)).toEqual(['key.revoke', 'key.update', 'key.rotate', 'key.issue']);
    await access.close();
  });

  it('answers an organisation stored and audited as added though reloading the tenants then fails, from what the write stored', async () => {
    const repository = new FailingTenantReads();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
    await access.start();
    repository.failReads = true;
    await expect(access.addOrg(admin, { id: 'initech', name: 'Initech' })).resolves.toEqual({ id: 'initech', name: 'Initech', limits: {}, teams: [] });
    await expect(access.addOrg(admin, { id: 'initech' })).rejects.toMatchObject({ kind: 'conflict', code: 'already_exists' });
    expect((await access.listAudit(admin, 10)).map((e) => [e.action, e.target])).toEqual([['org.create', 'initech']]);
    await access.close();
  });

  it('loads within its check interval a tenant change whose announcement never came, by the store version', async () => {
    const repository = new MemoryAccessRepository();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined, undefined, { checkEveryMs: 1 });
    try {
      await access.start();
      // Stored by another replica, its announcement lost.
      await storedElsewhere(repository, { id: 'unheard', limits: {}, teams: [] });
      await eventually(() => access.tenants.org('unheard') !== undefined);
    } finally {
      await access.close();
    }
  });

  it('refuses to issue a key allowed a name no request can match, naming the entry and the names there are', async () => {
    const model = (id: string) => ({ id, pricing: { input: '1', output: '2' }, deployments: [{ id: `${id}-d`, provider: 'sim', model: 'u' }] });
    const catalogConfig = ingressTestConfig({
      access: { keyHashSecret: SECRET, orgs: [{ id: 'acme' }] },
      models: [model('gpt-4o-mini'), model('gpt-4o'), model('embed')],
      routing: { aliases: { smart: { models: ['gpt-4o'] } } },
    });
    const access = new AccessService(catalogConfig, new MemoryAccessRepository(), new MemoryCounterStore(), logger, undefined);
    await access.start();
    await expect(access.issueKey(admin, { ...keyInput, allowedModels: ['gpt-4o', 'gpt-4o-mimi'] })).rejects.toMatchObject({
      kind: 'bad_request',
      code: 'invalid_value',
      param: 'allowed_models[1]',
      message: 'Invalid allowed_models[1]: "gpt-4o-mimi" is not a configured model id, alias or "auto"; known names include "gpt-4o-mini", "gpt-4o", "embed", "smart", "auto".',
    });
    // A model id, an alias and `auto` are each something a request can be matched with.
    await expect(access.issueKey(admin, { ...keyInput, allowedModels: ['gpt-4o-mini', 'smart', 'auto'] })).resolves.toMatchObject({ record: { allowedModels: ['gpt-4o-mini', 'smart', 'auto'] } });
    expect((await access.listAudit(admin, 10)).map((e) => e.action)).toEqual(['key.issue']);
  });

  it('loads a tenant announced while a load that read the store before it was still in flight', async () => {
    const repository = new SlowTenantReads();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
    const started = access.start();
    await until(() => repository.waiting === 1);
    // Another replica adds a team while this one's read is under way, and announces it.
    await repository.updateOrg('acme', (stored) => ({ id: 'acme', limits: {}, ...stored, teams: [...(stored?.teams ?? []), { id: 'late', limits: {}, projects: [] }] }));
    await repository.publish({ kind: 'tenants' });
    repository.answer();
    await started;
    // The announcement's own load follows the one that could not have seen the team.
    await until(() => repository.waiting === 1);
    repository.answer();
    await until(() => access.tenants.org('acme')?.teams.some((t) => t.id === 'late') === true);
  });
});

describe('AccessService key lists', () => {
  const tenantsConfig = ingressTestConfig({
    access: {
      keyHashSecret: SECRET,
      orgs: [
        { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }] }] },
        { id: 'initech', teams: [{ id: 'ops', projects: [{ id: 'search' }] }] },
      ],
    },
  });

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

  it('answers a page at a time: complete, disjoint, oldest first; a scoped admin gets its scope only', async () => {
    const access = new AccessService(tenantsConfig, new MemoryAccessRepository(), new MemoryCounterStore(), logger, undefined);
    await access.start();
    const places = [{ org: 'acme' }, { org: 'acme', project: 'search' }, { org: 'acme', project: 'ads' }, { org: 'initech', project: 'search' }];
    const keys: PublicApiKey[] = [];
    for (let i = 0; i < 240; i++) keys.push((await access.issueKey(admin, { ...keyInput, name: `k${i}`, ...places[i % places.length] })).record);
    // Oldest first; keys of the same millisecond by id.
    const issued = keys.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || (a.id < b.id ? -1 : 1));

    const pages = await allPages(access, admin, {}, 50);
    expect(pages.map((p) => p.length)).toEqual([50, 50, 50, 50, 40]);
    expect(pages.flat().map((k) => k.name)).toEqual(issued.map((k) => k.name));

    const acmeAdmin: Actor = { id: 'acme-ops', role: 'admin', org: 'acme' };
    const acme = (await allPages(access, acmeAdmin, {}, 7)).flat();
    expect(acme.map((k) => k.id)).toEqual(issued.filter((k) => k.orgId === 'acme').map((k) => k.id));
    const searchAdmin: Actor = { id: 'search-ops', role: 'admin', org: 'acme', project: 'search' };
    expect((await allPages(access, searchAdmin, {}, 13)).flat().map((k) => k.id)).toEqual(issued.filter((k) => k.orgId === 'acme' && k.projectId === 'search').map((k) => k.id));
    // `?project=` without an org: that project in every org.
    expect((await allPages(access, admin, { project: 'search' }, 33)).flat().map((k) => k.id)).toEqual(issued.filter((k) => k.projectId === 'search').map((k) => k.id));
  });

  it('refuses a cursor that is not a key of the list', async () => {
    const access = new AccessService(tenantsConfig, new MemoryAccessRepository(), new MemoryCounterStore(), logger, undefined);
    await access.start();
    const initech = (await access.issueKey(admin, { ...keyInput, org: 'initech' })).record;
    const acmeAdmin: Actor = { id: 'acme-ops', role: 'admin', org: 'acme' };
    const invalid = expect.objectContaining({ kind: 'bad_request', param: 'after' }) as GatewayError;
    await expect(access.listKeys(acmeAdmin, { limit: 10, after: initech.id })).rejects.toThrow(invalid);
    await expect(access.listKeys(admin, { org: 'acme', limit: 10, after: initech.id })).rejects.toThrow(invalid);
    await expect(access.listKeys(admin, { limit: 10, after: 'key_unknown' })).rejects.toThrow(invalid);
    await expect(access.listKeys(admin, { limit: 10, after: initech.id })).resolves.toEqual({ data: [], hasMore: false });
  });
});

describe('admin input', () => {
  it('refuses a filter the route does not have instead of answering every row', () => {
    expect(() => parseInput(keyListQuery, { team: 'x' })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'team', message: 'Unrecognized parameter(s): team.' }));
    expect(() => parseInput(auditQuery, { team: 'acme' })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'team' }));
    expect(parseInput(auditQuery, { limit: '5' })).toEqual({ limit: 5 });
  });

  it('pages key lists: 100 keys unless told, at most 1000', () => {
    expect(parseInput(keyListQuery, {})).toEqual({ limit: 100 });
    expect(parseInput(keyListQuery, { limit: '1000', after: 'key_0123' })).toEqual({ limit: 1000, after: 'key_0123' });
    for (const limit of ['0', '1001', 'many']) expect(() => parseInput(keyListQuery, { limit })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'limit' }) as GatewayError);
  });

  it('names the development admin key in the audit log without any of its characters', () => {
    const auth = new AdminAuth(SECRET, [], 'letmein-admin');
    expect(auth.authenticateKey('letmein-admin')).toEqual({ id: 'dev-admin', role: 'admin' });
  });

  it('refuses to start with two admin keys that are one key, instead of the last silently winning', () => {
    const ops = { id: 'ops', hash: hashApiKey(SECRET, 'sk-or-admin-ops'), role: 'admin' as const };
    const scoped = { ...ops, id: 'acme-fin', role: 'finance' as const, org: 'acme' };
    expect(() => new AdminAuth(SECRET, [ops, scoped], undefined)).toThrow('the admin keys "ops" and "acme-fin" are the same key');
    expect(() => new AdminAuth(SECRET, [scoped], 'sk-or-admin-ops')).toThrow('the admin keys "acme-fin" and "dev-admin" are the same key');
    expect(new AdminAuth(SECRET, [ops], 'sk-or-admin-other').authenticateKey('sk-or-admin-ops')).toMatchObject({ id: 'ops' });
  });
});

describe('AccessService token limits', () => {
  const KEY = 'sk-or-v1-token-limits-unit-key-000000000000';
  const tokenConfig = ingressTestConfig({
    access: {
      keyHashSecret: SECRET,
      orgs: [{ id: 'acme' }],
      keys: [{ id: 'k', hash: hashApiKey(SECRET, KEY), org: 'acme', limits: { tpm: 1000 } }],
      rateLimits: { defaultMaxOutputTokens: 500 },
      requests: { maxN: 4, maxMessages: 8 },
    },
    models: [
      { id: 'm', pricing: { input: '1', output: '2' }, deployments: [{ id: 'd', provider: 'sim', model: 'u' }] },
      { id: 'big', deployments: [{ id: 'big-d', provider: 'sim', model: 'big' }] },
    ],
    budgets: { maxOutputTokens: { big: 16_384 } },
  });
  const messages = [{ role: 'user', content: 'hi' }];

  async function service(): Promise<AccessService> {
    // A clock that stands still: a limit refills a token every 60 ms, and exact figures must not race it.
    const access = new AccessService(tokenConfig, new MemoryAccessRepository(), new MemoryCounterStore(() => 1_000_000), logger, undefined);
    await access.start();
    return access;
  }

  it('counts the output a request asks for, in whichever API it asked', async () => {
    const access = await service();
    const demand = (body: Record<string, unknown>) => access.tokenDemand('m', body);
    expect(demand({ model: 'm', messages, max_tokens: 300 })).toEqual({ prompt: countPromptTokens({ messages }), output: 300, outputAsked: true });
    expect(demand({ model: 'm', messages, max_tokens: 300, max_completion_tokens: 200 })).toMatchObject({ output: 200, outputAsked: true });
    // Every answer may be as long: n of them.
    expect(demand({ model: 'm', messages, max_completion_tokens: 100, n: 3 })).toMatchObject({ output: 300, outputAsked: true });
    // The Responses API's max_output_tokens and the Messages API's max_tokens, as their bodies reach the limits: translated.
    expect(demand(responsesToChatBody({ model: 'm', input: 'hi', max_output_tokens: 250 }))).toMatchObject({ output: 250, outputAsked: true });
    expect(demand(messagesToChatBody({ model: 'm', max_tokens: 700, messages }))).toMatchObject({ output: 700, outputAsked: true });
    // A legacy completion asking for nothing gets OpenAI's 16, for each of its prompts.
    expect(demand({ model: 'm', prompt: ['one', 'two'] })).toMatchObject({ output: 32, outputAsked: true });
    expect(demand({ model: 'm', input: 'an embedding' })).toMatchObject({ output: 0 });
  });

  it('counts an n or a number of prompts above the bounds as one, so the 400 for it is not a 429 "too large" first', async () => {
    const access = await service();
    const demand = (body: Record<string, unknown>) => access.tokenDemand('m', body);
    expect(demand({ model: 'm', messages, max_tokens: 100, n: 4 })).toMatchObject({ output: 400 });
    expect(demand({ model: 'm', messages, max_tokens: 100, n: 5 })).toMatchObject({ output: 100 });
    expect(demand({ model: 'm', prompt: Array.from({ length: 8 }, () => 'p'), max_tokens: 10 })).toMatchObject({ output: 80 });
    expect(demand({ model: 'm', prompt: Array.from({ length: 9 }, () => 'p'), max_tokens: 10 })).toMatchObject({ output: 10 });
  });

  it("assumes the model's maximum output, else the configured default, for a request that asks for none", async () => {
    const access = await service();
    expect(access.tokenDemand('m', { model: 'm', messages })).toMatchObject({ output: 500, outputAsked: false });
    expect(access.tokenDemand('big', { model: 'big', messages, n: 2 })).toMatchObject({ output: 32_768, outputAsked: false });
    // A limit it may not ask for is refused with a 400 later; until then it counts as none.
    expect(access.tokenDemand('m', { model: 'm', messages, max_tokens: -5 })).toMatchObject({ output: 500, outputAsked: false });
    expect(access.tokenDemand('m', { model: 'm', messages, max_tokens: 2_000_000 })).toMatchObject({ output: 500, outputAsked: false });
    expect(access.tokenDemand('constructor', { model: 'constructor', messages })).toMatchObject({ output: 500, outputAsked: false });
    expect(tokenConfig.access.rateLimits.defaultMaxOutputTokens).toBe(500);
    expect(ingressTestConfig().access.rateLimits.defaultMaxOutputTokens).toBe(4_096);
  });

  it('counts each generated image at its model’s maximum output, its prompt as a prompt, never as a legacy completion', async () => {
    const access = await service();
    const images = '/v1/images/generations';
    expect(access.tokenDemand('big', { model: 'big', prompt: 'a red fox', n: 3 }, images)).toMatchObject({ output: 3 * 16_384, outputAsked: false });
    expect(access.tokenDemand('m', { model: 'm', prompt: 'a red fox' }, images)).toMatchObject({ output: 500, outputAsked: false });
    expect(access.tokenDemand('m', { model: 'm', prompt: 'a red fox' }, images).prompt).toBeGreaterThan(0);
    // The same body through the legacy endpoint is a completion: OpenAI's 16 tokens.
    expect(access.tokenDemand('m', { model: 'm', prompt: 'a red fox' }, '/v1/completions')).toMatchObject({ output: 16 });
  });

  it('counts an image edit as a generation, its uploaded images in its prompt at its model’s image cost, never their bytes as text', async () => {
    const access = await service();
    const edits = '/v1/images/edits';
    const png = (bytes: number) => upload(new Uint8Array(bytes), 'a.png', 'image/png');
    const form = (fields: Record<string, unknown>) => markFormBody({ model: 'big', prompt: 'a red fox', ...fields });
    const text = countTextTokens('a red fox');
    // Two images at the default image cost (big declares no imageTokens); the mask is no input image; n as the form's text.
    expect(access.tokenDemand('big', form({ image: [png(64), png(64)], mask: png(64), n: '3' }), edits)).toEqual({ prompt: text + 2 * 1_600, output: 3 * 16_384, outputAsked: false });
    // 4 MiB of image bytes count as one image, not as text.
    expect(access.tokenDemand('big', form({ 'image[]': png(4 * 1024 * 1024) }), edits)).toEqual({ prompt: text + 1_600, output: 16_384, outputAsked: false });
    // The Images API's n goes to 10, whatever access.requests.maxN (4 here) bounds for chat.
    expect(access.tokenDemand('m', form({ model: 'm', image: png(64), n: '6' }), edits)).toMatchObject({ output: 6 * 500 });
    expect(access.tokenDemand('m', { model: 'm', prompt: 'a red fox', n: 6 }, '/v1/images/generations')).toMatchObject({ output: 6 * 500 });
  });

  it('counts a transcription’s audio at budgets.audio.tokensPerSecond (a WAV file at its length, another at maxSeconds) and its prompt hint, its output at its model’s maximum', async () => {
    const access = await service();
    const transcriptions = '/v1/audio/transcriptions';
    const hint = 'Zyxel, Quetzalcoatl';
    // 4 s × 25 tokens a second, and the hint.
    expect(access.tokenDemand('m', { model: 'm', file: upload(wavFile(4_000)), prompt: hint }, transcriptions)).toEqual({ prompt: 100 + countTextTokens(hint), output: 500, outputAsked: false });
    expect(access.tokenDemand('big', { model: 'big', file: upload(wavFile(4_000)) }, '/v1/audio/translations')).toEqual({ prompt: 100, output: 16_384, outputAsked: false });
    // Its length unread: 1 500 s (the default budgets.audio.maxSeconds) × 25.
    expect(access.tokenDemand('m', { model: 'm', file: upload(mp3File(), 'a.mp3', 'audio/mpeg') }, transcriptions)).toMatchObject({ prompt: 37_500 });
    // The file's bytes are never text: a large one and a small one count alike.
    expect(access.tokenDemand('m', { model: 'm', file: upload(mp3File(2 * 1024 * 1024)) }, transcriptions).prompt).toBe(37_500);
    // A repeated prompt field is a hint in parts, never legacy prompts of 16 tokens each.
    expect(access.tokenDemand('m', { model: 'm', file: upload(wavFile(1_000)), prompt: ['a', 'b', 'c'] }, transcriptions)).toEqual({ prompt: 25 + 3, output: 500, outputAsked: false });
  });

  it('counts a speech’s input as its prompt (never an embedding’s input, with no output) and its output at its model’s maximum', async () => {
    const access = await service();
    const input = 'Today is a wonderful day to build something people love!';
    expect(access.tokenDemand('big', { model: 'big', input, voice: 'alloy' }, '/v1/audio/speech')).toEqual({ prompt: countTextTokens(input), output: 16_384, outputAsked: false });
    expect(access.tokenDemand('m', { model: 'm', input, voice: 'alloy' }, '/v1/audio/speech')).toMatchObject({ output: 500 });
    // The same body through the embeddings endpoint has no output.
    expect(access.tokenDemand('m', { model: 'm', input }, '/v1/embeddings')).toMatchObject({ output: 0 });
  });

  it('admits a transcription within the token limit and refuses one whose unread length is larger than the limit', async () => {
    const access = await service();
    const authenticated = await access.authenticate(KEY, 'req', {}, undefined);
    if (!authenticated) throw new Error('the key is configured');
    const admit = (file: Uint8Array) => access.admit(authenticated.record, authenticated.context, 'm', { model: 'm', file: upload(file) }, '/v1/audio/transcriptions');
    // 37 500 + 500 tokens can never fit a limit of 1 000 a minute.
    await expect(admit(mp3File())).rejects.toBeInstanceOf(RateLimitedError);
    // 4 s: 100 + 500.
    const admitted = await admit(wavFile(4_000));
    expect(Number(admitted.headers['x-ratelimit-remaining-tokens'])).toBe(1000 - 600);
  });

  it("counts image parts at the imageTokens of the models the request names, as its budget reservation does", async () => {
    const deployments = (id: string) => [{ id, provider: 'sim', model: 'u' }];
    const visionConfig = ingressTestConfig({
      access: { keyHashSecret: SECRET, orgs: [{ id: 'acme' }] },
      models: [
        { id: 'm', pricing: { input: '1', output: '2' }, deployments: deployments('d-m') },
        { id: 'mini', imageTokens: { max: 48_169, low: 2_833 }, pricing: { input: '1', output: '2' }, deployments: deployments('d-mini') },
        { id: 'patch', imageTokens: { max: 3_779 }, pricing: { input: '1', output: '2' }, deployments: deployments('d-patch') },
      ],
      routing: { aliases: { vision: { models: ['m', 'patch'] } } },
    });
    const access = new AccessService(visionConfig, new MemoryAccessRepository(), new MemoryCounterStore(), logger, undefined);
    const content = (detail: string) => [{ type: 'image_url', image_url: { url: 'https://example.com/a.png', detail } }];
    const body = (model: string, detail = 'high') => ({ model, max_tokens: 10, messages: [{ role: 'user', content: content(detail) }] });
    const text = countPromptTokens(body('m'), { max: 0 });
    const prompt = (model: string, detail?: string) => access.tokenDemand(model, body(model, detail)).prompt - text;
    expect(prompt('m')).toBe(1_600);
    expect(prompt('mini')).toBe(48_169);
    expect(prompt('mini', 'low')).toBe(2_833);
    // An alias: the dearest of its members; `auto` and an unknown name (own entries only): of every model.
    expect(prompt('vision')).toBe(3_779);
    expect(prompt('auto')).toBe(48_169);
    expect(prompt('constructor', 'low')).toBe(3_779);
  });

  it('admits Messages requests on their max_tokens until the reservations exceed the key limit', async () => {
    const access = await service();
    const authenticated = await access.authenticate(KEY, 'req', {}, undefined);
    if (!authenticated) throw new Error('the key is configured');
    const admit = () => access.admit(authenticated.record, authenticated.context, 'm', messagesToChatBody({ model: 'm', max_tokens: 400, messages }));
    const admitted = [await admit(), await admit()];
    await expect(admit()).rejects.toBeInstanceOf(RateLimitedError);
    // One answered in 30 tokens, one failed: the unused part of both is back.
    await admitted[0]?.settle(30);
    await admitted[1]?.settle(0);
    const third = await admit();
    expect(Number(third.headers['x-ratelimit-remaining-tokens'])).toBe(1000 - 30 - (400 + countPromptTokens({ messages })));
  });
});

describe('end-user limits', () => {
  const endUserConfig = ingressTestConfig({
    access: {
      keyHashSecret: SECRET,
      rateLimits: { endUser: { rpm: 50 } },
      orgs: [{ id: 'chatco', endUserLimits: { tpm: 9000 }, teams: [{ id: 'apps', endUserLimits: { rpm: 10 }, projects: [{ id: 'bot', endUserLimits: { rpm: 2, tpm: 500 } }, { id: 'desk' }] }, { id: 'misc', projects: [{ id: 'tools' }] }] }],
    },
  });

  async function limitsFor(project: string | undefined, endUser: string, keyHashSecret = SECRET, team?: string): Promise<ApplicableLimit[]> {
    const config = keyHashSecret === SECRET ? endUserConfig : ingressTestConfig({ access: { ...endUserConfig.access, keyHashSecret } });
    const access = new AccessService(config, new MemoryAccessRepository(), new MemoryCounterStore(), logger, undefined);
    await access.start();
    const { key } = await access.issueKey(admin, { ...keyInput, org: 'chatco', project, ...(team ? { team } : {}) });
    const found = await access.authenticate(key, 'r', { endUser }, undefined);
    if (!found) throw new Error('expected the key');
    return access.applicableLimits(found.record, found.context, 'm').filter((l) => l.scope === 'end_user');
  }

  it("charges each end user to the most specific level's limits, under a digest of its id within its project", async () => {
    const bot = await limitsFor('bot', 'alice@example.com');
    expect(bot.map((l) => [l.kind, l.perMinute])).toEqual([['requests', 2], ['tokens', 500]]);
    expect(bot[0]?.id).toMatch(/^chatco\/bot\/[0-9a-f]{32}$/);
    expect(bot[0]?.id).not.toContain('alice');
    expect(bot[0]?.shown).toBe('the end user (x-openrouter-user or user) in project chatco/bot');
    // The same person in another project is another counter.
    expect((await limitsFor('desk', 'alice@example.com'))[0]?.id).not.toBe(bot[0]?.id);
    // desk sets none: its team's rpm (the team's own, not the organisation's tpm; the default sets no tpm).
    expect((await limitsFor('desk', 'alice@example.com')).map((l) => [l.kind, l.perMinute])).toEqual([['requests', 10]]);
    // tools: neither it nor its team sets any: the organisation's, a field it leaves out from access.rateLimits.endUser.
    expect((await limitsFor('tools', 'x')).map((l) => [l.kind, l.perMinute])).toEqual([['requests', 50], ['tokens', 9000]]);
    // A key of no project: counted within the organisation.
    expect((await limitsFor(undefined, 'x'))[0]).toMatchObject({ id: expect.stringMatching(/^chatco\/\/[0-9a-f]{32}$/) as string, shown: 'the end user (x-openrouter-user or user) in organisation chatco' });
  });

  it("counts an end user of a team's key of no project within the team: another team's limits never spend it", async () => {
    const apps = await limitsFor(undefined, 'alice', SECRET, 'apps');
    const misc = await limitsFor(undefined, 'alice', SECRET, 'misc');
    // apps sets rpm 10 (its own counter); misc sets none: the organisation's limits, on misc's counter.
    expect(apps.map((l) => [l.kind, l.perMinute])).toEqual([['requests', 10]]);
    expect(misc.map((l) => [l.kind, l.perMinute])).toEqual([['requests', 50], ['tokens', 9000]]);
    expect(apps[0]).toMatchObject({ id: expect.stringMatching(/^chatco\/team:apps\/[0-9a-f]{32}$/) as string, shown: 'the end user (x-openrouter-user or user) in team chatco/apps' });
    expect(misc[0]?.id).toMatch(/^chatco\/team:misc\/[0-9a-f]{32}$/);
    // The same digest, three separate counters: the team's, the other team's, the organisation's.
    const org = await limitsFor(undefined, 'alice');
    expect(new Set([apps[0]?.id, misc[0]?.id, org[0]?.id]).size).toBe(3);
  });

  it("names an end user's counters by a keyed digest of its id, never its plain SHA-256 (a guessed e-mail address could be tested against it)", async () => {
    const [limit] = await limitsFor('bot', 'alice@example.com');
    const digest = limit?.id.split('/')[2];
    expect(digest).toMatch(/^[0-9a-f]{32}$/);
    expect(createHash('sha256').update('alice@example.com').digest('hex')).not.toContain(digest);
    // Keyed by access.keyHashSecret: another secret, another name; the same one, the same.
    expect((await limitsFor('bot', 'alice@example.com', 'another-unit-test-secret'))[0]?.id).not.toBe(limit?.id);
    expect((await limitsFor('bot', 'alice@example.com'))[0]?.id).toBe(limit?.id);
  });

  it('charges a request that names no end user to none', async () => {
    expect(await limitsFor('bot', '')).toEqual([]);
  });
});
