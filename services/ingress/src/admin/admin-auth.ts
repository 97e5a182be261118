import type { AdminKeyConfig, AdminRole } from '@openrouter/config';
import { hashApiKey, sameDigest } from '../access/api-key';

/** Who is calling the admin API. */
export interface AdminPrincipal {
  id: string;
  role: AdminRole;
  /** For `project` keys: the only usage they may read. */
  org?: string | undefined;
  project?: string | undefined;
}

/** Admin keys from configuration (by keyed hash) plus the development admin key. */
export class AdminAuth {
  private readonly byHash = new Map<string, AdminPrincipal & { hash: string }>();

  constructor(
    private readonly secret: string,
    keys: readonly AdminKeyConfig[],
    devKey: string | undefined,
  ) {
    for (const key of keys) this.byHash.set(key.hash, { id: key.id, role: key.role, org: key.org, project: key.project, hash: key.hash });
    if (devKey) {
      const hash = hashApiKey(secret, devKey);
      // Named without any of its characters: the audit log's actor is readable by scoped admin keys.
      this.byHash.set(hash, { id: 'dev-admin', role: 'admin', hash });
    }
  }

  authenticate(presented: string): AdminPrincipal | undefined {
    const hash = hashApiKey(this.secret, presented);
    const found = this.byHash.get(hash);
    if (!found || !sameDigest(found.hash, hash)) return undefined;
    const { hash: _hash, ...principal } = found;
    return principal;
  }
}
