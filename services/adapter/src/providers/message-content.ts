import { createHash } from 'node:crypto';
import type { chatv1 } from '@openrouter/contracts';
import { partContent } from '@openrouter/openai-wire';

/**
 * Rules of message content that Claude's Messages API and Bedrock's Converse share (Converse
 * applies Claude's own checks to Claude models, and stricter ones of its own to every model), so
 * the Anthropic and Bedrock translations clean a conversation the same way.
 */

/** Both refuse empty and whitespace-only text blocks; such blocks carry nothing and are left out. */
export const nonBlank = (text: string): boolean => text.trim() !== '';

/**
 * The text of a text part: typed, or kept as JSON because it had keys the canonical form has no
 * slot for (such as `cache_control`). Undefined for any other part.
 */
export function partText(p: chatv1.ContentPart): string | undefined {
  return p.text ?? (p.rawJson ? partContent(p).text : undefined);
}

const TOOL_ID_CHARS = /[^A-Za-z0-9_-]/g;

/**
 * A tool call id as both accept it: only `[A-Za-z0-9_-]` (ids from other providers may carry more)
 * and at most `maxLength` characters. The same id always gives the same result, so a call and
 * its result still match; a shortened id ends in a digest of the whole, so distinct ids stay apart.
 */
export function safeToolId(id: string, maxLength = Number.POSITIVE_INFINITY): string {
  const safe = id.replace(TOOL_ID_CHARS, '_') || 'tool_call';
  if (safe.length <= maxLength) return safe;
  const digest = createHash('sha256').update(id).digest('hex').slice(0, 16);
  return `${safe.slice(0, Math.max(0, maxLength - digest.length - 1))}_${digest}`;
}

/** The description of a stub tool: the model is told not to call it, and on Anthropic cannot. */
export const HISTORY_TOOL_DESCRIPTION = 'Called earlier in this conversation and not available now; do not call it.';

/**
 * Both refuse tool calls and results in the history of a request that declares no tools, which
 * OpenAI accepts (agent frameworks send such histories to summarise or compact them). The names
 * of the stub tools declared for them: the calls' own names, in the characters and length tool
 * names allow, once each.
 */
export function historyToolNames(calledNames: readonly string[], maxLength: number): string[] {
  const names = new Set(calledNames.map((name) => name.replace(TOOL_ID_CHARS, '_').slice(0, maxLength)).filter((name) => name !== ''));
  return names.size > 0 ? [...names] : ['tool'];
}

interface Turn<B> {
  role: 'user' | 'assistant';
  content: B[];
}

const isText = <B extends object>(block: B | undefined): block is B & { text: string } =>
  block !== undefined && 'text' in block && typeof (block as { text: unknown }).text === 'string';

/**
 * A final assistant turn is a prefill, and Claude refuses one that ends in whitespace: its last
 * text block is trimmed, and dropped (with the turn, if nothing else is left) when that empties it.
 */
export function trimFinalAssistant<B extends object>(turns: Turn<B>[]): void {
  const last = turns[turns.length - 1];
  if (last?.role !== 'assistant') return;
  const block = last.content[last.content.length - 1];
  if (!isText(block)) return;
  block.text = block.text.trimEnd();
  if (block.text === '') last.content.pop();
  if (last.content.length === 0) turns.pop();
}
