import type { GuardrailDetector } from '@openrouter/config';
import { compileRule } from './guardrail-rules';
import { ibanValid, luhnValid } from './detectors';

/** The texts `detector` matches in `text`. */
function found(detector: GuardrailDetector, text: string): string[] {
  return compileRule({ id: 't', detect: detector, action: 'redact' })
    .matches(text)
    .map((m) => text.slice(m.start, m.end));
}

describe('built-in guardrail detectors', () => {
  it('email: local@domain.tld, not a bare host or a lone @', () => {
    expect(found('email', 'write to jane.doe+news@mail.example.co.uk, or to x_y@corp.io.')).toEqual(['jane.doe+news@mail.example.co.uk', 'x_y@corp.io']);
    expect(found('email', 'root@localhost, @example.com, a@b.c, user@.com, user@-bad.com, mention @jane')).toEqual([]);
  });

  it('phone: international + and 7–15 digits, never a bare digit run', () => {
    expect(found('phone', 'call +1 (555) 123-4567 or +44 20 7946 0958 or +4930123456')).toEqual(['+1 (555) 123-4567', '+44 20 7946 0958', '+4930123456']);
    expect(found('phone', '555-123-4567, 5551234567, +12345, +1234567890123456, x+1234567, 1+2345678')).toEqual([]);
  });

  it('credit_card: 13–19 digits with single spaces or dashes, passing Luhn', () => {
    expect(found('credit_card', 'card 4111 1111 1111 1111, amex 3782-822463-10005, plain 5555555555554444')).toEqual(['4111 1111 1111 1111', '3782-822463-10005', '5555555555554444']);
    // Luhn fails; too short; doubled separators; inside a longer number or word.
    expect(found('credit_card', '4111 1111 1111 1112, 411111111111, 4111  1111  1111  1111, order 41111111111111119999999, id4111111111111111')).toEqual([]);
    // Never digits after or before a decimal point: a number's decimals are no card.
    expect(found('credit_card', '0.4111111111111111, 4111111111111111.5, 4111 1111 1111 1111.25')).toEqual([]);
    expect(found('credit_card', 'card 4111111111111111. Or 4111111111111111.')).toEqual(['4111111111111111', '4111111111111111']);
    // A card among more digit groups: a quantity before it, its expiry date or security code after it.
    expect(found('credit_card', 'Card 4242 4242 4242 4242 12/34')).toEqual(['4242 4242 4242 4242']);
    expect(found('credit_card', 'Card 4242 4242 4242 4242 123')).toEqual(['4242 4242 4242 4242']);
    expect(found('credit_card', 'qty 2 4242424242424242')).toEqual(['4242424242424242']);
    expect(found('credit_card', '4242-4242-4242-4242 05 27 and ref x1234 4111 1111 1111 1111')).toEqual(['4242-4242-4242-4242', '4111 1111 1111 1111']);
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
  });

  it('iban: country, check digits, up to 30 alphanumerics (spaces every 4), mod 97', () => {
    expect(found('iban', 'pay DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432.')).toEqual(['DE89 3704 0044 0532 0130 00', 'GB82WEST12345698765432']);
    // A wrong check digit; lower case; too short.
    expect(found('iban', 'DE89 3704 0044 0532 0130 01, de89370400440532013000, DE89 3704')).toEqual([]);
    expect(ibanValid('GB82WEST12345698765432')).toBe(true);
    expect(ibanValid('GB83WEST12345698765432')).toBe(false);
  });

  it('us_ssn: ddd-dd-dddd without the never-issued areas, groups and serials', () => {
    expect(found('us_ssn', 'SSN 123-45-6789 and 078-05-1120.')).toEqual(['123-45-6789', '078-05-1120']);
    expect(found('us_ssn', '000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000 123456789 1123-45-6789 123-45-67890 2024-01-15')).toEqual([]);
  });

  it('ipv4: dotted quads with octets 0–255, not versions or longer dotted numbers', () => {
    expect(found('ipv4', 'hosts 192.168.0.1, 10.0.0.255 and 255.255.255.255')).toEqual(['192.168.0.1', '10.0.0.255', '255.255.255.255']);
    expect(found('ipv4', '256.1.1.1 1.2.3 1.2.3.4.5 v1.2.3.4 01.2.3.4 3.14.159.2653')).toEqual([]);
  });

  it('secret: common credential formats, not look-alikes', () => {
    const keys = [
      'sk-proj-AbCdEfGhIjKlMnOpQrStUvWx123',
      'sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx',
      'AKIAIOSFODNN7EXAMPLE',
      `ghp_${'a1B2'.repeat(9)}`,
      `gho_${'Z9y8'.repeat(9)}`,
      `ghs_${'q'.repeat(36)}`,
      `github_pat_11ABCDEFG0${'x'.repeat(20)}`,
      'xoxb-1234567890-abcdefghij',
      `AIza${'Sy'.repeat(17)}A`,
    ];
    for (const key of keys) expect(found('secret', `key: ${key} end`)).toEqual([key]);
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----';
    expect(found('secret', `here:\n${pem}\nthanks`)).toEqual([pem]);
    expect(found('secret', 'cut: -----BEGIN PRIVATE KEY-----\nMIIE')).toEqual(['-----BEGIN PRIVATE KEY-----\nMIIE']);
    // Too short, inside a word, a public key, AKIA too short, ghp too short, AIza too short.
    expect(found('secret', 'sk-short task-AbCdEfGhIjKlMnOpQrStUvWxYz -----BEGIN PUBLIC KEY----- AKIAIOSFODNN7 ghp_abc xoxb-12 AIzaShort')).toEqual([]);
  });
});

describe('guardrail rules from the configuration', () => {
  it('matches terms as whole words, case aside, and patterns with every match', () => {
    const terms = compileRule({ id: 'codename', terms: ['Project Falcon', 'zeus'], action: 'block' });
    expect(terms.matches('about project falcon and ZEUS').length).toBe(2);
    expect(terms.matches('zeuss and falcon-project')).toEqual([]);
    const pattern = compileRule({ id: 'ticket', pattern: 'TICKET-\\d+', action: 'redact' });
    expect(pattern.matches('TICKET-1 and TICKET-22')).toEqual([{ start: 0, end: 8 }, { start: 13, end: 22 }]);
    // Any run of white space between a phrase's words, and the span covers it.
    const text = 'a PROJECT\t\u00a0 Falcon\r\nplan';
    expect(terms.matches(text).map((m) => text.slice(m.start, m.end))).toEqual(['PROJECT\t\u00a0 Falcon']);
    expect(terms.matches('project_falcon, project.falcon, projectfalcon')).toEqual([]);
    // In JSON text, the escapes are read decoded, and the span is that of the JSON text.
    const json = '{"a":"project\\nfalc\\u006fn"}';
    expect(terms.matches(json, true).map((m) => json.slice(m.start, m.end))).toEqual(['project\\nfalc\\u006fn']);
    // An expression that can match nothing matches nothing.
    expect(compileRule({ id: 'empty', pattern: 'x*', action: 'redact' }).matches('abc')).toEqual([]);
  });
});
