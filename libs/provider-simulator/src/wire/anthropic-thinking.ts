import { createHmac } from 'node:crypto';
import { generateReplyPieces } from '../core/reply-generator';
import { type AnthropicMessage, blocksOf, type MessagesRequest, type ThinkingConfig } from './anthropic-request-schemas';

/**
 * Anthropic's documented test string: a prompt holding it gets its thinking back as a
 * `redacted_thinking` block, so clients can exercise that path on purpose.
 */
export const ANTHROPIC_REDACTED_THINKING_TRIGGER = 'ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253';

/** Fixed, so a signature made by one simulator (or a test) is valid on every other one. */
const SIGNATURE_KEY = 'openrouter/provider-simulator/anthropic-thinking/v1';

/** How long the simulated model thinks: short, so tests stay small, yet several deltas long. */
const THINKING_TOKENS = 24;

/** With thinking on, the service refuses a `top_p` below this. */
const MIN_THINKING_TOP_P = 0.95;

const DOCS = 'https://docs.claude.com/en/docs/build-with-claude/extended-thinking';
const CONSIDERATIONS = `Please consult our documentation at ${DOCS}#important-considerations-when-using-extended-thinking`;

/** The thinking block of an answer: readable (possibly omitted) text with its signature, or redacted. */
export type PlannedThinking =
  | { type: 'thinking'; thinking: string; signature: string; pieces: readonly string[]; tokens: number }
  | { type: 'redacted_thinking'; data: string; tokens: number };

/**
 * The `signature` the simulator puts on a thinking block: base64 HMAC-SHA256 of exactly the
 * block's `thinking` text under a fixed simulator key. A handed-back block must carry it, so a
 * client that edits thinking or invents a signature is refused as by the real service; tests
 * use it to build valid history without a round trip.
 */
export function anthropicThinkingSignature(thinking: string): string {
  return createHmac('sha256', SIGNATURE_KEY).update(thinking, 'utf8').digest('base64');
}

/** Opaque like the service's encrypted payload, and deterministic for the same thinking. */
function redactedData(thinking: string): string {
  const part = (label: string): Buffer => createHmac('sha256', SIGNATURE_KEY).update(`${label}\u0000${thinking}`, 'utf8').digest();
  return Buffer.concat([part('redacted.1'), part('redacted.2'), part('redacted.3')]).toString('base64');
}

/**
 * The rules the service enforces around extended thinking, in its wording: the request's own
 * parameters, then the signatures of handed-back thinking, then the prefill and tool-loop
 * requirements.
 */
export function checkThinking(request: MessagesRequest): string | undefined {
  return checkThinkingParameters(request) ?? checkSignatures(request.messages) ?? checkPrefill(request) ?? checkToolLoop(request);
}

/** Thinking samples at temperature 1 and cannot be forced to call a tool; the budget lives inside max_tokens. */
function checkThinkingParameters(request: MessagesRequest): string | undefined {
  const thinking = request.thinking;
  if (thinking === undefined || thinking.type === 'disabled') return undefined;
  if (thinking.type === 'enabled' && request.max_tokens <= thinking.budget_tokens) {
    return `\`max_tokens\` must be greater than \`thinking.budget_tokens\`. Please consult our documentation at ${DOCS}#max-tokens-and-context-window-size`;
  }
  if (request.temperature !== undefined && request.temperature !== 1) return `\`temperature\` may only be set to 1 when thinking is enabled or in adaptive mode. ${CONSIDERATIONS}`;
  if (request.top_k !== undefined) return `\`top_k\` must be unset when thinking is enabled. ${CONSIDERATIONS}`;
  if (request.top_p !== undefined && request.top_p < MIN_THINKING_TOP_P) {
    return `\`top_p\` must be greater than or equal to ${MIN_THINKING_TOP_P} or unset when thinking is enabled. ${CONSIDERATIONS}`;
  }
  const choice = request.tool_choice?.type;
  if (choice === 'any' || choice === 'tool') return 'Thinking may not be enabled when tool_choice forces tool use.';
  return undefined;
}

/** Every handed-back `thinking` block must be one the simulator wrote, word for word. */
function checkSignatures(messages: readonly AnthropicMessage[]): string | undefined {
  for (const [i, message] of messages.entries()) {
    for (const [j, block] of blocksOf(message).entries()) {
      if (block.type === 'thinking' && block.signature !== anthropicThinkingSignature(block.thinking)) {
        return `messages.${i}.content.${j}: Invalid \`signature\` in \`thinking\` block`;
      }
    }
  }
  return undefined;
}

