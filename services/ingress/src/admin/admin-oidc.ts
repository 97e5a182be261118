import { createRemoteJWKSet, errors as jose, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import type { AdminOidcConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import type { Logger } from '@openrouter/observability';
import type { AdminPrincipal } from './admin-auth';

/** Three base64url segments, the first a JSON object (`{"` is `eyJ`): a compact JWS, never an admin key (`sk-or-admin-…`). */
const JWT_SHAPE = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Longest actor name the audit log records from a token. */
const ACTOR_MAX = 200;

const discoverySchema = z.object({ issuer: z.string(), jwks_uri: z.string().url() });

/** https, or http to a loopback host: the same rule the configuration applies to `issuer` and `jwksUrl`. */
function secure(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname));
}

const unavailable = (cause?: unknown): GatewayError =>
  new GatewayError('unavailable', 'The identity provider could not be reached to verify the admin token; try again shortly.', { code: 'identity_provider_unavailable', cause });

const refused = (message: string, cause?: unknown): GatewayError => new GatewayError('auth_failed', message, { code: 'invalid_admin_token', cause });

/** Claims that list their values in one space-separated string (OAuth scopes). */
const SPACE_SEPARATED = new Set(['scope', 'scp']);

/**
 * The values of claim `name`: the top-level claim of that name (namespaced claims such as
 * `https://example.com/roles` have dots), else the claim at that dotted path
 * (`realm_access.roles`). A list of strings, or a string: taken whole, except `scope` and `scp`,
 * whose words are the values (a group named "Not admins" must not grant `admins`).
 */
