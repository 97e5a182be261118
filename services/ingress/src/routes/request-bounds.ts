import type { AccessConfig } from '@openrouter/config';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { partContent } from '@openrouter/openai-wire';

export type RequestBounds = AccessConfig['requests'];
export const REQUEST_BOUNDS = Symbol('REQUEST_BOUNDS');

/**
 * The operator's bounds on a chat request, beyond what the schema checks; each names its parameter.
 * `translated`: the chat request of another API's body (the Messages API's) whose own list was
 * bounded before translation (`refuseTooManyItems`): its messages are not counted again, since a
 * system prompt and each tool result become messages of their own, a count the client never sent.
 */
export function checkChatBounds(request: chatv1.ChatRequest, bounds: RequestBounds, translated = false): void {
  if (!translated && request.messages.length > bounds.maxMessages) {
    throw tooLarge('messages', `At most ${bounds.maxMessages} messages are accepted; the request has ${request.messages.length}.`);
  }
  for (const [param, value] of [
    ['max_tokens', request.maxTokens],
    ['max_completion_tokens', request.maxCompletionTokens],
  ] as const) {
    if (value !== undefined && value > bounds.maxTokens) throw tooLarge(param, `${param} may be at most ${bounds.maxTokens}; got ${value}.`);
  }
  if (request.n !== undefined && request.n > bounds.maxN) throw tooLarge('n', `n may be at most ${bounds.maxN}; got ${request.n}.`);
  checkImageCount(request, bounds.maxImages);
}

/**
 * Image parts over every message (an `image_url` part, typed or kept as JSON; the Responses
 * API's `input_image` and the Messages API's `image` blocks are such parts once translated): each
 * may be fetched by the adapter, so their number is bounded before the request goes further. The
 * refusal names the first part over the bound.
 */
function checkImageCount(request: chatv1.ChatRequest, maxImages: number): void {
  let images = 0;
  for (const [i, message] of request.messages.entries()) {
    for (const [j, part] of (message.parts?.parts ?? []).entries()) {
      if (!part.imageUrl && !(part.rawJson && partContent(part).image)) continue;
      if (++images > maxImages) throw tooLarge(`messages[${i}].content[${j}]`, `At most ${maxImages} images are accepted in a request; this part is image ${images}.`);
    }
  }
}

/**
 * Refuses a body whose list `param` (`messages`, `input`) is longer than the messages the gateway
 * takes, before the body is validated and translated: the work of both grows with it. The chat
 * request's other bounds are checked once translated (`checkChatBounds`).
 */
export function refuseTooManyItems(body: unknown, param: string, bounds: RequestBounds): void {
  const items = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[param] : undefined;
  if (Array.isArray(items) && items.length > bounds.maxMessages) {
    throw tooLarge(param, `At most ${bounds.maxMessages} ${param === 'messages' ? 'messages' : 'items'} are accepted; the request has ${items.length}.`);
  }
}

function tooLarge(param: string, message: string): GatewayError {
  return new GatewayError('bad_request', message, { param, code: 'invalid_value' });
}
