import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { countTextTokens } from './text-tokens';

/**
 * The canonical answer to an image generation request. A provider may make fewer images than `n`
 * asked for (the answer holds what it made), but an answer without any is malformed. Usage is the
 * provider's when it reports any (GPT Image); a model that reports none (DALL·E) is metered on the
 * gateway's own count of the prompt's text tokens, marked estimated, with no output tokens (what
 * such a model bills is per image, not per token). An answer without a time gets the current one.
 */
export function imageGenerationResponse(request: chatv1.ImageGenerationRequest, answer: chatv1.ImageGenerationResponse, provider: string, now: () => number = Date.now): chatv1.ImageGenerationResponse {
  if (answer.data.length === 0) {
    throw new GatewayError('upstream_error', `The provider "${provider}" returned a malformed image generation (no images).`, { provider });
  }
  return {
    created: answer.created || Math.floor(now() / 1000),
    data: answer.data,
    usage: answer.usage ?? estimatedImageUsage(request),
    extraJson: answer.extraJson,
    inputImageTokens: answer.usage ? answer.inputImageTokens : 0,
  };
}

/** The prompt's text tokens by the gateway's tokenizer, as the usage of an answer that reports none. */
export function estimatedImageUsage(request: chatv1.ImageGenerationRequest): chatv1.Usage {
  const promptTokens = countTextTokens(request.prompt);
  return { promptTokens, completionTokens: 0, totalTokens: promptTokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true };
}

/**
 * OpenAI's GPT Image models (`gpt-image-1`, `gpt-image-1-mini`, `gpt-image-1.5`, `gpt-image-2`,
 * `chatgpt-image-latest`, or an Azure deployment named after one): they always answer
 * `b64_json` and refuse a `response_format` parameter as unknown.
 */
export function isGptImageModel(upstreamModel: string): boolean {
  return /^(gpt-image|chatgpt-image)/i.test(upstreamModel);
}
