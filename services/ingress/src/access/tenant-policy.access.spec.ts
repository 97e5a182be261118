import { createLogger } from '@openrouter/observability';
import { MemoryAccessRepository } from './access.repository';
import { AccessService, type Actor } from './access.service';
import { MemoryCounterStore } from './counter.store';
import { apiKeyRecordSchema } from './key-record';
import { ingressTestConfig } from '../test-config.testing';

const config = ingressTestConfig({
  providers: {
    'sim-eu': { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', residency: 'eu' },
    'sim-us': { type: 'openai', baseUrl: 'http://127.0.0.1:8/v1', residency: 'us' },
  },
  models: [{ id: 'm', pricing: { input: '1', output: '2' }, deployments: [{ id: 'd-eu', provider: 'sim-eu', model: 'u' }, { id: 'd-us', provider: 'sim-us', model: 'u' }] }],
  access: {
    keyHashSecret: 'unit-test-secret-000',
    orgs: [{ id: 'acme', policy: { residency: ['eu', 'us'] }, teams: [{ id: 'platform', policy: { excludeProviders: ['sim-us'] }, projects: [{ id: 'search' }] }] }],
  },
});
const logger = createLogger('tenant-policy-spec', 'silent');
const admin: Actor = { id: 'ops', role: 'admin' };
const keyInput = { name: '', allowedModels: [], limits: {}, metadata: {}, tags: {} };

describe('AccessService routing policies', () => {
  let access: AccessService;

  beforeEach(async () => {
    access = new AccessService(config, new MemoryAccessRepository(), new MemoryCounterStore(), logger, undefined);
    await access.start();
  });
  afterEach(async () => access.close());

  const policyOf = async (key: string) => (await access.authenticate(key, 'r', {}, undefined))?.context.policy;

  it("puts the intersection of the org's, team's, project's and key's policies on the request context", async () => {
    const { key } = await access.issueKey(admin, { ...keyInput, org: 'acme', project: 'search', policy: { residency: ['eu'] } });
    expect(await policyOf(key)).toEqual({ excludeProviders: ['sim-us'], guardrails: [], residency: { values: ['eu'] } });
    // A key of the org alone narrows the org's residency.
    const { key: us } = await access.issueKey(admin, { ...keyInput, org: 'acme', policy: { residency: ['us'] } });
    expect(await policyOf(us)).toEqual({ excludeProviders: [], guardrails: [], residency: { values: ['us'] } });
    await access.addOrg(admin, { id: 'other' });
    const { key: bare } = await access.issueKey(admin, { ...keyInput, org: 'other' });
    expect(await policyOf(bare)).toBeUndefined();
  });

  it("applies a PATCH of a run-time tenant's policy, or of a key's, to the next request", async () => {
    await access.addOrg(admin, { id: 'globex' });
    await access.addTeam(admin, 'globex', { id: 'lab', policy: { providers: ['sim-eu', 'sim-us'] } });
    const { key, record } = await access.issueKey(admin, { ...keyInput, org: 'globex', team: 'lab' });
    expect(await policyOf(key)).toEqual({ providers: { values: ['sim-eu', 'sim-us'] }, excludeProviders: [], guardrails: [] });
    await expect(access.updateOrg(admin, 'globex', { policy: { residency: ['eu'] } })).resolves.toMatchObject({ policy: { residency: ['eu'] } });
    expect(await policyOf(key)).toEqual({ providers: { values: ['sim-eu', 'sim-us'] }, excludeProviders: [], guardrails: [], residency: { values: ['eu'] } });
    await access.updateTeam(admin, 'globex', 'lab', { policy: null });
    expect(await policyOf(key)).toEqual({ excludeProviders: [], guardrails: [], residency: { values: ['eu'] } });
    await expect(access.updateKey(admin, record.id, { policy: { excludeProviders: ['sim-eu'] } })).resolves.toMatchObject({ policy: { excludeProviders: ['sim-eu'] } });
    expect(await policyOf(key)).toEqual({ excludeProviders: ['sim-eu'], guardrails: [], residency: { values: ['eu'] } });
    const cleared = await access.updateKey(admin, record.id, { policy: null });
    expect(cleared.policy).toBeUndefined();
    expect(await policyOf(key)).toEqual({ excludeProviders: [], guardrails: [], residency: { values: ['eu'] } });
    const [audit] = await access.listAudit(admin, 1);
    expect(audit).toMatchObject({ action: 'key.update', details: { fields: ['policy'] } });
  });

  it('refuses an unknown provider id or a residency label no provider has, naming the field', async () => {
    await expect(access.issueKey(admin, { ...keyInput, org: 'acme', policy: { excludeProviders: ['sim-eu', 'sim-mars'] } })).rejects.toMatchObject({
      kind: 'bad_request',
      code: 'invalid_value',
      param: 'policy.exclude_providers[1]',
      message: expect.stringContaining('unknown provider "sim-mars"'),
    });
    await expect(access.addOrg(admin, { id: 'initech', policy: { residency: ['mars'] } })).rejects.toMatchObject({ param: 'policy.residency[0]', message: expect.stringContaining('no provider has the residency "mars"') });
    await access.addOrg(admin, { id: 'globex' });
    await expect(access.updateOrg(admin, 'globex', { policy: { providers: ['nope'] } })).rejects.toMatchObject({ param: 'policy.providers[0]' });
  });

  it('explains as a key or a tenant would be routed, within the actor\'s scope', async () => {
    const { record } = await access.issueKey(admin, { ...keyInput, org: 'acme', team: 'platform', policy: { residency: ['eu'] } });
    await expect(access.explainContext(admin, 'r', { key: record.id })).resolves.toMatchObject({ keyId: record.id, policy: { excludeProviders: ['sim-us'], residency: { values: ['eu'] } } });
    await expect(access.explainContext(admin, 'r', { org: 'acme', team: 'platform' })).resolves.toMatchObject({ teamId: 'platform', policy: { excludeProviders: ['sim-us'], residency: { values: ['eu', 'us'] } } });
    await expect(access.explainContext({ id: 'o', role: 'admin', org: 'other' }, 'r', { key: record.id })).rejects.toMatchObject({ kind: 'not_found' });
    await expect(access.explainContext({ id: 'o', role: 'admin', org: 'other' }, 'r', { org: 'acme' })).rejects.toMatchObject({ kind: 'not_found' });
  });
});

describe('AccessService guardrail policies', () => {
  const guarded = ingressTestConfig({
    models: [{ id: 'm', pricing: { input: '1', output: '2' }, deployments: [{ id: 'd', provider: 'sim', model: 'u' }] }],
    guardrails: {
      rules: [
        { id: 'secrets', detect: 'secret', action: 'block' },
        { id: 'emails', detect: 'email', action: 'redact' },
        { id: 'codename', terms: ['falcon'], action: 'block' },
      ],
      default: ['secrets'],
    },
    access: { keyHashSecret: 'unit-test-secret-000', orgs: [{ id: 'acme', policy: { guardrails: ['emails'] }, teams: [{ id: 'platform', projects: [{ id: 'search' }] }] }, { id: 'globex' }] },
  });
  let access: AccessService;

  beforeEach(async () => {
    access = new AccessService(guarded, new MemoryAccessRepository(), new MemoryCounterStore(), logger, undefined);
    await access.start();
  });
  afterEach(async () => access.close());

  const policyOf = async (key: string) => (await access.authenticate(key, 'r', {}, undefined))?.context.policy;

  it('sends the default, the tenants\' and the key\'s rules, with the digest of their definitions', async () => {
    const { key } = await access.issueKey(admin, { ...keyInput, org: 'acme', policy: { guardrails: ['codename', 'emails'] } });
    const policy = await policyOf(key);
    expect(policy?.guardrails).toEqual(['secrets', 'emails', 'codename']);
    expect(policy?.guardrailsDigest).toMatch(/^[0-9a-f]{64}$/);
    const { key: bare } = await access.issueKey(admin, { ...keyInput, org: 'globex' });
    const plain = await policyOf(bare);
    expect(plain).toMatchObject({ excludeProviders: [], guardrails: ['secrets'] });
    expect(plain?.guardrailsDigest).not.toBe(policy?.guardrailsDigest);
  });

  it('refuses an unknown rule id in a key or tenant policy with a 400 naming the field', async () => {
    await expect(access.issueKey(admin, { ...keyInput, org: 'acme', policy: { guardrails: ['emails', 'emials'] } })).rejects.toMatchObject({
      kind: 'bad_request',
      code: 'invalid_value',
      param: 'policy.guardrails[1]',
      message: expect.stringContaining('unknown guardrail rule "emials"'),
    });
    await expect(access.addOrg(admin, { id: 'initech', policy: { guardrails: ['nope'] } })).rejects.toMatchObject({ param: 'policy.guardrails[0]' });
  });

  it('keeps a key\'s guardrails in its stored record', () => {
    const stored = apiKeyRecordSchema.parse({ id: 'k', hash: 'a'.repeat(64), prefix: '', name: '', orgId: 'acme', teamId: '', projectId: '', appId: '', allowedModels: [], policy: { guardrails: ['emails'] }, limits: {}, metadata: {}, tags: {}, createdAt: '2026-01-01T00:00:00Z', source: 'issued' });
    expect(stored.policy).toEqual({ guardrails: ['emails'] });
  });
});
