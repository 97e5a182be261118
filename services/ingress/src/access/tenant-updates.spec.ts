import { createLogger } from '@openrouter/observability';
import { MemoryAccessRepository } from './access.repository';
import { AccessService, type Actor } from './access.service';
import { MemoryCounterStore } from './counter.store';
import { ingressTestConfig } from '../test-config.testing';

const config = ingressTestConfig({
  access: {
    keyHashSecret: 'unit-test-secret-000',
    orgs: [{ id: 'acme', costCenter: 'CC-ACME', teams: [{ id: 'platform', costCenter: 'CC-PLATFORM', projects: [{ id: 'search' }] }] }],
  },
});
const logger = createLogger('tenant-updates-spec', 'silent');
const admin: Actor = { id: 'ops', role: 'admin' };
const keyInput = { name: '', allowedModels: [], limits: {}, metadata: {}, tags: {} };

async function started(repository = new MemoryAccessRepository()): Promise<AccessService> {
  const access = new AccessService(config, repository, new MemoryCounterStore(), logger, undefined);
  await access.start();
  return access;
}

/** acme's run-time team `research` with the project `papers`, and the run-time org `globex` with `lab`/`alpha`. */
async function withRuntimeTenants(access: AccessService): Promise<void> {
  await access.addTeam(admin, 'acme', { id: 'research', costCenter: 'CC-RESEARCH' });
  await access.addProject(admin, 'acme', 'research', { id: 'papers', costCenter: 'CC-PAPERS' });
  await access.addOrg(admin, { id: 'globex', name: 'Globex' });
  await access.addTeam(admin, 'globex', { id: 'lab' });
  await access.addProject(admin, 'globex', 'lab', { id: 'alpha' });
}

