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

/**
 * The secrets a store's keys are derived from: the current `access.keyHashSecret`, which seals and
 * names, and the earlier ones still accepted (`access.previousKeyHashSecrets`), which still open and
 * are still looked under, so that what was stored before a rotation stays readable.
 */
export interface StoreSecrets {
  current: string;
  previous?: readonly string[] | undefined;
}

/**
 * A store's sealing keys, each derived (`derive`) from one of its secrets: what is sealed is sealed
 * under the current secret's; what was sealed under a previous secret's still opens (the current
 * key is tried first: a value sealed since the rotation costs one try).
 */
export class SealKeys {
  /** The secrets the keys are derived from (a lone secret: no previous ones), for what else a store names by them. */
  readonly secrets: StoreSecrets;
  readonly current: Buffer;
  /** Every key, the current one first: the order values are tried in. */
  readonly keys: readonly Buffer[];

  constructor(derive: (secret: string) => Buffer, secrets: StoreSecrets | string) {
    this.secrets = typeof secrets === 'string' ? { current: secrets } : secrets;
    const { current, previous = [] } = this.secrets;
    this.current = derive(current);
    this.keys = [this.current, ...previous.filter((secret) => secret !== current).map(derive)];
  }

  /** The bytes sealed under one of the keys and `context`; throws (the current key's failure) when none opens them. */
  openBytes(raw: Buffer, context = ''): Buffer {
    let failure: unknown;
    for (const key of this.keys) {
      try {
        return openBytes(key, raw, context);
      } catch (error) {
        failure ??= error;
      }
    }
    throw failure;
  }

  /** `openBytes` for a value `sealText` sealed. */
  openText(sealed: string, context = ''): string {
    return this.openBytes(Buffer.from(sealed, 'base64'), context).toString('utf8');
  }
}
