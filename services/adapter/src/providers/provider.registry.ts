import { createAnthropicAdapter } from './anthropic/anthropic.adapter';
import { createAzureAdapter } from './azure/azure.adapter';
import { createBedrockAdapter } from './bedrock/bedrock.adapter';
import { createGeminiAdapter } from './gemini/gemini.adapter';
import { createOpenAIAdapter } from './openai/openai.adapter';
import type { ProviderRegistry } from './provider-adapter';
import { createVertexAdapter } from './vertex/vertex.adapter';

/** Every provider family the adapter speaks; adding one is a folder plus a line here. */
export const PROVIDER_REGISTRY = {
  openai: createOpenAIAdapter,
  azure: createAzureAdapter,
  bedrock: createBedrockAdapter,
  anthropic: createAnthropicAdapter,
  gemini: createGeminiAdapter,
  vertex: createVertexAdapter,
} satisfies ProviderRegistry;
