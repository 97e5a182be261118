import type { GuardrailDetector } from '@openrouter/config';

/**
 * A built-in detector: a regular expression that finds candidates (flags `gu`), and a check that
 * keeps only real ones (a checksum), so ordinary numbers and text are not taken for sensitive data.
 * `within`: instead of the check, the real matches inside a candidate (from `start` to `end` of
 * `text`), offsets in `text`.
 */
export interface Detector {
  readonly pattern: RegExp;
  readonly valid?: (match: string) => boolean;
  readonly within?: (text: string, start: number, end: number) => Array<{ start: number; end: number }>;
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

/** A digit's neighbour that makes it part of a longer word or number: a letter, a digit, `_`. */
const WORD_CHARACTER = /[\p{L}\p{N}_]/u;

/**
 * The card numbers in a run of digit groups (single spaces or dashes between them) from `start`
 * to `end` of `text`: whole groups, 13–19 digits, passing the Luhn check. From each group on, the
 * longest such number is taken, so the digits around a card (a quantity before it, its expiry date
 * or security code after it) do not hide it. A group glued to a word or to a decimal point (`id4111…`,
 * `0.4111…`, `…1111.5`) neither starts nor ends one: digits inside a longer number never match.
 */
function cardsIn(text: string, start: number, end: number): Array<{ start: number; end: number }> {
  // Each group, with how many of the run's digits come before its end; and the Luhn sums of the
  // run's first k digits with those at even (odd) places doubled, so any group's digits on to any
  // later group's are checked at once, however long the run.
  const groups: Array<{ start: number; end: number; digits: number }> = [];
  const evenDoubled = new Int32Array(end - start + 1);
  const oddDoubled = new Int32Array(end - start + 1);
  let k = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) continue;
    const doubled = d > 4 ? 2 * d - 9 : 2 * d;
    evenDoubled[k + 1] = (evenDoubled[k] ?? 0) + (k % 2 === 0 ? doubled : d);
    oddDoubled[k + 1] = (oddDoubled[k] ?? 0) + (k % 2 === 1 ? doubled : d);
    k++;
    const group = groups.at(-1);
    if (group?.end === i) {
      group.end = i + 1;
      group.digits = k;
    } else groups.push({ start: i, end: i + 1, digits: k });
  }
  // The last digit of a number is never doubled, the one before it is, and so on.
  const luhn = (from: number, to: number): boolean => {
    const sums = (to - 1) % 2 === 0 ? oddDoubled : evenDoubled;
    return ((sums[to] ?? 0) - (sums[from] ?? 0)) % 10 === 0;
  };
  const before = text.slice(Math.max(0, start - 2), start);
  const after = text.slice(end, end + 2);
  const canStart = (i: number): boolean => i > 0 || !(WORD_CHARACTER.test(before.slice(-1)) || /\d\.$/.test(before));
  const canEnd = (i: number): boolean => i < groups.length - 1 || !(WORD_CHARACTER.test(after.slice(0, 1)) || /^\.\d/.test(after));
  const cards: Array<{ start: number; end: number }> = [];
  for (let i = 0; i < groups.length; i++) {
    if (!canStart(i)) continue;
    const from = groups[i - 1]?.digits ?? 0;
    let last = -1;
    for (let j = i; j < groups.length; j++) {
      const to = groups[j]?.digits ?? 0;
      if (to - from > 19) break;
      if (to - from >= 13 && canEnd(j) && luhn(from, to)) last = j;
    }
    const first = groups[i];
    const final = groups[last];
    if (!first || !final) continue;
    cards.push({ start: first.start, end: final.end });
    i = last;
  }
  return cards;
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
    // A whole run of 13 or more digits in groups (single spaces or dashes between them), in which
    // `cardsIn` finds the numbers of 13–19 digits passing the Luhn check. Whole runs only: read
    // from each of its digits, a run would be read again and again.
    pattern: /(?<!\d|\d[ -])\d(?:[ -]?\d){12,}/gu,
    within: cardsIn,
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
