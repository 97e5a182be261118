import type { PacedFrame } from '../core/stream-pacer';
import type { MessagePlan, PlannedBlock } from './anthropic-planner';
import type { PlannedThinking } from './anthropic-thinking';

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
}

export function anthropicError(type: string, message: string): AnthropicErrorBody {
  return { type: 'error', error: { type, message } };
}

/** The error `type` Anthropic uses for each status. */
export function errorTypeForStatus(status: number): string {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 504:
      return 'timeout_error';
    case 529:
      return 'overloaded_error';
  }
  return status >= 500 ? 'api_error' : 'invalid_request_error';
}

export function defaultErrorMessage(status: number, model: string | undefined): string {
  switch (status) {
    case 401:
      return 'invalid x-api-key';
    case 403:
      return 'Your API key does not have permission to use the specified resource.';
    case 404:
      return `model: ${model ?? 'unknown'}`;
    case 413:
      return 'Request exceeds the maximum allowed number of bytes.';
    case 429:
      return `This request would exceed the rate limit for your organization of input tokens per minute for ${model ?? 'this model'} (simulated). Please try again later.`;
    case 529:
      return 'Overloaded';
    case 504:
      return 'Request timed out (simulated).';
  }
  return status >= 500 ? 'Internal server error' : `Request failed with status ${status} (simulated).`;
}

export interface AnthropicUsageBody {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  /** The cache writes by how long they are kept. */
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
  output_tokens: number;
}

/** Input tokens apart from the cache's: Anthropic's `input_tokens` counts only those neither read nor written. */
function usage(plan: MessagePlan, outputTokens: number): AnthropicUsageBody {
  const { readTokens, write5mTokens, write1hTokens } = plan.cache;
  return {
    input_tokens: plan.inputTokens - readTokens - write5mTokens - write1hTokens,
    cache_creation_input_tokens: write5mTokens + write1hTokens,
    cache_read_input_tokens: readTokens,
    cache_creation: { ephemeral_5m_input_tokens: write5mTokens, ephemeral_1h_input_tokens: write1hTokens },
    output_tokens: outputTokens,
  };
}

function contentBlock(plan: MessagePlan): unknown {
  const b = plan.block;
  return b.type === 'text' ? { type: 'text', text: b.text } : { type: 'tool_use', id: b.id, name: b.name, input: b.input };
}

function thinkingBlock(thinking: PlannedThinking): unknown {
  return thinking.type === 'redacted_thinking'
    ? { type: 'redacted_thinking', data: thinking.data }
    : { type: 'thinking', thinking: thinking.thinking, signature: thinking.signature };
}

/** The thinking block, when there is one, comes before the answer. */
function contentBlocks(plan: MessagePlan): unknown[] {
  return plan.thinking ? [thinkingBlock(plan.thinking), contentBlock(plan)] : [contentBlock(plan)];
}

export function messageBody(plan: MessagePlan): unknown {
  return {
    id: plan.id,
    type: 'message',
    role: 'assistant',
    model: plan.model,
    content: contentBlocks(plan),
    stop_reason: plan.stopReason,
    stop_sequence: plan.stopSequence,
    usage: usage(plan, plan.outputTokens),
  };
}

const event = (name: string, payload: unknown): string => `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;

const blockStart = (index: number, block: unknown): PacedFrame => ({ text: event('content_block_start', { type: 'content_block_start', index, content_block: block }) });
const blockDelta = (index: number, delta: unknown, tokenStep?: number): PacedFrame => ({
  text: event('content_block_delta', { type: 'content_block_delta', index, delta }),
  ...(tokenStep === undefined ? {} : { tokenStep }),
});
const blockStop = (index: number): PacedFrame => ({ text: event('content_block_stop', { type: 'content_block_stop', index }) });

/**
 * The stream as Anthropic sends it: message_start (input usage, output 1), the first content
 * block's start, a ping, then each block (thinking first when on) as start, deltas and stop,
 * message_delta with the stop reason and final output usage, then message_stop.
 */
export function messageFrames(plan: MessagePlan): PacedFrame[] {
  const start: PacedFrame = {
    text: event('message_start', {
      type: 'message_start',
      message: { id: plan.id, type: 'message', role: 'assistant', model: plan.model, content: [], stop_reason: null, stop_sequence: null, usage: usage(plan, 1) },
    }),
  };
  const thinking = plan.thinking;
  const blocks = thinking ? [...thinkingFrames(thinking), ...answerFrames(plan.block, 1, thinking.tokens)] : answerFrames(plan.block, 0, 0);
  const [firstStart, ...rest] = blocks;
  return [
    start,
    ...(firstStart ? [firstStart] : []),
    { text: event('ping', { type: 'ping' }) },
    ...rest,
    {
      text: event('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: plan.stopReason, stop_sequence: plan.stopSequence },
        usage: { output_tokens: plan.outputTokens },
      }),
    },
    { text: event('message_stop', { type: 'message_stop' }) },
  ];
}

/**
 * A thinking block at index 0: one thinking_delta per token (token steps from 0), then its
 * signature in one signature_delta. A redacted block arrives whole in its start, without deltas.
 */
function thinkingFrames(thinking: PlannedThinking): PacedFrame[] {
  if (thinking.type === 'redacted_thinking') return [blockStart(0, { type: 'redacted_thinking', data: thinking.data }), blockStop(0)];
  return [
    blockStart(0, { type: 'thinking', thinking: '', signature: '' }),
    ...thinking.pieces.map((piece, step) => blockDelta(0, { type: 'thinking_delta', thinking: piece }, step)),
    blockDelta(0, { type: 'signature_delta', signature: thinking.signature }),
    blockStop(0),
  ];
}

/**
 * The answer block at `index`: text_delta per token, or input_json_delta fragments after an
 * empty first one for a tool. Its token steps continue after the thinking's (`firstStep`), so
 * pacing spends the thinking time even when the thinking text is not shown.
 */
function answerFrames(b: PlannedBlock, index: number, firstStep: number): PacedFrame[] {
  const frames: PacedFrame[] = [blockStart(index, b.type === 'text' ? { type: 'text', text: '' } : { type: 'tool_use', id: b.id, name: b.name, input: {} })];
  if (b.type === 'tool_use') frames.push(blockDelta(index, { type: 'input_json_delta', partial_json: '' }));
  b.pieces.forEach((piece, step) => {
    const delta = b.type === 'text' ? { type: 'text_delta', text: piece } : { type: 'input_json_delta', partial_json: piece };
    frames.push(blockDelta(index, delta, firstStep + step));
  });
  frames.push(blockStop(index));
  return frames;
}
