import { z } from 'zod';
import { flag, identifier, nearestKey, numeric, port, unknownKeysMessage } from './primitives';

const messages = (schema: z.ZodType, value: unknown): string[] => schema.safeParse(value).error?.issues.map((i) => i.message) ?? [];

describe('numeric', () => {
  const number = numeric(z.number());

  it('reads YAML numbers and plain decimal text, trimmed', () => {
    expect(number.parse(8080)).toBe(8080);
    expect(number.parse(0.25)).toBe(0.25);
    expect(number.parse('8080')).toBe(8080);
    expect(number.parse(' 8080\n')).toBe(8080);
    expect(number.parse('-1')).toBe(-1);
    expect(number.parse('0.25')).toBe(0.25);
    expect(number.parse('007')).toBe(7);
    expect(number.parse('0')).toBe(0);
  });

  it('refuses empty and blank text instead of reading 0', () => {
    expect(messages(number, '')).toEqual(['expected a number, got an empty value']);
    expect(messages(number, '   ')).toEqual(['expected a number, got an empty value']);
    expect(messages(number, '\t\n')).toEqual(['expected a number, got an empty value']);
  });

  it('refuses every other form a number may take in JavaScript, saying which', () => {
    expect(messages(number, '0x1F90')).toEqual(['expected a decimal number (hexadecimal, octal and binary are not read)']);
    expect(messages(number, '0o17')).toEqual(['expected a decimal number (hexadecimal, octal and binary are not read)']);
    expect(messages(number, '0b101')).toEqual(['expected a decimal number (hexadecimal, octal and binary are not read)']);
    expect(messages(number, '1e3')).toEqual(['expected a number written out in digits (1000, not 1e3)']);
    expect(messages(number, '2.5E-1')).toEqual(['expected a number written out in digits (1000, not 1e3)']);
    expect(messages(number, '+5')).toEqual(['expected a number without a leading + (5, not +5)']);
    const other = 'expected a number (digits, with an optional leading - and fraction: 8080, -1, 0.25), got text that is not one';
    for (const text of ['1_000', '1,000', '.5', '5.', 'Infinity', '-Infinity', 'NaN', '12abc', 'true', '- 1', '1 2', '٣']) expect([text, messages(number, text)]).toEqual([text, [other]]);
  });

  it('refuses what is neither a number nor text, and numbers YAML reads as not finite', () => {
    for (const value of [true, null, [], {}, Number.NaN, Number.POSITIVE_INFINITY]) expect(messages(number, value)).toEqual(['expected a number']);
    expect(messages(number, undefined)).toEqual(['required: expected a number']);
  });

  it('never quotes the text it refuses (it may be a secret put in the wrong place)', () => {
    for (const text of ['sk-live-s3cr3t', '0xs3cr3t', '1e3s3cr3t']) expect(messages(number, text).join(' ')).not.toContain('s3cr3t');
  });

  it('applies the checks of the schema it wraps', () => {
    expect(port.parse('65535')).toBe(65535);
    expect(port.safeParse('65536').success).toBe(false);
    expect(port.safeParse('80.5').success).toBe(false);
    expect(port.safeParse('-1').success).toBe(false);
    const positiveInt = numeric(z.number().int().positive());
    expect(positiveInt.parse('5')).toBe(5);
    expect(positiveInt.safeParse('0').success).toBe(false);
    expect(positiveInt.optional().parse(undefined)).toBeUndefined();
    expect(positiveInt.default(7).parse(undefined)).toBe(7);
  });
});

describe('flag', () => {
  it('reads booleans and their text forms, trimmed', () => {
    expect([true, false, 'true', 'false', '1', '0', 'yes', 'no', ' true ', 'no\n'].map((v) => flag.parse(v))).toEqual([true, false, true, false, true, false, true, false, true, false]);
  });

  it('refuses empty text instead of reading false, and any other text', () => {
    expect(messages(flag, '')).toEqual(['expected true or false, got an empty value']);
    expect(messages(flag, '  ')).toEqual(['expected true or false, got an empty value']);
    for (const text of ['ture', 'on', 'TRUE', '2', 'toString', 'constructor']) expect(messages(flag, text)).toEqual(['expected true or false (or 1/0, yes/no)']);
    expect(messages(flag, 1)).toEqual(['expected true or false']);
  });
});

describe('unknown keys', () => {
  it('suggest the known key a near miss was meant to be', () => {
    const grpcAuth = ['token', 'acceptedTokens'];
    expect(nearestKey('tokens', grpcAuth)).toBe('token');
    expect(nearestKey('tokne', grpcAuth)).toBe('token');
    expect(nearestKey('accepted_tokens', grpcAuth)).toBe('acceptedTokens');
    expect(nearestKey('certificate', ['cert', 'key', 'ca', 'serverNameOverride'])).toBe('cert');
    expect(nearestKey('enforcment', ['id', 'scope', 'period', 'amount', 'enforcement'])).toBe('enforcement');
    expect(nearestKey('RPM', ['rpm', 'tpm'])).toBe('rpm');
    expect(nearestKey('rmp', ['rpm', 'tpm'])).toBe('rpm');
  });

  it('suggest nothing when no known key is close', () => {
    expect(nearestKey('password', ['token', 'acceptedTokens'])).toBeUndefined();
    expect(nearestKey('x', ['rpm', 'tpm'])).toBeUndefined();
  });

  it('are listed in one message, each with its hint', () => {
    expect(unknownKeysMessage(['tokens'], ['token'])).toBe('unknown key "tokens" (did you mean "token"?)');
    expect(unknownKeysMessage(['tokens', 'colour'], ['token'])).toBe('unknown keys "tokens" (did you mean "token"?), "colour"');
    expect(unknownKeysMessage(['x-shared'], ['token'])).toBe('unknown key "x-shared" (keys starting with x- are allowed at the top level only)');
  });
});

describe('identifier', () => {
  it('takes 1 to 64 lower-case letters, digits, ., - and _, as the admin API and the reports take ids', () => {
    for (const id of ['a', 'acme', 'acme-eu_2.prod', 'a'.repeat(64)]) expect(messages(identifier, id)).toEqual([]);
    // A tenant with a longer id could be configured, but never get an invoice or be named in a report filter.
    expect(messages(identifier, 'a'.repeat(65))).toEqual(['at most 64 characters, as the admin API and the reports take ids']);
    expect(messages(identifier, 'Acme')).toEqual(['lower-case letters, digits, ., - and _']);
    expect(messages(identifier, '')).toEqual(['lower-case letters, digits, ., - and _']);
  });
});
