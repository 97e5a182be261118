import { createHash } from 'node:crypto';
import { ConfigError, parseConfig } from './config-loader';
import { guardrailsDigest } from './guardrails.schema';
import { MINIMAL_CONFIG } from './minimal-config.testing';

/** The problems `parseConfig` reports for the minimal configuration with these guardrails and `access`. */
function problems(guardrails: unknown, access: Record<string, unknown> = {}): string[] {
  try {
    parseConfig({ ...MINIMAL_CONFIG, guardrails, access }, {});
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

const RULES = [
  { id: 'pii-email', detect: 'email', action: 'redact' },
  { id: 'tickets', pattern: 'TICKET-\\d+', action: 'block' },
  { id: 'codenames', terms: ['falcon'], action: 'block', replacement: 'x' },
];

describe('guardrails in the configuration', () => {
  it('has no rules by default, and accepts rules of each kind with a default list', () => {
    expect(parseConfig(MINIMAL_CONFIG, {}).guardrails).toEqual({ rules: [], default: [], outputHoldbackChars: 128, moderationFailMode: 'closed', moderationTimeoutMs: 10_000 });
    expect(problems({ rules: RULES, default: ['tickets'] })).toEqual([]);
  });

  it('refuses an invalid regular expression, naming its path', () => {
    expect(problems({ rules: [{ id: 'bad', pattern: '(unclosed', action: 'block' }] })).toEqual([expect.stringMatching(/^guardrails\.rules\[0\]\.pattern: not a valid regular expression \(flags gu\): /)]);
    // Valid without the u flag, not with it: compiled as it will run.
    expect(problems({ rules: [{ id: 'bad', pattern: '\\-', action: 'block' }] })).toEqual([expect.stringMatching(/^guardrails\.rules\[0\]\.pattern: not a valid regular expression/)]);
  });

  it('refuses a rule with none or several of detect, pattern, terms, an unknown detector or action, and a malformed id', () => {
    expect(problems({ rules: [{ id: 'none', action: 'block' }] })).toEqual(['guardrails.rules[0]: give exactly one of detect, pattern, terms, moderation (none given)']);
    expect(problems({ rules: [{ id: 'two', detect: 'email', terms: ['a'], action: 'block' }] })).toEqual(['guardrails.rules[0]: give exactly one of detect, pattern, terms, moderation (given: detect, terms)']);
    expect(problems({ rules: [{ id: 'x', detect: 'passport', action: 'block' }] })).toEqual([expect.stringContaining('guardrails.rules[0].detect')]);
    expect(problems({ rules: [{ id: 'x', detect: 'email', action: 'warn' }] })).toEqual([expect.stringContaining('guardrails.rules[0].action')]);
    expect(problems({ rules: [{ id: 'Bad Id', detect: 'email', action: 'block' }] })).toEqual(['guardrails.rules[0].id: lower-case letters, digits, _ and -']);
    expect(problems({ rules: [{ id: 'x', terms: [], action: 'block' }] })).toEqual([expect.stringContaining('guardrails.rules[0].terms')]);
    expect(problems({ rules: [{ id: 'x', detect: 'email', action: 'block', extra: 1 }] })).toEqual([expect.stringContaining('guardrails.rules[0]: unknown key "extra"')]);
  });

  it('screens input unless a rule says otherwise, takes flag rules, and bounds the output holdback', () => {
    const parsed = parseConfig({ ...MINIMAL_CONFIG, guardrails: { rules: [...RULES, { id: 'answers', detect: 'email', action: 'flag', screen: ['output'] }], outputHoldbackChars: 0 } }, {}).guardrails;
    expect(parsed.rules.map((r) => r.screen)).toEqual([['input'], ['input'], ['input'], ['output']]);
    expect(parsed.outputHoldbackChars).toBe(0);
    expect(problems({ rules: [{ id: 'x', detect: 'email', action: 'block', screen: [] }] })).toEqual([expect.stringContaining('guardrails.rules[0].screen')]);
    expect(problems({ rules: [{ id: 'x', detect: 'email', action: 'block', screen: ['answers'] }] })).toEqual([expect.stringContaining('guardrails.rules[0].screen[0]')]);
    expect(problems({ outputHoldbackChars: 5_000 })).toEqual([expect.stringContaining('guardrails.outputHoldbackChars')]);
    expect(problems({ rules: [{ id: 'x', detect: 'email', action: 'redact', roles: ['user', 'human'] }] })).toEqual([expect.stringContaining('guardrails.rules[0].roles[1]')]);
    expect(problems({ rules: [{ id: 'x', detect: 'email', action: 'redact', roles: [] }] })).toEqual([expect.stringContaining('guardrails.rules[0].roles')]);
    expect(problems({ outputHoldbackChars: -1 })).toEqual([expect.stringContaining('guardrails.outputHoldbackChars')]);
  });

  it('refuses duplicate ids and a default naming no rule', () => {
    expect(problems({ rules: [RULES[0], RULES[0]], default: ['pii-email', 'pii-mail'] })).toEqual([
      'guardrails.rules[1].id: duplicate rule id "pii-email": it is rules[0] too (rule ids must be unique)',
      'guardrails.default[1]: unknown guardrail rule "pii-mail": name a rule id (guardrails.rules: pii-email)',
    ]);
  });

  it('refuses a tenant or key policy naming a rule that is not configured, naming its path', () => {
    const access = {
      orgs: [{ id: 'acme', policy: { guardrails: ['tickets'] }, teams: [{ id: 'ml', policy: { guardrails: ['tickts'] } }] }],
      keys: [{ id: 'k1', hash: 'a'.repeat(64), org: 'acme', policy: { guardrails: ['pii-email', 'nope'] } }],
    };
    expect(problems({ rules: RULES }, access)).toEqual([
      'access.orgs[0].teams[0].policy.guardrails[0]: unknown guardrail rule "tickts": name a rule id (guardrails.rules: pii-email, tickets, codenames)',
      'access.keys[0].policy.guardrails[1]: unknown guardrail rule "nope": name a rule id (guardrails.rules: pii-email, tickets, codenames)',
    ]);
  });

  it('digests the definitions of the rules named, whatever their order', () => {
    const config = { rules: RULES } as Parameters<typeof guardrailsDigest>[0];
    expect(guardrailsDigest(config, [])).toBe('');
    expect(guardrailsDigest(config, ['tickets', 'pii-email'])).toBe(guardrailsDigest(config, ['pii-email', 'tickets']));
    expect(guardrailsDigest(config, ['tickets'])).not.toBe(guardrailsDigest(config, ['pii-email']));
    const changed = { rules: [RULES[0], { ...RULES[1], pattern: 'TICKET-\\d{3}' }, RULES[2]] } as Parameters<typeof guardrailsDigest>[0];
    expect(guardrailsDigest(changed, ['tickets'])).not.toBe(guardrailsDigest(config, ['tickets']));
    const screened = { rules: [RULES[0], { ...RULES[1], screen: ['input', 'output'] }, RULES[2]] } as Parameters<typeof guardrailsDigest>[0];
    expect(guardrailsDigest(screened, ['tickets'])).not.toBe(guardrailsDigest(config, ['tickets']));
    // A rule not named does not count.
    expect(guardrailsDigest(changed, ['pii-email'])).toBe(guardrailsDigest(config, ['pii-email']));
  });

  it('digests how rules match too: an answer cached before the matching changed is not served under the same rules', () => {
    const config = { rules: RULES } as Parameters<typeof guardrailsDigest>[0];
    // The digest of the same definition before JSON escapes and white-space runs were read (a key then).
    const before = createHash('sha256').update(JSON.stringify([['tickets', null, 'TICKET-\\d+', null, 'block', '[REDACTED:tickets]', undefined, null]])).digest('hex');
    expect(guardrailsDigest(config, ['tickets'])).toMatch(/^[0-9a-f]{64}$/);
    expect(guardrailsDigest(config, ['tickets'])).not.toBe(before);
  });

  describe('moderation rules', () => {
    const MODERATION_MODELS = [
      { id: 'm', deployments: [{ provider: 'sim', model: 'up' }] },
      { id: 'omni', capabilities: ['moderation'], pricing: { input: '0' }, deployments: [{ id: 'sim-omni', provider: 'sim', model: 'omni-moderation-latest' }] },
      { id: 'priced-mod', capabilities: ['moderation'], pricing: { input: '0.5' }, deployments: [{ provider: 'sim', model: 'text-moderation-latest' }] },
      { id: 'per-call-mod', capabilities: ['moderation'], pricing: { deployments: { 'sim-pc': { perRequest: '0.001' } } }, deployments: [{ id: 'sim-pc', provider: 'sim', model: 'text-moderation-latest' }] },
    ];
    const withModels = (guardrails: unknown): string[] => {
      try {
        parseConfig({ ...MINIMAL_CONFIG, models: MODERATION_MODELS, guardrails }, {});
        return [];
      } catch (error) {
        if (error instanceof ConfigError) return error.problems;
        throw error;
      }
    };
    const rule = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({ id: 'unsafe', moderation: { model: 'omni' }, action: 'block', ...overrides });

    it('accepts a block or flag rule on a free moderation model, with categories and a threshold, and a fail mode', () => {
      expect(withModels({ rules: [rule(), rule({ id: 'watch', action: 'flag', roles: ['user'], moderation: { model: 'omni', categories: ['violence', 'self-harm/intent'], threshold: 0.4 } })], moderationFailMode: 'open' })).toEqual([]);
      const parsed = parseConfig({ ...MINIMAL_CONFIG, models: MODERATION_MODELS, guardrails: { rules: [rule()] } }, {}).guardrails;
      expect(parsed.moderationFailMode).toBe('closed');
      expect(parsed.moderationTimeoutMs).toBe(10_000);
      expect(withModels({ rules: [rule()], moderationTimeoutMs: 2_500 })).toEqual([]);
      expect(parsed.rules[0]).toMatchObject({ moderation: { model: 'omni' }, screen: ['input'] });
    });

    it('refuses redact, output screening, a replacement, and a second kind of rule, naming the path', () => {
      expect(withModels({ rules: [rule({ action: 'redact' })] })).toEqual(['guardrails.rules[0].action: a moderation rule cannot redact (a moderation model judges a whole text, it does not say where): use block or flag']);
      expect(withModels({ rules: [rule({ screen: ['input', 'output'] })] })).toEqual(['guardrails.rules[0].screen: a moderation rule screens requests only: set screen to [input] (answers are not sent to moderation models)']);
      expect(withModels({ rules: [rule({ screen: ['output'] })] })).toEqual([expect.stringContaining('guardrails.rules[0].screen: a moderation rule screens requests only')]);
      expect(withModels({ rules: [rule({ replacement: 'x' })] })).toEqual(['guardrails.rules[0].replacement: a moderation rule replaces nothing: remove replacement']);
      expect(withModels({ rules: [rule({ terms: ['kill'] })] })).toEqual(['guardrails.rules[0]: give exactly one of detect, pattern, terms, moderation (given: terms, moderation)']);
    });

    it('refuses an unknown category, a threshold outside 0–1, an unknown fail mode, a moderation timeout not a whole number of ms above 0, and an unknown key', () => {
      expect(withModels({ rules: [rule({ moderation: { model: 'omni', categories: ['violence', 'violance'] } })] })).toEqual([expect.stringMatching(/^guardrails\.rules\[0\]\.moderation\.categories\[1\]: unknown moderation category "violance": name one of harassment, /)]);
      expect(withModels({ rules: [rule({ moderation: { model: 'omni', categories: [] } })] })).toEqual([expect.stringContaining('guardrails.rules[0].moderation.categories')]);
      expect(withModels({ rules: [rule({ moderation: { model: 'omni', threshold: 1.5 } })] })).toEqual([expect.stringContaining('guardrails.rules[0].moderation.threshold')]);
      expect(withModels({ rules: [rule({ moderation: { model: 'omni', threshold: -0.1 } })] })).toEqual([expect.stringContaining('guardrails.rules[0].moderation.threshold')]);
      expect(withModels({ rules: [rule({ moderation: { model: 'omni', treshold: 0.5 } })] })).toEqual([expect.stringContaining('guardrails.rules[0].moderation: unknown key "treshold"')]);
      expect(withModels({ rules: [rule()], moderationFailMode: 'ajar' })).toEqual([expect.stringContaining('guardrails.moderationFailMode')]);
      for (const moderationTimeoutMs of [0, -1, 1.5]) expect(withModels({ rules: [rule()], moderationTimeoutMs })).toEqual([expect.stringContaining('guardrails.moderationTimeoutMs')]);
    });

    it('refuses a model that does not exist, cannot moderate, or is priced, naming the path and why', () => {
      expect(withModels({ rules: [rule({ moderation: { model: 'omni-mod' } })] })).toEqual([
        'guardrails.rules[0].moderation.model: unknown model "omni-mod": name the id of a model with the moderation capability (models: omni, priced-mod, per-call-mod)',
      ]);
      expect(withModels({ rules: [rule({ moderation: { model: 'm' } })] })).toEqual(['guardrails.rules[0].moderation.model: model "m" has no moderation capability (its capabilities: chat): name a model with capabilities [moderation]']);
      const [priced] = withModels({ rules: [rule({ moderation: { model: 'priced-mod' } })] });
      expect(priced).toBe(
        'guardrails.rules[0].moderation.model: model "priced-mod" is priced (pricing.input 0.5): a guardrail\'s moderation call is not billed to the request, so a priced model would be spent without being metered; use a free moderation model (OpenAI\'s are free) with input and per-request prices 0',
      );
      expect(withModels({ rules: [rule(), rule({ id: 'other', moderation: { model: 'per-call-mod' } })] })).toEqual([expect.stringMatching(/^guardrails\.rules\[1\]\.moderation\.model: model "per-call-mod" is priced \(pricing\.deployments\.sim-pc\.perRequest 0\.001\): /)]);
    });

    it('puts a moderation rule\'s settings in the digest, leaving the digests of the other rules as they were', () => {
      const base = { id: 'unsafe', moderation: { model: 'omni' }, action: 'block', screen: ['input'] };
      const digest = (moderation: Record<string, unknown>): string => guardrailsDigest({ rules: [{ ...base, moderation }] } as Parameters<typeof guardrailsDigest>[0], ['unsafe']);
      const plain = digest({ model: 'omni' });
      expect(digest({ model: 'omni', categories: ['violence'] })).not.toBe(plain);
      expect(digest({ model: 'omni', threshold: 0.3 })).not.toBe(digest({ model: 'omni', threshold: 0.4 }));
      expect(digest({ model: 'other-omni' })).not.toBe(plain);
      // A rule of another kind digests as it did before moderation rules existed.
      const tickets = { rules: [{ ...RULES[1], screen: ['input'] }] } as Parameters<typeof guardrailsDigest>[0];
      const before = createHash('sha256')
        .update(JSON.stringify({ matching: 3, definitions: [['tickets', null, 'TICKET-\\d+', null, 'block', '[REDACTED:tickets]', ['input'], null]] }))
        .digest('hex');
      expect(guardrailsDigest(tickets, ['tickets'])).toBe(before);
    });
  });
});
