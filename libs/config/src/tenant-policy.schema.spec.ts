import { ConfigError, parseConfig } from './config-loader';
import { MINIMAL_CONFIG } from './minimal-config.testing';

const providers = {
  ...MINIMAL_CONFIG.providers,
  'openai-eu': { type: 'openai', baseUrl: 'https://eu.api.openai.com/v1', residency: 'eu' },
  'openai-us': { type: 'openai', baseUrl: 'https://api.openai.com/v1', residency: 'us' },
  bedrock: { type: 'bedrock', region: 'eu-central-1', residency: 'eu-central', credentials: { accessKeyId: 'AKIA', secretAccessKey: 'secret' } },
};

/** The problems `parseConfig` reports for the minimal configuration with these providers and `access`. */
function problems(access: Record<string, unknown>, withProviders: Record<string, unknown> = providers): string[] {
  try {
    parseConfig({ ...MINIMAL_CONFIG, providers: withProviders, access }, {});
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

const HASH = 'a'.repeat(64);

describe('tenant routing policies in the configuration', () => {
  it('accepts policies at every level and keeps a residency label beside Bedrock\'s region', () => {
    const access = {
      orgs: [{ id: 'acme', policy: { residency: ['eu', 'eu-central'] }, teams: [{ id: 'ml', policy: { excludeProviders: ['openai-us'] }, projects: [{ id: 'chat', policy: { providers: ['openai-eu', 'bedrock'] } }] }] }],
      keys: [{ id: 'k1', hash: HASH, org: 'acme', policy: { residency: ['eu'] } }],
    };
    expect(problems(access)).toEqual([]);
    const config = parseConfig({ ...MINIMAL_CONFIG, providers, access }, {});
    expect(config.providers['bedrock']).toMatchObject({ region: 'eu-central-1', residency: 'eu-central' });
    expect(config.access.orgs[0]?.teams[0]?.projects[0]?.policy).toEqual({ providers: ['openai-eu', 'bedrock'] });
    expect(config.access.keys[0]?.policy).toEqual({ residency: ['eu'] });
  });

  it('refuses an unknown provider id, naming its path', () => {
    expect(problems({ orgs: [{ id: 'acme', teams: [{ id: 'ml', projects: [{ id: 'chat', policy: { providers: ['openai-eu', 'opnai-us'] } }] }] }] })).toEqual([
      'access.orgs[0].teams[0].projects[0].policy.providers[1]: unknown provider "opnai-us": name a provider id (providers: sim, openai-eu, openai-us, bedrock)',
    ]);
    expect(problems({ orgs: [{ id: 'acme', policy: { excludeProviders: ['azure'] } }], keys: [{ id: 'k1', hash: HASH, org: 'acme', policy: { providers: ['x'] } }] })).toEqual([
      'access.orgs[0].policy.excludeProviders[0]: unknown provider "azure": name a provider id (providers: sim, openai-eu, openai-us, bedrock)',
      'access.keys[0].policy.providers[0]: unknown provider "x": name a provider id (providers: sim, openai-eu, openai-us, bedrock)',
    ]);
  });

  it('refuses a residency label no provider has: a typo would leave the tenant no deployment', () => {
    expect(problems({ orgs: [{ id: 'acme', teams: [{ id: 'ml', policy: { residency: ['eu', 'ue'] } }] }] })).toEqual([
      'access.orgs[0].teams[0].policy.residency[1]: no provider has the residency "ue": set providers.<id>.residency, or name one of "eu", "us", "eu-central"',
    ]);
    expect(problems({ orgs: [{ id: 'acme', policy: { residency: ['eu'] } }] }, MINIMAL_CONFIG.providers)).toEqual([
      'access.orgs[0].policy.residency[0]: no provider has the residency "eu": set providers.<id>.residency, or name one of none (no provider has a residency yet)',
    ]);
  });

  it('refuses a malformed residency label, on a provider or in a policy, and unknown policy keys', () => {
    const bad = { ...providers, 'openai-eu': { type: 'openai', baseUrl: 'https://eu.api.openai.com/v1', residency: 'EU' } };
    expect(problems({}, bad)).toEqual(['providers.openai-eu.residency: lower-case letters, digits and - (such as eu, us, eu-west)']);
    expect(problems({ orgs: [{ id: 'acme', policy: { residency: ['eu west'] } }] })).toEqual(['access.orgs[0].policy.residency[0]: lower-case letters, digits and - (such as eu, us, eu-west)']);
    expect(problems({ orgs: [{ id: 'acme', policy: { region: ['eu'] } }] })).toEqual([expect.stringContaining('access.orgs[0].policy: unknown key "region"')]);
  });

  it('reads network allow lists at every level and for the admin API, and refuses an entry that is no address or range, with its path', () => {
    const access = {
      orgs: [{ id: 'acme', policy: { allowedIps: ['203.0.113.7', '10.0.0.0/8'] }, teams: [{ id: 't', policy: { allowedIps: ['2001:db8::/32'] }, projects: [{ id: 'p', policy: { allowedIps: [] } }] }] }],
      keys: [{ id: 'k', hash: HASH, org: 'acme', policy: { allowedIps: ['::1'] } }],
      admin: { allowedIps: ['192.168.0.0/16'] },
    };
    const config = parseConfig({ ...MINIMAL_CONFIG, providers, access, ingress: { ...MINIMAL_CONFIG.ingress, trustedProxies: ['10.1.0.0/16', 'fd00::1'] } }, {});
    expect(config.access.orgs[0]?.policy?.allowedIps).toEqual(['203.0.113.7', '10.0.0.0/8']);
    expect(config.access.orgs[0]?.teams[0]?.projects[0]?.policy?.allowedIps).toEqual([]);
    expect(config.access.keys[0]?.policy?.allowedIps).toEqual(['::1']);
    expect(config.access.admin.allowedIps).toEqual(['192.168.0.0/16']);
    expect(config.ingress.trustedProxies).toEqual(['10.1.0.0/16', 'fd00::1']);
    expect(parseConfig({ ...MINIMAL_CONFIG, providers }, {}).ingress.trustedProxies).toEqual([]);
    expect(problems({ orgs: [{ id: 'acme', policy: { allowedIps: ['10.0.0.0/8', '10.0.0.300'] } }], keys: [{ id: 'k', hash: HASH, org: 'acme', policy: { allowedIps: ['fe80::1%eth0'] } }], admin: { allowedIps: ['10.0.0.0/40'] } })).toEqual([
      'access.orgs[0].policy.allowedIps[1]: "10.0.0.300" is not an IP address or CIDR range (such as 203.0.113.7, 10.0.0.0/8, 2001:db8::/32)',
      'access.keys[0].policy.allowedIps[0]: "fe80::1%eth0" is not an IP address or CIDR range (such as 203.0.113.7, 10.0.0.0/8, 2001:db8::/32)',
      'access.admin.allowedIps[0]: "10.0.0.0/40": the prefix length of an IPv4 range is 0–32',
    ]);
  });
});
