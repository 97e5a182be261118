import { DEV_ADMIN_KEY_ID, type AdminKeyConfig, type AdminRole } from '@openrouter/config';
import { hashApiKey, sameDigest } from '../access/api-key';
import type { HashSecrets } from '../access/key-directory';
import { OidcAdminAuth } from './admin-oidc';

/** Who is calling the admin API. */
export interface AdminPrincipal {
  id: string;
  role: AdminRole;
  /** For `project` keys: the only usage they may read. */
  org?: string | undefined;
  project?: string | undefined;
  /** The client address the call came from (past the trusted proxies), when it could be told. */
  address?: string | undefined;
}

/**
 * Admin keys from configuration (by keyed hash) plus the development admin key, and with `oidc`
 * the tokens of the organisation's identity provider. Two entries with one hash are refused at
 * construction (start-up): one would silently replace the other's role and scope. Configuration
 * validation refuses them first; this also covers a generated key. While `access.keyHashSecret` is
 * rotated, a configured admin key's hash may be under a previous secret: a key not found under the
 * current one is looked up under each previous one (the development admin key, given in plain
 * text, is hashed with the current secret).
 */
export class AdminAuth {
  private readonly byHash = new Map<string, AdminPrincipal & { hash: string }>();
  /** The current secret first, then the previous ones. */
  private readonly secrets: readonly string[];

  constructor(
    secrets: string | HashSecrets,
    keys: readonly AdminKeyConfig[],
    devKey: string | undefined,
    private readonly oidc?: OidcAdminAuth,
  ) {
    const { current, previous = [] } = typeof secrets === 'string' ? { current: secrets } : secrets;
    this.secrets = [current, ...previous];
    for (const key of keys) this.add({ id: key.id, role: key.role, org: key.org, project: key.project, hash: key.hash });
    // Named without any of its characters: the audit log's actor is readable by scoped admin keys.
    if (devKey) this.add({ id: DEV_ADMIN_KEY_ID, role: 'admin', hash: hashApiKey(current, devKey) });
  }

  private add(entry: AdminPrincipal & { hash: string }): void {
    const taken = this.byHash.get(entry.hash);
    if (taken) throw new Error(`access.admin: the admin keys "${taken.id}" and "${entry.id}" are the same key (one keyed hash); each admin key must be a different key`);
    this.byHash.set(entry.hash, entry);
  }

  /** No way in at all: no admin key configured, the development admin key `disabled`, and no identity provider. */
  get empty(): boolean {
    return this.byHash.size === 0 && !this.oidc;
  }

  /**
   * The caller a bearer credential names, or undefined for an unknown key. A JWT goes to the
   * identity provider's check when one is configured, which throws its own refusals.
   */
  async authenticate(presented: string): Promise<AdminPrincipal | undefined> {
    if (this.oidc && OidcAdminAuth.isJwt(presented)) return this.oidc.authenticate(presented);
    return this.authenticateKey(presented);
  }

  /** An admin key's caller, or undefined when no admin key is `presented`. */
  authenticateKey(presented: string): AdminPrincipal | undefined {
    // The current secret first: a previous one is hashed with only for a key it does not find.
    for (const secret of this.secrets) {
      const hash = hashApiKey(secret, presented);
      const found = this.byHash.get(hash);
      if (!found || !sameDigest(found.hash, hash)) continue;
      const { hash: _hash, ...principal } = found;
      return principal;
    }
    return undefined;
  }
}
