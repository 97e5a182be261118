import type { GatewayError } from '@openrouter/errors';
import { toAnthropicError } from './anthropic-messages';
import { toOpenAIError } from './openai-errors';

/** An error as a client of the API it called reads it: status, headers and JSON body. */
export interface ClientErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: object;
}

/** Anthropic's Messages API paths (`/v1/messages`, `/v1/messages/count_tokens`, and unknown paths under them). */
export function isAnthropicPath(url: string): boolean {
  const path = url.split('?', 1)[0] ?? '';
  return path === '/v1/messages' || path.startsWith('/v1/messages/');
}

/**
 * An error in the shape of the API the request called: Anthropic's on its Messages paths (with
 * the request id as its SDKs read it, `request-id` and `request_id`), OpenAI's everywhere else.
 */
export function toClientError(url: string, error: GatewayError, requestId?: string): ClientErrorResponse {
  if (!isAnthropicPath(url)) return toOpenAIError(error);
  const response = toAnthropicError(error);
  if (requestId === undefined) return response;
  return { status: response.status, headers: { ...response.headers, 'request-id': requestId }, body: { ...response.body, request_id: requestId } };
}
