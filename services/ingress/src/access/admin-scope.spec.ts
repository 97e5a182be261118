import { inScope, scopeTooNarrow } from './admin-scope';

describe('admin scope', () => {
  it('lets an unscoped key reach every org and project', () => {
    expect(inScope({}, 'globex', 'anything')).toBe(true);
    expect(inScope({}, 'globex', '')).toBe(true);
  });

  it('confines an org key to its org, any project in it', () => {
    const scope = { org: 'acme' };
    expect(inScope(scope, 'acme')).toBe(true);
    expect(inScope(scope, 'acme', 'search')).toBe(true);
    expect(inScope(scope, 'acme', '')).toBe(true);
    expect(inScope(scope, 'globex')).toBe(false);
    expect(inScope(scope, 'globex', 'search')).toBe(false);
  });

  it('confines a project key to its project: not another project, nor the whole org', () => {
    const scope = { org: 'acme', project: 'search' };
    expect(inScope(scope, 'acme', 'search')).toBe(true);
    expect(inScope(scope, 'acme', 'ads')).toBe(false);
    expect(inScope(scope, 'acme', '')).toBe(false);
    expect(inScope(scope, 'globex', 'search')).toBe(false);
    // Asking about the org alone: the org is its own.
    expect(inScope(scope, 'acme')).toBe(true);
  });

  it('refuses wider operations with a 403 naming the scope', () => {
    expect(scopeTooNarrow({ org: 'acme' }, 'create organisations')).toMatchObject({ kind: 'permission_denied', code: 'insufficient_scope', message: 'A key scoped to an organisation may not create organisations.' });
    expect(scopeTooNarrow({ org: 'acme', project: 'search' }, 'add teams')).toMatchObject({ code: 'insufficient_scope', message: 'A key scoped to a project may not add teams.' });
  });
});
