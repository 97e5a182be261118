import type { ProviderConfigOf, ProviderType } from '@openrouter/config';

/** How each provider family reaches the simulated provider, and what the family offers. */
export interface SimulatedProvider<T extends ProviderType> {
  config(simulatorUrl: string, apiKey: string): ProviderConfigOf<T>;
  /** An upstream model name the family would use. */
  chatModel: string;
  /** Undefined for families without an embeddings API. */
  embeddingModel?: string;
}

/**
 * One entry per provider family in the registry; the type makes a new family add its entry,
 * and the conformance spec then runs every check against it.
 */
export const SIMULATED_PROVIDERS: { readonly [T in ProviderType]: SimulatedProvider<T> } = {
  openai: {
    // As api.openai.com is configured by default.
    config: (url, apiKey) => ({ type: 'openai', baseUrl: `${url}/v1`, apiKey, outputLimit: 'max_completion_tokens', dropParams: ['thinking', 'top_k', 'cache_control'], headers: {}, timeoutMs: 1500 }),
    chatModel: 'gpt-4o-mini',
    embeddingModel: 'text-embedding-3-small',
  },
  azure: {
    config: (url, apiKey) => ({ type: 'azure', baseUrl: url, apiKey, apiVersion: '2024-10-21', outputLimit: undefined, dropParams: ['thinking', 'top_k', 'cache_control'], headers: {}, timeoutMs: 1500 }),
    chatModel: 'my-gpt-4o-deployment',
    embeddingModel: 'my-embedding-deployment',
  },
  bedrock: {
    config: (url, apiKey) => ({
      type: 'bedrock',
      region: 'us-east-1',
      baseUrl: url,
      credentials: { accessKeyId: 'AKIDSIMULATED', secretAccessKey: apiKey },
      thinking: 'adaptive',
      claudeModels: [],
      headers: {},
      timeoutMs: 1500,
    }),
    chatModel: 'anthropic.claude-3-5-sonnet-20241022-v2:0',
    embeddingModel: 'amazon.titan-embed-text-v2:0',
  },
  anthropic: {
    config: (url, apiKey) => ({ type: 'anthropic', baseUrl: url, apiKey, version: '2023-06-01', defaultMaxTokens: 1024, thinking: 'adaptive', headers: {}, timeoutMs: 1500 }),
    chatModel: 'claude-sonnet-4-5',
  },
  gemini: {
    config: (url, apiKey) => ({ type: 'gemini', baseUrl: `${url}/v1beta`, apiKey, headers: {}, timeoutMs: 1500 }),
    chatModel: 'gemini-2.5-flash',
    embeddingModel: 'gemini-embedding-001',
  },
  vertex: {
    // A static access token: the simulator takes its key as one. Service-account and metadata-server
    // tokens are covered by services/adapter/src/providers/vertex/vertex.adapter.int-spec.ts.
    config: (url, apiKey) => ({
      type: 'vertex',
      project: 'sim-project',
      location: 'us-central1',
      baseUrl: url,
      accessToken: apiKey,
      metadataServerUrl: `${url}/computeMetadata/v1/instance/service-accounts/default/token`,
      publishers: {},
      defaultMaxTokens: 1024,
      thinking: 'adaptive',
      headers: {},
      timeoutMs: 1500,
    }),
    chatModel: 'gemini-2.5-flash',
    embeddingModel: 'text-embedding-005',
  },
};
