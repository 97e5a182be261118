import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { generateReplyPieces } from '../core/reply-generator';
import { thinkingConfig } from './anthropic-request-schemas';
import { ANTHROPIC_REDACTED_THINKING_TRIGGER, anthropicThinkingSignature, missingThinking, toolLoopOpening } from './anthropic-thinking';
import type { ConverseContentBlock, ConverseRequest } from './bedrock-request-schemas';

/**
 * Claude's extended thinking through Converse: Claude takes Anthropic's own `thinking` and
 * `output_config` in `additionalModelRequestFields`, applies Anthropic's rules to them, and
 * answers with a `reasoningContent` block first. Signatures are the Anthropic wire's
 * (`anthropicThinkingSignature`), so thinking signed by one simulated Claude is valid on the other.
 */

/** Bedrock passes the model's own refusals on with this prefix. */
const MODEL_ERROR = 'The model returned the following errors: ';

/** How long the simulated model thinks: short, so tests stay small, yet several deltas long. */
const THINKING_TOKENS = 24;
/** With thinking on, Claude refuses a `topP` below this. */
const MIN_THINKING_TOP_P = 0.95;

const DOCS = 'https://docs.claude.com/en/docs/build-with-claude/extended-thinking';
const CONSIDERATIONS = `Please consult our documentation at ${DOCS}#important-considerations-when-using-extended-thinking`;

/** Key of the redacted thinking bytes, so the same thinking always gives the same opaque bytes. */
const REDACTED_KEY = 'openrouter/provider-simulator/bedrock-thinking/v1';


/** The Anthropic fields of `additionalModelRequestFields` the simulator reads; others pass unread. */
const claudeFields = z.looseObject({
  thinking: thinkingConfig.optional(),
  output_config: z.looseObject({ effort: z.enum(['low', 'medium', 'high', 'xhigh', 'max']).optional() }).optional(),
  top_k: z.int().min(0).optional(),
});
type ClaudeFields = z.infer<typeof claudeFields>;
type ThinkingOn = Exclude<z.infer<typeof thinkingConfig>, { type: 'disabled' }>;

/** The reasoning block of an answer: readable (possibly omitted) text with its signature, or redacted bytes (base64). */
export type PlannedReasoning =
  | { type: 'text'; text: string; signature: string; pieces: readonly string[]; tokens: number }
  | { type: 'redacted'; data: string; tokens: number };

type Fields = { ok: true; fields: ClaudeFields } | { ok: false; message: string };

function fieldsOf(request: ConverseRequest): Fields {
  const parsed = claudeFields.safeParse(request['additionalModelRequestFields'] ?? {});
  if (parsed.success) return { ok: true, fields: parsed.data };
  // Named by dotted path, as Anthropic names a failing field (`thinking.budget_tokens: …`).
  const issue = parsed.error.issues[0];
  const path = issue?.path.map(String).join('.') ?? '';
  if (issue?.code === 'unrecognized_keys') return { ok: false, message: `${MODEL_ERROR}${path === '' ? '' : `${path}.`}${issue.keys.join(', ')}: Extra inputs are not permitted` };
  return { ok: false, message: `${MODEL_ERROR}${path === '' ? 'additionalModelRequestFields' : path}: ${issue?.message ?? 'Invalid value'}` };
}

const thinkingOn = (fields: ClaudeFields): ThinkingOn | undefined => (fields.thinking === undefined || fields.thinking.type === 'disabled' ? undefined : fields.thinking);

/**
 * The rules Claude enforces around extended thinking, in its wording behind Bedrock's prefix: the
 * thinking fields themselves, the parameters thinking forbids, the signatures of handed-back
 * thinking, then the tool-loop requirement. For Claude models only; undefined when the request passes.
 */
export function checkClaudeThinking(request: ConverseRequest): string | undefined {
  const parsed = fieldsOf(request);
  if (!parsed.ok) return parsed.message;
  const thinking = thinkingOn(parsed.fields);
  const problem = (thinking ? checkParameters(request, parsed.fields, thinking) : undefined) ?? checkSignatures(request) ?? (thinking ? checkToolLoop(request, thinking) : undefined);
  return problem === undefined ? undefined : `${MODEL_ERROR}${problem}`;
}

/** Thinking samples at temperature 1 and cannot be forced to call a tool; the budget lives inside maxTokens. */
function checkParameters(request: ConverseRequest, fields: ClaudeFields, thinking: ThinkingOn): string | undefined {
  const inference = request.inferenceConfig;
  if (thinking.type === 'enabled' && inference?.maxTokens !== undefined && inference.maxTokens <= thinking.budget_tokens) {
    return `\`max_tokens\` must be greater than \`thinking.budget_tokens\`. Please consult our documentation at ${DOCS}#max-tokens-and-context-window-size`;
  }
  if (inference?.temperature !== undefined && inference.temperature !== 1) return `\`temperature\` may only be set to 1 when thinking is enabled or in adaptive mode. ${CONSIDERATIONS}`;
  if (fields.top_k !== undefined) return `\`top_k\` must be unset when thinking is enabled. ${CONSIDERATIONS}`;
  if (inference?.topP !== undefined && inference.topP < MIN_THINKING_TOP_P) {
    return `\`top_p\` must be greater than or equal to ${MIN_THINKING_TOP_P} or unset when thinking is enabled. ${CONSIDERATIONS}`;
  }
  const choice = request.toolConfig?.toolChoice;
  if (choice !== undefined && ('any' in choice || 'tool' in choice)) return 'Thinking may not be enabled when tool_choice forces tool use.';
  return undefined;
}

