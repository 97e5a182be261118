import type { chatv1 } from '@openrouter/contracts';
import { estimatedTokenWeight } from '@openrouter/usage';

/**
 * Tokens of output a streamed chunk carries, estimated (not rounded) as prompts beyond the exact
 * budget are: content, refusals, tool calls' names and arguments, and reasoning text. What a
 * stream cut short is billed at when the provider reports no usage (metering) and what a capped
 * stream is checked against (budgets), so both count the same. A character count (4 a token)
 * would count Chinese or Japanese at a third of what it costs, code and JSON at half.
 */
export function outputTokens(chunk: chatv1.ChatChunk): number {
  let tokens = 0;
  for (const { delta } of chunk.choices) {
    if (delta) tokens += messageTokens(delta, delta.toolCalls ?? []);
  }
  return tokens;
}

/** Tokens of output a whole (non-streamed) answer carries, estimated as `outputTokens` does a stream's. */
export function completionOutputTokens(completion: chatv1.ChatCompletion): number {
  let tokens = 0;
  for (const { message } of completion.choices) {
    if (message) tokens += messageTokens(message, message.toolCalls.map((call) => call.function ?? {}));
  }
  return tokens;
}

/** A message's or a delta's text, refusal, tool calls (names and arguments) and reasoning. */
function messageTokens(part: { content?: string | undefined; refusal?: string | undefined; extraJson?: string | undefined }, calls: ReadonlyArray<{ name?: string | undefined; arguments?: string | undefined }>): number {
  let tokens = weightOf(part.content) + weightOf(part.refusal);
  for (const call of calls) tokens += weightOf(call.arguments) + weightOf(call.name);
  // Most parts carry no extra fields: only those that do are parsed.
  if (part.extraJson) tokens += reasoningTokens(part.extraJson);
  return tokens;
}

function weightOf(text: string | undefined): number {
  return text ? estimatedTokenWeight(text) : 0;
}

/**
 * Reasoning text travels among a delta's extra fields: `reasoning_content` (DeepSeek, vLLM, and
 * what the Gemini and Bedrock adapters write) or `reasoning` (OpenRouter, newer vLLM). Providers
 * bill it as output. A server that sends both sends the same text twice, so the longer one counts;
 * `reasoning_details` is not counted either, as it repeats the text of `reasoning`.
 */
function reasoningTokens(extraJson: string): number {
  if (!extraJson.includes('"reasoning')) return 0;
  let extra: unknown;
  try {
    extra = JSON.parse(extraJson);
  } catch {
    return 0;
  }
  if (typeof extra !== 'object' || extra === null) return 0;
  const { reasoning_content: content, reasoning } = extra as Record<string, unknown>;
  return Math.max(typeof content === 'string' ? estimatedTokenWeight(content) : 0, typeof reasoning === 'string' ? estimatedTokenWeight(reasoning) : 0);
}
