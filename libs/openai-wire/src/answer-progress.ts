import type { adapterv1, chatv1 } from '@openrouter/contracts';

/**
 * Whether a streamed chunk carries any of the answer: content, a refusal, a tool call, reasoning or
 * another extra delta field (`reasoning_content`…), logprobs, a finish reason, or usage. A chunk
 * that only opens the message (the role, an empty content: Anthropic's `message_start`, OpenAI's
 * first chunk) does not.
 *
 * The router and the adapters must agree on this: the router commits a request to its deployment
 * at the first such chunk (a failure after it reaches the client; one before it fails over), and an
 * adapter whose stream is cut passes the usage reported so far on only once the answer has begun
 * (before that a usage chunk would commit the request to a deployment that showed nothing).
 */
export function chunkCarriesAnswer(chunk: chatv1.ChatChunk): boolean {
  if (chunk.usage) return true;
  return chunk.choices.some((c) => !!c.finishReason || !!c.logprobsJson || (!!c.delta && (!!c.delta.content || c.delta.toolCalls.length > 0 || !!c.delta.refusal || !!c.delta.extraJson)));
}

/** Whether an adapter's chat event carries any of the answer: a whole completion does, a chunk as `chunkCarriesAnswer` says. */
export function carriesAnswer(event: adapterv1.ChatResponse): boolean {
  return event.chunk === undefined || chunkCarriesAnswer(event.chunk);
}
