import { isIP } from 'node:net';
import { z } from 'zod';

/*
 * The configuration refuses what it does not understand. A key it does not know is most often a
 * misspelt optional one, which would otherwise fall back to its default without a word (for
 * `grpc.auth.token` or `grpc.tls.cert`, to no authentication or no TLS); text that is not plainly
 * a number or a switch (an empty variable, a hexadecimal port) would otherwise become 0 or false.
 * Problems name the path and the key, never the value, which may be a secret.
 */

/**
 * An object of the configuration: every key is one of `shape`'s. An unknown key is refused, named,
 * with the nearest known one as a hint (`tokens`: did you mean `token`?).
 */
export function strictObject<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const known = Object.keys(shape);
  return z.strictObject(shape, { error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys, known) : undefined) });
}

/** `unknown key "tokens" (did you mean "token"?)`, for every key of `unknown`. */
export function unknownKeysMessage(unknown: readonly string[], known: readonly string[]): string {
  const described = unknown.map((key) => {
    if (key.startsWith('x-')) return `"${key}" (keys starting with x- are allowed at the top level only)`;
    const near = nearestKey(key, known);
    return near === undefined ? `"${key}"` : `"${key}" (did you mean "${near}"?)`;
  });
  return `unknown key${unknown.length === 1 ? '' : 's'} ${described.join(', ')}`;
}

/** Case, `-` and `_` aside (`base_url` is `baseUrl`). */
const normalised = (key: string): string => key.toLowerCase().replace(/[-_]/g, '');

/**
 * The known key `key` most likely misspells: one within one edit (two from six characters on), or
 * one that `key` starts with (`cert` for `certificate`); undefined when none is close.
 */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  const typed = normalised(key);
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const target = normalised(candidate);
    const distance = editDistance(typed, target);
    const close = distance <= (target.length >= 6 ? 2 : 1) || (target.length >= 3 && typed.startsWith(target));
    if (close && (best === undefined || distance < best.distance)) best = { key: candidate, distance };
  }
  return best?.key;
}

/** Levenshtein distance, counting a swap of two neighbours as one edit. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, at(i - 2, j - 2) + 1);
      const row = rows[i];
      if (row) row[j] = distance;
    }
  }
  return at(a.length, b.length);
}

/** A plain decimal number: digits, an optional leading minus and an optional fraction. */
const NUMBER_TEXT = /^-?\d+(\.\d+)?$/;

/** Why `text` (trimmed) is not a number, described without quoting it. */
function numberTextProblem(text: string): string | undefined {
  if (NUMBER_TEXT.test(text)) return undefined;
  if (text === '') return 'expected a number, got an empty value';
  if (text.startsWith('+') && NUMBER_TEXT.test(text.slice(1))) return 'expected a number without a leading + (5, not +5)';
  if (/^[-+]?(\d+\.?\d*|\.\d+)e[-+]?\d+$/i.test(text)) return 'expected a number written out in digits (1000, not 1e3)';
  if (/^[-+]?0[xob]/i.test(text)) return 'expected a decimal number (hexadecimal, octal and binary are not read)';
  return 'expected a number (digits, with an optional leading - and fraction: 8080, -1, 0.25), got text that is not one';
}

/**
 * A YAML number, or text (an environment variable) that is a plain decimal number once trimmed.
 * Anything else is refused: `""` and `"  "` (an empty variable, `${VAR:-}`), `"0x1F90"`, `"1e3"`,
 * `"+5"`, `"1_000"`, `"Infinity"`.
 */
const numberOrText = z.union([z.number(), z.string()], { error: (issue) => (issue.input === undefined ? 'required: expected a number' : 'expected a number') }).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const text = value.trim();
  const problem = numberTextProblem(text);
  if (problem === undefined) return Number(text);
  ctx.addIssue({ code: 'custom', message: problem });
  return z.NEVER;
});

