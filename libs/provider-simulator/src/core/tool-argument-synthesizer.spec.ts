import { synthesizeFromSchema, synthesizeToolArguments } from './tool-argument-synthesizer';

describe('tool argument synthesis', () => {
  it('fills every required property by type and leaves optional ones out', () => {
    const parameters = {
      type: 'object',
      properties: {
        city: { type: 'string' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer' },
        ratio: { type: 'number' },
        detailed: { type: 'boolean' },
        tags: { type: 'array', items: { type: 'string' } },
        nothing: { type: 'null' },
        optional: { type: 'string' },
      },
      required: ['city', 'unit', 'days', 'ratio', 'detailed', 'tags', 'nothing'],
    };
    expect(synthesizeToolArguments(parameters)).toEqual({
      city: 'sample',
      unit: 'celsius',
      days: 1,
      ratio: 1,
      detailed: true,
      tags: [],
      nothing: null,
    });
  });

  it('recurses into nested objects, taking only their required properties', () => {
    const parameters = {
      type: 'object',
      properties: {
        address: {
          type: 'object',
          properties: { street: { type: 'string' }, zip: { type: 'integer' }, note: { type: 'string' } },
          required: ['street', 'zip'],
        },
      },
      required: ['address'],
    };
    expect(synthesizeToolArguments(parameters)).toEqual({ address: { street: 'sample', zip: 1 } });
  });

  it('handles const, nullable type lists, anyOf, $ref and allOf', () => {
    const schema = {
      type: 'object',
      $defs: { Point: { type: 'object', properties: { x: { type: 'number' } }, required: ['x'] } },
      properties: {
        kind: { const: 'circle' },
        label: { type: ['null', 'string'] },
        size: { anyOf: [{ type: 'null' }, { type: 'integer' }] },
        centre: { $ref: '#/$defs/Point' },
        merged: { allOf: [{ properties: { a: { type: 'string' } }, required: ['a'] }, { properties: { b: { type: 'boolean' } }, required: ['b'] }] },
      },
      required: ['kind', 'label', 'size', 'centre', 'merged'],
    };
    expect(synthesizeFromSchema(schema)).toEqual({ kind: 'circle', label: 'sample', size: 1, centre: { x: 1 }, merged: { a: 'sample', b: true } });
  });

  it('respects numeric bounds, string lengths, formats and minItems', () => {
    expect(synthesizeFromSchema({ type: 'integer', minimum: 5 })).toBe(5);
    expect(synthesizeFromSchema({ type: 'integer', exclusiveMinimum: 1 })).toBe(2);
    expect(synthesizeFromSchema({ type: 'number', maximum: 0.5 })).toBe(0.5);
    expect(synthesizeFromSchema({ type: 'string', minLength: 10 })).toHaveLength(10);
    expect(synthesizeFromSchema({ type: 'string', maxLength: 3 })).toBe('sam');
    expect(synthesizeFromSchema({ type: 'string', format: 'date-time' })).toBe('2024-01-01T00:00:00Z');
    expect(synthesizeFromSchema({ type: 'array', minItems: 2, items: { type: 'boolean' } })).toEqual([true, true]);
  });

  it('infers objects without an explicit type and survives recursive schemas', () => {
    expect(synthesizeFromSchema({ properties: { a: { type: 'integer' } }, required: ['a'] })).toEqual({ a: 1 });
    const recursive = { $defs: { Node: { type: 'object', properties: { next: { $ref: '#/$defs/Node' } }, required: ['next'] } }, $ref: '#/$defs/Node' };
    expect(() => JSON.stringify(synthesizeFromSchema(recursive))).not.toThrow();
  });

  it('always returns an object for tool arguments', () => {
    expect(synthesizeToolArguments(undefined)).toEqual({});
    expect(synthesizeToolArguments({ type: 'object' })).toEqual({});
    expect(synthesizeToolArguments({ type: 'string' })).toEqual({});
  });

  it('keeps what a schema asks for within bounds, and reads only the formats it knows', () => {
    const parameters = {
      type: 'object',
      properties: { many: { type: 'array', items: { type: 'integer' }, minItems: 1e9 }, long: { type: 'string', minLength: 1e9 }, odd: { type: 'string', format: 'constructor' } },
      required: ['many', 'long', 'odd'],
    };
    const args = synthesizeToolArguments(parameters) as { many: unknown[]; long: string; odd: unknown };
    expect(args.many).toHaveLength(64);
    expect(args.long).toHaveLength(4096);
    expect(args.odd).toBe('sample');
  });
});
