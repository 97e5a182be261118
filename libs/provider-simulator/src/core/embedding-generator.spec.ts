import { decodeEmbeddingBase64, encodeEmbeddingBase64, generateEmbedding } from './embedding-generator';

const norm = (v: Float32Array): number => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));

describe('embedding generator', () => {
  it('is deterministic per seed and input, unit-norm, of the requested size', () => {
    const a = generateEmbedding(1, 'hello', 256);
    expect(a).toHaveLength(256);
    expect(norm(a)).toBeCloseTo(1, 5);
    expect(generateEmbedding(1, 'hello', 256)).toEqual(a);
    expect(generateEmbedding(1, 'hello!', 256)).not.toEqual(a);
    expect(generateEmbedding(2, 'hello', 256)).not.toEqual(a);
  });

  it('distinguishes token-id input from text', () => {
    const ids = generateEmbedding(1, [15339, 1917], 32);
    expect(norm(ids)).toBeCloseTo(1, 5);
    expect(ids).toEqual(generateEmbedding(1, [15339, 1917], 32));
    expect(ids).not.toEqual(generateEmbedding(1, '15339,1917', 32));
  });

  it('round-trips through little-endian float32 base64', () => {
    const vector = generateEmbedding(5, 'x', 8);
    const encoded = encodeEmbeddingBase64(vector);
    expect(Buffer.from(encoded, 'base64')).toHaveLength(32);
    expect(Buffer.from(encoded, 'base64').readFloatLE(4)).toBe(vector[1]);
    expect(decodeEmbeddingBase64(encoded)).toEqual(vector);
  });
});
