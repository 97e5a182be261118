import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * The most of a sealed value sent or read in one command. A larger value (a batch file, a batch's
 * input) is sealed and sent, or read and opened, a slice at a time: whole, a 100 MiB file was
 * copied three or four times more (the ciphertext, the sealed value, the command ioredis writes or
 * the reply it gathers, the plaintext joined), some 300 MB held at once besides the file.
 */
export const SLICE_BYTES = 8 * 1024 * 1024;

/** How long the staging key of a value being written lives, should its writer stop halfway. */
export const STAGING_MS = 600_000;

/**
 * Writes `plain` sealed as `sealBytes` seals it (IV, tag, ciphertext: read back the same way) to
 * `staging` a slice at a time: its IV and a placeholder for the tag, then each slice's ciphertext
 * appended, the next sealed once this one is in Redis. Returns the tag, which the script that
 * renames the staging key into place writes at byte 12 (`SETRANGE staging 12 tag`), so that no
 * reader sees the value before it is whole. Small values are better sent whole: appending grows a
 * Redis string with room to spare, up to twice its size below a megabyte.
 */
export async function stageSealed(redis: Redis, staging: string, key: Buffer, plain: Uint8Array, context: string): Promise<Buffer> {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  if (context) cipher.setAAD(Buffer.from(context, 'utf8'));
  await redis.set(staging, Buffer.concat([iv, Buffer.alloc(16)]), 'PX', STAGING_MS);
  for (let at = 0; at < plain.length; at += SLICE_BYTES) {
    await redis.append(staging, cipher.update(plain.subarray(at, at + SLICE_BYTES)));
  }
  // AES-GCM is a stream cipher: final() yields no byte, only the tag.
  cipher.final();
  return cipher.getAuthTag();
}

/**
 * The bytes sealed in `key` (as `sealBytes` seals them) of which `first` is the first slice (its
 * first `SLICE_BYTES`, read with the value's `length`): the rest read a slice at a time and opened
 * into one buffer of the plaintext's size. Tried under each of `keys` in turn (the current secret's
 * first, as `SealKeys`); throws the first one's failure when none opens it. Undefined when the value
 * was shortened meanwhile (deleted); one changed otherwise does not open.
 */
export async function openSealedSlices(redis: Redis, key: string, first: Buffer, length: number, keys: readonly Buffer[], context: string): Promise<Buffer | undefined> {
  if (first.length < 28) throw new Error('sealed value too short');
  let failure: unknown;
  for (const sealKey of keys) {
    try {
      return await openSliced(redis, key, first, length, sealKey, context);
    } catch (error) {
      failure ??= error;
    }
  }
  throw failure;
}

async function openSliced(redis: Redis, key: string, first: Buffer, length: number, sealKey: Buffer, context: string): Promise<Buffer | undefined> {
  const decipher = createDecipheriv('aes-256-gcm', sealKey, first.subarray(0, 12));
  decipher.setAuthTag(first.subarray(12, 28));
  if (context) decipher.setAAD(Buffer.from(context, 'utf8'));
  // Every byte is written before it is returned (a shorter read returns nothing).
  const plain = Buffer.allocUnsafeSlow(length - 28);
  let written = decipher.update(first.subarray(28)).copy(plain);
  for (let read = first.length; read < length; ) {
    const slice = await redis.getrangeBuffer(key, read, Math.min(read + SLICE_BYTES, length) - 1);
    if (slice.length === 0) return undefined;
    read += slice.length;
    written += decipher.update(slice).copy(plain, written);
  }
  decipher.final();
  return written === plain.length ? plain : undefined;
}
