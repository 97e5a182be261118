import { isObject, type JsonObject } from './validation';

/*
 * What OpenAI's strict mode (Structured Outputs) takes, from its "Supported schemas" list. This is
 * an allow-list: a keyword, type or form not listed here is one strict mode may refuse (a 400 for
 * a tool the client never asked to be strict), so a schema using it is left non-strict.
 */

const NUMBER_KEYWORDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'] as const;
/** The types strict mode takes, and the keywords each allows beside `type`, `description`, `title`, `enum` and `const`. */
const TYPE_KEYWORDS = {
  string: ['pattern', 'format'],
  number: NUMBER_KEYWORDS,
  integer: NUMBER_KEYWORDS,
  boolean: [],
  null: [],
  object: ['properties', 'required', 'additionalProperties'],
  array: ['items', 'minItems', 'maxItems'],
} as const satisfies Record<string, readonly string[]>;
type JsonType = keyof typeof TYPE_KEYWORDS;

const ANNOTATIONS = ['description', 'title'] as const;
const VALUES = ['enum', 'const'] as const;
/** Where the root keeps the schemas a `$ref` names. */
const DEFINITIONS = ['$defs', 'definitions'] as const;
const STRING_FORMATS: ReadonlySet<unknown> = new Set(['date-time', 'time', 'date', 'duration', 'email', 'hostname', 'ipv4', 'ipv6', 'uuid']);

const isString = (v: unknown): boolean => typeof v === 'string';
const isNumber = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
const isCount = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0;
/** The form each keyword that is not itself a schema must have. */
const KEYWORD_VALUES: Readonly<Record<string, (v: unknown) => boolean>> = {
  description: isString,
  title: isString,
  pattern: isString,
  format: (v) => STRING_FORMATS.has(v),
  minimum: isNumber,
  maximum: isNumber,
  exclusiveMinimum: isNumber,
  exclusiveMaximum: isNumber,
  multipleOf: (v) => isNumber(v) && (v as number) > 0,
  minItems: isCount,
  maxItems: isCount,
  required: (v) => Array.isArray(v) && v.every(isString),
  // Only closed objects: closing an open one would change what it accepts.
  additionalProperties: (v) => v === false,
};

/** Strict mode's limits on a schema. */
const LIMITS = {
  /** Levels of nested objects. */
  objectDepth: 10,
  /** Object properties in all. */
  properties: 5000,
  /** `enum` values in all. */
  enumValues: 1000,
  /** Characters of all property names, definition names, `enum` and `const` values. */
  characters: 120_000,
  /** Characters of one enum's string values, when it has more than `largeEnum` values. */
  largeEnumCharacters: 15_000,
  largeEnum: 250,
};

/** What the walk over a schema has counted against the limits, and the `$ref`s its root defines. */
interface Walk {
  refs: ReadonlySet<string>;
  properties: number;
  enumValues: number;
  characters: number;
}

/**
 * A function's parameters normalized into strict mode, as OpenAI's Responses API does for a
 * function tool that leaves `strict` out: every object gets `additionalProperties: false` and
 * lists all its properties as `required` (an optional property becomes mandatory; it is not made
 * nullable). `undefined` when the schema is not one strict mode is known to take (see the rules
 * in docs/responses-api.md, "Strict function tools"): OpenAI then falls back to non-strict
 * function calling.
 */
export function toStrictSchema(parameters: JsonObject): JsonObject | undefined {
  if (parameters['type'] !== 'object') return undefined;
  const refs = new Set(['#']);
  for (const key of DEFINITIONS) {
    const defs = parameters[key];
    if (defs === undefined) continue;
    if (!isObject(defs)) return undefined;
    for (const name of Object.keys(defs)) refs.add(`#/${key}/${name.replaceAll('~', '~0').replaceAll('/', '~1')}`);
  }
  return normalize(parameters, 1, { refs, properties: 0, enumValues: 0, characters: 0 }, true);
}