function claimValues(payload: JWTPayload, name: string): string[] {
  let value: unknown = Object.hasOwn(payload, name) ? payload[name] : undefined;
  if (value === undefined) {
    value = payload;
    for (const part of name.split('.')) value = value !== null && typeof value === 'object' && Object.hasOwn(value, part) ? (value as Record<string, unknown>)[part] : undefined;
  }
  const last = name.split('.').at(-1) ?? name;
  if (typeof value === 'string') return SPACE_SEPARATED.has(last) ? value.split(/\s+/).filter((w) => w !== '') : [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/** The caller's name for the audit log: `actorClaim`, unless it is an email the provider says it has not verified, then `sub`. */
function actorOf(payload: JWTPayload, actorClaim: string): string | undefined {
  // Some providers send the flag as a string ("false").
  const verified = payload['email_verified'];
  const unverifiedEmail = (actorClaim.split('.').at(-1) ?? actorClaim) === 'email' && (verified === false || verified === 'false');
  const named = unverifiedEmail ? undefined : claimValues(payload, actorClaim)[0];
  return named ?? payload.sub;
}

/** How long a failed discovery is remembered before the next request tries again. */
const DISCOVERY_RETRY_MS = 5_000;

/**
 * Single sign-on for the admin API (`access.admin.oidc`): a bearer token that is a JWT is
 * verified against the identity provider's published keys (signature with an allowed algorithm,
 * `iss`, `aud`, `exp`, `nbf`), and the first grant whose value its role claim holds gives the
 * caller's role and scope. The keys are fetched when first needed and again when a token names a
 * key not seen yet (a rotation), at most every 30 s, and kept 10 minutes otherwise. A token is
 * never logged.
 */
export class OidcAdminAuth {
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  private discovering: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  /** The last discovery that failed, and when: requests meanwhile get its answer without asking again. */
  private failed: { at: number; error: GatewayError } | undefined;

  /** `cooldownMs`: the least time between two fetches of the keys (30 s; tests shorten it). */
  constructor(
    private readonly config: AdminOidcConfig,
    private readonly logger: Logger,
    private readonly options: { cooldownMs?: number } = {},
  ) {}

  /** Whether `token` has the shape of a JWT (and so is for this, not an admin key). */
  static isJwt(token: string): boolean {
    return JWT_SHAPE.test(token);
  }

  /** The caller the token names; a GatewayError when it is refused (401), grants nothing (403), or cannot be checked now (503). */
  async authenticate(token: string): Promise<AdminPrincipal> {
    const keys = await this.keys();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: this.config.issuer,
        audience: this.config.audience,
        algorithms: [...this.config.algorithms],
        clockTolerance: this.config.clockToleranceSec,
        // A token without an expiry would never expire.
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      throw this.verificationError(error);
    }
    const held = new Set(claimValues(payload, this.config.roleClaim));
    const grant = this.config.grants.find((g) => held.has(g.value));
    const actor = actorOf(payload, this.config.actorClaim);
    if (!actor) throw refused(`The admin token has no "${this.config.actorClaim}" or "sub" claim to name its holder.`);
    if (!grant) {
      throw new GatewayError('permission_denied', `The admin token grants no admin role: its "${this.config.roleClaim}" claim holds none of the values access.admin.oidc.grants maps.`, { code: 'no_admin_grant' });
    }
    return { id: `oidc:${actor}`.slice(0, ACTOR_MAX), role: grant.role, org: grant.org, project: grant.project };
  }

  private verificationError(error: unknown): GatewayError {
    // The key set's HTTP answer was not 200, not JSON, or not a key set: the provider's fault, not the token's.
    if (error instanceof jose.JWKSTimeout || error instanceof jose.JWKSInvalid || (error instanceof jose.JOSEError && error.constructor === jose.JOSEError)) {
      this.logger.warn({ reason: error.message }, 'identity provider keys could not be read');
      return unavailable(error);
    }
    if (error instanceof jose.JWTExpired) return refused('The admin token has expired.', error);
    if (error instanceof jose.JWTClaimValidationFailed) return refused(`The admin token's "${error.claim}" claim is not accepted here.`, error);
    if (error instanceof jose.JOSEAlgNotAllowed) return refused('The admin token is signed with an algorithm not allowed here.', error);
    if (error instanceof jose.JOSEError) {
      this.logger.debug({ reason: error.code }, 'admin token refused');
      return refused('The admin token is not valid.', error);
    }
    // Not jose's own: the keys could not be fetched (connection refused, DNS).
    this.logger.warn({ err: error }, 'identity provider keys could not be fetched');
    return unavailable(error);
  }

  /** The key set, from `jwksUrl` or found through the issuer's discovery document (fetched once; again after a failure). */
  private async keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.jwks) return this.jwks;
    if (this.failed && Date.now() - this.failed.at < DISCOVERY_RETRY_MS) throw this.failed.error;
    this.discovering ??= this.discover()
      .then(
        (jwks) => {
          this.failed = undefined;
          return jwks;
        },
        (error: unknown) => {
          const failure = error instanceof GatewayError ? error : unavailable(error);
          this.failed = { at: Date.now(), error: failure };
          throw failure;
        },
      )
      .finally(() => (this.discovering = undefined));
    this.jwks = await this.discovering;
    return this.jwks;
  }

  private async discover(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const options = { timeoutDuration: this.config.timeoutMs, cooldownDuration: this.options.cooldownMs ?? 30_000, cacheMaxAge: 600_000 };
    if (this.config.jwksUrl) return createRemoteJWKSet(new URL(this.config.jwksUrl), options);
    const url = `${this.config.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let document: z.infer<typeof discoverySchema>;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(this.config.timeoutMs), headers: { accept: 'application/json' } });
      if (!response.ok) throw new Error(`discovery answered HTTP ${response.status}`);
      document = discoverySchema.parse(await response.json());
    } catch (error) {
      this.logger.warn({ err: error, issuer: this.config.issuer }, 'identity provider discovery failed');
      throw unavailable(error);
    }
    if (document.issuer !== this.config.issuer) {
      this.logger.error({ issuer: this.config.issuer, announced: document.issuer }, 'identity provider announces another issuer');
      throw unavailable();
    }
    const jwksUrl = new URL(document.jwks_uri);
    if (!secure(jwksUrl)) {
      this.logger.error({ issuer: this.config.issuer }, 'identity provider publishes its keys over plain http');
      throw unavailable();
    }
    return createRemoteJWKSet(jwksUrl, options);
  }
}
