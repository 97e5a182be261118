import { z } from 'zod';
import { flag, httpHeaders, MAX_TIMER_MS, numeric, strictObject, TIMER_TOO_LONG } from './primitives';
import { residencyLabel } from './tenant-policy.schema';

/** Every provider family the adapter speaks; each has a folder under services/adapter/src/providers. */
export const PROVIDER_TYPES = ['openai', 'azure', 'bedrock', 'anthropic', 'gemini', 'vertex'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

/**
 * True for an http(s) URL with a host: what a forward proxy setting (or HTTPS_PROXY) must be. The
 * proxy's credentials go in it when it asks for them (`http://user:password@proxy.corp:3128`), so
 * no message quotes it. They are percent-decoded when the proxy agent is built: a `%` that starts
 * no escape (write `%25`) is refused here, by name, not later by a bare `URI malformed`.
 */
export function isProxyUrl(value: string): boolean {
  try {
    const url = new URL(value);
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

const common = {
  /** Extra headers sent with every call to this provider. */
  // Checked as HTTP headers (see `httpHeaders`): a bad name, or a line break a `${VAR}` brought into
  // a value, would have the HTTP client refuse every call to the provider.
  headers: httpHeaders
    // The HTTP client refuses the header on every call (it belongs to the proxy, which takes its credentials from `proxy`).
    .refine((headers) => !Object.keys(headers).some((name) => name.toLowerCase() === 'proxy-authorization'), 'Proxy-Authorization cannot be sent as a header: put the proxy\'s credentials in its URL (`proxy` or HTTPS_PROXY)')
    .default({}),
  timeoutMs: numeric(z.number().int().positive().max(MAX_TIMER_MS, TIMER_TOO_LONG)).default(600_000),
  /** This provider's calls through this forward proxy, or `none`: direct. Unset: HTTPS_PROXY / HTTP_PROXY / NO_PROXY decide. */
  proxy: z
    .string()
    .refine((value) => value === 'none' || isProxyUrl(value), '"none", or an http:// or https:// URL of a forward proxy (http://[user:password@]host:port)')
    .optional(),
  /** Where this provider's deployments process data (`eu`, `us`, `eu-west`), for tenants' residency policies. Unset: none, excluded wherever a residency policy applies. */
  residency: residencyLabel.optional(),
  /**
   * How often (ms) the adapter checks this provider's credential files (`apiKeyFile` and the other
   * `…File` secrets) for a change. Unset: DEFAULT_CREDENTIAL_FILE_CHECK_INTERVAL_MS.
   */
  credentialFileCheckIntervalMs: numeric(z.number().int().min(100).max(MAX_TIMER_MS, TIMER_TOO_LONG)).optional(),
};

/** How often the adapter checks a credential file for a change unless the provider sets `credentialFileCheckIntervalMs`. */
export const DEFAULT_CREDENTIAL_FILE_CHECK_INTERVAL_MS = 10_000;

/**
 * The path of a file holding a secret, in place of the secret itself: a mounted Kubernetes Secret,
 * a file Vault Agent or a CSI secret store writes. The adapter reads it at start-up (an unreadable
 * or empty file stops it there) and again whenever it changes, without a restart.
 */
const secretFile = z.string().min(1);

/**
 * `key` given inline (non-empty: an empty value means none, as `${VAR:-}` gives) and in a file
 * (`fileKey`) at once: which one the calls should use cannot be guessed.
 */
function bothGiven(ctx: z.core.$RefinementCtx, inline: string | undefined, file: string | undefined, key: string, fileKey: string): void {
  if (inline !== undefined && inline !== '' && file !== undefined) {
    ctx.addIssue({ code: 'custom', path: [fileKey], message: `give ${key} or ${fileKey}, not both: the secret comes from the configuration or from a file` });
  }
}

/**
 * The parameter an OpenAI-style server takes an output limit in. OpenAI's current one is
 * `max_completion_tokens` (its reasoning models refuse `max_tokens`); many compatible servers
 * know only `max_tokens`. When set, a request's limit, whichever the client used (or a hard budget
 * set), is sent in this one; unset, the limits go as the client sent them.
 */
const outputLimit = z.enum(['max_tokens', 'max_completion_tokens']);

/**
 * Parameters of other families that OpenAI's own API refuses (`Unrecognized request argument`):
 * Anthropic's `thinking` and `top_k`, which a client of the Messages API sends whatever model the
 * router then picks (the request's `reasoning_effort` is what OpenAI's models read instead), and
 * Anthropic's prompt-caching marker `cache_control` on content parts and tools (OpenAI caches
 * prompts by itself).
 */
export const OPENAI_REFUSED_PARAMS = ['thinking', 'top_k', 'cache_control'] as const;

/**
 * What the gateway itself sends and relies on: the model, the conversation, the tools, the output
 * limit a hard budget sets and the stream's usage that metering reads. Never dropped.
 */
const KEPT_PARAMS = new Set(['model', 'messages', 'tools', 'tool_choice', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens']);

/** Top-level request parameters never sent to the provider (extra keys a client sent for another family). */
const dropParams = z
  .array(z.string().min(1))
  .superRefine((names, ctx) => {
    for (const [i, name] of names.entries()) {
      if (KEPT_PARAMS.has(name)) ctx.addIssue({ code: 'custom', path: [i], message: `"${name}" cannot be dropped: the gateway sends it (the output limit and the stream's usage keep budgets and metering exact)` });
    }
  })
  .optional();

/** OpenAI and every server that speaks its API: Mistral, Groq, Together, DeepSeek, vLLM, Ollama… */
const openaiProvider = strictObject({
  type: z.literal('openai'),
  baseUrl: z.string().url(),
  apiKey: z.string().default(''),
  /** A file holding the key, re-read when it changes; in place of `apiKey`. */
  apiKeyFile: secretFile.optional(),
  /** Default: `max_completion_tokens` at OpenAI's own hosts (api.openai.com, eu.api.openai.com…), else unset. */
  outputLimit: outputLimit.optional(),
  /** Default: Anthropic's `thinking`, `top_k` and `cache_control` at OpenAI's own hosts, else none (compatible servers such as vLLM take `top_k`). */
  dropParams,
  ...common,
})
  .superRefine((provider, ctx) => bothGiven(ctx, provider.apiKey, provider.apiKeyFile, 'apiKey', 'apiKeyFile'))
  .transform(({ outputLimit: limit, dropParams: drop, ...rest }) => {
    const openai = isOpenAIItself(rest.baseUrl);
    return { ...rest, outputLimit: limit ?? (openai ? ('max_completion_tokens' as const) : undefined), dropParams: drop ?? (openai ? [...OPENAI_REFUSED_PARAMS] : []) };
  });

function isOpenAIItself(baseUrl: string): boolean {
  try {
    const host = new URL(baseUrl).hostname;
    return host === 'api.openai.com' || host.endsWith('.api.openai.com');
  } catch {
    return false;
  }
}

export const anthropicProvider = strictObject({
  type: z.literal('anthropic'),
  baseUrl: z.string().url().default('https://api.anthropic.com'),
  apiKey: z.string().default(''),
  /** A file holding the key, re-read when it changes; in place of `apiKey`. */
  apiKeyFile: secretFile.optional(),
  /** Sent as `anthropic-version`. */
  version: z.string().min(1).default('2023-06-01'),
  /** Anthropic requires max_tokens; used when the request sets neither max_tokens nor max_completion_tokens. */
  defaultMaxTokens: numeric(z.number().int().positive()).default(4096),
  /**
   * How `reasoning_effort` turns extended thinking on: `adaptive` (`thinking: {type: "adaptive"}`
   * with `output_config.effort`; Claude 4.6 and later, the only form Claude Opus 4.7 and later take)
   * or `budget` (`thinking: {type: "enabled", budget_tokens}`; Claude 4.5 and earlier).
   */
  thinking: z.enum(['adaptive', 'budget']).default('adaptive'),
  ...common,
}).superRefine((provider, ctx) => bothGiven(ctx, provider.apiKey, provider.apiKeyFile, 'apiKey', 'apiKeyFile'));

export const geminiProvider = strictObject({
  type: z.literal('gemini'),
  baseUrl: z.string().url().default('https://generativelanguage.googleapis.com/v1beta'),
  apiKey: z.string().default(''),
  /** A file holding the key, re-read when it changes; in place of `apiKey`. */
  apiKeyFile: secretFile.optional(),
  ...common,
}).superRefine((provider, ctx) => bothGiven(ctx, provider.apiKey, provider.apiKeyFile, 'apiKey', 'apiKeyFile'));

/** What Azure OpenAI's Entra ID tokens are asked for (the resource, `https://cognitiveservices.azure.com`). */
export const AZURE_COGNITIVE_SERVICES_SCOPE = 'https://cognitiveservices.azure.com/.default';
/** Entra ID's public cloud; sovereign clouds have their own (`https://login.microsoftonline.us`, `https://login.chinacloudapi.cn`). */
export const ENTRA_AUTHORITY_HOST = 'https://login.microsoftonline.com';
/** The Azure Instance Metadata Service's token route (VMs, VM scale sets, AKS node identities). */
export const AZURE_IMDS_TOKEN_URL = 'http://169.254.169.254/metadata/identity/oauth2/token';

/**
 * Entra ID (Azure AD) tokens for Azure OpenAI, from exactly one source: an app registration's
 * client secret, AKS workload identity (a federated token file), or a managed identity. Missing
 * workload-identity values come from the environment AKS sets (AZURE_TENANT_ID, AZURE_CLIENT_ID,
 * AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST) when the adapter starts.
 */
const azureEntra = strictObject({
  /** The directory: a GUID, or a domain (`contoso.onmicrosoft.com`). */
  tenantId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,127}$/, 'a tenant id (GUID) or a verified domain (contoso.onmicrosoft.com)').optional(),
  /** The app registration (client secret, workload identity) or the user-assigned managed identity. */
  clientId: z.string().min(1).optional(),
  /** The app registration's client secret (its value, not its id); take it from the environment. */
  clientSecret: z.string().min(1).optional(),
  /** A file holding the client secret, re-read when it changes; in place of `clientSecret`. */
  clientSecretFile: secretFile.optional(),
  /** AKS workload identity: the federated service-account token is exchanged for an Entra token. */
  workloadIdentity: flag.optional(),
  /** The federated token file (default: AZURE_FEDERATED_TOKEN_FILE); re-read on every token fetch, as the kubelet rotates it. */
  federatedTokenFile: z.string().min(1).optional(),
  /** The managed identity of the VM, AKS node, App Service, Functions or Container Apps app the gateway runs on. */
  managedIdentity: flag.optional(),
  /** Default: AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com. */
  authorityHost: z.string().url().optional(),
  scope: z.string().min(1).default(AZURE_COGNITIVE_SERVICES_SCOPE),
  /** Where a managed identity's token is asked for outside App Service; change it only for tests. */
  imdsUrl: z.string().url().default(AZURE_IMDS_TOKEN_URL),
}).superRefine((entra, ctx) => {
  if (entra.clientSecret !== undefined && entra.clientSecretFile !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['clientSecretFile'], message: 'give clientSecret or clientSecretFile, not both: the secret comes from the configuration or from a file' });
    return;
  }
  const secret = entra.clientSecret !== undefined ? 'clientSecret' : entra.clientSecretFile !== undefined ? 'clientSecretFile' : undefined;
  const given = [secret ?? false, entra.workloadIdentity === true && 'workloadIdentity', entra.managedIdentity === true && 'managedIdentity'].filter((mode) => mode !== false);
  if (given.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'one source of Entra ID tokens is required: clientSecret or clientSecretFile (with tenantId and clientId), workloadIdentity: true or managedIdentity: true' });
    return;
  }
  if (given.length > 1) {
    ctx.addIssue({ code: 'custom', message: `exactly one source of Entra ID tokens may be given, found ${given.join(', ')}` });
    return;
  }
  if (secret !== undefined) {
    for (const key of ['tenantId', 'clientId'] as const) {
      if (entra[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: `required with ${secret} (the app registration's ${key === 'tenantId' ? 'directory (tenant) ID' : 'application (client) ID'})` });
    }
  }
  if (entra.managedIdentity === true) {
    for (const key of ['tenantId', 'authorityHost', 'federatedTokenFile'] as const) {
      if (entra[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'does not apply to managedIdentity (a user-assigned identity is chosen by clientId)' });
    }
  }
  if (entra.federatedTokenFile !== undefined && secret !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['federatedTokenFile'], message: 'applies to workloadIdentity: true only' });
  }
});

