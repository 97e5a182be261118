import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, GOOGLE_TOKEN_URI, type GoogleAdcEnv, type GoogleServiceAccountKey, type ProviderConfigOf, readGoogleAdcEnv } from '@openrouter/config';
import { adcGrant } from './google-adc';
import { type AccessTokenSource, CachedTokenSource, staticTokenSource, type TokenHttp } from '../access-token';
import { metadataServerGrant, readPrivateKey, serviceAccountGrant } from './google-access-token';

/** The fields of the JSON key file Google issues for a service account that the grant needs. */
const keyFileSchema = z.looseObject({
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  token_uri: z.string().url().optional(),
});

export interface TokenSourceOptions {
  http: TokenHttp;
  /** Reads the key file; a spec hands in its own. */
  readFile?: (path: string) => string;
  /** Where Application Default Credentials are looked for (`adc: true`); read from the environment unless given. */
  adcEnv?: GoogleAdcEnv;
  now?: () => number;
}

const readUtf8 = (path: string): string => readFileSync(path, 'utf8');

/**
 * The access tokens of a Vertex provider, from the one source its configuration names. A key file
 * that cannot be read or is not a service-account key, and a private key that is not one, are a
 * ConfigError at start-up, naming the field and never its value.
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
  const key = config.credentials ?? (config.credentialsFile !== undefined ? readKeyFile(`${where}.credentialsFile`, config.credentialsFile, options.readFile) : undefined);
  if (key === undefined) throw new ConfigError(where, [`${where}: one source of access tokens is required: credentials, credentialsFile, metadataServer: true, adc: true, accessToken or accessTokenFile`]);
  const keyField = config.credentials !== undefined ? `${where}.credentials.privateKey` : `${where}.credentialsFile: private_key`;
  let privateKey;
  try {
    privateKey = readPrivateKey(key.privateKey, keyField);
  } catch (error) {
    throw new ConfigError(where, [(error as Error).message]);
  }
  return new CachedTokenSource(serviceAccountGrant(key, privateKey, options.http, cacheOptions), cacheOptions);
}

function readKeyFile(where: string, path: string, readFile: (path: string) => string = readUtf8): GoogleServiceAccountKey {
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    throw new ConfigError(where, [`${where}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text around the fault, which may be the private key.
    throw new ConfigError(where, [`${where}: ${path} is not JSON: expected a service-account key file as Google issues it`]);
  }
  const parsed = keyFileSchema.safeParse(json);
  if (!parsed.success) {
    // Paths and kinds only: zod's messages here name the expected type, never the value.
    throw new ConfigError(where, parsed.error.issues.map((issue) => `${where}: ${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`));
  }
  return { clientEmail: parsed.data.client_email, privateKey: parsed.data.private_key, tokenUri: parsed.data.token_uri ?? GOOGLE_TOKEN_URI };
}
