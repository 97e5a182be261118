type JsonObject = Record<string, unknown>;

const MAX_DEPTH = 12;
/**
 * Bounds on what `minItems` and `minLength` make: a client's schema may ask for a billion items,
 * which would exhaust the memory of the process the simulator runs in (a test's own).
 */
const MAX_ITEMS = 64;
const MAX_LENGTH = 4096;

const STRING_FORMAT_SAMPLES: Readonly<Record<string, string>> = {
  'date-time': '2024-01-01T00:00:00Z',
  date: '2024-01-01',
  time: '00:00:00Z',
  email: 'sample@example.com',
  uri: 'https://example.com/sample',
  url: 'https://example.com/sample',
  uuid: '00000000-0000-4000-8000-000000000000',
};

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Builds a value satisfying a JSON schema's structural constraints: objects get every
 * `required` property, strings "sample" (or the first enum / const value), numbers 1,
 * booleans true, arrays [] (or `minItems` items). `$ref` into `#/$defs` or `#/definitions`
 * is followed; recursion is cut off at a fixed depth.
 */
export function synthesizeFromSchema(schema: unknown, root: unknown = schema, depth = 0): unknown {
  if (!isObject(schema) || depth > MAX_DEPTH) return schema === false ? null : 'sample';
  if (typeof schema['$ref'] === 'string') return synthesizeFromSchema(resolveRef(root, schema['$ref']), root, depth + 1);
  if ('const' in schema) return schema['const'];
  const enumValues = schema['enum'];
  if (Array.isArray(enumValues) && enumValues.length > 0) return enumValues[0];
  for (const keyword of ['anyOf', 'oneOf'] as const) {
    const branches = schema[keyword];
    if (Array.isArray(branches) && branches.length > 0) {
      const chosen = branches.find((branch) => !(isObject(branch) && branch['type'] === 'null')) ?? branches[0];
      return synthesizeFromSchema(chosen, root, depth + 1);
    }
  }
  const allOf = schema['allOf'];
  if (Array.isArray(allOf) && allOf.length > 0) return synthesizeFromSchema(mergeAllOf(schema, allOf, root), root, depth + 1);

  switch (schemaType(schema)) {
    case 'object':
      return synthesizeObject(schema, root, depth);
    case 'array':
      return synthesizeArray(schema, root, depth);
    case 'integer':
      return clampNumber(schema, true);
    case 'number':
      return clampNumber(schema, false);
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return synthesizeString(schema);
  }
}

/** Tool arguments are always an object, even for a missing or non-object `parameters`. */
export function synthesizeToolArguments(parameters: unknown): JsonObject {
  const value = synthesizeFromSchema(parameters ?? { type: 'object' });
  return isObject(value) ? value : {};
}

function schemaType(schema: JsonObject): string {
  const declared = schema['type'];
  if (typeof declared === 'string') return declared;
  if (Array.isArray(declared)) {
    const types = declared.filter((t): t is string => typeof t === 'string');
    return types.find((t) => t !== 'null') ?? types[0] ?? 'string';
  }
  if (isObject(schema['properties']) || Array.isArray(schema['required'])) return 'object';
  if ('items' in schema) return 'array';
  return 'string';
}

function synthesizeObject(schema: JsonObject, root: unknown, depth: number): JsonObject {
  const properties = isObject(schema['properties']) ? schema['properties'] : {};
  const required = Array.isArray(schema['required']) ? schema['required'] : [];
  const result: JsonObject = {};
  for (const name of required) {
    if (typeof name !== 'string') continue;
    result[name] = synthesizeFromSchema(properties[name] ?? {}, root, depth + 1);
  }
  return result;
}

function synthesizeArray(schema: JsonObject, root: unknown, depth: number): unknown[] {
  const minItems = typeof schema['minItems'] === 'number' ? Math.min(MAX_ITEMS, Math.max(0, Math.ceil(schema['minItems']))) : 0;
  const items = schema['items'];
  const result: unknown[] = [];
  for (let i = 0; i < minItems; i++) {
    const itemSchema = Array.isArray(items) ? (items[i] ?? {}) : (items ?? {});
    result.push(synthesizeFromSchema(itemSchema, root, depth + 1));
  }
  return result;
}

function clampNumber(schema: JsonObject, integer: boolean): number {
  const num = (key: string): number | undefined => (typeof schema[key] === 'number' ? (schema[key] as number) : undefined);
  const step = integer ? 1 : 0.5;
  let value = 1;
  const minimum = num('minimum');
  const exclusiveMinimum = num('exclusiveMinimum');
  const maximum = num('maximum');
  const exclusiveMaximum = num('exclusiveMaximum');
  if (minimum !== undefined && value < minimum) value = integer ? Math.ceil(minimum) : minimum;
  if (exclusiveMinimum !== undefined && value <= exclusiveMinimum) value = integer ? Math.floor(exclusiveMinimum) + 1 : exclusiveMinimum + step;
  if (maximum !== undefined && value > maximum) value = integer ? Math.floor(maximum) : maximum;
  if (exclusiveMaximum !== undefined && value >= exclusiveMaximum) value = integer ? Math.ceil(exclusiveMaximum) - 1 : exclusiveMaximum - step;
  return value;
}

function synthesizeString(schema: JsonObject): string {
  const format = typeof schema['format'] === 'string' && Object.hasOwn(STRING_FORMAT_SAMPLES, schema['format']) ? STRING_FORMAT_SAMPLES[schema['format']] : undefined;
  let value = format ?? 'sample';
  const minLength = typeof schema['minLength'] === 'number' ? Math.min(MAX_LENGTH, schema['minLength']) : undefined;
  const maxLength = typeof schema['maxLength'] === 'number' ? schema['maxLength'] : undefined;
  if (minLength !== undefined && value.length < minLength) value = value.padEnd(minLength, 'x');
  if (maxLength !== undefined && value.length > maxLength) value = value.slice(0, Math.max(0, maxLength));
  return value;
}

function resolveRef(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return {};
  let node: unknown = root;
  for (const rawSegment of ref.slice(1).split('/')) {
    if (rawSegment === '') continue;
    const segment = rawSegment.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isObject(node)) return {};
    node = node[segment];
  }
  return node ?? {};
}

function mergeAllOf(schema: JsonObject, branches: unknown[], root: unknown): JsonObject {
  const { allOf: _allOf, ...base } = schema;
  const properties: JsonObject = isObject(base['properties']) ? { ...base['properties'] } : {};
  const required = new Set<unknown>(Array.isArray(base['required']) ? base['required'] : []);
  let merged: JsonObject = base;
  for (const rawBranch of branches) {
    const branch = isObject(rawBranch) && typeof rawBranch['$ref'] === 'string' ? resolveRef(root, rawBranch['$ref']) : rawBranch;
    if (!isObject(branch)) continue;
    merged = { ...merged, ...branch };
    if (isObject(branch['properties'])) Object.assign(properties, branch['properties']);
    if (Array.isArray(branch['required'])) for (const name of branch['required']) required.add(name);
  }
  return { ...merged, properties, required: [...required] };
}
