import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { countTextTokens } from './text-tokens';

/**
 * The canonical answer to a moderations request. It holds one result per text, or one for an
 * input of parts. Providers report no usage for moderations, so usage is always the gateway's own
 * count of the input's text, marked estimated; an image part counts no tokens (what a provider
 * charges for an image, if anything, is not known to the gateway). An answer without an id gets
 * one made from the request's.
 */
export function moderationResponse(request: chatv1.ModerationRequest, answer: chatv1.ModerationResponse, requestId: string, provider: string): chatv1.ModerationResponse {
  const inputs = request.parts.length > 0 ? 1 : request.texts.length;
  if (answer.results.length !== inputs) {
    throw new GatewayError('upstream_error', `The provider "${provider}" returned a malformed moderation response (${answer.results.length} results for ${inputs} inputs).`, { provider });
  }
  const promptTokens = countModerationInputTokens(request);
  return {
    id: answer.id || `modr-${requestId}`,
    model: answer.model,
    results: answer.results,
    usage: { promptTokens, completionTokens: 0, totalTokens: promptTokens, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true },
  };
}

/** The input's text tokens by the gateway's tokenizer: every text, or every text part (images count 0). */
export function countModerationInputTokens(request: chatv1.ModerationRequest): number {
  let tokens = 0;
  for (const text of request.texts) tokens += countTextTokens(text);
  for (const part of request.parts) if (part.text !== undefined) tokens += countTextTokens(part.text);
  return tokens;
}
