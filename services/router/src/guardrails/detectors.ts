import type { GuardrailDetector } from '@openrouter/config';

/**
 * A built-in detector: a regular expression that finds candidates (flags `gu`), and a check that
 * keeps only real ones (a checksum), so ordinary numbers and text are not taken for sensitive data.
 */
export interface Detector {
  readonly pattern: RegExp;
  readonly valid?: (match: string) => boolean;
}

/** Not inside a longer word or number (Unicode letters, digits, `_`). */
const START = String.raw`(?<![\p{L}\p{N}_])`;
const END = String.raw`(?![\p{L}\p{N}_])`;

const digitsOf = (text: string): string => text.replace(/\D/g, '');

/** The Luhn checksum of payment card numbers. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** ISO 13616 (mod 97 = 1) of an IBAN without spaces. */
export function ibanValid(iban: string): boolean {
  if (iban.length < 15 || iban.length > 34) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const value = char >= 'A' && char <= 'Z' ? String(char.charCodeAt(0) - 55) : char;
    for (const digit of value) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';

/** The built-in detectors by name; their exact rules are in docs/guardrails.md. */
export const DETECTORS = {
  email: {
    // local@domain.tld: a dot-separated local part of the usual characters, a domain of DNS labels and a letters-only top-level domain.
    pattern: new RegExp(String.raw`(?<![\p{L}\p{N}_.%+-])[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:${LABEL}\.)+[A-Za-z]{2,63}(?![\p{L}\p{N}_-]|\.[A-Za-z0-9])`, 'gu'),
  },
  phone: {
    // International only: `+`, then digits with single spaces or dashes between them, or groups in parentheses.
    pattern: new RegExp(String.raw`(?<![\p{L}\p{N}_+])\+(?:\(\d+\)|\d)(?:[ -]?(?:\(\d+\)|\d))*${END}`, 'gu'),
    valid: (match) => {
      const n = digitsOf(match).length;
      return n >= 7 && n <= 15;
    },
  },
  credit_card: {
    // 13–19 digits, single spaces or dashes between them allowed, passing the Luhn check.
    pattern: new RegExp(String.raw`${START}\d(?:[ -]?\d){12,18}${END}`, 'gu'),
    valid: (match) => luhnValid(digitsOf(match)),
  },
  iban: {
    // Country code, two check digits, then up to 30 letters or digits, optionally a space every four; mod 97.
    pattern: new RegExp(String.raw`${START}[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?${END}`, 'gu'),
    valid: (match) => ibanValid(match.replace(/ /g, '')),
  },
  us_ssn: {
    // ddd-dd-dddd, never area 000, 666 or 9xx, group 00 or serial 0000 (none is ever issued).
    pattern: new RegExp(String.raw`(?<![\p{L}\p{N}_-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\p{L}\p{N}_]|-\d)`, 'gu'),
  },
  ipv4: {
    // A dotted quad, each octet 0–255 without a leading zero; not part of a longer dotted number (a version).
    pattern: new RegExp(String.raw`(?<![\p{L}\p{N}_.])(?:${OCTET}\.){3}${OCTET}(?![\p{L}\p{N}_]|\.\d)`, 'gu'),
  },
  secret: {
    pattern: new RegExp(
      [
        // OpenAI (sk-, sk-proj-, …) and Anthropic (sk-ant-) keys.
        String.raw`(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}`,
        // AWS access key ids.
        String.raw`(?<![A-Za-z0-9])AKIA[0-9A-Z]{16}(?![A-Za-z0-9])`,
        // GitHub personal, OAuth and app tokens, fine-grained personal tokens.
        String.raw`(?<![A-Za-z0-9_])gh[pos]_[A-Za-z0-9]{36,}`,
        String.raw`(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{22,}`,
        // Slack tokens.
        String.raw`(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9-]{10,}`,
        // Google API keys.
        String.raw`(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])`,
        // PEM private keys, to their END line (or to the end of the text when it is cut off).
        String.raw`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[\s\S]*$)`,
      ].join('|'),
      'gu',
    ),
  },
} as const satisfies Record<GuardrailDetector, Detector>;
