/** JSON values as Gemini's request bodies carry them. */
export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const MAX_DEPTH = 32;
/**
 * The most schema nodes one conversion makes. Inlining `$ref`s copies a definition at every use,
 * so a schema of a few definitions that each use the next several times grows exponentially (a
 * 1.4 kB schema of ten such levels: 29 MB, seconds of the event loop); past this it is sent as
 * JSON Schema, `$ref`s and all.
 */
const MAX_NODES = 10_000;

/** Keywords of Gemini's Schema object copied as they are (the OpenAPI 3.0 subset it accepts). */
const COPIED = ['title', 'description', 'minItems', 'maxItems', 'minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'minProperties', 'maxProperties', 'default', 'example'] as const;

/** The `format` values Gemini accepts per type; any other format is an annotation and is left out. */
const FORMATS: Readonly<Record<string, ReadonlySet<string>>> = {
  STRING: new Set(['date-time', 'enum']),
  INTEGER: new Set(['int32', 'int64']),
  NUMBER: new Set(['float', 'double']),
};

const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'array', 'object']);

/** Thrown inside the conversion when a schema uses something Gemini's Schema object cannot say. */
class Inexpressible extends Error {}

/**
 * A JSON Schema as Gemini's `Schema` object (an OpenAPI 3.0 subset): local `$ref`s inlined,
 * `allOf` merged, `oneOf` read as `anyOf`, `["x","null"]` and `anyOf [x, null]` as `nullable`,
 * upper-case type names, and annotation-only keywords (`$schema`, `additionalProperties: false`,
 * `exclusiveMinimum`, unsupported formats…) left out. Returns undefined when the schema cannot be
 * said in that subset without changing its meaning (recursion, free-form or map objects, tuples,
 * non-string enums and consts): callers then send the schema as JSON Schema instead
 * (`parametersJsonSchema` / `responseJsonSchema`).
 */
export function toGeminiSchema(schema: JsonObject): JsonObject | undefined {
  nodesLeft = MAX_NODES;
  try {
    return convert(schema, schema, [], 0);
  } catch (error) {
    if (error instanceof Inexpressible) return undefined;
    throw error;
  }
}

/** True for an object schema that declares no properties (a tool that takes no arguments). */
export function hasNoProperties(schema: JsonObject): boolean {
  const props = schema['properties'];
  return (schema['type'] === undefined || schema['type'] === 'object') && (!isObject(props) || Object.keys(props).length === 0) && schema['$ref'] === undefined && !Array.isArray(schema['anyOf']) && !Array.isArray(schema['oneOf']) && !Array.isArray(schema['allOf']);
}

/** Nodes the conversion under way may still make (it is synchronous: one at a time). */
let nodesLeft = MAX_NODES;

function convert(node: unknown, root: JsonObject, refs: readonly string[], depth: number): JsonObject {
  if (!isObject(node) || depth > MAX_DEPTH || --nodesLeft < 0) throw new Inexpressible();
  const ref = node['$ref'];
  if (typeof ref === 'string') {
    if (refs.includes(ref)) throw new Inexpressible();
    const { $ref: _ref, ...siblings } = node;
    return convert({ ...resolveRef(root, ref), ...siblings }, root, [...refs, ref], depth + 1);
  }
  const allOf = node['allOf'];
  if (Array.isArray(allOf)) return convert(mergeAllOf(node, allOf, root), root, refs, depth + 1);

  const branches = Array.isArray(node['anyOf']) ? node['anyOf'] : Array.isArray(node['oneOf']) ? node['oneOf'] : undefined;
  if (branches) return convertUnion(node, branches, root, refs, depth);

  const out: JsonObject = {};
  const { type, nullable } = typeOf(node);
  out['type'] = type;
  if (nullable || node['nullable'] === true) out['nullable'] = true;
  copyAnnotations(node, out, type);
  if ('const' in node) {
    if (typeof node['const'] !== 'string') throw new Inexpressible();
    out['type'] = 'STRING';
    out['enum'] = [node['const']];
  }
  const enumValues = node['enum'];
  if (Array.isArray(enumValues)) {
    const strings = enumValues.filter((v): v is string => typeof v === 'string');
    const nulls = enumValues.filter((v) => v === null).length;
    if (strings.length + nulls !== enumValues.length || strings.length === 0) throw new Inexpressible();
    out['type'] = 'STRING';
    out['enum'] = strings;
    if (nulls > 0) out['nullable'] = true;
  }
  if (type === 'OBJECT') convertObject(node, out, root, refs, depth);
  if (type === 'ARRAY') {
    const items = node['items'];
    if (Array.isArray(items) || 'prefixItems' in node) throw new Inexpressible();
    if (items !== undefined) out['items'] = convert(items, root, refs, depth + 1);
  }
  return out;
}

