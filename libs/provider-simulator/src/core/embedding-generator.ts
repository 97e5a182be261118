import { hash32, SeededRandom } from './seeded-random';

/** Text, or pre-tokenised input (token ids). */
export type EmbeddingInput = string | readonly number[];

/** A deterministic unit-norm vector: the same input, seed and size always give the same vector. */
export function generateEmbedding(seed: number, input: EmbeddingInput, dimensions: number): Float32Array {
  const key = typeof input === 'string' ? `t:${input}` : `i:${input.join(',')}`;
  const random = new SeededRandom(hash32(key, seed));
  const raw = new Float64Array(dimensions);
  let sumOfSquares = 0;
  for (let i = 0; i < dimensions; i++) {
    const value = random.next() * 2 - 1;
    raw[i] = value;
    sumOfSquares += value * value;
  }
  const norm = Math.sqrt(sumOfSquares) || 1;
  const vector = new Float32Array(dimensions);
  for (let i = 0; i < dimensions; i++) vector[i] = (raw[i] ?? 0) / norm;
  return vector;
}

/** Little-endian float32 bytes, as OpenAI's `encoding_format: "base64"` sends them. */
export function encodeEmbeddingBase64(vector: Float32Array): string {
  const bytes = Buffer.allocUnsafe(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i] ?? 0, i * 4);
  return bytes.toString('base64');
}

export function decodeEmbeddingBase64(encoded: string): Float32Array {
  const bytes = Buffer.from(encoded, 'base64');
  const vector = new Float32Array(bytes.length / 4);
  for (let i = 0; i < vector.length; i++) vector[i] = bytes.readFloatLE(i * 4);
  return vector;
}
