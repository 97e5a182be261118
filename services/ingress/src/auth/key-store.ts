import { createHash, timingSafeEqual } from 'node:crypto';
import type { routerv1 } from '@openrouter/contracts';

/** Who a key belongs to: the tenant context every request carries downstream. */
export type Tenant = Omit<routerv1.RequestContext, 'requestId' | 'endUser'>;

/** Where keys are looked up. The access layer adds issued keys behind this port. */
export interface KeyStore {
  find(presentedKey: string): Tenant | undefined;
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** The development key of the embedded mode; only its digest is kept, compared in constant time. */
export class DevKeyStore implements KeyStore {
  private readonly digest: Buffer;

  constructor(devKey: string) {
    this.digest = digest(devKey);
  }

  find(presentedKey: string): Tenant | undefined {
    if (!timingSafeEqual(digest(presentedKey), this.digest)) return undefined;
    return { orgId: 'default', projectId: 'default', teamId: '', appId: '', costCenter: '', keyId: 'dev', tags: {}, allowedModels: [] };
  }
}
