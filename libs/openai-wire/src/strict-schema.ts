import { isObject, type JsonObject } from './validation';

/**
 * Keywords OpenAI's strict mode (Structured Outputs) does not take: a schema using one cannot be
 * made strict-compatible.
 */
const UNSUPPORTED_KEYWORDS: ReadonlySet<string> = new Set([
  'allOf',
  'oneOf',
  'not',
  'if',
  'then',
  'else',
  'dependentRequired',
  'dependentSchemas',
  'patternProperties',
  'unevaluatedProperties',
  'propertyNames',
  'minProperties',
  'maxProperties',
  'unevaluatedItems',
  'prefixItems',
  'contains',
  'minContains',
  'maxContains',
  'uniqueItems',
]);
/** Strict mode's limits on a schema: levels of nested objects, and object properties in all. */
const MAX_OBJECT_DEPTH = 10;
const MAX_PROPERTIES = 5000;

/**
 * A function's parameters normalized into strict mode, as OpenAI's Responses API does for a
 * function tool that leaves `strict` out: every object gets `additionalProperties: false` and
 * lists all its properties as `required` (an optional property becomes mandatory; it is not made
 * nullable). `undefined` when the schema cannot be made strict-compatible: its root is not an
 * object, it uses a keyword strict mode does not take, an object is open (`additionalProperties`
 * other than `false`, or no `properties`: closing it would change what it accepts), or it is past
 * strict mode's size limits. OpenAI then falls back to non-strict function calling.
 */
export function toStrictSchema(parameters: JsonObject): JsonObject | undefined {
  if (!isObjectSchema(parameters) || parameters['anyOf'] !== undefined) return undefined;
  return normalize(parameters, 1, { properties: 0 });
}

function isObjectSchema(node: JsonObject): boolean {
  const type = node['type'];
  return type === 'object' || (Array.isArray(type) && type.includes('object')) || (type === undefined && node['properties'] !== undefined);
}

function normalize(node: unknown, depth: number, count: { properties: number }): JsonObject | undefined {
  if (!isObject(node) || Object.keys(node).some((key) => UNSUPPORTED_KEYWORDS.has(key))) return undefined;
  const out: JsonObject = { ...node };
  if (isObjectSchema(node)) {
    const properties = node['properties'];
    if (!isObject(properties) || (node['additionalProperties'] !== undefined && node['additionalProperties'] !== false)) return undefined;
    const names = Object.keys(properties);
    count.properties += names.length;
    if (depth > MAX_OBJECT_DEPTH || count.properties > MAX_PROPERTIES) return undefined;
    const closed = schemas(properties, depth + 1, count);
    if (!closed) return undefined;
    out['properties'] = closed;
    out['required'] = names;
    out['additionalProperties'] = false;
  }
  if (node['items'] !== undefined) {
    const items = normalize(node['items'], depth, count);
    if (!items) return undefined;
    out['items'] = items;
  }
  if (node['anyOf'] !== undefined) {
    const variants = Array.isArray(node['anyOf']) ? node['anyOf'].map((v) => normalize(v, depth, count)) : [undefined];
    if (variants.some((v) => v === undefined)) return undefined;
    out['anyOf'] = variants;
  }
  for (const key of ['$defs', 'definitions'] as const) {
    if (node[key] === undefined) continue;
    const defs = isObject(node[key]) ? schemas(node[key], 1, count) : undefined;
    if (!defs) return undefined;
    out[key] = defs;
  }
  return out;
}

/** Each schema of a name → schema map normalized (built by `fromEntries`: a property named `__proto__` stays a property). */
function schemas(map: JsonObject, depth: number, count: { properties: number }): JsonObject | undefined {
  const entries: Array<[string, JsonObject]> = [];
  for (const [name, schema] of Object.entries(map)) {
    const normalized = normalize(schema, depth, count);
    if (!normalized) return undefined;
    entries.push([name, normalized]);
  }
  return Object.fromEntries(entries);
}
