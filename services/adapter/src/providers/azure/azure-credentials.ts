import { readFileSync } from 'node:fs';
import { type AzureIdentityEnv, ConfigError, ENTRA_AUTHORITY_HOST, type ProviderConfigOf, readAzureIdentityEnv } from '@openrouter/config';
import { type AccessTokenSource, CachedTokenSource, type TokenHttp } from '../access-token';
import { inlineSecret, type Secret } from '../credential-file';
import { clientSecretGrant, entraTokenUrl, managedIdentityGrant, type ManagedIdentityEndpoint, resourceOfScope, workloadIdentityGrant } from './entra-token';

export type AzureEntraConfig = NonNullable<ProviderConfigOf<'azure'>['entra']>;

export interface EntraSourceOptions {
  http: TokenHttp;
  /** The identity variables; read from the environment unless given. */
  env?: AzureIdentityEnv;
  /** Reads the federated token file; a spec hands in its own. */
  readFile?: (path: string) => string;
  now?: () => number;
  /** The client secret, read from `clientSecretFile` by the adapter (which stops watching it); default: `clientSecret` as given. */
  clientSecret?: Secret | undefined;
}

const readUtf8 = (path: string): string => readFileSync(path, 'utf8');

/** A managed identity's endpoint is on the host itself (IMDS, App Service's local endpoint): never reached through a proxy. */
export function reachedDirectly(entra: AzureEntraConfig): boolean {
  return entra.managedIdentity === true;
}

/**
 * The Entra ID tokens of an Azure provider, from the one source its `entra` names, cached and
 * refreshed 5 minutes before they expire. What the source needs and cannot find (a tenant, a
 * client ID, the federated token file) is a ConfigError at start-up naming the key and the
 * variable that could give it; no message quotes a secret.
 */
export function entraTokenSource(id: string, entra: AzureEntraConfig, options: EntraSourceOptions): AccessTokenSource {
  const where = `providers.${id}.entra`;
  const env = options.env ?? readAzureIdentityEnv();
  const now = options.now ?? Date.now;
  const cacheOptions = { provider: id, now };
  if (entra.managedIdentity === true) {
    return new CachedTokenSource(managedIdentityGrant(managedIdentityEndpoint(where, entra, env), options.http, id, now), cacheOptions);
  }
  const problems: string[] = [];
  const authorityHost = entra.authorityHost ?? (env.authorityHost !== '' ? env.authorityHost : ENTRA_AUTHORITY_HOST);
  if (entra.authorityHost === undefined && env.authorityHost !== '' && !isHttpUrl(env.authorityHost)) problems.push(`${where}.authorityHost: AZURE_AUTHORITY_HOST is not an http(s) URL`);
  if (entra.clientSecret !== undefined || entra.clientSecretFile !== undefined) {
    if (problems.length > 0) throw new ConfigError(where, problems);
    const clientSecret = options.clientSecret ?? (entra.clientSecret === undefined ? undefined : inlineSecret(entra.clientSecret));
    if (clientSecret === undefined) throw new Error(`${where}.clientSecretFile: the adapter opens the file and hands its secret in`);
    // The schema requires both with a client secret.
    const app = { tokenUrl: entraTokenUrl(authorityHost, entra.tenantId ?? ''), clientId: entra.clientId ?? '', clientSecret, scope: entra.scope };
    return new CachedTokenSource(clientSecretGrant(app, options.http, id, now), cacheOptions);
  }
  // Workload identity: AKS's webhook sets the variables; the configuration may name them instead.
  const tenantId = entra.tenantId ?? env.tenantId;
  const clientId = entra.clientId ?? env.clientId;
  const tokenFile = entra.federatedTokenFile ?? env.federatedTokenFile;
  if (tenantId === '') problems.push(`${where}.tenantId: required for workloadIdentity: set it, or AZURE_TENANT_ID (AKS's workload identity webhook sets it for a pod labelled azure.workload.identity/use: "true")`);
  else if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,127}$/.test(tenantId)) problems.push(`${where}.tenantId: AZURE_TENANT_ID is not a tenant ID (GUID) or a verified domain`);
  if (clientId === '') problems.push(`${where}.clientId: required for workloadIdentity: set it, or AZURE_CLIENT_ID (the client ID of the identity the pod's service account is federated with)`);
  if (tokenFile === '') problems.push(`${where}.federatedTokenFile: required for workloadIdentity: set it, or AZURE_FEDERATED_TOKEN_FILE (AKS's workload identity webhook sets it)`);
  const readFile = options.readFile ?? readUtf8;
  if (tokenFile !== '') {
    try {
      readFile(tokenFile);
    } catch (error) {
      problems.push(`${where}.federatedTokenFile: cannot read ${tokenFile}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(where, problems);
  const app = { tokenUrl: entraTokenUrl(authorityHost, tenantId), clientId, scope: entra.scope, tokenFile, readFile };
  return new CachedTokenSource(workloadIdentityGrant(app, options.http, id, now), cacheOptions);
}

/**
 * App Service, Functions and Container Apps set IDENTITY_ENDPOINT and IDENTITY_HEADER; anywhere
 * else the identity is IMDS's. Azure Arc (IMDS_ENDPOINT) and Service Fabric
 * (IDENTITY_SERVER_THUMBPRINT) have endpoints of their own that are not supported.
 */
export function managedIdentityEndpoint(where: string, entra: AzureEntraConfig, env: AzureIdentityEnv): ManagedIdentityEndpoint {
  const resource = resourceOfScope(entra.scope);
  if (env.identityEndpoint === '') return { kind: 'imds', url: entra.imdsUrl, resource, clientId: entra.clientId };
  if (env.imdsEndpoint !== '') throw new ConfigError(where, [`${where}.managedIdentity: IDENTITY_ENDPOINT and IMDS_ENDPOINT are set (Azure Arc), whose managed identity is not supported`]);
  if (env.identityServerThumbprint !== '') throw new ConfigError(where, [`${where}.managedIdentity: IDENTITY_SERVER_THUMBPRINT is set (Service Fabric), whose managed identity is not supported`]);
  if (env.identityHeader === '') throw new ConfigError(where, [`${where}.managedIdentity: IDENTITY_ENDPOINT is set without IDENTITY_HEADER`]);
  if (!isHttpUrl(env.identityEndpoint)) throw new ConfigError(where, [`${where}.managedIdentity: IDENTITY_ENDPOINT is not an http(s) URL`]);
  return { kind: 'app-service', url: env.identityEndpoint, header: env.identityHeader, resource, clientId: entra.clientId };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
