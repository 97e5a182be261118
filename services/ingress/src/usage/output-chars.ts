import type { chatv1 } from '@openrouter/contracts';

/**
 * Characters of output a streamed chunk carries: content, refusals, and tool calls' names and
 * arguments. What a stream cut short is estimated from (metering) and checked against (budgets),
 * so both count the same.
 */
export function outputChars(chunk: chatv1.ChatChunk): number {
  let chars = 0;
  for (const choice of chunk.choices) {
    chars += (choice.delta?.content?.length ?? 0) + (choice.delta?.refusal?.length ?? 0);
    for (const call of choice.delta?.toolCalls ?? []) chars += (call.arguments?.length ?? 0) + (call.name?.length ?? 0);
  }
  return chars;
}
