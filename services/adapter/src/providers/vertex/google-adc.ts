import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, GOOGLE_TOKEN_URI, type GoogleAdcEnv } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import type { CachedTokenOptions, GrantedToken, TokenHttp } from '../access-token';
import { authorizedUserGrant, impersonatedGrant, metadataServerGrant, readPrivateKey, serviceAccountGrant } from './google-access-token';

/** The file `gcloud auth application-default login` writes, under gcloud's configuration directory. */
export const WELL_KNOWN_FILE = 'application_default_credentials.json';
/** How long an impersonated token is asked to live: Google's default and most without an org policy. */
const IMPERSONATED_LIFETIME_S = 3600;

/** Where Application Default Credentials were found. */
export type AdcDiscovery =
  | { kind: 'file'; path: string; origin: 'GOOGLE_APPLICATION_CREDENTIALS' | 'the gcloud well-known file'; text: string }
  | { kind: 'metadata'; looked: string[] };

/** gcloud's configuration directory: CLOUDSDK_CONFIG, else `$HOME/.config/gcloud`; none without either. */
export function wellKnownFile(env: GoogleAdcEnv): string | undefined {
  if (env.cloudsdkConfig !== '') return join(env.cloudsdkConfig, WELL_KNOWN_FILE);
  if (env.home !== '') return join(env.home, '.config', 'gcloud', WELL_KNOWN_FILE);
  return undefined;
}

const errnoOf = (error: unknown): string => (error as NodeJS.ErrnoException).code ?? 'unreadable';

/**
 * The search Google's client libraries make: the file GOOGLE_APPLICATION_CREDENTIALS names (which
 * must then be readable), else the well-known file if it exists, else the metadata server.
 */
export function discoverAdc(where: string, env: GoogleAdcEnv, readFile: (path: string) => string): AdcDiscovery {
  if (env.applicationCredentials !== '') {
    const path = env.applicationCredentials;
    try {
      return { kind: 'file', path, origin: 'GOOGLE_APPLICATION_CREDENTIALS', text: readFile(path) };
    } catch (error) {
      throw new ConfigError(where, [`${where}: GOOGLE_APPLICATION_CREDENTIALS names ${path}, which cannot be read: ${errnoOf(error)}`]);
    }
  }
  const looked = ['GOOGLE_APPLICATION_CREDENTIALS is unset'];
  const path = wellKnownFile(env);
  if (path === undefined) {
    looked.push('no gcloud well-known file (neither CLOUDSDK_CONFIG nor HOME is set)');
    return { kind: 'metadata', looked };
  }
  try {
    return { kind: 'file', path, origin: 'the gcloud well-known file', text: readFile(path) };
  } catch (error) {
    // A file that is not there is the usual case on a server; one that is there but unreadable is a mistake to report.
    if (errnoOf(error) !== 'ENOENT') throw new ConfigError(where, [`${where}: the gcloud well-known file ${path} cannot be read: ${errnoOf(error)}`]);
    looked.push(`no ${path}`);
    return { kind: 'metadata', looked };
  }
}

const tokenUri = z.string().url().optional();
const serviceAccountFile = z.looseObject({ type: z.literal('service_account'), client_email: z.string().min(1), private_key: z.string().min(1), token_uri: tokenUri });
const authorizedUserFile = z.looseObject({ type: z.literal('authorized_user'), client_id: z.string().min(1), client_secret: z.string().min(1), refresh_token: z.string().min(1), token_uri: tokenUri });
const sourceCredentials = z.discriminatedUnion('type', [serviceAccountFile, authorizedUserFile]);
const impersonatedFile = z.looseObject({
  type: z.literal('impersonated_service_account'),
  service_account_impersonation_url: z.string().url(),
  delegates: z.array(z.string().min(1)).default([]),
  source_credentials: sourceCredentials,
});
const adcFile = z.discriminatedUnion('type', [serviceAccountFile, authorizedUserFile, impersonatedFile]);
type SourceFile = z.infer<typeof sourceCredentials>;

const SUPPORTED = 'service_account, authorized_user or impersonated_service_account';
/** A `type` safe to repeat in a message; anything else is not quoted. */
const TYPE_NAME = /^[a-z_]{1,64}$/;

/**
 * A credentials file as Google's libraries read it, checked at start-up. Messages name the file and
 * the field, never a value: the file holds a private key, a client secret or a refresh token.
 */
