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
    expect(parseConfig(MINIMAL_CONFIG, {}).guardrails).toEqual({ rules: [], default: [], outputHoldbackChars: 128 });
    expect(problems({ rules: RULES, default: ['tickets'] })).toEqual([]);
  });

  it('refuses an invalid regular expression, naming its path', () => {
    expect(problems({ rules: [{ id: 'bad', pattern: '(unclosed', action: 'block' }] })).toEqual([expect.stringMatching(/^guardrails\.rules\[0\]\.pattern: not a valid regular expression \(flags gu\): /)]);
    // Valid without the u flag, not with it: compiled as it will run.
    expect(problems({ rules: [{ id: 'bad', pattern: '\\-', action: 'block' }] })).toEqual([expect.stringMatching(/^guardrails\.rules\[0\]\.pattern: not a valid regular expression/)]);
  });

  it('refuses a rule with none or several of detect, pattern, terms, an unknown detector or action, and a malformed id', () => {
    expect(problems({ rules: [{ id: 'none', action: 'block' }] })).toEqual(['guardrails.rules[0]: give exactly one of detect, pattern, terms (none given)']);
    expect(problems({ rules: [{ id: 'two', detect: 'email', terms: ['a'], action: 'block' }] })).toEqual(['guardrails.rules[0]: give exactly one of detect, pattern, terms (given: detect, terms)']);
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
});
