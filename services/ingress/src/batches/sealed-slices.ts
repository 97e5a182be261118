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
 * Appends ARGV[1] to the staging key KEYS[1] only while it is there: APPEND alone would make a new
 * key of a staging key gone meanwhile (expired, deleted), without its IV and tag and without an
 * expiry, and the value stored from it would never open. Its length after, 0 when it was gone.
 */
export const APPEND_STAGED = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end return redis.call('APPEND', KEYS[1], ARGV[1])`;

/**
 * Writes `plain` sealed as `sealBytes` seals it (IV, tag, ciphertext: read back the same way) to
 * `staging` a slice at a time: its IV and a placeholder for the tag, then each slice's ciphertext
 * appended, the next sealed once this one is in Redis. Returns the tag, which the script that
 * renames the staging key into place writes at byte 12 (`SETRANGE staging 12 tag`), so that no
 * reader sees the value before it is whole. Throws when the staging key is gone or changed before
 * it is whole (its writer then deletes it, and nothing is stored). Small values are better sent
 * whole: appending grows a Redis string with room to spare, up to twice its size below a megabyte.
 */
export async function stageSealed(redis: Redis, staging: string, key: Buffer, plain: Uint8Array, context: string): Promise<Buffer> {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  if (context) cipher.setAAD(Buffer.from(context, 'utf8'));
  await redis.set(staging, Buffer.concat([iv, Buffer.alloc(16)]), 'PX', STAGING_MS);
  for (let at = 0; at < plain.length; at += SLICE_BYTES) {
    const end = Math.min(at + SLICE_BYTES, plain.length);
    const length = await redis.eval(APPEND_STAGED, 1, staging, cipher.update(plain.subarray(at, end)));
    // Gone meanwhile (expired, deleted), or written to by another: what it holds would not open.
    if (length !== 28 + end) throw new Error(`${staging} went, or changed, before its value was whole`);
  }
  // AES-GCM is a stream cipher: final() yields no byte, only the tag.
  cipher.final();
  return cipher.getAuthTag();
}

/**
 * The bytes sealed in `key` (as `sealBytes` seals them) of which `first` is the first slice (its
 * first `SLICE_BYTES`, read with the value's `length`): the rest read a slice at a time and opened
 * into one buffer of the plaintext's size. Tried under each of `keys` in turn (the current secret's
 * first, as `SealKeys`). Undefined when none opens it (sealed under a secret no longer accepted, or
 * damaged: it never will) or when it was shortened meanwhile (deleted): either way it is as if gone.
 * Throws only what Redis throws (away: the value may well be there, and open, later).
 */
export async function openSealedSlices(redis: Redis, key: string, first: Buffer, length: number, keys: readonly Buffer[], context: string): Promise<Buffer | undefined> {
  if (first.length < 28) return undefined;
  for (const sealKey of keys) {
    const plain = await openSliced(redis, key, first, length, sealKey, context);
    if (plain !== NOT_OPENED) return plain;
  }
  return undefined;
}

/** What `openSliced` returns when the value does not open under its key. */
const NOT_OPENED = Symbol('not opened');

async function openSliced(redis: Redis, key: string, first: Buffer, length: number, sealKey: Buffer, context: string): Promise<Buffer | undefined | typeof NOT_OPENED> {
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
  try {
    decipher.final();
  } catch {
    return NOT_OPENED;
  }
  return written === plain.length ? plain : undefined;
}
