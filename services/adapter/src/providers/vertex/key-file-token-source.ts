import { GatewayError } from '@openrouter/errors';
import type { AccessTokenSource } from '../access-token';
import type { Secret } from '../credential-file';

/** The tokens of one content of the key file. */
interface KeyTokens {
  content: string;
  tokens: AccessTokenSource;
}

/**
 * A token endpoint's refusal of the credentials (`invalid_grant` for a deleted key or an unknown
 * account is a 400; `invalid_client`, `unauthorized_client` a 401 or 403): a rotated key may cure
 * it. An endpoint that could not be reached (0), throttled or failed is no reason to read the file.
 */
function refusedGrant(error: unknown): boolean {
  return error instanceof GatewayError && error.kind === 'auth_failed' && (error.upstreamStatus === 400 || error.upstreamStatus === 401 || error.upstreamStatus === 403);
}

/**
 * The access tokens of a service-account key read from a file that may be rotated (a new key
 * mounted at the same path, the old one then deleted in Google Cloud): the tokens of the key the
 * file holds when a call starts.
 *
 * - A new key (found by the file's check, or by a read after a refusal) starts with no token: a
 *   token minted with the old key would stay valid at Google until it expires, but minting has to
 *   switch at once since the old key may be deleted any moment, and a token cached from it is
 *   dropped with it rather than kept for its remaining life (one token fetch per rotation).
 * - The token endpoint refusing the grant (`invalid_grant`: the key was deleted) reads the file
 *   again at once (rate limited by the file) and, when it holds another key now, the token is
 *   asked for once more with that key.
 * - Vertex AI refusing a token (401, or 403) reads the file again too: a new key gets a fresh token
 *   and the call is sent once more. A 401 with the file unchanged drops the token as any cached
 *   token's refusal does; a 403 with the file unchanged is passed on (a missing role is not cured
 *   by a fresh token of the same account).
 */
export class KeyFileTokenSource implements AccessTokenSource {
  private current: KeyTokens;

  /** `tokensOf`: the token source of a content of the file (checked when it was read); throws for one that is not a key. */
  constructor(
    private readonly file: Secret,
    private readonly tokensOf: (content: string) => AccessTokenSource,
  ) {
    const content = file.value();
    this.current = { content, tokens: tokensOf(content) };
  }

  async token(signal: AbortSignal): Promise<string> {
    const used = this.now();
    try {
      return await used.tokens.token(signal);
    } catch (error) {
      if (!refusedGrant(error)) throw error;
      await this.file.reread();
      const fresh = this.now();
      if (fresh === used) throw error;
      return fresh.tokens.token(signal);
    }
  }

  async invalidate(token: string, again = false): Promise<boolean> {
    const before = this.current;
    if (!again) await this.file.reread();
    // Another key now: its first token is a fresh one.
    if (this.now() !== before) return true;
    return before.tokens.invalidate(token, again);
  }

  async forbidden(): Promise<boolean> {
    const before = this.current;
    await this.file.reread();
    return this.now() !== before;
  }

  /** The tokens of the key the file holds now; a new key replaces the tokens of the old one. */
  private now(): KeyTokens {
    const content = this.file.value();
    if (content !== this.current.content) this.current = { content, tokens: this.tokensOf(content) };
    return this.current;
  }
}
