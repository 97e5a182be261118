import { createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

/** Every traffic key starts with this, so leaked keys are recognisable (and scannable). */
export const API_KEY_PREFIX = 'sk-or-v1-';
/** Admin keys have their own prefix so one is never mistaken for the other. */
export const ADMIN_KEY_PREFIX = 'sk-or-admin-';
const DISPLAY_LENGTH = 14;

/** 256 bits from the system CSPRNG, base64url. */
export function generateApiKey(prefix: string = API_KEY_PREFIX): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

/** The keyed hash stored in place of a key (HMAC-SHA256, hex). */
export function hashApiKey(secret: string | KeyObject, key: string): string {
  return createHmac('sha256', secret).update(key).digest('hex');
}

/**
 * The hashing secret as a key object, for code that hashes on every request: HMAC then starts
 * from the prepared key instead of importing the secret string each time (≈ 15 % less per hash).
 */
export function hashingKey(secret: string): KeyObject {
  return createSecretKey(Buffer.from(secret, 'utf8'));
}

/** What may be shown of a key: its first characters. */
export function displayPrefix(key: string): string {
  return key.slice(0, DISPLAY_LENGTH);
}

/** Compares two hex digests in constant time. */
export function sameDigest(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}
