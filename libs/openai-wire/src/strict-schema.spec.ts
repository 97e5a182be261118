import { toStrictSchema } from './strict-schema';

describe('toStrictSchema', () => {
  it('closes every object and requires all its properties, through nested objects, arrays, anyOf and $defs', () => {
    const schema = {
      type: 'object',
      properties: {
        city: { type: 'string', description: 'a city' },
        when: { type: ['object', 'null'], properties: { day: { type: 'string', format: 'date' } } },
        stops: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } }, maxItems: 3 },
        unit: { anyOf: [{ type: 'string', enum: ['c', 'f'] }, { type: 'object', properties: { custom: { type: 'string' } } }] },
        home: { $ref: '#/$defs/place' },
      },
      required: ['city'],
      $defs: { place: { type: 'object', properties: { lat: { type: 'number' }, lon: { type: 'number' } }, additionalProperties: false } },
    };
    expect(toStrictSchema(schema)).toEqual({
      type: 'object',
      properties: {
        city: { type: 'string', description: 'a city' },
        when: { type: ['object', 'null'], properties: { day: { type: 'string', format: 'date' } }, required: ['day'], additionalProperties: false },
        stops: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false }, maxItems: 3 },
        unit: { anyOf: [{ type: 'string', enum: ['c', 'f'] }, { type: 'object', properties: { custom: { type: 'string' } }, required: ['custom'], additionalProperties: false }] },
        home: { $ref: '#/$defs/place' },
      },
      required: ['city', 'when', 'stops', 'unit', 'home'],
      additionalProperties: false,
      $defs: { place: { type: 'object', properties: { lat: { type: 'number' }, lon: { type: 'number' } }, required: ['lat', 'lon'], additionalProperties: false } },
    });
    // The schema it was given is left as it was.
    expect(schema.required).toEqual(['city']);
    expect(schema).not.toHaveProperty('additionalProperties');
  });

  it('closes an object with empty properties, and keeps a property named __proto__ a property', () => {
    expect(toStrictSchema({ type: 'object', properties: {} })).toEqual({ type: 'object', properties: {}, required: [], additionalProperties: false });
    const normalized = toStrictSchema(JSON.parse('{"type":"object","properties":{"__proto__":{"type":"string"}}}') as Record<string, unknown>);
    expect(Object.keys(normalized?.['properties'] as object)).toEqual(['__proto__']);
    expect(normalized?.['required']).toEqual(['__proto__']);
  });

  it.each([
    ['a root that is not an object', { type: 'string' }],
    ['a root anyOf', { type: 'object', anyOf: [{ properties: { a: { type: 'string' } } }] }],
    ['an object open to other properties', { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: true }],
    ['an object whose other properties have a schema', { type: 'object', properties: { tags: { type: 'object', properties: {}, additionalProperties: { type: 'string' } } } }],
    ['a free-form object (no properties)', { type: 'object', properties: { extra: { type: 'object' } } }],
    ['a root with no properties', { type: 'object' }],
    ['allOf', { type: 'object', properties: { a: { allOf: [{ type: 'string' }] } } }],
    ['oneOf', { type: 'object', properties: { a: { oneOf: [{ type: 'string' }, { type: 'number' }] } } }],
    ['patternProperties', { type: 'object', properties: {}, patternProperties: { '^x-': { type: 'string' } } }],
    ['uniqueItems', { type: 'object', properties: { a: { type: 'array', items: { type: 'string' }, uniqueItems: true } } }],
    ['if/then', { type: 'object', properties: { a: { type: 'string', if: { minLength: 1 }, then: { pattern: 'x' } } } }],
    ['a boolean schema', { type: 'object', properties: { a: true } }],
    ['an anyOf that is not a list', { type: 'object', properties: { a: { anyOf: { type: 'string' } } } }],
  ])('cannot make %s strict-compatible', (_case, schema) => {
    expect(toStrictSchema(schema as Record<string, unknown>)).toBeUndefined();
  });

  it('takes every keyword strict mode lists, per type, and keeps it as sent', () => {
    const schema = {
      type: 'object',
      title: 'Query',
      description: 'A search',
      properties: {
        q: { type: 'string', pattern: '^[a-z]+$', description: 'terms' },
        since: { type: ['string', 'null'], format: 'date-time' },
        limit: { type: 'integer', minimum: 1, maximum: 50, multipleOf: 5 },
        score: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
        exact: { type: 'boolean', title: 'Exact' },
        nothing: { type: 'null' },
        sort: { type: 'string', enum: ['asc', 'desc'] },
        page: { type: 'integer', enum: [1, 2, 3] },
        mode: { enum: ['fast', 1, true, null], description: 'untyped values' },
        version: { const: 'v2' },
        tags: { type: 'array', items: { type: 'string' }, minItems: 0, maxItems: 5 },
        either: { anyOf: [{ type: 'string' }, { $ref: '#/definitions/child' }], description: 'a union' },
        self: { anyOf: [{ $ref: '#' }, { type: 'null' }] },
      },
      definitions: { child: { type: 'object', properties: { name: { type: 'string' } } } },
    };
    const normalized = toStrictSchema(schema);
    expect(normalized).toEqual({
      ...schema,
      properties: { ...schema.properties },
      required: Object.keys(schema.properties),
      additionalProperties: false,
      definitions: { child: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false } },
    });
    // A definition whose name a JSON pointer escapes is found by its escaped reference.
    expect(toStrictSchema({ type: 'object', properties: { a: { $ref: '#/$defs/a~1b' } }, $defs: { 'a/b': { type: 'string' } } })).toBeDefined();
  });

  it.each([
    // What strict mode refuses but a deny-list of keywords let through.
    ['a property with no type', { type: 'object', properties: { value: { description: 'any' } } }],
    ['an empty schema', { type: 'object', properties: { value: {} } }],
    ['an array whose items have no type', { type: 'object', properties: { list: { type: 'array', items: {} } } }],
    ['an array without items', { type: 'object', properties: { list: { type: 'array' } } }],
    ['a $ref with a keyword beside it', { type: 'object', properties: { home: { $ref: '#/$defs/place', description: 'home' } }, $defs: { place: { type: 'string' } } }],
    ['a $ref to a definition the root does not have', { type: 'object', properties: { home: { $ref: '#/$defs/place' } } }],
    ['a $ref outside the schema', { type: 'object', properties: { home: { $ref: 'https://example.com/place.json' } } }],
    ['a default', { type: 'object', properties: { units: { type: 'string', default: 'c' } } }],
    // Anything strict mode does not list.
    ['a keyword of another type', { type: 'object', properties: { n: { type: 'number', pattern: '^1' } } }],
    ['minLength', { type: 'object', properties: { s: { type: 'string', minLength: 1 } } }],
    ['examples', { type: 'object', properties: { s: { type: 'string', examples: ['x'] } } }],
    ['$schema', { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: {} }],
    ['a format strict mode does not list', { type: 'object', properties: { s: { type: 'string', format: 'uri' } } }],
    ['a type strict mode does not take', { type: 'object', properties: { s: { type: 'any' } } }],
    ['a type list naming a type twice', { type: 'object', properties: { s: { type: ['string', 'string'] } } }],
    ['an empty type list', { type: 'object', properties: { s: { type: [] } } }],
    ['an enum value not of the type', { type: 'object', properties: { s: { type: 'string', enum: ['a', 1] } } }],
    ['an integer enum with a fraction', { type: 'object', properties: { s: { type: 'integer', enum: [1, 1.5] } } }],
    ['an enum of objects', { type: 'object', properties: { s: { enum: [{ a: 1 }] } } }],
    ['an empty enum', { type: 'object', properties: { s: { type: 'string', enum: [] } } }],
    ['a const not of the type', { type: 'object', properties: { s: { type: 'number', const: 'x' } } }],
    ['an anyOf with a type beside it', { type: 'object', properties: { a: { type: 'string', anyOf: [{ type: 'string' }] } } }],
    ['an empty anyOf', { type: 'object', properties: { a: { anyOf: [] } } }],
    ['an anyOf with a variant strict mode refuses', { type: 'object', properties: { a: { anyOf: [{ type: 'string' }, {}] } } }],
    ['definitions below the root', { type: 'object', properties: { a: { type: 'object', properties: {}, $defs: { b: { type: 'string' } } } } }],
    ['a root that may be null', { type: ['object', 'null'], properties: {} }],
    ['a root with no type', { properties: { a: { type: 'string' } } }],
    ['a description that is not a string', { type: 'object', properties: { a: { type: 'string', description: 1 } } }],
    ['an additionalProperties of true, written as false elsewhere', { type: 'object', properties: { a: { type: 'object', properties: {}, additionalProperties: true } }, additionalProperties: false }],
    ['maxItems that is not a count', { type: 'object', properties: { a: { type: 'array', items: { type: 'string' }, maxItems: -1 } } }],
  ])('leaves %s non-strict, as strict mode may refuse it', (_case, schema) => {
    expect(toStrictSchema(schema as Record<string, unknown>)).toBeUndefined();
  });

  it("stops at strict mode's limits on enum values and characters", () => {
    const values = (n: number, width = 1): string[] => Array.from({ length: n }, (_, i) => String(i).padStart(width, 'x'));
    const withEnums = (...enums: string[][]): Record<string, unknown> => ({ type: 'object', properties: Object.fromEntries(enums.map((e, i) => [`e${i}`, { type: 'string', enum: e }])) });
    // 1000 enum values in all.
    expect(toStrictSchema(withEnums(values(500), values(500)))).toBeDefined();
    expect(toStrictSchema(withEnums(values(500), values(501)))).toBeUndefined();
    // An enum of more than 250 values: 15,000 characters of them.
    expect(toStrictSchema(withEnums(values(300, 50)))).toBeDefined();
    expect(toStrictSchema(withEnums(values(300, 51)))).toBeUndefined();
    expect(toStrictSchema(withEnums(values(250, 100)))).toBeDefined();
    // 120,000 characters of property names, definition names, enum and const values.
    const named = (length: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 'object', properties: { ['n'.repeat(length)]: { type: 'string' }, ...extra } });
    expect(toStrictSchema(named(119_999, { b: { type: 'boolean' } }))).toBeDefined();
    expect(toStrictSchema(named(120_000, { b: { type: 'boolean' } }))).toBeUndefined();
    expect(toStrictSchema(named(119_998, { b: { const: 'x' } }))).toBeDefined();
    expect(toStrictSchema(named(119_998, { b: { const: 'xy' } }))).toBeUndefined();
    expect(toStrictSchema(named(119_998, { b: { type: 'string', enum: ['xy'] } }))).toBeUndefined();
    expect(toStrictSchema({ ...named(119_998), $defs: { dd: { type: 'string' } } })).toBeDefined();
    expect(toStrictSchema({ ...named(119_998), $defs: { ddd: { type: 'string' } } })).toBeUndefined();
  });

  it("stops at strict mode's limits: 10 levels of nested objects, 5000 properties", () => {
    const nested = (levels: number): Record<string, unknown> => (levels === 1 ? { type: 'object', properties: { leaf: { type: 'string' } } } : { type: 'object', properties: { inner: nested(levels - 1) } });
    expect(toStrictSchema(nested(10))).toBeDefined();
    expect(toStrictSchema(nested(11))).toBeUndefined();
    const wide = (n: number): Record<string, unknown> => ({ type: 'object', properties: Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { type: 'string' }])) });
    expect(toStrictSchema(wide(5000))).toBeDefined();
    expect(toStrictSchema(wide(5001))).toBeUndefined();
  });
});
