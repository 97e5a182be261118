import { randomBytes, timingSafeEqual } from 'node:crypto';

/** The header that carries an {@link InternalCallCredential}. */
export const INTERNAL_CALL_HEADER = 'x-openrouter-internal-call';

/**
 * A credential for requests this process makes to its own API on a key's behalf, without the key
 * itself (which the gateway never keeps): a batch's lines, run for the key that created the batch.
 * It names the key by id and holds a secret made at start and never sent anywhere, so it opens
 * nothing in another process, and a client sending the header gets a 401.
 */
export class InternalCallCredential {
  private readonly secret = randomBytes(32);
  private readonly encoded = this.secret.toString('base64url');

  /** The header value for a call on behalf of key `keyId`. */
  header(keyId: string): string {
    return `${this.encoded}.${keyId}`;
  }

  /** The key id the header names, when its secret is this process's; undefined otherwise. */
  keyIdOf(header: string): string | undefined {
    const dot = header.indexOf('.');
    if (dot <= 0) return undefined;
    const presented = Buffer.from(header.slice(0, dot), 'base64url');
    if (presented.length !== this.secret.length || !timingSafeEqual(presented, this.secret)) return undefined;
    const keyId = header.slice(dot + 1);
    return keyId === '' ? undefined : keyId;
  }
}