/** `depth` is the level an object at `node` would be at; only the root may hold definitions. */
function normalize(node: unknown, depth: number, walk: Walk, root = false): JsonObject | undefined {
  if (!isObject(node)) return undefined;
  // A reference stands alone: strict mode refuses one with keywords beside it.
  if (node['$ref'] !== undefined) return Object.keys(node).length === 1 && walk.refs.has(node['$ref'] as string) ? { ...node } : undefined;
  if (node['anyOf'] !== undefined) return anyOf(node, depth, walk);
  const types = typesOf(node['type']);
  if (types === undefined) return undefined;
  const allowed = new Set<string>([...ANNOTATIONS, ...VALUES, ...types.flatMap((t) => TYPE_KEYWORDS[t]), ...(types.length > 0 ? ['type'] : []), ...(root ? DEFINITIONS : [])]);
  if (!Object.entries(node).every(([key, value]) => allowed.has(key) && (KEYWORD_VALUES[key]?.(value) ?? true))) return undefined;
  // Without a type, a node is a fixed set of values.
  if (types.length === 0 && node['enum'] === undefined && node['const'] === undefined) return undefined;
  if (!countValues(node, types, walk)) return undefined;

  const out: JsonObject = { ...node };
  if (types.includes('object')) {
    const properties = node['properties'];
    if (!isObject(properties)) return undefined;
    const names = Object.keys(properties);
    walk.properties += names.length;
    walk.characters += names.reduce((n, name) => n + name.length, 0);
    if (depth > LIMITS.objectDepth || walk.properties > LIMITS.properties || walk.characters > LIMITS.characters) return undefined;
    const closed = schemas(properties, depth + 1, walk);
    if (!closed) return undefined;
    out['properties'] = closed;
    out['required'] = names;
    out['additionalProperties'] = false;
  }
  if (types.includes('array')) {
    const items = normalize(node['items'], depth, walk);
    if (!items) return undefined;
    out['items'] = items;
  }
  for (const key of root ? DEFINITIONS : []) {
    if (node[key] === undefined) continue;
    const names = Object.keys(node[key] as JsonObject);
    walk.characters += names.reduce((n, name) => n + name.length, 0);
    const defs = schemas(node[key] as JsonObject, 1, walk);
    if (!defs) return undefined;
    out[key] = defs;
  }
  return walk.characters > LIMITS.characters ? undefined : out;
}

/** A union: a non-empty list of schemas, with nothing beside it but annotations. */
function anyOf(node: JsonObject, depth: number, walk: Walk): JsonObject | undefined {
  const variants = node['anyOf'];
  const allowed = new Set<string>(['anyOf', ...ANNOTATIONS]);
  if (!Array.isArray(variants) || variants.length === 0) return undefined;
  if (!Object.entries(node).every(([key, value]) => allowed.has(key) && (KEYWORD_VALUES[key]?.(value) ?? true))) return undefined;
  const normalized: JsonObject[] = [];
  for (const variant of variants) {
    const schema = normalize(variant, depth, walk);
    if (!schema) return undefined;
    normalized.push(schema);
  }
  return { ...node, anyOf: normalized };
}

/** The node's types (none when it has no `type`); `undefined` for a type strict mode does not take. */
function typesOf(type: unknown): JsonType[] | undefined {
  const list = type === undefined ? [] : Array.isArray(type) ? type : [type];
  if (Array.isArray(type) && (type.length === 0 || new Set(type).size !== type.length)) return undefined;
  return list.every((t): t is JsonType => typeof t === 'string' && Object.hasOwn(TYPE_KEYWORDS, t)) ? list : undefined;
}

/** Checks `enum` and `const` (values of the node's types, if it has any) and counts them against the limits. */
function countValues(node: JsonObject, types: readonly JsonType[], walk: Walk): boolean {
  const values: unknown[] = [];
  if (node['enum'] !== undefined) {
    const list = node['enum'];
    if (!Array.isArray(list) || list.length === 0) return false;
    walk.enumValues += list.length;
    const strings = list.reduce((n: number, v) => n + (typeof v === 'string' ? v.length : 0), 0);
    if (walk.enumValues > LIMITS.enumValues || (list.length > LIMITS.largeEnum && strings > LIMITS.largeEnumCharacters)) return false;
    values.push(...list);
  }
  if (node['const'] !== undefined) values.push(node['const']);
  if (!values.every((v) => isValueOf(v, types))) return false;
  walk.characters += values.reduce((n: number, v) => n + String(v).length, 0);
  return walk.characters <= LIMITS.characters;
}

/** A scalar, of one of `types` when the node names any. */
function isValueOf(value: unknown, types: readonly JsonType[]): boolean {
  const type: JsonType | undefined =
    value === null ? 'null' : typeof value === 'string' ? 'string' : typeof value === 'boolean' ? 'boolean' : isNumber(value) ? 'number' : undefined;
  if (type === undefined) return false;
  if (types.length === 0 || types.includes(type)) return true;
  return type === 'number' && types.includes('integer') && Number.isInteger(value);
}

/** Each schema of a name → schema map normalized (built by `fromEntries`: a property named `__proto__` stays a property). */
function schemas(map: JsonObject, depth: number, walk: Walk): JsonObject | undefined {
  const entries: Array<[string, JsonObject]> = [];
  for (const [name, schema] of Object.entries(map)) {
    const normalized = normalize(schema, depth, walk);
    if (!normalized) return undefined;
    entries.push([name, normalized]);
  }
  return Object.fromEntries(entries);
}