/** Azure OpenAI: the deployment name is the deployment's `model`. */
const azureProvider = strictObject({
  type: z.literal('azure'),
  /** https://RESOURCE.openai.azure.com */
  baseUrl: z.string().url(),
  /** Sent as `api-key`; empty: none. Exactly one of a non-empty `apiKey`, `apiKeyFile` and `entra`. */
  apiKey: z.string().default(''),
  /** A file holding the key, re-read when it changes; in place of `apiKey`. */
  apiKeyFile: secretFile.optional(),
  /** Entra ID tokens sent as `Authorization: Bearer` in place of an `api-key`. */
  entra: azureEntra.optional(),
  apiVersion: z.string().min(1).default('2024-10-21'),
  /** `max_completion_tokens` for reasoning-model deployments (with an `apiVersion` that knows it); unset: as sent. */
  outputLimit: outputLimit.optional(),
  /** Default: Anthropic's `thinking`, `top_k` and `cache_control`, which Azure OpenAI refuses as OpenAI does. */
  dropParams: dropParams.transform((drop) => drop ?? [...OPENAI_REFUSED_PARAMS]),
  ...common,
}).superRefine((provider, ctx) => {
  bothGiven(ctx, provider.apiKey, provider.apiKeyFile, 'apiKey', 'apiKeyFile');
  if ((provider.apiKey !== '' || provider.apiKeyFile !== undefined) && provider.entra !== undefined) {
    const key = provider.apiKey !== '' ? 'apiKey' : 'apiKeyFile';
    ctx.addIssue({ code: 'custom', path: ['entra'], message: `exactly one of ${key} and entra may be given: an Azure OpenAI resource is called with a key or with Entra ID tokens` });
  }
});

