import { MemoryBudgetLedger, type BudgetEventPublisher } from '@openrouter/budgets';
import { createLogger } from '@openrouter/observability';
import { PriceBook } from '@openrouter/usage';
import { MemoryAccessRepository } from '../access/access.repository';
import { AccessService, type Actor } from '../access/access.service';
import { hashApiKey } from '../access/api-key';
import { MemoryCounterStore } from '../access/counter.store';
import { hashesOf } from '../access/key-record';
import { BudgetService } from '../budgets/budget.service';
import { ingressTestConfig } from '../test-config.testing';
import { KeySelfService, keySelfView, keySelfViewSchema } from './key-self.service';

const SECRET = 'key-self-unit-secret-000';
const CONFIG_KEY = 'sk-or-v1-key-self-config-0000000000000000000';
const NOW = Date.parse('2025-06-14T12:00:00Z');
const admin: Actor = { id: 'ops', role: 'admin' };
const logger = createLogger('key-self-spec', 'silent');

function setUp(ledger: MemoryBudgetLedger = new MemoryBudgetLedger(() => NOW)) {
  const config = ingressTestConfig({
    providers: { sim: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', residency: 'eu' }, other: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', residency: 'us' } },
    access: {
      keyHashSecret: SECRET,
      rateLimits: { key: { rpm: 600 }, org: { rpm: 100 } },
      orgs: [{ id: 'acme', policy: { residency: ['eu'] }, teams: [{ id: 'platform', limits: { tpm: 50_000 }, projects: [{ id: 'search', policy: { excludeProviders: ['other'] } }] }] }],
      keys: [{ id: 'search-backend', hash: hashApiKey(SECRET, CONFIG_KEY), prefix: 'sk-or-v1-key-s', org: 'acme', project: 'search', limits: { tpm: 9_000 } }],
    },
    budgets: {
      list: [
        { id: 'acme-monthly', scope: { org: 'acme' }, period: 'monthly', amount: '2500.00', enforcement: 'soft' },
        { id: 'search-daily', scope: { org: 'acme', project: 'search' }, period: 'daily', amount: '40' },
        { id: 'other-key', scope: { org: 'acme', key: 'someone-else' }, period: 'daily', amount: '1' },
        { id: 'other-org', scope: { org: 'globex' }, period: 'daily', amount: '1' },
      ],
    },
  });
  const events: BudgetEventPublisher = { publish: async () => undefined, close: async () => undefined };
  const access = new AccessService(config, new MemoryAccessRepository(), new MemoryCounterStore(), logger, undefined);
  const budgets = new BudgetService(config, PriceBook.fromModels(config.models), ledger, events, logger, () => NOW);
  return { access, budgets, keys: new KeySelfService(access, budgets, () => NOW) };
}

