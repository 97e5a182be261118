import type { ProviderConfigOf } from '@openrouter/config';
import { createOpenAIWireAdapter } from '../openai/openai.adapter';
import type { ProviderAdapter, ProviderContext } from '../provider-adapter';

/**
 * Azure OpenAI: the OpenAI wire format addressed by deployment
 * (`/openai/deployments/{deployment}/chat/completions?api-version=…`) with an `api-key` header.
 * A gateway deployment's `model` is the Azure deployment name.
 */
export function createAzureAdapter(id: string, config: ProviderConfigOf<'azure'>, context: ProviderContext): ProviderAdapter {
  const base = config.baseUrl.replace(/\/+$/, '');
  const url = (deployment: string, operation: string): URL => {
    const u = new URL(`${base}/openai/deployments/${encodeURIComponent(deployment)}/${operation}`);
    u.searchParams.set('api-version', config.apiVersion);
    return u;
  };
  const headers: Record<string, string> = { ...config.headers };
  if (config.apiKey) headers['api-key'] = config.apiKey;
  return createOpenAIWireAdapter(
    id,
    {
      chatUrl: (deployment) => url(deployment, 'chat/completions'),
      embeddingsUrl: (deployment) => url(deployment, 'embeddings'),
      headers,
      timeoutMs: config.timeoutMs,
      outputLimit: config.outputLimit,
      dropParams: config.dropParams,
      proxy: config.proxy,
    },
    context.egress,
  );
}
