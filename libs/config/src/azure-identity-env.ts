/**
 * The variables Azure's identity libraries read, as the environment sets them: AKS workload
 * identity's webhook (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE,
 * AZURE_AUTHORITY_HOST), and App Service, Functions and Container Apps for their managed identity
 * endpoint (IDENTITY_ENDPOINT, IDENTITY_HEADER). IMDS_ENDPOINT (Azure Arc) and
 * IDENTITY_SERVER_THUMBPRINT (Service Fabric) are read only to say they are not supported. An
 * unset variable is `""`.
 */
export interface AzureIdentityEnv {
  tenantId: string;
  clientId: string;
  federatedTokenFile: string;
  authorityHost: string;
  identityEndpoint: string;
  identityHeader: string;
  imdsEndpoint: string;
  identityServerThumbprint: string;
}

/** Read when an `azure` provider with `entra` starts. */
export function readAzureIdentityEnv(env: Readonly<Record<string, string | undefined>> = process.env): AzureIdentityEnv {
  const read = (name: string): string => env[name] ?? '';
  return {
    tenantId: read('AZURE_TENANT_ID'),
    clientId: read('AZURE_CLIENT_ID'),
    federatedTokenFile: read('AZURE_FEDERATED_TOKEN_FILE'),
    authorityHost: read('AZURE_AUTHORITY_HOST'),
    identityEndpoint: read('IDENTITY_ENDPOINT'),
    identityHeader: read('IDENTITY_HEADER'),
    imdsEndpoint: read('IMDS_ENDPOINT'),
    identityServerThumbprint: read('IDENTITY_SERVER_THUMBPRINT'),
  };
}
