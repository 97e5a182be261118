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

  it("stops at strict mode's limits: 10 levels of nested objects, 5000 properties", () => {
    const nested = (levels: number): Record<string, unknown> => (levels === 1 ? { type: 'object', properties: { leaf: { type: 'string' } } } : { type: 'object', properties: { inner: nested(levels - 1) } });
    expect(toStrictSchema(nested(10))).toBeDefined();
    expect(toStrictSchema(nested(11))).toBeUndefined();
    const wide = (n: number): Record<string, unknown> => ({ type: 'object', properties: Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { type: 'string' }])) });
    expect(toStrictSchema(wide(5000))).toBeDefined();
    expect(toStrictSchema(wide(5001))).toBeUndefined();
  });
});
