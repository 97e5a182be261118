import { z } from 'zod';
import { GatewayError } from '@openrouter/errors';

export type JsonObject = Record<string, unknown>;

/**
 * The longest model name a request may give (an id, an alias, a fine-tune's name: OpenAI's run to
 * about 100 characters). Refusals quote the name; an unbounded one would make them as large as
 * the body, past what a gRPC status can carry between the services.
 */
export const MODEL_NAME_MAX = 256;
/** A request's `model`. */
export const modelName = z.string().min(1).max(MODEL_NAME_MAX);

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export type ValidationCode = 'invalid_value' | 'missing_required_parameter' | 'invalid_type' | 'unknown_parameter';

/** `messages[0].content` style, as OpenAI names params in its errors. */
export function paramOf(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

export function badRequest(message: string, param: string | undefined, code: ValidationCode | 'unsupported_parameter'): GatewayError {
  return new GatewayError('bad_request', message, { param, code });
}

/**
 * Params of a custom issue for a field a refinement requires (e.g. a user message's `content`):
 * the client gets `missing_required_parameter` whether the field is absent or null.
 */
export const REQUIRED = { required: true } as const;

function valueAt(body: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = body;
  for (const p of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

interface Found {
  issue: z.core.$ZodIssue;
  path: PropertyKey[];
}

/** The JSON type an issue wanted, when it is a type mismatch (an enum of strings rejects a number by value). */
function expectedType(issue: z.core.$ZodIssue, value: unknown): string | undefined {
  if (issue.code === 'invalid_type') return issue.expected;
  if (issue.code === 'invalid_value') {
    const wanted = typeof issue.values[0];
    if (typeof value !== wanted) return wanted;
  }
  return undefined;
}

/**
 * Zod reports a failed union as one issue per branch. The branch that got furthest (the value had
 * the right shape but something inside was wrong) is the one the client meant; when every branch
 * failed at the top the value simply has the wrong type.
 */
function resolve(issue: z.core.$ZodIssue, prefix: PropertyKey[], body: unknown): Found | { union: PropertyKey[]; expected: string[] } {
  const path = [...prefix, ...issue.path];
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return { issue, path };
  const value = valueAt(body, path);
  let best: z.core.$ZodIssue | undefined;
  for (const branch of issue.errors) {
    const first = branch[0];
    if (first && first.path.length > 0 && (!best || first.path.length > best.path.length)) best = first;
  }
  // A branch that accepted the type but not the value (e.g. an unknown enum string) says more than a type mismatch.
  best ??= issue.errors.map((branch) => branch[0]).find((first) => first !== undefined && expectedType(first, value) === undefined);
  if (best) return resolve(best, path, body);
  const expected: string[] = [];
  for (const branch of issue.errors) {
    const type = branch[0] && expectedType(branch[0], value);
    if (type && !expected.includes(type)) expected.push(type);
  }
  return { union: path, expected };
}

function describeExpected(expected: string[]): string {
  if (expected.length === 0) return 'a different value';
  return oneOf(expected.map(article));
}

/** `a, b or c`. */
function oneOf(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1] ?? ''}`;
}

/** Zod's type names as the JSON types a client writes. */
const JSON_TYPE: Readonly<Record<string, string>> = { int: 'integer', record: 'object', map: 'object', tuple: 'array' };

function article(type: string): string {
  const name = JSON_TYPE[type] ?? type;
  if (name === 'null') return 'null';
  return /^[aeiou]/.test(name) ? `an ${name}` : `a ${name}`;
}

/** What the client sent, in the words of the expected type. */
function received(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal number';
  return article(typeof value);
}

/** A short rendering of a client's value for a message. */
function shown(value: unknown): string {
  if (typeof value === 'string') return value.length > 40 ? `'${value.slice(0, 40)}…'` : `'${value}'`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return received(value);
}

function size(value: unknown, unit: string): string {
  const n = typeof value === 'string' || Array.isArray(value) ? value.length : 0;
  if (n === 0) return `an empty ${unit === 'characters' ? 'string' : 'array'}`;
  return `${n} ${unit}`;
}

/** What a value-level issue (a bound, an enum) wanted and what it got, e.g. `expected a value <= 2, but got 3 instead`. */
function describeValue(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'too_big':
    case 'too_small': {
      const big = issue.code === 'too_big';
      const limit = Number(big ? issue.maximum : issue.minimum);
      const inclusive = issue.inclusive !== false;
      if (issue.origin === 'number') return `expected a value ${big ? '<' : '>'}${inclusive ? '=' : ''} ${limit}, but got ${shown(value)} instead`;
      const unit = issue.origin === 'string' ? 'characters' : issue.origin === 'array' ? 'items' : undefined;
      if (!unit) break;
      if (!big && limit === 1) return `expected a non-empty ${unit === 'characters' ? 'string' : 'array'}, but got ${size(value, unit)} instead`;
      return `expected ${big ? 'at most' : 'at least'} ${limit} ${unit}, but got ${size(value, unit)} instead`;
    }
    case 'invalid_value':
      return `expected ${oneOf(issue.values.map(shown))}, but got ${shown(value)} instead`;
  }
  return lowerFirst(issue.message);
}

/** Validates a client body; the first problem becomes a 400 naming its param the way OpenAI does. */
export function validate<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (!isObject(body)) throw badRequest('The request body must be a JSON object.', undefined, 'invalid_type');
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  if (!first) throw badRequest('The request body is invalid.', undefined, 'invalid_value');
  const found = resolve(first, [], body);
  const path = 'union' in found ? found.union : found.path;
  if (!('union' in found) && found.issue.code === 'unrecognized_keys') {
    const param = paramOf([...path, found.issue.keys[0] ?? '']);
    throw badRequest(`Unknown parameter: '${param}'.`, param, 'unknown_parameter');
  }
  const param = paramOf(path);
  const value = valueAt(body, path);
  if (!('union' in found) && found.issue.code === 'custom' && found.issue.params?.['required'] === true) {
    const why = value === null ? `${found.issue.message}, not null` : found.issue.message;
    throw badRequest(`Missing required parameter: '${param}' (${why}).`, param, 'missing_required_parameter');
  }
  if (value === undefined) throw badRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
  if ('union' in found) throw badRequest(`Invalid type for '${param}': expected ${describeExpected(found.expected)}, but got ${received(value)} instead.`, param, 'invalid_type');
  const type = expectedType(found.issue, value);
  if (type !== undefined) throw badRequest(`Invalid type for '${param}': expected ${article(type)}, but got ${received(value)} instead.`, param, 'invalid_type');
  throw badRequest(`Invalid value for '${param}': ${describeValue(found.issue, value)}.`, param, 'invalid_value');
}

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

/**
 * JSON object text of the keys of `source` not in `known`; '' when there are none. With `lossy`,
 * known keys whose value the typed field cannot hold (an explicit null, or a `false`/`[]`/`{}` that
 * reads as absent) are kept too, so the provider still gets the body exactly as the client wrote it.
 */
export function extraJson(source: JsonObject, known: ReadonlySet<string>, lossy?: LossyFields): string {
  let extra: JsonObject | undefined;
  for (const key in source) {
    const value = source[key];
    if (value === undefined) continue;
    if (known.has(key) && !(lossy && carried(key, value, lossy))) continue;
    setOwn((extra ??= {}), key, value);
  }
  return extra ? JSON.stringify(extra) : '';
}

/** Plain assignment of `__proto__` would replace the prototype instead of adding the client's field. */
function setOwn(target: JsonObject, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function carried(key: string, value: unknown, lossy: LossyFields): boolean {
  if (value === null) return key !== lossy.nullModelled;
  return lossy.defaultUnmodelled?.has(key) === true && readsAsAbsent(value);
}

export interface LossyFields {
  /** The one known key whose null the canonical message models itself (a message's `content`). */
  nullModelled?: string;
  /** Known keys whose canonical field cannot tell `false`, `[]` or `{}` from absent (bools, repeated and map fields). */
  defaultUnmodelled?: ReadonlySet<string>;
}

function readsAsAbsent(value: unknown): boolean {
  if (value === false) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (!isObject(value)) return false;
  for (const _ in value) return false;
  return true;
}

/** Adds the extra fields to `target` in place; fields already set there win. */
export function mergeExtra(target: JsonObject, json: string): JsonObject {
  if (!json) return target;
  const extra: unknown = JSON.parse(json);
  if (!isObject(extra)) return target;
  for (const key in extra) if (!Object.hasOwn(target, key)) setOwn(target, key, extra[key]);
  return target;
}

/** JSON text of an opaque value, '' when absent or null. */
export const jsonText = (v: unknown): string => (v === undefined || v === null ? '' : JSON.stringify(v));

/** The value of JSON text written by `jsonText`, null when empty. */
export const jsonValue = (text: string | undefined): unknown => (text ? JSON.parse(text) : null);

/** `null` and absent mean the same to OpenAI; the canonical message only knows absent. */
export const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
