import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM sealing of what the gateway keeps in a shared store (idempotent admin answers,
 * cached responses): the store alone, without the key (derived from `access.keyHashSecret`),
 * reveals nothing, and a value altered or moved under another record (`context`, authenticated
 * but not stored) does not open. The sealed form is base64 of IV (12 bytes), tag (16), ciphertext.
 * Each record is found under an id derived from the same secret as its key, so a reader opens it
 * with the key of the secret it found it under (while that secret is rotated: the current one, or
 * one of `access.previousKeyHashSecrets`).
 */
export function sealText(key: Buffer, plain: string, context = ''): string {
  return sealBytes(key, Buffer.from(plain, 'utf8'), context).toString('base64');
}

/** The text `sealText` sealed under `key` and `context`; throws when it does not open (another key, damaged, moved). */
export function openText(key: Buffer, sealed: string, context = ''): string {
  return openBytes(key, Buffer.from(sealed, 'base64'), context).toString('utf8');
}

/** `sealText` for bytes, sealed as bytes (IV, tag, ciphertext): for large values kept as binary (files), no base64 on either side. */
export function sealBytes(key: Buffer, plain: Uint8Array, context = ''): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  if (context) cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

/** The bytes `sealBytes` sealed under `key` and `context`; throws when they do not open. */
export function openBytes(key: Buffer, raw: Buffer, context = ''): Buffer {
  if (raw.length < 28) throw new Error('sealed value too short');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  if (context) decipher.setAAD(Buffer.from(context, 'utf8'));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]);
}
