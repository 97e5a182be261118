import { createHmac } from 'node:crypto';
import { accessReferenceIssues, accessSchema, parseRedisUrl } from './access.schema';
import { parseConfig } from './config-loader';
import { MINIMAL_CONFIG } from './minimal-config.testing';

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
      maxImages: 100,
      maxWebSocketStreams: 32,
      webSocketHeartbeatMs: 30_000,
      streamStallMs: 30_000,
      onClientAbort: 'cancel',
      webSocketHighWaterBytes: 1024 * 1024,
      webSocketMaxBufferedBytes: 16 * 1024 * 1024,
    });
  });

  it('takes onClientAbort as cancel or complete, and names any other value', () => {
    expect(accessSchema.parse({ requests: { onClientAbort: 'complete' } }).requests.onClientAbort).toBe('complete');
    const bad = accessSchema.safeParse({ requests: { onClientAbort: 'finish' } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => i.path.join('.'))).toEqual(['requests.onClientAbort']);
  });

  it('reads previousKeyHashSecrets as a list or comma-separated text, each at least 16 characters, never the current secret', () => {
    const older = 'an-earlier-hash-secret';
    expect(accessSchema.parse({}).previousKeyHashSecrets).toEqual([]);
    expect(accessSchema.parse({ previousKeyHashSecrets: [older] }).previousKeyHashSecrets).toEqual([older]);
    expect(accessSchema.parse({ previousKeyHashSecrets: ` ${older}, , another-old-secret-value ` }).previousKeyHashSecrets).toEqual([older, 'another-old-secret-value']);
    expect(accessSchema.parse({ previousKeyHashSecrets: '' }).previousKeyHashSecrets).toEqual([]);
    const short = accessSchema.safeParse({ previousKeyHashSecrets: 'too-short' });
    expect(short.success ? [] : short.error.issues.map((i) => i.path.join('.'))).toEqual(['previousKeyHashSecrets.0']);
    const same = accessSchema.parse({ keyHashSecret: older, previousKeyHashSecrets: [older] });
    expect(accessReferenceIssues(same).map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual(['access.previousKeyHashSecrets.0: is access.keyHashSecret itself: list only the earlier secrets still accepted']);
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

  it('refuses a development key set short or with spaces (a placeholder left unfilled), and takes "", disabled or a real one', () => {
    for (const devKey of ['REPLACE-ME', 'short', 'a key with spaces ok']) {
      expect(accessSchema.safeParse({ admin: { devKey } }).error?.issues[0]).toMatchObject({ path: ['admin', 'devKey'], message: expect.stringContaining('at least 12 printable characters') });
    }
    for (const devKey of ['', 'disabled', 'sk-or-admin-0123456789abcdef']) expect(accessSchema.safeParse({ admin: { devKey } }).success).toBe(true);
  });

  it('names a configured key\'s tags as reports can group by them', () => {
    expect(accessSchema.safeParse({ keys: [{ id: 'k', hash, org: 'acme', tags: { 'cost center': 'x' } }] }).error?.issues[0]).toMatchObject({ message: expect.stringContaining('a tag name is 1 to 64 letters') });
    expect(accessSchema.safeParse({ keys: [{ id: 'k', hash, org: 'acme', tags: { 'cost-center': 'x' } }] }).success).toBe(true);
    // `batch` is the Batch API's own tag on each line: a key's tags win over a request's, so a key may not set it.
    expect(accessSchema.safeParse({ keys: [{ id: 'k', hash, org: 'acme', tags: { batch: 'nightly' } }] }).error?.issues[0]).toMatchObject({ path: ['keys', 0, 'tags', 'batch'], message: expect.stringContaining('the tag the Batch API gives each line') });
  });

  it('names keys that point at tenants that do not exist, and duplicate ids', () => {
    const access = accessSchema.parse({
      orgs: [{ id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }] }] }],
      keys: [
        { id: 'ok', hash: '1'.repeat(64), org: 'acme', team: 'platform', project: 'search' },
        { id: 'ok', hash: '2'.repeat(64), org: 'acme' },
        { id: 'bad-team', hash: '3'.repeat(64), org: 'acme', team: 'nope' },
        { id: 'bad-project', hash: '4'.repeat(64), org: 'acme', project: 'nope' },
        { id: 'bare-org', hash: '5'.repeat(64), org: 'solo' },
        { id: 'bad-org', hash: '6'.repeat(64), org: 'ghost', project: 'x' },
        { id: 'dev', hash: '7'.repeat(64), org: 'acme' },
      ],
    });
    expect(accessReferenceIssues(access).map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'access.keys.1.id: duplicate key id "ok"',
      'access.keys.2.team: unknown team "nope" in "acme"',
      'access.keys.3.project: unknown project "nope" in "acme"',
      'access.keys.5.org: unknown organisation "ghost"',
      'access.keys.6.id: "dev" is the development key\'s id (ingress.devKey): choose another',
    ]);
  });

  it('refuses a project id twice in one organisation, naming the org, the project and both teams', () => {
    const issues = (orgs: unknown) => accessSchema.safeParse({ orgs }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(
      issues([
        { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }] }, { id: 'labs', projects: [{ id: 'ads' }, { id: 'search' }] }] },
        { id: 'other', teams: [{ id: 'core', projects: [{ id: 'search' }, { id: 'search' }] }] },
      ]),
    ).toEqual([
      'orgs.0.teams.1.projects.0.id: duplicate project id "ads" in the organisation "acme": it is in the teams "platform" and "labs" (a project id must be unique within its organisation)',
      'orgs.0.teams.1.projects.1.id: duplicate project id "search" in the organisation "acme": it is in the teams "platform" and "labs" (a project id must be unique within its organisation)',
      'orgs.1.teams.0.projects.1.id: duplicate project id "search" in the organisation "other": it is twice in the team "core" (a project id must be unique within its organisation)',
    ]);
    // The same project id in two organisations is two projects.
    expect(issues([{ id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }] }] }, { id: 'globex', teams: [{ id: 'platform', projects: [{ id: 'search' }] }] }])).toEqual([]);
  });

  it('refuses an organisation id twice, and a team id twice in one organisation, naming the duplicates', () => {
    const issues = (orgs: unknown) => accessSchema.safeParse({ orgs }).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(
      issues([
        { id: 'acme', teams: [{ id: 'platform' }, { id: 'labs' }, { id: 'platform', projects: [{ id: 'search' }] }] },
        { id: 'globex' },
        { id: 'acme', limits: { rpm: 10 } },
      ]),
    ).toEqual([
      'orgs.0.teams.2.id: duplicate team id "platform" in the organisation "acme": it is teams[0] and teams[2] (a team id must be unique within its organisation)',
      'orgs.2.id: duplicate organisation id "acme": it is orgs[0] and orgs[2] (an organisation id must be unique)',
    ]);
    // The same team id in two organisations is two teams.
    expect(issues([{ id: 'acme', teams: [{ id: 'platform' }] }, { id: 'globex', teams: [{ id: 'platform' }] }])).toEqual([]);
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
          { id: 'dev-admin', hash: 'c'.repeat(64), role: 'viewer' },
        ],
      },
    });
    expect(accessReferenceIssues(access).map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'access.admin.keys.2.hash: has the same keyed hash as the admin key "viewer": each admin key must be a different key, and no traffic key',
      'access.admin.keys.3.id: duplicate admin key id "viewer"',
      'access.admin.keys.4.id: "dev-admin" is the development admin key\'s id (access.admin.devKey): choose another',
      'access.admin.devKey: has the same keyed hash as the admin key "ops": use another development admin key, or "disabled"',
    ]);
    // A generated development key, or none, cannot be one of them.
    for (const devKey of ['', 'disabled']) expect(accessReferenceIssues({ ...access, admin: { ...access.admin, devKey, keys: access.admin.keys.slice(0, 2) } })).toEqual([]);
  });

  it('refuses traffic keys that are one key, or that are an admin key or a development key (the last would silently win: another org billed, or admin rights)', () => {
    const secret = 'traffic-clash-secret-00';
    const of = (key: string): string => createHmac('sha256', secret).update(key).digest('hex');
    const access = accessSchema.parse({
      keyHashSecret: secret,
      orgs: [{ id: 'acme' }, { id: 'globex' }],
      keys: [
        { id: 'acme-app', hash: of('sk-or-shared-key-1'), org: 'acme' },
        { id: 'globex-app', hash: of('sk-or-shared-key-1'), org: 'globex' },
        { id: 'acme-dev', hash: of('sk-or-ingress-dev-1'), org: 'acme' },
      ],
      admin: { devKey: 'sk-or-admin-dev-1', keys: [{ id: 'ops', hash: of('sk-or-shared-key-1'), role: 'admin' }] },
    });
    expect(accessReferenceIssues(access, 'sk-or-ingress-dev-1').map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'access.keys.1.hash: has the same keyed hash as the key "acme-app": each key must be a different key',
      'ingress.devKey: has the same keyed hash as the key "acme-dev": use another development key, or "disabled"',
      'access.admin.keys.0.hash: has the same keyed hash as the key "acme-app": each admin key must be a different key, and no traffic key',
    ]);
    // The development admin key that is the development traffic key.
    expect(accessReferenceIssues({ ...access, keys: [], admin: { ...access.admin, keys: [] } }, 'sk-or-admin-dev-1').map((i) => i.message)).toEqual(['has the same keyed hash as the development key (ingress.devKey): use another development admin key, or "disabled"']);
  });

  it('refuses tenant ids past 64 characters and cost centres or apps past 256, which the admin API and the reports could never name', () => {
    const problems = (access: object): string[] => {
      const result = accessSchema.safeParse(access);
      return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const tenants = (id: string, costCenter: string, app: string): object => ({
      orgs: [{ id, costCenter, teams: [{ id, costCenter, projects: [{ id, costCenter }] }] }],
      keys: [{ id, hash, org: id, team: id, project: id, app }],
    });
    // The longest the reports take: an invoice, a chargeback, a usage filter can name them.
    expect(problems(tenants('a'.repeat(64), 'C'.repeat(256), 'x'.repeat(256)))).toEqual([]);
    const idTooLong = 'at most 64 characters, as the admin API and the reports take ids';
    const textTooLong = 'at most 256 characters, as reports take it in a filter';
    expect(problems(tenants('a'.repeat(65), 'C'.repeat(257), 'x'.repeat(257)))).toEqual([
      `orgs.0.id: ${idTooLong}`,
      `orgs.0.costCenter: ${textTooLong}`,
      `orgs.0.teams.0.id: ${idTooLong}`,
      `orgs.0.teams.0.costCenter: ${textTooLong}`,
      `orgs.0.teams.0.projects.0.id: ${idTooLong}`,
      `orgs.0.teams.0.projects.0.costCenter: ${textTooLong}`,
      `keys.0.id: ${idTooLong}`,
      `keys.0.org: ${idTooLong}`,
      `keys.0.team: ${idTooLong}`,
      `keys.0.project: ${idTooLong}`,
      `keys.0.app: ${textTooLong}`,
    ]);
    expect(problems({ admin: { keys: [{ id: 'p', hash, role: 'project', org: 'a'.repeat(65), project: 'search' }] } })).toEqual([`admin.keys.0.org: ${idTooLong}`]);
    // Refused at start-up, naming the setting.
    expect(() => parseConfig({ ...MINIMAL_CONFIG, access: { orgs: [{ id: 'a'.repeat(70) }] } }, {})).toThrow(`access.orgs[0].id: ${idTooLong}`);
  });

  it("refuses an identity provider's address that is no URL as such, not by failing the whole parse", () => {
    const oidc = (urls: object): string[] => {
      const result = accessSchema.safeParse({ admin: { oidc: { issuer: 'https://id.example.com', audience: 'gateway', grants: [{ value: 'ops', role: 'admin' }], ...urls } } });
      return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(oidc({ issuer: 'id.example.com', jwksUrl: '' })).toEqual(['admin.oidc.issuer: Invalid URL', 'admin.oidc.jwksUrl: Invalid URL']);
    expect(oidc({ jwksUrl: 'http://id.example.com/keys' })).toEqual(['admin.oidc.jwksUrl: must be an https:// URL (http:// only to 127.0.0.1 or localhost)']);
  });
});

