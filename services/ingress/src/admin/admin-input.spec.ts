import { GatewayError } from '@openrouter/errors';
import { auditQuery, budgetBody, issueKeyBody, parseInput, tenantBody, tenantPatchInput } from './admin-input';

describe('parseInput', () => {
  it('names a list entry the way OpenAI names params', () => {
    expect(() => parseInput(issueKeyBody, { org: 'acme', allowed_models: ['gpt-4o', ''] })).toThrow(
      expect.objectContaining({ kind: 'bad_request', param: 'allowed_models[1]', code: 'invalid_value' }) as GatewayError,
    );
  });

  it('names an unknown field', () => {
    expect(() => parseInput(issueKeyBody, { org: 'acme', colour: 'red' })).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'colour' }) as GatewayError);
  });
});

describe('auditQuery', () => {
  const refused = (query: Record<string, unknown>, param: string) => expect(() => parseInput(auditQuery, query)).toThrow(expect.objectContaining({ kind: 'bad_request', code: 'invalid_value', param }) as GatewayError);

  it('reads a page, its cursor and its filters', () => {
    expect(parseInput(auditQuery, {})).toEqual({ limit: 100 });
    expect(parseInput(auditQuery, { limit: '1000', after: 'audit_12', actor: 'ops', target: 'key_1', org: 'acme', project: 'search' })).toEqual({ limit: 1000, after: 12, actor: 'ops', target: 'key_1', org: 'acme', project: 'search' });
    expect(parseInput(auditQuery, { before: 'audit_0' })).toEqual({ limit: 100, before: 0 });
    // Repeated, comma-separated, or both.
    expect(parseInput(auditQuery, { action: ['key.issue', 'budget.create, budget.delete'] }).action).toEqual(['key.issue', 'budget.create', 'budget.delete']);
    expect(parseInput(auditQuery, { action: 'key.revoke' }).action).toEqual(['key.revoke']);
    // A date is midnight UTC; an instant keeps its zone.
    expect(parseInput(auditQuery, { since: '2025-06-01', until: '2025-06-01T12:00:00+02:00' })).toMatchObject({ since: Date.UTC(2025, 5, 1), until: Date.UTC(2025, 5, 1, 10) });
  });

  it('refuses a bad value naming its parameter', () => {
    for (const limit of ['0', '1001', 'many']) refused({ limit }, 'limit');
    for (const after of ['12', 'audit_', 'audit_-1', 'audit_01', 'key_12', 'audit_1234567890123456']) refused({ after }, 'after');
    refused({ before: 'audit_x' }, 'before');
    refused({ after: 'audit_9', before: 'audit_3' }, 'before');
    refused({ since: 'yesterday' }, 'since');
    refused({ since: '2025-02-30' }, 'since');
    refused({ since: '2025-06-01T12:00:00' }, 'since');
    refused({ until: '2025-06-01T12:00:00Z', since: '2025-06-01T12:00:00Z' }, 'until');
    refused({ org: 'ACME' }, 'org');
    refused({ project: '' }, 'project');
    refused({ actor: '' }, 'actor');
    refused({ target: 'x'.repeat(257) }, 'target');
    refused({ team: 'platform' }, 'team');
  });

  it('refuses an action the log does not record, naming those it does (key.create is key.issue)', () => {
    expect(() => parseInput(auditQuery, { action: 'key.issue,key.create' })).toThrow(
      expect.objectContaining({ param: 'action', message: 'Invalid action: "key.create" is not an audit action; the actions are key.issue, key.revoke, key.update, key.rotate, org.create, team.create, project.create, org.update, team.update, project.update, budget.create, budget.update, budget.delete, project.responses_purge.' }) as GatewayError,
    );
    refused({ action: ['key.issue', 'KEY.ISSUE'] }, 'action');
  });
});

describe('budgetBody', () => {
  it.each(['2,500.00', '1e5', 'ten', '-1'])('refuses the amount %p as a 400 naming it, not a failure of the gateway', (amount) => {
    expect(() => parseInput(budgetBody, { id: 'b', scope: { org: 'acme' }, period: 'daily', amount })).toThrow(
      expect.objectContaining({ kind: 'bad_request', param: 'amount' }) as GatewayError,
    );
  });
});

describe('tenant changes', () => {
  const refused = (body: unknown, param: string | undefined, code = 'invalid_value') => expect(() => tenantPatchInput(body)).toThrow(expect.objectContaining({ kind: 'bad_request', param, code }) as GatewayError);

  it('reads the fields given, null clearing one, and leaves out those not given', () => {
    expect(tenantPatchInput({ cost_center: 'CC-42' })).toEqual({ cost_center: 'CC-42' });
    expect(tenantPatchInput({ name: null, cost_center: null, limits: null })).toEqual({ name: null, cost_center: null, limits: null });
    expect(tenantPatchInput({ limits: { rpm: 60 } })).toEqual({ limits: { rpm: 60 } });
    expect(tenantPatchInput({ limits: {} })).toEqual({ limits: {} });
  });

  it('validates each field as creation does', () => {
    refused({ cost_center: '' }, 'cost_center');
    refused({ name: 'x'.repeat(129) }, 'name');
    refused({ limits: { rpm: 0 } }, 'limits.rpm');
    refused({ limits: { rpm: 1.5 } }, 'limits.rpm');
    refused({ limits: { rph: 10 } }, 'rph');
    refused({ colour: 'red' }, 'colour');
    // Creation takes the same limits.
    expect(parseInput(tenantBody, { id: 'search', limits: { tpm: 1000 } })).toEqual({ id: 'search', limits: { tpm: 1000 } });
    expect(() => parseInput(tenantBody, { id: 'search', limits: { tpm: -1 } })).toThrow(expect.objectContaining({ param: 'limits.tpm' }) as GatewayError);
  });

  it('refuses a change that changes nothing, and explains why an id cannot be changed', () => {
    for (const body of [{}, undefined, { name: undefined }]) refused(body, undefined);
    expect(() => tenantPatchInput({})).toThrow(expect.objectContaining({ message: 'Invalid body: give at least one of name, cost_center, limits, end_user_limits, policy.' }) as GatewayError);
    refused({ id: 'other', name: 'x' }, 'id', 'immutable_field');
  });
});