export const bedrockProvider = strictObject({
  type: z.literal('bedrock'),
  region: z.string().min(1),
  /** Defaults to https://bedrock-runtime.REGION.amazonaws.com. */
  baseUrl: z.string().url().optional(),
  /**
   * The access key calls are signed with. Each part is given inline or as a file (`…File`, re-read
   * when it changes): mount the parts from one Secret, so that they change together.
   */
  credentials: strictObject({
    accessKeyId: z.string().min(1).optional(),
    accessKeyIdFile: secretFile.optional(),
    secretAccessKey: z.string().min(1).optional(),
    secretAccessKeyFile: secretFile.optional(),
    /** Temporary credentials' token; empty: none. */
    sessionToken: z.string().optional(),
    sessionTokenFile: secretFile.optional(),
  }).superRefine((credentials, ctx) => {
    for (const key of ['accessKeyId', 'secretAccessKey'] as const) {
      const fileKey = `${key}File` as const;
      if (credentials[key] === undefined && credentials[fileKey] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: `required: give ${key} or ${fileKey}` });
      bothGiven(ctx, credentials[key], credentials[fileKey], key, fileKey);
    }
    bothGiven(ctx, credentials.sessionToken, credentials.sessionTokenFile, 'sessionToken', 'sessionTokenFile');
  }),
  /**
   * How `reasoning_effort` turns extended thinking on for Claude models, as the `anthropic`
   * provider's setting does: `adaptive` (`thinking: {type: "adaptive"}` with `output_config.effort`
   * in `additionalModelRequestFields`; Claude 4.6 and later) or `budget` (`thinking: {type:
   * "enabled", budget_tokens}`; Claude 4.5 and earlier).
   */
  thinking: z.enum(['adaptive', 'budget']).default('adaptive'),
  /**
   * Model ids that front a Claude model without naming it: application inference profile ARNs
   * (`arn:aws:bedrock:…:application-inference-profile/…`) are opaque. Listed here, they get
   * Claude's rules and extended thinking like an id naming `anthropic.claude`.
   */
  claudeModels: z.array(z.string().min(1)).default([]),
  ...common,
});

