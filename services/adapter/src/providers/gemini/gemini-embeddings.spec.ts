import { parseBatchEmbedResponse } from './gemini-embeddings';

const floats = (bytes: Buffer): number[] => Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
const norm = (values: readonly number[]): number => Math.hypot(...values);

/** Vectors as Gemini returns them with outputDimensionality 8: the head of a unit vector, itself shorter than 1. */
const TRUNCATED = {
  embeddings: [
    { values: [-0.0219, 0.0061, 0.0132, -0.0718, 0.0043, -0.0257, 0.0095, 0.0188] },
    { values: [0.3, -0.4, 0, 0, 0, 0, 0, 0] },
    { values: [0, 0, 0, 0, 0, 0, 0, 0] },
  ],
};

describe('parseBatchEmbedResponse', () => {
  it('scales each vector to unit length when outputDimensionality was sent, keeping its direction', () => {
    const [first, second, zero] = parseBatchEmbedResponse(TRUNCATED, 3, 'gemini', true).map(floats);
    expect(norm(first ?? [])).toBeCloseTo(1, 6);
    expect(norm(second ?? [])).toBeCloseTo(1, 6);
    expect(second?.slice(0, 2).map((v) => Number(v.toFixed(6)))).toEqual([0.6, -0.8]);
    const original = TRUNCATED.embeddings[0]?.values ?? [];
    const scale = 1 / norm(original);
    (first ?? []).forEach((v, i) => expect(v).toBeCloseTo((original[i] ?? 0) * scale, 6));
    // A zero vector has no direction: it stays zero rather than becoming NaN.
    expect(zero).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('passes full-size vectors (no outputDimensionality) on as Gemini sent them', () => {
    const [, second] = parseBatchEmbedResponse(TRUNCATED, 3, 'gemini').map(floats);
    expect(second?.map((v) => Number(v.toFixed(6)))).toEqual([0.3, -0.4, 0, 0, 0, 0, 0, 0]);
  });
});
