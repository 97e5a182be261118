import type { OrgConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { AdminAuth } from '../admin/admin-auth';
import { auditQuery, keyListQuery, parseInput } from '../admin/admin-input';
import { MemoryAccessRepository } from './access.repository';
import { AccessService, type Actor } from './access.service';
import { MemoryCounterStore } from './counter.store';
import { ingressTestConfig } from '../test-config.testing';

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

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !condition(); i++) await new Promise((done) => setImmediate(done));
  expect(condition()).toBe(true);
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
    const notices: string[] = [];
    access.onKeyChange((hash) => notices.push(hash));
    const first = await access.revokeKey(admin, record.id);
    const second = await access.revokeKey(admin, record.id);
    expect(second).toEqual(first);
    expect((await access.listAudit(admin, 10)).map((e) => e.action)).toEqual(['key.revoke', 'key.issue']);
    // Every replica is told again, in case it missed the first notice.
    expect(notices).toHaveLength(2);
    expect(await access.authenticate(key, 'r1', {})).toBeUndefined();
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
    await expect(access.revokeKey(admin, record.id)).rejects.toThrow('Redis went away');
    repository.publish = publish;
    await access.revokeKey(admin, record.id);
    expect((await access.listAudit(admin, 10)).map((e) => e.action)).toEqual(['key.revoke', 'key.issue']);
  });

  it('audits a team added in the same write, though telling the other replicas then fails', async () => {
    const repository = new MemoryAccessRepository();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
    await access.start();
    const publish = repository.publish.bind(repository);
    repository.publish = async () => {
      throw new Error('Redis went away');
    };
    await expect(access.addTeam(admin, 'acme', { id: 'search' })).rejects.toThrow('Redis went away');
    repository.publish = publish;
    await expect(access.addTeam(admin, 'acme', { id: 'search' })).rejects.toMatchObject({ kind: 'bad_request' });
    expect((await access.listAudit(admin, 10)).map((e) => [e.action, e.target])).toEqual([['team.create', 'search']]);
  });

  it('loads a tenant announced while a load that read the store before it was still in flight', async () => {
    const repository = new SlowTenantReads();
    const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
    const started = access.start();
    await until(() => repository.waiting === 1);
    // Another replica adds a team while this one's read is under way, and announces it.
    await repository.updateOrg('acme', (stored) => ({ id: 'acme', ...stored, teams: [...(stored?.teams ?? []), { id: 'late', limits: {}, projects: [] }] }));
    await repository.publish({ kind: 'tenants' });
    repository.answer();
    await started;
    // The announcement's own load follows the one that could not have seen the team.
    await until(() => repository.waiting === 1);
    repository.answer();
    await until(() => access.tenants.org('acme')?.teams.some((t) => t.id === 'late') === true);
  });
});

describe('admin input', () => {
  it('refuses a filter the route does not have instead of answering every row', () => {
    expect(() => parseInput(keyListQuery, { team: 'x' })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'team', message: 'Unrecognized parameter(s): team.' }));
    expect(() => parseInput(auditQuery, { org: 'acme' })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'org' }));
    expect(parseInput(auditQuery, { limit: '5' })).toEqual({ limit: 5 });
  });

  it('names the development admin key in the audit log without any of its characters', () => {
    const auth = new AdminAuth(SECRET, [], 'letmein-admin');
    expect(auth.authenticate('letmein-admin')).toEqual({ id: 'dev-admin', role: 'admin' });
  });
});