/** Where a service account's access tokens come from unless its key names another endpoint. */
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';
/** The token of the service account attached to a GCE VM or a GKE pod (Workload Identity). */
export const GOOGLE_METADATA_TOKEN_URL = 'http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token';

/** The parts of a service-account key the JWT-bearer grant needs. */
export const googleServiceAccountKey = strictObject({
  clientEmail: z.string().min(1),
  /** PEM (`-----BEGIN PRIVATE KEY-----…`); read and checked when the adapter starts, never echoed. */
  privateKey: z.string().min(1),
  tokenUri: z.string().url().default(GOOGLE_TOKEN_URI),
});
export type GoogleServiceAccountKey = z.infer<typeof googleServiceAccountKey>;

const VERTEX_AUTH_SOURCES = ['credentials', 'credentialsFile', 'metadataServer', 'adc', 'accessToken', 'accessTokenFile'] as const;

/**
 * Google Cloud Vertex AI: Gemini (publisher `google`) and Claude (publisher `anthropic`) models of
 * one project and location, called with an OAuth2 access token from exactly one source.
 */
export const vertexProvider = strictObject({
  type: z.literal('vertex'),
  project: z.string().min(1),
  /** A region (`us-central1`, `europe-west4`) or `global`. */
  location: z.string().regex(/^[a-z0-9-]+$/, 'a Google Cloud region such as us-central1, or global').default('us-central1'),
  /** Defaults to https://LOCATION-aiplatform.googleapis.com (https://aiplatform.googleapis.com for `global`). */
  baseUrl: z.string().url().optional(),
  /** A service-account key given inline (its private key from the environment). */
  credentials: googleServiceAccountKey.optional(),
  /** The path of a service-account key file as Google issues it (JSON); read when the adapter starts. */
  credentialsFile: z.string().min(1).optional(),
  /** The token of the workload's own service account, from the metadata server (GCE, GKE Workload Identity). */
  metadataServer: flag.optional(),
  metadataServerUrl: z.string().url().default(GOOGLE_METADATA_TOKEN_URL),
  /**
   * Application Default Credentials, found as Google's client libraries find them when the adapter
   * starts: the file GOOGLE_APPLICATION_CREDENTIALS names, else gcloud's well-known file, else the
   * metadata server (at `metadataServerUrl`).
   */
  adc: flag.optional(),
  /** A token obtained elsewhere (`gcloud auth print-access-token`): never refreshed. */
  accessToken: z.string().min(1).optional(),
  /** A file a token is written to by something else (a sidecar that refreshes it): re-read when it changes. */
  accessTokenFile: secretFile.optional(),
  /** Model name → publisher, for a name the default (`claude-…` is Anthropic's, anything else Google's) gets wrong. */
  publishers: z.record(z.string().min(1), z.enum(['google', 'anthropic'])).default({}),
  /** Claude: `max_tokens` when the request sets none, as for the `anthropic` family. */
  defaultMaxTokens: numeric(z.number().int().positive()).default(4096),
  /** Claude: how `reasoning_effort` turns extended thinking on, as for the `anthropic` family. */
  thinking: z.enum(['adaptive', 'budget']).default('adaptive'),
  ...common,
}).superRefine((provider, ctx) => {
  const given = VERTEX_AUTH_SOURCES.filter((source) => (source === 'metadataServer' || source === 'adc' ? provider[source] === true : provider[source] !== undefined));
  if (given.length === 1) return;
  ctx.addIssue({
    code: 'custom',
    message:
      given.length === 0
        ? 'one source of access tokens is required: credentials, credentialsFile, metadataServer: true, adc: true, accessToken or accessTokenFile'
        : `exactly one source of access tokens may be given, found ${given.join(', ')}`,
  });
});

