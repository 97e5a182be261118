import { accessReferenceIssues, accessSchema } from './access.schema';

const hash = 'a'.repeat(64);

describe('access configuration', () => {
  it('applies defaults: open fail mode, no limits, bounds', () => {
    const access = accessSchema.parse({});
    expect(access.rateLimits.failMode).toBe('open');
    expect(access.rateLimits.key).toEqual({});
    expect(access.requests).toEqual({ maxMessages: 2048, maxTokens: 1_000_000, maxN: 16, maxWebSocketStreams: 32, webSocketHeartbeatMs: 30_000 });
  });

  it('refuses a key hash that is not 64 hex digits and a project admin key without its project', () => {
    expect(accessSchema.safeParse({ keys: [{ id: 'k', hash: 'plain-key', org: 'acme' }] }).success).toBe(false);
    expect(accessSchema.safeParse({ admin: { keys: [{ id: 'p', hash, role: 'project', org: 'acme' }] } }).success).toBe(false);
    expect(accessSchema.safeParse({ admin: { keys: [{ id: 'p', hash, role: 'project', org: 'acme', project: 'search' }] } }).success).toBe(true);
  });

  it('names keys that point at tenants that do not exist, and duplicate ids', () => {
    const access = accessSchema.parse({
      orgs: [{ id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }] }] }],
      keys: [
        { id: 'ok', hash, org: 'acme', team: 'platform', project: 'search' },
        { id: 'ok', hash, org: 'acme' },
        { id: 'bad-team', hash, org: 'acme', team: 'nope' },
        { id: 'bad-project', hash, org: 'acme', project: 'nope' },
        { id: 'bare-org', hash, org: 'solo' },
        { id: 'bad-org', hash, org: 'ghost', project: 'x' },
      ],
    });
    expect(accessReferenceIssues(access).map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'access.keys.1.id: duplicate key id "ok"',
      'access.keys.2.team: unknown team "nope" in "acme"',
      'access.keys.3.project: unknown project "nope" in "acme"',
      'access.keys.5.org: unknown organisation "ghost"',
    ]);
  });
});
