import type { chatv1 } from '@openrouter/contracts';

/**
 * Characters of output a streamed chunk carries: content, refusals, tool calls' names and
 * arguments, and reasoning text. What a stream cut short is estimated from (metering) and checked
 * against (budgets), so both count the same.
 */
export function outputChars(chunk: chatv1.ChatChunk): number {
  let chars = 0;
  for (const { delta } of chunk.choices) {
    if (delta) chars += messageChars(delta, delta.toolCalls ?? []);
  }
  return chars;
}

/** Characters of output a whole (non-streamed) answer carries, counted as `outputChars` counts a stream's. */
export function completionChars(completion: chatv1.ChatCompletion): number {
  let chars = 0;
  for (const { message } of completion.choices) {
    if (message) chars += messageChars(message, message.toolCalls.map((call) => call.function ?? {}));
  }
  return chars;
}

/** A message's or a delta's text, refusal, tool calls (names and arguments) and reasoning. */
function messageChars(part: { content?: string | undefined; refusal?: string | undefined; extraJson?: string | undefined }, calls: ReadonlyArray<{ name?: string | undefined; arguments?: string | undefined }>): number {
  let chars = (part.content?.length ?? 0) + (part.refusal?.length ?? 0);
  for (const call of calls) chars += (call.arguments?.length ?? 0) + (call.name?.length ?? 0);
  // Most parts carry no extra fields: only those that do are parsed.
  if (part.extraJson) chars += reasoningChars(part.extraJson);
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