/**
 * A number that may be written as text, checked by `schema` once read:
 * `numeric(z.number().int().positive())`.
 */
export function numeric<T extends z.ZodType<number, number>>(schema: T) {
  return numberOrText.pipe(schema);
}

/**
 * Decimal amounts travel as strings so money never passes through a float. A YAML number comes
 * here as a number only when the float holds it exactly as written (the loader keeps the text of
 * any other, see config-loader.ts), so `String` gives back the amount written (`1.50` as `1.5`).
 */
export const decimal = z
  .union([z.string(), z.number()])
  .transform((v) => String(v))
  .refine((v) => /^\d+(\.\d+)?$/.test(v), { message: 'must be a non-negative decimal number, e.g. "0.15"' });

const FLAG_TEXT: ReadonlyMap<string, boolean> = new Map([
  ['true', true],
  ['false', false],
  ['1', true],
  ['0', false],
  ['yes', true],
  ['no', false],
]);

/**
 * A boolean that may come from an environment variable as text (`true` `false` `1` `0` `yes`
 * `no`, trimmed). Empty text is refused, not read as false: `${VAR:-true}` with VAR empty is
 * already `true` (an empty variable takes the default), so only `${VAR:-}` or a blank value gets here.
 */
export const flag = z.union([z.boolean(), z.string()], { error: 'expected true or false' }).transform((value, ctx) => {
  if (typeof value === 'boolean') return value;
  const text = value.trim();
  const read = FLAG_TEXT.get(text);
  if (read !== undefined) return read;
  ctx.addIssue({ code: 'custom', message: text === '' ? 'expected true or false, got an empty value' : 'expected true or false (or 1/0, yes/no)' });
  return z.NEVER;
});

export const port = numeric(z.number().int().min(0).max(65535));
export const host = z.string().min(1).default('127.0.0.1');

export const listenSchema = strictObject({ host, port });
export type Listen = z.infer<typeof listenSchema>;

/** host:port of a gRPC peer. */
export const address = z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port');

/**
 * The longest identifier: the admin API and the reports take ids of 1 to 64 characters (an
 * organisation, team, project, budget or alert rule), so a tenant with a longer id in the
 * configuration could never have an invoice or be named in a report filter.
 */
export const IDENTIFIER_MAX_LENGTH = 64;

/** Lower-case identifiers used for providers, tenants and the like: at most {@link IDENTIFIER_MAX_LENGTH} characters. */
export const identifier = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]*$/, 'lower-case letters, digits, ., - and _')
  .max(IDENTIFIER_MAX_LENGTH, `at most ${IDENTIFIER_MAX_LENGTH} characters, as the admin API and the reports take ids`);

/**
 * An IP address (`203.0.113.7`, `2001:db8::1`) or a CIDR range of them (`10.0.0.0/8`,
 * `2001:db8::/32`), as network allow lists and trusted proxies name them. Written as Node reads
 * addresses (`isIP`): four decimal parts for IPv4, no zone index, a prefix within the family's bits.
 */
export const ipRange = z.string().superRefine((value, ctx) => {
  const slash = value.indexOf('/');
  const address = slash === -1 ? value : value.slice(0, slash);
  // A zone index (`fe80::1%eth0`) names an interface of one machine, not an address a request comes from.
  const family = address.includes('%') ? 0 : isIP(address);
  const bits = slash === -1 ? undefined : value.slice(slash + 1);
  if (family === 0) ctx.addIssue({ code: 'custom', message: `"${value}" is not an IP address or CIDR range (such as 203.0.113.7, 10.0.0.0/8, 2001:db8::/32)` });
  else if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128))) {
    ctx.addIssue({ code: 'custom', message: `"${value}": the prefix length of an IPv${family} range is 0–${family === 4 ? 32 : 128}` });
  }
});