/** Where Vertex AI is reached for a location: its regional host, or the global one. */
export function vertexBaseUrl(location: string): string {
  return location === 'global' ? 'https://aiplatform.googleapis.com' : `https://${location}-aiplatform.googleapis.com`;
}

// A family joins the union (and PROVIDER_TYPES) when its adapter is in the registry.
export const providerSchema = z.discriminatedUnion('type', [openaiProvider, azureProvider, bedrockProvider, anthropicProvider, geminiProvider, vertexProvider]);
export type ProviderConfig = z.infer<typeof providerSchema>;
export type ProviderConfigOf<T extends ProviderType> = Extract<ProviderConfig, { type: T }>;

/** Where calls to a provider go, with the provider family's default filled in. */
export function providerBaseUrl(provider: ProviderConfig): string {
  if ('baseUrl' in provider && provider.baseUrl) return provider.baseUrl.replace(/\/+$/, '');
  if ('region' in provider) return `https://bedrock-runtime.${provider.region}.amazonaws.com`;
  if (provider.type === 'vertex') return vertexBaseUrl(provider.location);
  throw new Error('unreachable: every provider family has a base URL');
}

/** The secret a provider is called with, for families that use one key given inline (a key in `apiKeyFile` is the adapter's to read). */
export function providerApiKey(provider: ProviderConfig): string {
  return 'apiKey' in provider ? provider.apiKey : '';
}