/**
 * A final assistant message (a prefill) is the turn the model continues, and with thinking on,
 * budget or adaptive, the service wants it to start with its thinking: a plain prefill is only
 * taken with thinking off.
 */
function checkPrefill(request: MessagesRequest): string | undefined {
  if (request.thinking === undefined || request.thinking.type === 'disabled') return undefined;
  const i = request.messages.length - 1;
  const last = request.messages[i];
  const first = last?.role === 'assistant' ? blocksOf(last)[0] : undefined;
  if (first === undefined || first.type === 'thinking' || first.type === 'redacted_thinking') return undefined;
  return missingThinking(i, first.type);
}

/**
 * With a fixed budget, the model resumes its own reasoning after a tool call, so the assistant
 * turn that called the tool must come back starting with its thinking. Adaptive mode has no
 * such requirement.
 */
function checkToolLoop(request: MessagesRequest): string | undefined {
  if (request.thinking?.type !== 'enabled') return undefined;
  const messages = request.messages;
  const i = toolLoopOpening(messages, (m) => blocksOf(m).some((b) => b.type === 'tool_result'));
  const first = i === undefined ? undefined : blocksOf(messages[i] as AnthropicMessage)[0];
  if (i === undefined || first === undefined || first.type === 'thinking' || first.type === 'redacted_thinking') return undefined;
  return missingThinking(i, first.type);
}

/**
 * The assistant message that opened the tool loop a request continues: the first after the
 * user's last own words (the loop's later steps are the same assistant turn, and without
 * interleaved thinking they carry none). Undefined when the request answers no tool results.
 */
export function toolLoopOpening<M extends { role: string }>(messages: readonly M[], hasToolResults: (m: M) => boolean): number | undefined {
  const last = messages[messages.length - 1];
  if (last?.role !== 'user' || !hasToolResults(last)) return undefined;
  let opening: number | undefined;
  for (let i = messages.length - 2; i >= 0; i--) {
    const message = messages[i] as M;
    if (message.role === 'assistant') opening = i;
    else if (!hasToolResults(message)) break;
  }
  return opening;
}

/** The service's refusal of a tool loop whose opening assistant message does not start with its thinking. */
export function missingThinking(i: number, found: string): string {
  return (
    `messages.${i}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${found}\`. ` +
    'When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). ' +
    'We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. ' +
    `Please consult our documentation at ${DOCS}`
  );
}

type ThinkingOn = Exclude<ThinkingConfig, { type: 'disabled' }>;

/**
 * How many tokens the model thinks before answering; 0 when it does not. A budget caps it;
 * adaptive mode skips thinking at effort `low` and always leaves room for one answer token.
 */
function thinkingTokens(thinking: ThinkingOn, request: MessagesRequest): number {
  if (thinking.type === 'enabled') return Math.min(THINKING_TOKENS, thinking.budget_tokens);
  if (request.output_config?.effort === 'low') return 0;
  return Math.max(0, Math.min(THINKING_TOKENS, request.max_tokens - 1));
}

/**
 * The thinking that precedes the answer, from the same deterministic generator as replies (seeded
 * apart from the answer). Redacted when the prompt holds the trigger; with `display: omitted` the
 * text is left out (the tokens are still spent and billed) and the signature signs the empty text.
 */
export function planThinking(request: MessagesRequest, seed: number, seedText: string, promptText: string): PlannedThinking | undefined {
  const thinking = request.thinking;
  if (thinking === undefined || thinking.type === 'disabled') return undefined;
  const tokens = thinkingTokens(thinking, request);
  if (tokens === 0) return undefined;
  const pieces = generateReplyPieces(seed, `thinking:${seedText}`, tokens);
  const text = pieces.join('');
  if (promptText.includes(ANTHROPIC_REDACTED_THINKING_TRIGGER)) return { type: 'redacted_thinking', data: redactedData(text), tokens };
  if (thinking.display === 'omitted') return { type: 'thinking', thinking: '', signature: anthropicThinkingSignature(''), pieces: [], tokens };
  return { type: 'thinking', thinking: text, signature: anthropicThinkingSignature(text), pieces, tokens };
}