/**
 * Node's timers take at most 2^31 − 1 ms (about 24.8 days): a longer delay is taken as 1 ms (with
 * a TimeoutOverflowWarning), so a timeout would fire at once and a retry, a poll or an evaluation
 * come again and again. Every duration the gateway waits for with a timer is held to it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The problem of a duration past {@link MAX_TIMER_MS}: `z.number().int().positive().max(MAX_TIMER_MS, TIMER_TOO_LONG)`. */
export const TIMER_TOO_LONG = `must be at most ${MAX_TIMER_MS} (ms, about 24.8 days), the longest a Node.js timer waits: a longer one would fire after 1 ms`;

/** Characters Kafka allows in a topic name. */
const KAFKA_TOPIC = /^[A-Za-z0-9._-]+$/;

/**
 * A Kafka topic name as brokers take it: at most 249 of letters, digits, `.`, `_` and `-`, and
 * neither `.` nor `..`. Any other would be accepted here and refused by the broker at the first
 * send or subscription (a space from an environment variable, say), long after the start.
 */
export const kafkaTopic = z.string().superRefine((name, ctx) => {
  if (name === '') ctx.addIssue({ code: 'custom', message: 'name a topic (it is empty)' });
  else if (name === '.' || name === '..') ctx.addIssue({ code: 'custom', message: 'a topic cannot be named "." or ".." (Kafka refuses them)' });
  else if (name.length > 249) ctx.addIssue({ code: 'custom', message: `is ${name.length} characters long: Kafka takes topic names of at most 249` });
  else if (!KAFKA_TOPIC.test(name)) ctx.addIssue({ code: 'custom', message: 'a topic name takes only letters, digits, ".", "_" and "-" (Kafka refuses any other character, spaces included)' });
});

/**
 * Whether two topic names are one to Kafka's metrics, which write `.` as `_`: a broker refuses to
 * create a topic whose name collides with an existing one so (`usage.v1` and `usage_v1`).
 */
export function kafkaTopicsCollide(a: string, b: string): boolean {
  return a.replaceAll('.', '_') === b.replaceAll('.', '_');
}

/** An HTTP header name: an RFC 7230 token (letters, digits and ``!#$%&'*+-.^_`|~``), nothing else. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** What Node's HTTP clients (node:http, undici, fetch) take in a header value: tab, visible ASCII, space and Latin-1. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Extra request headers sent with every call (an alert receiver's, a provider's, the trace
 * exporter's). Names must be header tokens, and values hold no control character (a CR or LF from
 * a `${VAR}` read from a file with a line break, most often) and nothing beyond Latin-1: Node's HTTP
 * clients refuse anything else on every call, with a bare TypeError. The mistake is reported here,
 * at start-up, naming the header (never its value, which may be a credential).
 */
export const httpHeaders = z.record(z.string(), z.string()).superRefine((headers, ctx) => {
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid header name (letters, digits and !#$%&\'*+-.^_`|~ only; no spaces or colons)' });
    if (/[\r\n\0]/.test(value)) ctx.addIssue({ code: 'custom', path: [name], message: 'header value must not contain a line break (CR, LF) or NUL' });
    else if (!HEADER_VALUE.test(value)) ctx.addIssue({ code: 'custom', path: [name], message: 'header value must hold only printable characters: no control character but tab, nothing beyond Latin-1 (U+00FF)' });
  }
});

/**
 * The URL of an HTTP endpoint the gateway sends to (an alert receiver, the trace exporter): http or
 * https, since anything else would fail every call with a bare error, better refused at start-up.
 * Credentials in it (`https://user:token@host/…`) are refused: they would end up in logs and error
 * messages; `advice` says where to put them instead (a header). Problems never quote the URL.
 */
export function httpUrl(advice: string) {
  return z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).refine(
    (url) => {
      try {
        const parsed = new URL(url);
        return parsed.username === '' && parsed.password === '';
      } catch {
        return true;
      }
    },
    { message: `must not contain credentials (user:password@); ${advice}` },
  );
}
