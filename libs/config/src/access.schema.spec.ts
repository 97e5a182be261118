import { createHmac } from 'node:crypto';
import { accessReferenceIssues, accessSchema } from './access.schema';

const hash = 'a'.repeat(64);

describe('access configuration', () => {
  it('applies defaults: open fail mode, no limits, bounds', () => {
    const access = accessSchema.parse({});
    expect(access.rateLimits.failMode).toBe('open');
    expect(access.rateLimits.key).toEqual({});
    expect(access.requests).toEqual({
      maxMessages: 2048,
      maxTokens: 1_000_000,
      maxN: 16,
      maxWebSocketStreams: 32,
      webSocketHeartbeatMs: 30_000,
      webSocketHighWaterBytes: 1024 * 1024,
      webSocketMaxBufferedBytes: 16 * 1024 * 1024,
    });
  });

  it('refuses WebSocket buffer limits whose maximum is not above the high-water mark, naming the setting', () => {
    const issues = (requests: object): string[] => {
      const result = accessSchema.safeParse({ requests });
      return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ webSocketHighWaterBytes: 16_384, webSocketMaxBufferedBytes: 65_536 })).toEqual([]);
    expect(issues({ webSocketHighWaterBytes: 65_536, webSocketMaxBufferedBytes: 65_536 })).toEqual(['requests.webSocketMaxBufferedBytes: must be larger than webSocketHighWaterBytes (65536)']);
    // Against the defaults of the other one, too.
    expect(issues({ webSocketMaxBufferedBytes: 1024 * 1024 })).toEqual(['requests.webSocketMaxBufferedBytes: must be larger than webSocketHighWaterBytes (1048576)']);
    expect(issues({ webSocketHighWaterBytes: 32 * 1024 * 1024 })).toEqual(['requests.webSocketMaxBufferedBytes: must be larger than webSocketHighWaterBytes (33554432)']);
    expect(issues({ webSocketHighWaterBytes: 0, webSocketMaxBufferedBytes: 1.5 })).toHaveLength(2);
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

  it('refuses admin keys that are one key (the last would silently win) or share an id, and a development admin key that is one of them', () => {
    const secret = 'admin-clash-secret-0000';
    const other = 'b'.repeat(64);
    const access = accessSchema.parse({
      keyHashSecret: secret,
      admin: {
        devKey: 'sk-or-admin-ops-key',
        keys: [
          { id: 'ops', hash: createHmac('sha256', secret).update('sk-or-admin-ops-key').digest('hex'), role: 'admin' },
          { id: 'viewer', hash, role: 'viewer' },
          { id: 'acme-fin', hash, role: 'finance', org: 'acme' },
          { id: 'viewer', hash: other, role: 'viewer' },
        ],
      },
    });
    expect(accessReferenceIssues(access).map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'access.admin.keys.2.hash: the same hash as the admin key "viewer": each admin key must be a different key',
      'access.admin.keys.3.id: duplicate admin key id "viewer"',
      'access.admin.devKey: is the key of the admin key "ops" (the same keyed hash): use another development admin key, or "disabled"',
    ]);
    // A generated development key, or none, cannot be one of them.
    for (const devKey of ['', 'disabled']) expect(accessReferenceIssues({ ...access, admin: { ...access.admin, devKey, keys: access.admin.keys.slice(0, 2) } })).toEqual([]);
  });
});