/** Every handed-back reasoning text must be one the simulator signed, word for word. */
function checkSignatures(request: ConverseRequest): string | undefined {
  for (const [i, message] of request.messages.entries()) {
    for (const [j, block] of message.content.entries()) {
      const reasoning = block.reasoningContent;
      if (reasoning !== undefined && 'reasoningText' in reasoning && reasoning.reasoningText.signature !== anthropicThinkingSignature(reasoning.reasoningText.text)) {
        return `messages.${i}.content.${j}: Invalid \`signature\` in \`thinking\` block`;
      }
    }
  }
  return undefined;
}

/** The Anthropic type of a Converse block, as Claude names it in errors. */
function blockType(block: ConverseContentBlock): string {
  if (block.reasoningContent !== undefined) return 'reasoningText' in block.reasoningContent ? 'thinking' : 'redacted_thinking';
  if (block.toolUse !== undefined) return 'tool_use';
  if (block.toolResult !== undefined) return 'tool_result';
  if (block.image !== undefined) return 'image';
  return 'text';
}

/**
 * With a fixed budget, the model resumes its own reasoning after a tool call, so the assistant
 * turn that called the tool must come back starting with its thinking. Adaptive mode has no
 * such requirement.
 */
function checkToolLoop(request: ConverseRequest, thinking: ThinkingOn): string | undefined {
  if (thinking.type !== 'enabled') return undefined;
  const messages = request.messages;
  const i = toolLoopOpening(messages, (m) => m.content.some((b) => b.toolResult !== undefined));
  const first = i === undefined ? undefined : messages[i]?.content[0];
  if (i === undefined || first === undefined || first.reasoningContent !== undefined) return undefined;
  return missingThinking(i, blockType(first));
}

/** Opaque like the service's encrypted payload, and deterministic for the same thinking. */
function redactedData(thinking: string): string {
  const part = (label: string): Buffer => createHmac('sha256', REDACTED_KEY).update(`${label}\u0000${thinking}`, 'utf8').digest();
  return Buffer.concat([part('redacted.1'), part('redacted.2'), part('redacted.3')]).toString('base64');
}

/**
 * How many tokens the model thinks before answering; 0 when it does not. A budget caps it;
 * adaptive mode skips thinking at effort `low` and always leaves room for one answer token.
 */
function thinkingTokens(thinking: ThinkingOn, fields: ClaudeFields, maxTokens: number | undefined): number {
  if (thinking.type === 'enabled') return Math.min(THINKING_TOKENS, thinking.budget_tokens);
  if (fields.output_config?.effort === 'low') return 0;
  return Math.max(0, Math.min(THINKING_TOKENS, (maxTokens ?? Number.POSITIVE_INFINITY) - 1));
}

/**
 * The reasoning that precedes a Claude answer when the request turns thinking on, from the same
 * deterministic generator as replies (seeded apart from the answer). Redacted when the prompt
 * holds Anthropic's trigger string; with `display: omitted` the text is left out (the tokens are
 * still spent and billed) and the signature signs the empty text. Undefined without thinking, for
 * other models, and for a request the rules refuse (already answered by checkClaudeThinking).
 */
export function planReasoning(request: ConverseRequest, claude: boolean, seed: number, seedText: string, promptText: string): PlannedReasoning | undefined {
  if (!claude) return undefined;
  const parsed = fieldsOf(request);
  const thinking = parsed.ok ? thinkingOn(parsed.fields) : undefined;
  if (!parsed.ok || thinking === undefined) return undefined;
  const tokens = thinkingTokens(thinking, parsed.fields, request.inferenceConfig?.maxTokens);
  if (tokens === 0) return undefined;
  const pieces = generateReplyPieces(seed, `thinking:${seedText}`, tokens);
  const text = pieces.join('');
  if (promptText.includes(ANTHROPIC_REDACTED_THINKING_TRIGGER)) return { type: 'redacted', data: redactedData(text), tokens };
  if (thinking.display === 'omitted') return { type: 'text', text: '', signature: anthropicThinkingSignature(''), pieces: [], tokens };
  return { type: 'text', text, signature: anthropicThinkingSignature(text), pieces, tokens };
}

/** The reasoning block as Converse writes it in an answer. */
export function reasoningContentOf(reasoning: PlannedReasoning): Record<string, unknown> {
  return reasoning.type === 'redacted' ? { redactedContent: reasoning.data } : { reasoningText: { text: reasoning.text, signature: reasoning.signature } };
}