export function parseAdcFile(where: string, found: { path: string; origin: string; text: string }): z.infer<typeof adcFile> {
  const file = `${found.path} (${found.origin})`;
  let json: unknown;
  try {
    json = JSON.parse(found.text);
  } catch {
    // JSON.parse's message quotes the text around the fault, which may be a secret.
    throw new ConfigError(where, [`${where}: ${file} is not JSON: expected a credentials file as Google issues it`]);
  }
  const type: unknown = typeof json === 'object' && json !== null ? (json as { type?: unknown }).type : undefined;
  if (type === 'external_account' || type === 'external_account_authorized_user') {
    throw new ConfigError(where, [`${where}: ${file}: credentials of type "${type}" (workload identity federation) are not supported; use ${SUPPORTED}, or the metadata server`]);
  }
  if (typeof type !== 'string' || !['service_account', 'authorized_user', 'impersonated_service_account'].includes(type)) {
    const named = typeof type === 'string' && TYPE_NAME.test(type) ? `"${type}" is not supported` : type === undefined ? 'missing' : 'not a credentials type';
    throw new ConfigError(where, [`${where}: ${file}: type: ${named}; expected ${SUPPORTED}`]);
  }
  const parsed = adcFile.safeParse(json);
  if (!parsed.success) {
    // Paths and kinds only: zod's messages here name the expected type, never the value.
    throw new ConfigError(where, parsed.error.issues.map((issue) => `${where}: ${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`));
  }
  return parsed.data;
}

/** The grant of one credential in a file: a service account's JWT-bearer grant or a user's refresh-token grant. */
function sourceGrant(where: string, file: string, source: SourceFile, field: string, http: TokenHttp, options: CachedTokenOptions): () => Promise<GrantedToken> {
  if (source.type === 'authorized_user') {
    return authorizedUserGrant({ clientId: source.client_id, clientSecret: source.client_secret, refreshToken: source.refresh_token, tokenUri: source.token_uri ?? GOOGLE_TOKEN_URI, origin: file }, http, options);
  }
  let privateKey;
  try {
    privateKey = readPrivateKey(source.private_key, `${where}: ${file}: ${field}private_key`);
  } catch (error) {
    throw new ConfigError(where, [(error as Error).message]);
  }
  return serviceAccountGrant({ clientEmail: source.client_email, privateKey: source.private_key, tokenUri: source.token_uri ?? GOOGLE_TOKEN_URI }, privateKey, http, options);
}

export interface AdcOptions {
  env: GoogleAdcEnv;
  readFile: (path: string) => string;
  metadataServerUrl: string;
  http: TokenHttp;
}

/**
 * Application Default Credentials: the grant of what `discoverAdc` finds. A file is read and
 * checked here, at start-up; the metadata server, found last, is only asked when a token is needed,
 * and a metadata server that cannot be reached then says where else was looked.
 */
export function adcGrant(where: string, options: AdcOptions, cacheOptions: CachedTokenOptions): () => Promise<GrantedToken> {
  const found = discoverAdc(where, options.env, options.readFile);
  if (found.kind === 'metadata') {
    const grant = metadataServerGrant(options.metadataServerUrl, options.http, cacheOptions);
    return async () => {
      try {
        return await grant();
      } catch (error) {
        if (!(error instanceof GatewayError) || error.upstreamStatus !== 0) throw error;
        throw new GatewayError(
          'auth_failed',
          `The provider "${cacheOptions.provider}" could not get an access token: Application Default Credentials found no credentials file (${found.looked.join('; ')}) and the metadata server could not be reached.`,
          { provider: cacheOptions.provider, code: 'upstream_auth_failed', retryable: true, upstreamStatus: 0, cause: error },
        );
      }
    };
  }
  const file = `${found.path} (${found.origin})`;
  const parsed = parseAdcFile(where, found);
  if (parsed.type !== 'impersonated_service_account') return sourceGrant(where, file, parsed, '', options.http, cacheOptions);
  const source = sourceGrant(where, file, parsed.source_credentials, 'source_credentials.', options.http, cacheOptions);
  return impersonatedGrant(source, { url: parsed.service_account_impersonation_url, delegates: parsed.delegates, lifetimeSeconds: IMPERSONATED_LIFETIME_S }, options.http, cacheOptions);
}