describe('access.redis', () => {
  const issues = (redis: object): string[] => {
    const result = accessSchema.safeParse({ redis });
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('takes a server URL alone, and sentinels as a list or as one comma-separated string (an environment variable)', () => {
    expect(accessSchema.parse({}).redis).toEqual({ url: '', keyPrefix: 'or:' });
    expect(issues({ url: 'rediss://app:p%40ss@redis.internal:6380/2' })).toEqual([]);
    const fromEnv = accessSchema.parse({ redis: { url: 'redis://:secret@mymaster/1', sentinel: { nodes: ' s1:26379, [::1]:26380,,s3 ', password: 'x', tls: 'true' } } }).redis;
    expect(fromEnv.sentinel).toEqual({
      nodes: [
        { host: 's1', port: 26379 },
        { host: '::1', port: 26380 },
        { host: 's3', port: 26379 },
      ],
      username: '',
      password: 'x',
      tls: true,
    });
    expect(accessSchema.parse({ redis: { url: 'redis://mymaster', sentinel: { nodes: ['s1:1'] } } }).redis.sentinel?.nodes).toEqual([{ host: 's1', port: 1 }]);
  });

  it('treats the empty values of unset environment variables as no Sentinel', () => {
    expect(issues({ url: 'redis://redis:6379', sentinel: { nodes: '', username: '', password: '', tls: 'false' } })).toEqual([]);
  });

  it('names a bad sentinel address, and the URL a sentinel setup needs', () => {
    expect(issues({ url: 'redis://mymaster', sentinel: { nodes: 's1:26379,s2:abc,s3:70000,http://s4' } })).toEqual([
      'redis.sentinel.nodes.1: is not a sentinel address: write host:port (e.g. sentinel-1:26379)',
      'redis.sentinel.nodes.2: is not a sentinel address: write host:port (e.g. sentinel-1:26379)',
      'redis.sentinel.nodes.3: is not a sentinel address: write host:port (e.g. sentinel-1:26379)',
    ]);
    // Never the address itself: it may hold a password.
    expect(issues({ url: 'redis://mymaster', sentinel: { nodes: 'admin:Sup3rS3cret@sentinel-1:26379,sentinel-2:26379' } })).toEqual([
      'redis.sentinel.nodes.0: is not a sentinel address: write host:port (e.g. sentinel-1:26379); credentials go in access.redis.sentinel.username and password, not in the address',
    ]);
    // A server's address and sentinels at once: the URL names the primary by its Sentinel name.
    expect(issues({ url: 'redis://redis:6379', sentinel: { nodes: 's1:26379' } })).toEqual([
      'redis.url: has a port, but with access.redis.sentinel.nodes set the URL names the primary as the sentinels know it, not its address: write redis://[user:password@]<primary name>[/db] (rediss:// for TLS)',
    ]);
    expect(issues({ url: '', sentinel: { nodes: 's1:26379' } })).toEqual([
      'redis.url: is empty, but access.redis.sentinel.nodes is set: name the primary as the sentinels know it, redis://[user:password@]<primary name>[/db] (rediss:// for TLS)',
    ]);
    expect(issues({ url: 'redis:///0', sentinel: { nodes: 's1:26379' } })).toEqual([
      'redis.url: names no primary: with access.redis.sentinel.nodes set, write redis://[user:password@]<primary name>[/db] (rediss:// for TLS)',
    ]);
    expect(issues({ url: 'redis://redis:6379', sentinel: { password: 'x', tls: true } })).toEqual([
      'redis.sentinel.password: applies with access.redis.sentinel.nodes only (no sentinel is named)',
      'redis.sentinel.tls: applies with access.redis.sentinel.nodes only (no sentinel is named)',
    ]);
  });

  it('refuses a URL it cannot read without ever quoting it (it may hold a password)', () => {
    const bad = ['http://redis:6379', 'redis://:pa#ss@redis', 'redis://redis?db=1', 'redis://redis/x', 'redis:///0', 'redis://:%zz@redis'];
    const found = bad.map((url) => issues({ url }));
    expect(found.map((i) => i.length)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(found.flat().join('\n')).not.toMatch(/pa#ss|%zz|redis:6379|db=1/);
    expect(found.flat()[0]).toBe('redis.url: must start with redis:// or rediss:// (redis://[user:password@]host[:port][/db] (rediss:// for TLS))');
  });

  it('takes the URL apart: TLS, host, port, credentials (percent-decoded) and database', () => {
    expect(parseRedisUrl('rediss://app:p%40ss@[::1]:6380/3', false)).toEqual({ ok: true, value: { tls: true, host: '::1', port: 6380, username: 'app', password: 'p@ss', db: 3 } });
    expect(parseRedisUrl('redis://MyPrimary', true)).toEqual({ ok: true, value: { tls: false, host: 'MyPrimary', port: undefined, username: '', password: '', db: 0 } });
  });
});
