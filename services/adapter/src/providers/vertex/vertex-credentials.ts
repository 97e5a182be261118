import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { ConfigError, GOOGLE_TOKEN_URI, type GoogleAdcEnv, type GoogleServiceAccountKey, type ProviderConfigOf, readGoogleAdcEnv } from '@openrouter/config';
import { adcGrant } from './google-adc';
import { type AccessTokenSource, CachedTokenSource, type CachedTokenOptions, staticTokenSource, type TokenHttp } from '../access-token';
import { CredentialFile, type CredentialFileOptions, type Secret } from '../credential-file';
import { metadataServerGrant, readPrivateKey, serviceAccountGrant } from './google-access-token';
import { KeyFileTokenSource } from './key-file-token-source';

/** The fields of the JSON key file Google issues for a service account that the grant needs. */
const keyFileSchema = z.looseObject({
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  token_uri: z.string().url().optional(),
});

/** A service account's key, read from its JSON key file and ready to sign with. */
export interface ServiceAccountSigner {
  key: GoogleServiceAccountKey;
  privateKey: KeyObject;
}

/**
 * Reads the content of a service-account JSON key file (`path` names it in the problems). The
 * problems name the file and the field, never a value: JSON.parse's message, which quotes the
 * text around the fault, is not passed on.
 */
export function parseServiceAccountKeyFile(text: string, path: string): { ok: true; signer: ServiceAccountSigner } | { ok: false; problems: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problems: [`${path} is not JSON: expected a service-account key file as Google issues it`] };
  }
  const parsed = keyFileSchema.safeParse(json);
  if (!parsed.success) {
    // Paths and kinds only: zod's messages here name the expected type, never the value.
    return { ok: false, problems: parsed.error.issues.map((issue) => `${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`) };
  }
  try {
    const privateKey = readPrivateKey(parsed.data.private_key, 'private_key');
    return { ok: true, signer: { key: { clientEmail: parsed.data.client_email, privateKey: parsed.data.private_key, tokenUri: parsed.data.token_uri ?? GOOGLE_TOKEN_URI }, privateKey } };
  } catch (error) {
    return { ok: false, problems: [(error as Error).message] };
  }
}

/**
 * Opens a Vertex provider's `credentialsFile` as a credential file: read now (a file that cannot be
 * read or is not a service-account key stops the adapter, naming the file and the field) and again
 * when it changes or a token is refused. A content that is not a usable key is never taken: the
 * last good key stays in use.
 */
export function openServiceAccountKeyFile(id: string, config: Pick<ProviderConfigOf<'vertex'>, 'credentialsFile' | 'credentialFileCheckIntervalMs'>, options: CredentialFileOptions = {}): CredentialFile | undefined {
  const path = config.credentialsFile;
  if (path === undefined) return undefined;
  const problemsOf = (text: string): readonly string[] => {
    const parsed = parseServiceAccountKeyFile(text, path);
    return parsed.ok ? [] : parsed.problems;
  };
  return CredentialFile.open({ provider: id, key: 'credentialsFile', path, checkIntervalMs: config.credentialFileCheckIntervalMs, problemsOf }, options);
}

export interface TokenSourceOptions {
  http: TokenHttp;
  /** Reads the Application Default Credentials file; a spec hands in its own. */
  readFile?: (path: string) => string;
  /** The content of `credentialsFile`, opened by the adapter (which stops watching it) with `openServiceAccountKeyFile`. */
  keyFile?: Secret | undefined;
  /** Where Application Default Credentials are looked for (`adc: true`); read from the environment unless given. */
  adcEnv?: GoogleAdcEnv;
  now?: () => number;
}

const readUtf8 = (path: string): string => readFileSync(path, 'utf8');

/**
 * The access tokens of a Vertex provider, from the one source its configuration names. A private
 * key that is not one is a ConfigError at start-up, naming the field and never its value (a key
 * file's content is checked as it is opened, `openServiceAccountKeyFile`). The tokens of a key file
 * follow it: a new key is used from the next call on, its first token fetched then.
 */
export function vertexTokenSource(id: string, config: ProviderConfigOf<'vertex'>, options: TokenSourceOptions): AccessTokenSource {
  const where = `providers.${id}`;
  const cacheOptions = { provider: id, now: options.now };
  if (config.accessToken !== undefined) return staticTokenSource(config.accessToken);
  if (config.metadataServer === true) return new CachedTokenSource(metadataServerGrant(config.metadataServerUrl, options.http, cacheOptions), cacheOptions);
  if (config.adc === true) {
    const adc = { env: options.adcEnv ?? readGoogleAdcEnv(), readFile: options.readFile ?? readUtf8, metadataServerUrl: config.metadataServerUrl, http: options.http };
    return new CachedTokenSource(adcGrant(`${where}.adc`, adc, cacheOptions), cacheOptions);
  }
  if (config.credentialsFile !== undefined) {
    const path = config.credentialsFile;
    const file = options.keyFile;
    if (file === undefined) throw new Error(`${where}.credentialsFile: the adapter opens the file and hands its content in`);
    // The file's content was checked before it was taken: a key that does not parse is never in it.
    return new KeyFileTokenSource(file, (text) => {
      const parsed = parseServiceAccountKeyFile(text, path);
      if (!parsed.ok) throw new ConfigError(where, parsed.problems.map((problem) => `${where}.credentialsFile: ${problem}`));
      return serviceAccountTokens(parsed.signer, options.http, cacheOptions);
    });
  }
  if (config.credentials === undefined) throw new ConfigError(where, [`${where}: one source of access tokens is required: credentials, credentialsFile, metadataServer: true, adc: true, accessToken or accessTokenFile`]);
  let privateKey;
  try {
    privateKey = readPrivateKey(config.credentials.privateKey, `${where}.credentials.privateKey`);
  } catch (error) {
    throw new ConfigError(where, [(error as Error).message]);
  }
  return serviceAccountTokens({ key: config.credentials, privateKey }, options.http, cacheOptions);
}

function serviceAccountTokens(signer: ServiceAccountSigner, http: TokenHttp, options: CachedTokenOptions): CachedTokenSource {
  return new CachedTokenSource(serviceAccountGrant(signer.key, signer.privateKey, http, options), options);
}
