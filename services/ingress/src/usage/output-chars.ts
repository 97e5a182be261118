import type { chatv1 } from '@openrouter/contracts';

/**
 * Characters of output a streamed chunk carries: content, refusals, tool calls' names and
 * arguments, and reasoning text. What a stream cut short is estimated from (metering) and checked
 * against (budgets), so both count the same.
 */
export function outputChars(chunk: chatv1.ChatChunk): number {
  let chars = 0;
  for (const choice of chunk.choices) {
    const delta = choice.delta;
    if (!delta) continue;
    chars += (delta.content?.length ?? 0) + (delta.refusal?.length ?? 0);
    for (const call of delta.toolCalls ?? []) chars += (call.arguments?.length ?? 0) + (call.name?.length ?? 0);
    // Most deltas carry no extra fields: only those that do are parsed.
    if (delta.extraJson) chars += reasoningChars(delta.extraJson);
  }
  return chars;
}

/** Characters of output a whole (non-streamed) answer carries, counted as `outputChars` counts a stream's. */
export function completionChars(completion: chatv1.ChatCompletion): number {
  let chars = 0;
  for (const choice of completion.choices) {
    const message = choice.message;
    if (!message) continue;
    chars += (message.content?.length ?? 0) + (message.refusal?.length ?? 0);
    for (const call of message.toolCalls) chars += (call.function?.arguments.length ?? 0) + (call.function?.name.length ?? 0);
    if (message.extraJson) chars += reasoningChars(message.extraJson);
  }
  return chars;
}

/**
 * Reasoning text travels among a delta's extra fields: `reasoning_content` (DeepSeek, vLLM, and
 * what the Gemini and Bedrock adapters write) or `reasoning` (OpenRouter, newer vLLM). Providers
 * bill it as output. A server that sends both sends the same text twice, so the longer one counts;
 * `reasoning_details` is not counted either, as it repeats the text of `reasoning`.
 */
function reasoningChars(extraJson: string): number {
  if (!extraJson.includes('"reasoning')) return 0;
  let extra: unknown;
  try {
    extra = JSON.parse(extraJson);
  } catch {
    return 0;
  }
  if (typeof extra !== 'object' || extra === null) return 0;
  const { reasoning_content: content, reasoning } = extra as Record<string, unknown>;
  return Math.max(typeof content === 'string' ? content.length : 0, typeof reasoning === 'string' ? reasoning.length : 0);
}