/** Waits for what an announcement does (its reload runs in the background), a turn of the event loop at a time. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !condition(); i++) await new Promise((done) => setImmediate(done));
  expect(condition()).toBe(true);
}

describe('AccessService tenant changes', () => {
  let access: AccessService;

  beforeEach(async () => {
    access = await started();
    await withRuntimeTenants(access);
  });
  afterEach(async () => access.close());

  it("puts a project's new cost centre on the next request at once, and its parent's once cleared", async () => {
    const { key } = await access.issueKey(admin, { ...keyInput, org: 'acme', project: 'papers' });
    const costCenter = async (): Promise<string> => (await access.authenticate(key, 'r', {}, undefined))?.context.costCenter ?? '';
    expect(await costCenter()).toBe('CC-PAPERS');

    await expect(access.updateProject(admin, 'acme', 'research', 'papers', { costCenter: 'CC-MOVED' })).resolves.toEqual({ id: 'papers', costCenter: 'CC-MOVED', limits: {} });
    expect(await costCenter()).toBe('CC-MOVED');
    // Cleared: inherited as placement does, from the team.
    await expect(access.updateProject(admin, 'acme', 'research', 'papers', { costCenter: null })).resolves.toEqual({ id: 'papers', limits: {} });
    expect(await costCenter()).toBe('CC-RESEARCH');
    // The team's own cleared too: the organisation's.
    await access.updateTeam(admin, 'acme', 'research', { costCenter: null });
    expect(await costCenter()).toBe('CC-ACME');
  });

  it('applies changed limits to the next request, replaced whole, and the defaults once cleared', async () => {
    const { key } = await access.issueKey(admin, { ...keyInput, org: 'globex', project: 'alpha' });
    const limitsOf = async (scope: string): Promise<Array<[string, number]>> => {
      const authenticated = await access.authenticate(key, 'r', {}, undefined);
      if (!authenticated) throw new Error('the key is not known');
      return access
        .applicableLimits(authenticated.record, authenticated.context, 'gpt-4o-mini')
        .filter((l) => l.scope === scope)
        .map((l) => [l.kind, l.perMinute]);
    };
    await access.updateProject(admin, 'globex', 'lab', 'alpha', { limits: { rpm: 5, tpm: 1000 } });
    expect(await limitsOf('project')).toEqual([
      ['requests', 5],
      ['tokens', 1000],
    ]);
    await access.updateProject(admin, 'globex', 'lab', 'alpha', { limits: { tpm: 2000 } });
    expect(await limitsOf('project')).toEqual([['tokens', 2000]]);
    await access.updateTeam(admin, 'globex', 'lab', { limits: { rpm: 7 } });
    await access.updateOrg(admin, 'globex', { limits: { rpm: 70 } });
    expect(await limitsOf('team')).toEqual([['requests', 7]]);
    expect(await limitsOf('org')).toEqual([['requests', 70]]);
    await access.updateProject(admin, 'globex', 'lab', 'alpha', { limits: null });
    expect(await limitsOf('project')).toEqual([]);
  });

  it('keeps what a change leaves out, and clears a name given as null', async () => {
    await access.updateOrg(admin, 'globex', { costCenter: 'CC-GLOBEX', limits: { rpm: 100 } });
    await expect(access.updateOrg(admin, 'globex', { name: null })).resolves.toMatchObject({ id: 'globex', costCenter: 'CC-GLOBEX', limits: { rpm: 100 } });
    const org = access.tenants.org('globex');
    expect(org).not.toHaveProperty('name');
    expect(org?.teams.map((t) => [t.id, t.projects.map((p) => p.id)])).toEqual([['lab', ['alpha']]]);
  });

  it('audits each change at its level with the fields it changed, from what they were to what they are', async () => {
    await access.updateOrg(admin, 'globex', { name: 'Globex Corp', costCenter: 'CC-1' });
    await access.updateTeam(admin, 'acme', 'research', { limits: { rpm: 10 } });
    await access.updateProject(admin, 'acme', 'research', 'papers', { costCenter: null });
    const entries = (await access.listAudit(admin, 3)).map((e) => [e.action, e.target, e.details]);
    expect(entries).toEqual([
      ['project.update', 'papers', { org: 'acme', team: 'research', project: 'papers', role: 'admin', changes: { cost_center: { from: 'CC-PAPERS', to: null } } }],
      ['team.update', 'research', { org: 'acme', team: 'research', role: 'admin', changes: { limits: { from: { rpm: null, tpm: null }, to: { rpm: 10, tpm: null } } } }],
      ['org.update', 'globex', { org: 'globex', role: 'admin', changes: { name: { from: 'Globex', to: 'Globex Corp' }, cost_center: { from: null, to: 'CC-1' } } }],
    ]);
  });

  it('lets an org-scoped key change its own org, teams and projects only, and a project-scoped key none', async () => {
    const globexAdmin: Actor = { id: 'globex-ops', role: 'admin', org: 'globex' };
    await expect(access.updateOrg(globexAdmin, 'globex', { name: 'G' })).resolves.toMatchObject({ name: 'G' });
    await expect(access.updateTeam(globexAdmin, 'globex', 'lab', { name: 'Lab' })).resolves.toMatchObject({ name: 'Lab' });
    await expect(access.updateProject(globexAdmin, 'globex', 'lab', 'alpha', { name: 'Alpha' })).resolves.toMatchObject({ name: 'Alpha' });
    // Another org is answered as if it did not exist.
    await expect(access.updateTeam(globexAdmin, 'acme', 'research', { name: 'x' })).rejects.toMatchObject({ kind: 'not_found', code: 'not_found' });
    await expect(access.updateOrg(globexAdmin, 'acme', { name: 'x' })).rejects.toMatchObject({ kind: 'not_found' });
    const projectAdmin: Actor = { id: 'alpha-ops', role: 'admin', org: 'globex', project: 'alpha' };
    for (const attempt of [
      () => access.updateOrg(projectAdmin, 'globex', { name: 'x' }),
      () => access.updateTeam(projectAdmin, 'globex', 'lab', { name: 'x' }),
      () => access.updateProject(projectAdmin, 'globex', 'lab', 'alpha', { name: 'x' }),
    ]) {
      await expect(attempt()).rejects.toMatchObject({ kind: 'permission_denied', code: 'insufficient_scope' });
    }
    expect((await access.listAudit(admin, 10)).filter((e) => e.action.endsWith('.update')).map((e) => e.actor)).toEqual(['globex-ops', 'globex-ops', 'globex-ops']);
  });

  it('answers 404 naming what does not exist: an org, a team, a project, or a project of another team', async () => {
    await expect(access.updateOrg(admin, 'initech', { name: 'x' })).rejects.toMatchObject({ kind: 'not_found', param: 'org', code: 'not_found' });
    await expect(access.updateTeam(admin, 'globex', 'nope', { name: 'x' })).rejects.toMatchObject({ kind: 'not_found', param: 'team', message: 'The team "nope" does not exist in "globex".' });
    await expect(access.updateProject(admin, 'globex', 'lab', 'nope', { name: 'x' })).rejects.toMatchObject({ kind: 'not_found', param: 'project' });
    await expect(access.updateProject(admin, 'acme', 'platform', 'papers', { name: 'x' })).rejects.toMatchObject({ kind: 'not_found', param: 'project' });
  });

  it('refuses to change tenants the configuration file declares (409 configured_tenant), and changes run-time ones inside them', async () => {
    await expect(access.updateOrg(admin, 'acme', { costCenter: 'CC-X' })).rejects.toMatchObject({ kind: 'conflict', code: 'configured_tenant', param: 'org', message: expect.stringContaining('declared in the configuration file') as unknown });
    await expect(access.updateTeam(admin, 'acme', 'platform', { costCenter: 'CC-X' })).rejects.toMatchObject({ kind: 'conflict', code: 'configured_tenant', param: 'team' });
    await expect(access.updateProject(admin, 'acme', 'platform', 'search', { costCenter: 'CC-X' })).rejects.toMatchObject({ kind: 'conflict', code: 'configured_tenant', param: 'project' });
    expect(access.tenants.place('acme', undefined, 'search').costCenter).toBe('CC-PLATFORM');

    // A run-time project of a configured team, and a run-time team of a configured org, can be changed.
    await access.addProject(admin, 'acme', 'platform', { id: 'ads' });
    await access.updateProject(admin, 'acme', 'platform', 'ads', { costCenter: 'CC-ADS' });
    await access.updateTeam(admin, 'acme', 'research', { name: 'Research' });
    expect(access.tenants.place('acme', undefined, 'ads').costCenter).toBe('CC-ADS');
    const platform = access.tenants.org('acme')?.teams.find((t) => t.id === 'platform');
    // The configured team keeps its configured fields, with both its projects.
    expect(platform?.costCenter).toBe('CC-PLATFORM');
    expect(platform?.projects.map((p) => [p.id, p.costCenter ?? null]).sort()).toEqual([
      ['ads', 'CC-ADS'],
      ['search', null],
    ]);
    expect(access.tenants.org('acme')?.teams.find((t) => t.id === 'research')?.name).toBe('Research');
    expect((await access.listAudit(admin, 10)).filter((e) => e.action.endsWith('.update')).map((e) => e.target)).toEqual(['research', 'ads']);
  });

  it('is applied by another replica sharing the store from its announcement, with no reload asked for', async () => {
    const repository = new MemoryAccessRepository();
    const [one, other] = [await started(repository), await started(repository)];
    const costCenterOn = (replica: AccessService): string | undefined => replica.tenants.org('initech')?.teams.find((t) => t.id === 'ops')?.costCenter;
    try {
      await one.addOrg(admin, { id: 'initech' });
      await one.addTeam(admin, 'initech', { id: 'ops', costCenter: 'CC-OPS' });
      await until(() => costCenterOn(other) === 'CC-OPS');
      await one.updateTeam(admin, 'initech', 'ops', { costCenter: 'CC-NEW' });
      await until(() => costCenterOn(other) === 'CC-NEW');
      expect(other.tenants.place('initech', 'ops', undefined).costCenter).toBe('CC-NEW');
    } finally {
      await Promise.all([one.close(), other.close()]);
    }
  });
});