describe('GET /v1/key: what a key sees of itself', () => {
  it('shows a configured key with its placement, tightest limits, effective policy and the budgets that apply, with their spend', async () => {
    const { access, budgets, keys } = setUp();
    const record = await access.keyOf(CONFIG_KEY);
    if (!record) throw new Error('the configured key was not found');
    const context = await access.contextOf(record, 'r0', {});
    const reservation = await budgets.reserve({ requestId: 'r1', tenant: context, body: { model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }, receivedAtMs: NOW });
    if (!reservation) throw new Error('expected a reservation');
    await reservation.settle('0.000025');

    const shown = keySelfView(await keys.describe(record, CONFIG_KEY, 'r2', '192.0.2.10'));
    expect(keySelfViewSchema.parse(shown)).toEqual(shown);
    expect(shown).toMatchObject({
      object: 'api_key',
      id: 'search-backend',
      org: 'acme',
      // Placed in its project's team, as its requests are.
      team: 'platform',
      project: 'search',
      app: null,
      expires_at: null,
      secret_expires_at: null,
      allowed_models: [],
      limits: {
        rpm: 100,
        tpm: 9_000,
        scopes: [
          { scope: 'key', rpm: 600, tpm: 9_000 },
          { scope: 'team', rpm: null, tpm: 50_000 },
          { scope: 'org', rpm: 100, tpm: null },
        ],
      },
      policy: { providers: null, exclude_providers: ['other'], residency: ['eu'], guardrails: [] },
    });
    expect(shown.budgets.map((b) => b.id)).toEqual(['acme-monthly', 'search-daily']);
    expect(shown.budgets[1]).toEqual({
      id: 'search-daily',
      scope: { org: 'acme', team: null, project: 'search', key: null },
      level: 'project',
      period: 'daily',
      amount: '40',
      currency: 'USD',
      enforcement: 'hard',
      spent: '0.000025',
      reserved: '0',
      remaining: '39.999975',
      // Half the day gone: the spend so far, twice.
      forecast: { spend: '0.00005', exceeds: false, exceeds_at: null },
      resets_at: '2025-06-15T00:00:00.000Z',
      unavailable: false,
    });
    expect(shown.budgets[0]).toMatchObject({ level: 'org', amount: '2500', enforcement: 'soft', spent: '0.000025', remaining: '2499.999975' });
  });

  it('never shows a hash, the secret, or anything of the key other than the named fields, also for a rotated key read with its old secret', async () => {
    const { access, keys } = setUp();
    const issued = await access.issueKey(admin, { name: 'search app', org: 'acme', project: 'search', allowedModels: ['m'], limits: { rpm: 5 }, metadata: { owner: 'ops@acme' }, tags: { env: 'prod' } });
    const rotated = await access.rotateKey(admin, issued.record.id, 3_600);
    const record = await access.keyOf(issued.key);
    if (!record) throw new Error('the replaced secret should be accepted during its grace');
    expect(record.id).toBe(issued.record.id);
    expect(record.previousHash).toBeDefined();

    const shown = keySelfView(await keys.describe(record, issued.key, 'r1', '192.0.2.10'));
    const json = JSON.stringify(shown);
    for (const hash of hashesOf(record)) expect(json).not.toContain(hash);
    expect(json).not.toContain(issued.key);
    expect(json).not.toContain(rotated.key);
    expect(json).not.toContain('ops@acme');
    expect(Object.keys(shown).sort()).toEqual(Object.keys(keySelfViewSchema.shape).sort());
    // The replaced secret stops working at the end of its grace, and says so.
    expect(shown.secret_expires_at).toBe(rotated.record.previousExpiresAt);
    expect(shown).toMatchObject({ id: issued.record.id, name: 'search app', allowed_models: ['m'], limits: { rpm: 5, scopes: [{ scope: 'key', rpm: 5, tpm: null }, { scope: 'team', rpm: null, tpm: 50_000 }, { scope: 'org', rpm: 100, tpm: null }] } });

    // Read with its new secret: the key's own expiry (none).
    const current = await access.keyOf(rotated.key);
    if (!current) throw new Error('the new secret should be accepted');
    expect(keySelfView(await keys.describe(current, rotated.key, 'r2', '192.0.2.10')).secret_expires_at).toBeNull();
  });

  it('still answers when the budget ledger cannot be read: the budgets that apply, marked unavailable, with no standing', async () => {
    const ledger = new MemoryBudgetLedger(() => NOW);
    const { access, keys } = setUp(
      Object.assign(ledger, {
        standing: async () => {
          throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
        },
      }),
    );
    const record = await access.keyOf(CONFIG_KEY);
    if (!record) throw new Error('the configured key was not found');
    const shown = keySelfView(await keys.describe(record, CONFIG_KEY, 'r1', '192.0.2.10'));
    expect(shown.budgets).toEqual([
      expect.objectContaining({ id: 'acme-monthly', amount: '2500', spent: null, reserved: null, remaining: null, forecast: null, unavailable: true, resets_at: '2025-07-01T00:00:00.000Z' }),
      expect.objectContaining({ id: 'search-daily', amount: '40', spent: null, reserved: null, remaining: null, forecast: null, unavailable: true }),
    ]);
    expect(keySelfViewSchema.parse(shown)).toEqual(shown);
  });
});