function convertUnion(node: JsonObject, branches: unknown[], root: JsonObject, refs: readonly string[], depth: number): JsonObject {
  const { anyOf: _a, oneOf: _o, ...rest } = node;
  const isNull = (b: unknown): boolean => isObject(b) && b['type'] === 'null';
  const real = branches.filter((b) => !isNull(b));
  const nullable = real.length < branches.length;
  if (real.length === 0) throw new Inexpressible();
  if (real.length === 1) {
    const single = convert({ ...rest, ...(real[0] as JsonObject) }, root, refs, depth + 1);
    if (nullable) single['nullable'] = true;
    return single;
  }
  const out: JsonObject = { anyOf: real.map((b) => convert(b, root, refs, depth + 1)) };
  for (const key of ['title', 'description'] as const) if (typeof rest[key] === 'string') out[key] = rest[key];
  if (nullable) out['nullable'] = true;
  return out;
}

function typeOf(node: JsonObject): { type: string; nullable: boolean } {
  const declared = node['type'];
  if (typeof declared === 'string') {
    if (!TYPES.has(declared)) throw new Inexpressible();
    return { type: declared.toUpperCase(), nullable: false };
  }
  if (Array.isArray(declared)) {
    const types = declared.filter((t) => t !== 'null');
    if (types.length !== 1 || typeof types[0] !== 'string' || !TYPES.has(types[0])) throw new Inexpressible();
    return { type: types[0].toUpperCase(), nullable: types.length < declared.length };
  }
  if (isObject(node['properties'])) return { type: 'OBJECT', nullable: false };
  if ('items' in node) return { type: 'ARRAY', nullable: false };
  if (Array.isArray(node['enum']) || typeof node['const'] === 'string') return { type: 'STRING', nullable: false };
  // A schema without a type accepts anything: Gemini's Schema has no way to say that.
  throw new Inexpressible();
}

function copyAnnotations(node: JsonObject, out: JsonObject, type: string): void {
  for (const key of COPIED) if (node[key] !== undefined) out[key] = node[key];
  const format = node['format'];
  if (typeof format === 'string' && FORMATS[type]?.has(format)) out['format'] = format;
}

function convertObject(node: JsonObject, out: JsonObject, root: JsonObject, refs: readonly string[], depth: number): void {
  const props = node['properties'];
  const additional = node['additionalProperties'];
  if (isObject(additional) || !isObject(props) || Object.keys(props).length === 0) {
    // A map or a free-form object: Gemini objects hold only the properties they declare.
    throw new Inexpressible();
  }
  const properties: JsonObject = {};
  for (const [name, schema] of Object.entries(props)) properties[name] = convert(schema, root, refs, depth + 1);
  out['properties'] = properties;
  const required = node['required'];
  if (Array.isArray(required)) {
    const names = required.filter((r): r is string => typeof r === 'string' && r in properties);
    if (names.length > 0) out['required'] = names;
  }
  // Gemini orders generated properties alphabetically unless told; keep the schema's order.
  out['propertyOrdering'] = Object.keys(properties);
}

function resolveRef(root: JsonObject, ref: string): JsonObject {
  if (!ref.startsWith('#')) throw new Inexpressible();
  let at: unknown = root;
  for (const raw of ref.slice(1).split('/')) {
    if (raw === '') continue;
    const segment = pointerSegment(raw);
    if (!isObject(at)) throw new Inexpressible();
    at = at[segment];
  }
  if (!isObject(at)) throw new Inexpressible();
  return at;
}

/** A JSON Pointer segment of a `$ref` fragment, unescaped; malformed percent-encoding (`#/%`) is a client's, and inexpressible. */
function pointerSegment(raw: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new Inexpressible();
  }
  return decoded.replace(/~1/g, '/').replace(/~0/g, '~');
}

function mergeAllOf(node: JsonObject, branches: unknown[], root: JsonObject): JsonObject {
  const { allOf: _allOf, ...base } = node;
  let merged: JsonObject = base;
  const properties: JsonObject = isObject(base['properties']) ? { ...base['properties'] } : {};
  const required = new Set<unknown>(Array.isArray(base['required']) ? base['required'] : []);
  for (const raw of branches) {
    const branch = isObject(raw) && typeof raw['$ref'] === 'string' ? resolveRef(root, raw['$ref']) : raw;
    if (!isObject(branch)) throw new Inexpressible();
    merged = { ...merged, ...branch };
    if (isObject(branch['properties'])) Object.assign(properties, branch['properties']);
    if (Array.isArray(branch['required'])) for (const r of branch['required']) required.add(r);
  }
  if (Object.keys(properties).length > 0) merged['properties'] = properties;
  if (required.size > 0) merged['required'] = [...required];
  return merged;
}
