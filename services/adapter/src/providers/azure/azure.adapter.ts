import type { ProviderConfigOf } from '@openrouter/config';
import { createUpstreamDispatcher } from '../http-upstream';
import { createOpenAIWireAdapter } from '../openai/openai.adapter';
import type { ProviderAdapter, ProviderContext } from '../provider-adapter';
import { CredentialFile, inlineSecret } from '../credential-file';
import { secretAuth, type UpstreamAuth } from '../upstream-auth';
import { bearerAuth, undiciTokenHttp } from '../access-token';
import { type EntraSourceOptions, entraTokenSource, reachedDirectly } from './azure-credentials';
import { MANAGED_IDENTITY_TIMEOUT_MS } from './entra-token';

/** The first API version that knows `stream_options`. */
const STREAM_OPTIONS_SINCE = '2024-09-01';

/**
 * Whether an API version takes `stream_options`, with which the gateway asks every stream for its
 * usage. Versions before 2024-09-01-preview (the GA 2024-02-01 and 2024-06-01 among them) refuse a
 * request that carries it ("Unrecognized request argument supplied: stream_options"), so with them
 * it is left out: the stream then ends without a usage chunk, and the ingress meters it at its
 * estimate. A preview counts as its date; a version that is no date (`preview`, `latest`) is newer.
 */
function takesStreamOptions(apiVersion: string): boolean {
  const date = /^\d{4}-\d{2}-\d{2}/.exec(apiVersion)?.[0];
  return date === undefined || date >= STREAM_OPTIONS_SINCE;
}

/**
 * Azure OpenAI: the OpenAI wire format addressed by deployment
 * (`/openai/deployments/{deployment}/chat/completions?api-version=…`, `…/embeddings`,
 * `…/images/generations|edits`, `…/audio/transcriptions|translations|speech`; no moderations) with an `api-key` header, or
 * with an Entra ID token as `Authorization: Bearer` (`entra`). A gateway deployment's `model` is
 * the Azure deployment name. The key (`apiKeyFile`) and the client secret (`entra.clientSecretFile`)
 * may come from files, read again when they change. `entraOptions` lets a spec hand in the
 * identity environment.
 */
export function createAzureAdapter(id: string, config: ProviderConfigOf<'azure'>, context: ProviderContext, entraOptions: Omit<EntraSourceOptions, 'http'> = {}): ProviderAdapter {
  const base = config.baseUrl.replace(/\/+$/, '');
  const url = (deployment: string, operation: string): URL => {
    const u = new URL(`${base}/openai/deployments/${encodeURIComponent(deployment)}/${operation}`);
    u.searchParams.set('api-version', config.apiVersion);
    return u;
  };
  const headers: Record<string, string> = { ...config.headers };
  const checkIntervalMs = config.credentialFileCheckIntervalMs;
  // A key or client secret in a file is read now (an unreadable one stops the adapter here) and again when it changes.
  const keyFile = config.apiKeyFile === undefined ? undefined : CredentialFile.open({ provider: id, key: 'apiKeyFile', path: config.apiKeyFile, checkIntervalMs }, context.credentialFiles);
  if (keyFile === undefined && config.apiKey) headers['api-key'] = config.apiKey;
  let auth: UpstreamAuth | undefined = keyFile && secretAuth(keyFile, (key) => ({ 'api-key': key }));
  let tokenAgent: ReturnType<typeof createUpstreamDispatcher> | undefined;
  let secretFile: CredentialFile | undefined;
  if (config.entra !== undefined) {
    const entra = config.entra;
    // A managed identity's endpoint answers only on the host itself: never through a proxy. Entra ID's
    // token endpoint is reached as the provider's API is. A local endpoint also connects within a short time.
    tokenAgent = reachedDirectly(entra)
      ? createUpstreamDispatcher(context.egress, 'none', { connect: { timeout: MANAGED_IDENTITY_TIMEOUT_MS } })
      : createUpstreamDispatcher(context.egress, config.proxy);
    try {
      secretFile = entra.clientSecretFile === undefined ? undefined : CredentialFile.open({ provider: id, key: 'entra.clientSecretFile', path: entra.clientSecretFile, checkIntervalMs }, context.credentialFiles);
      const clientSecret = secretFile ?? (entra.clientSecret === undefined ? undefined : inlineSecret(entra.clientSecret));
      // A source that cannot work (no tenant, an unreadable federated token file) stops the adapter here, at start-up.
      auth = bearerAuth(entraTokenSource(id, entra, { ...entraOptions, http: undiciTokenHttp(tokenAgent), clientSecret }));
    } catch (error) {
      secretFile?.close();
      void tokenAgent.close();
      throw error;
    }
  }
  const wire = createOpenAIWireAdapter(
    id,
    {
      chatUrl: (deployment) => url(deployment, 'chat/completions'),
      embeddingsUrl: (deployment) => url(deployment, 'embeddings'),
      imagesUrl: (deployment, endpoint) => url(deployment, `images/${endpoint}`),
      audioUrl: (deployment, endpoint) => url(deployment, `audio/${endpoint}`),
      headers,
      auth,
      timeoutMs: config.timeoutMs,
      outputLimit: config.outputLimit,
      dropParams: takesStreamOptions(config.apiVersion) ? config.dropParams : [...config.dropParams, 'stream_options'],
      proxy: config.proxy,
    },
    context.egress,
  );
  const generateImages = wire.generateImages?.bind(wire);
  const transcribe = wire.transcribe?.bind(wire);
  const speak = wire.speak?.bind(wire);
  return {
    chat: (call) => wire.chat(call),
    embed: (call) => wire.embed(call),
    ...(generateImages && { generateImages }),
    ...(transcribe && { transcribe }),
    ...(speak && { speak }),
    async close() {
      keyFile?.close();
      secretFile?.close();
      await Promise.all([wire.close(), tokenAgent?.close()]);
    },
  };
}
