import { EventStreamCodec, type MessageHeaders } from '@smithy/eventstream-codec';
import { ChatCompletionStream } from 'openai/lib/ChatCompletionStream';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { toOpenAIChunk } from '@openrouter/openai-wire';
import { JSON_RESPONSE_TOOL } from './bedrock-request';
import { ConverseStreamTranslator, decodeStreamMessage, eventStreamMessages, type StreamContext } from './bedrock-stream';
import textTranscript from './fixtures/converse-stream-text.transcript.json';
import thinkingTranscript from './fixtures/converse-stream-thinking.transcript.json';
import throttledTranscript from './fixtures/converse-stream-throttled.transcript.json';
import toolsTranscript from './fixtures/converse-stream-tools.transcript.json';
import { countTextTokens } from '../text-tokens';

type TranscriptEntry = { event: string; payload: unknown } | { exception: string; payload: unknown };

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const str = (value: string) => ({ type: 'string' as const, value });

/** A transcript as the bytes Bedrock sends: one event-stream message per entry. */
function encode(entries: readonly TranscriptEntry[]): Buffer {
  return Buffer.concat(
    entries.map((entry) => {
      const headers: MessageHeaders =
        'event' in entry
          ? { ':event-type': str(entry.event), ':content-type': str('application/json'), ':message-type': str('event') }
          : { ':exception-type': str(entry.exception), ':content-type': str('application/json'), ':message-type': str('exception') };
      return codec.encode({ headers, body: fromUtf8(JSON.stringify(entry.payload)) });
    }),
  );
}

async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

const CTX: StreamContext = { id: 'chatcmpl-r1', created: 1_740_000_000, model: 'anthropic.claude-3-5-sonnet-20241022-v2:0', includeUsage: true, jsonTool: undefined, provider: 'bedrock' };

/** Replays bytes through framing, decoding and translation, as the adapter does. */
async function replay(bytes: Buffer, ctx: Partial<StreamContext> = {}, chunkSize = bytes.length): Promise<{ chunks: chatv1.ChatChunk[]; finished: boolean }> {
  const translator = new ConverseStreamTranslator({ ...CTX, ...ctx });
  const chunks: chatv1.ChatChunk[] = [];
  for await (const frame of eventStreamMessages(pieces(bytes, chunkSize), 'bedrock')) chunks.push(...translator.accept(decodeStreamMessage(frame, 'bedrock')));
  return { chunks, finished: translator.finished };
}

async function replayError(bytes: Buffer, ctx: Partial<StreamContext> = {}): Promise<{ error: GatewayError; chunks: chatv1.ChatChunk[] }> {
  const translator = new ConverseStreamTranslator({ ...CTX, ...ctx });
  const chunks: chatv1.ChatChunk[] = [];
  try {
    for await (const frame of eventStreamMessages(pieces(bytes, 64), 'bedrock')) chunks.push(...translator.accept(decodeStreamMessage(frame, 'bedrock')));
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return { error: error as GatewayError, chunks };
  }
  throw new Error('expected the stream to fail');
}

const openai = (chunks: chatv1.ChatChunk[]) => chunks.map((c) => toOpenAIChunk(c, 'public-model'));

describe('ConverseStream transcripts', () => {
  it('turns a text transcript into OpenAI chunks: role, deltas, finish, usage', async () => {
    const { chunks, finished } = await replay(encode(textTranscript));
    expect(finished).toBe(true);
    const envelope = { id: 'chatcmpl-r1', object: 'chat.completion.chunk', created: 1_740_000_000, model: 'public-model' };
    const choice = (delta: unknown, finish: string | null = null) => ({ ...envelope, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    expect(openai(chunks)).toEqual([
      choice({ role: 'assistant', content: '' }),
      choice({ content: 'Olá' }),
      choice({ content: ', café ' }),
      choice({ content: '☕🌍 ok' }),
      choice({}, 'stop'),
      {
        ...envelope,
        choices: [],
        usage: { prompt_tokens: 332, completion_tokens: 7, total_tokens: 339, prompt_tokens_details: { cached_tokens: 300 }, completion_tokens_details: { reasoning_tokens: 0 } },
      },
    ]);
    expect(chunks[chunks.length - 1]?.usage).toMatchObject({ cachedReadTokens: 300, cacheWriteTokens: 20 });
  });

  it('names the stop sequence on the finishing chunk, from messageStop (Claude) or the only one sent', async () => {
    const stoppedAt = (fields: unknown) =>
      encode(textTranscript.map((entry) => (entry.event === 'messageStop' ? { event: 'messageStop', payload: { stopReason: 'stop_sequence', ...(fields === undefined ? {} : { additionalModelResponseFields: fields }) } } : entry)));
    const finish = (chunks: chatv1.ChatChunk[]) => chunks.find((c) => c.choices[0]?.finishReason !== undefined)?.choices[0];
    expect(finish((await replay(stoppedAt({ stop_sequence: 'END' }), { stopSequences: ['STOP', 'END'] })).chunks)).toMatchObject({ finishReason: 'stop', stopSequence: 'END' });
    expect(finish((await replay(stoppedAt(undefined), { stopSequences: ['END'] })).chunks)?.stopSequence).toBe('END');
    expect(finish((await replay(stoppedAt(undefined), { stopSequences: ['STOP', 'END'] })).chunks)?.stopSequence).toBeUndefined();
    expect(finish((await replay(encode(textTranscript), { stopSequences: ['END'] })).chunks)?.stopSequence).toBeUndefined();
  });

  it('gives the same chunks when the bytes arrive one at a time, splitting frames and UTF-8 characters', async () => {
    const whole = await replay(encode(textTranscript));
    const trickled = await replay(encode(textTranscript), {}, 1);
    expect(trickled.chunks).toEqual(whole.chunks);
  });

  it('streams parallel tool uses as id/name first, then arguments, indexed by position', async () => {
    const { chunks } = await replay(encode(toolsTranscript), { includeUsage: false });
    const toolDeltas = openai(chunks).flatMap((c) => ((c['choices'] as { delta: { tool_calls?: unknown[] } }[])[0]?.delta.tool_calls ?? []) as unknown[]);
    expect(toolDeltas).toEqual([
      { index: 0, id: 'tooluse_Aa1Bb2Cc3Dd4Ee5Ff6Gg7H', type: 'function', function: { name: 'lookup_tide', arguments: '' } },
      { index: 0, function: { arguments: '{"port": "Po' } },
      { index: 0, function: { arguments: 'rto"}' } },
      { index: 1, id: 'tooluse_Hh8Ii9Jj0Kk1Ll2Mm3Nn4O', type: 'function', function: { name: 'lookup_tide', arguments: '' } },
      { index: 1, function: { arguments: '{"port": "Faro"}' } },
    ]);
    expect(chunks.map((c) => c.choices[0]?.delta?.content).filter((t) => t)).toEqual(['Looking up both.']);
    expect(chunks[chunks.length - 1]?.choices[0]?.finishReason).toBe('tool_calls');
    expect(chunks.every((c) => c.usage === undefined)).toBe(true);
  });

  it('streams the json_schema answer tool as content', async () => {
    const transcript: TranscriptEntry[] = [
      { event: 'messageStart', payload: { role: 'assistant' } },
      { event: 'contentBlockStart', payload: { contentBlockIndex: 0, start: { toolUse: { toolUseId: 'tooluse_j', name: JSON_RESPONSE_TOOL } } } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { toolUse: { input: '{"ok":' } } } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { toolUse: { input: 'true}' } } } },
      { event: 'contentBlockStop', payload: { contentBlockIndex: 0 } },
      { event: 'messageStop', payload: { stopReason: 'tool_use' } },
    ];
    const { chunks } = await replay(encode(transcript), { jsonTool: JSON_RESPONSE_TOOL });
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('{"ok":true}');
    expect(chunks.every((c) => c.choices[0]?.delta?.toolCalls.length === 0)).toBe(true);
    expect(chunks[chunks.length - 1]?.choices[0]?.finishReason).toBe('stop');
  });

  it('ends a tool call streamed without input with "{}" arguments, as the non-streamed answer has', async () => {
    const transcript: TranscriptEntry[] = [
      { event: 'messageStart', payload: { role: 'assistant' } },
      { event: 'contentBlockStart', payload: { contentBlockIndex: 0, start: { toolUse: { toolUseId: 'tooluse_clock', name: 'get_time' } } } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { toolUse: { input: '' } } } },
      { event: 'contentBlockStop', payload: { contentBlockIndex: 0 } },
      { event: 'messageStop', payload: { stopReason: 'tool_use' } },
    ];
    const { chunks } = await replay(encode(transcript), { includeUsage: false });
    const toolDeltas = openai(chunks).flatMap((c) => ((c['choices'] as { delta: { tool_calls?: unknown[] } }[])[0]?.delta.tool_calls ?? []) as unknown[]);
    expect(toolDeltas).toEqual([
      { index: 0, id: 'tooluse_clock', type: 'function', function: { name: 'get_time', arguments: '' } },
      { index: 0, function: { arguments: '{}' } },
    ]);
    expect(chunks[chunks.length - 1]?.choices[0]?.finishReason).toBe('tool_calls');
  });

  it('ends with the mapped error after the chunks already translated when an exception frame arrives', async () => {
    const { error, chunks } = await replayError(encode(throttledTranscript as TranscriptEntry[]));
    expect(error).toMatchObject({ kind: 'rate_limited', retryable: true, upstreamStatus: 429 });
    expect(error.message).toContain('Too many tokens');
    expect(chunks.map((c) => c.choices[0]?.delta?.content)).toEqual(['', 'Partial']);
  });

  it.each([
    ['modelStreamErrorException', 'upstream_error', true],
    ['internalServerException', 'upstream_error', true],
    ['serviceUnavailableException', 'unavailable', true],
    ['validationException', 'bad_request', false],
  ])('maps the %s frame to %s', async (exception, kind, retryable) => {
    const bytes = encode([{ event: 'messageStart', payload: { role: 'assistant' } }, { exception, payload: { message: 'boom' } }]);
    await expect(replayError(bytes).then((r) => r.error)).resolves.toMatchObject({ kind, retryable });
  });

  it('maps an error message (":message-type: error") to a canonical error', async () => {
    const bytes = Buffer.from(
      codec.encode({ headers: { ':message-type': str('error'), ':error-code': str('InternalFailure'), ':error-message': str('oops') }, body: new Uint8Array() }),
    );
    await expect(replayError(bytes).then((r) => r.error)).resolves.toMatchObject({ kind: 'upstream_error' });
  });

  it('reports a stream without messageStop as unfinished', async () => {
    const { finished } = await replay(encode(textTranscript.slice(0, 3)));
    expect(finished).toBe(false);
  });

  it.each([
    ['a truncated frame', (b: Buffer) => b.subarray(0, b.length - 5)],
    ['a corrupted checksum', (b: Buffer) => Buffer.concat([b.subarray(0, b.length - 1), Buffer.from([(b[b.length - 1] ?? 0) ^ 0xff])])],
    ['an impossible length prefix', (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 3]), b])],
  ])('rejects %s as upstream_error', async (_name, damage) => {
    await expect(replayError(damage(encode(textTranscript))).then((r) => r.error)).resolves.toMatchObject({ kind: 'upstream_error', retryable: true });
  });

  it.each(['malformed_model_output', 'malformed_tool_use'])('fails a stream that stopped with %s before any text or tool call as a 502', async (stopReason) => {
    const bytes = encode([
      { event: 'messageStart', payload: { role: 'assistant' } },
      { event: 'messageStop', payload: { stopReason } },
      { event: 'metadata', payload: { usage: { inputTokens: 812, outputTokens: 0, totalTokens: 812 }, metrics: { latencyMs: 1450 } } },
    ]);
    const { error, chunks } = await replayError(bytes);
    expect(error).toMatchObject({ kind: 'upstream_error', retryable: false, provider: 'bedrock', message: `The provider "bedrock" ended the answer without content (stop reason ${stopReason}).` });
    // Only the role chunk went out, which does not commit the request to this deployment.
    expect(openai(chunks)).toEqual([expect.objectContaining({ choices: [expect.objectContaining({ delta: { role: 'assistant', content: '' } })] })]);
  });

  it('keeps the text of an answer that stopped with malformed_tool_use after it', async () => {
    const bytes = encode([...textTranscript.slice(0, 5), { event: 'messageStop', payload: { stopReason: 'malformed_tool_use' } }]);
    const { chunks, finished } = await replay(bytes);
    expect(finished).toBe(true);
    expect(chunks[chunks.length - 1]?.choices[0]?.finishReason).toBe('stop');
  });

  it("estimates Claude's reasoning tokens in the usage chunk from its streamed thinking text, inside completion_tokens as billed", async () => {
    const { chunks } = await replay(encode(thinkingTranscript as TranscriptEntry[]), {}, 5);
    // The thinking text is 14 tokens; the output beyond the answer ("Lisbon sits on the Tagus estuary.", 10 tokens) is 86, the larger.
    expect(chunks[chunks.length - 1]?.usage).toEqual({ promptTokens: 21, completionTokens: 96, totalTokens: 117, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 86, estimated: false });
  });

  describe("Claude's reasoning tokens beyond a short thinking summary", () => {
    const usage = (outputTokens: number) => ({ event: 'metadata', payload: { usage: { inputTokens: 21, outputTokens, totalTokens: 21 + outputTokens } } });
    const text = (index: number, ...parts: string[]): TranscriptEntry[] => [
      ...parts.map((t) => ({ event: 'contentBlockDelta', payload: { contentBlockIndex: index, delta: { text: t } } })),
      { event: 'contentBlockStop', payload: { contentBlockIndex: index } },
    ];
    const lastUsage = async (entries: TranscriptEntry[]) => {
      const { chunks } = await replay(encode(entries), {}, 7);
      return chunks[chunks.length - 1]?.usage;
    };

    it('counts the output beyond the visible answer (text, tool names and inputs)', async () => {
      const u = await lastUsage([
        { event: 'messageStart', payload: { role: 'assistant' } },
        { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { reasoningContent: { text: 'Tides first.' } } } },
        { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { reasoningContent: { signature: 'c2ln' } } } },
        { event: 'contentBlockStop', payload: { contentBlockIndex: 0 } },
        ...text(1, 'Checking ', 'Porto.'),
        { event: 'contentBlockStart', payload: { contentBlockIndex: 2, start: { toolUse: { toolUseId: 'tooluse_1', name: 'lookup_tide' } } } },
        { event: 'contentBlockDelta', payload: { contentBlockIndex: 2, delta: { toolUse: { input: '{"port":' } } } },
        { event: 'contentBlockDelta', payload: { contentBlockIndex: 2, delta: { toolUse: { input: '"Porto"}' } } } },
        { event: 'contentBlockStop', payload: { contentBlockIndex: 2 } },
        { event: 'messageStop', payload: { stopReason: 'tool_use' } },
        usage(1500),
      ]);
      const answer = countTextTokens('Checking Porto.') + countTextTokens('lookup_tide') + countTextTokens('{"port":"Porto"}');
      expect(answer).toBeLessThan(20);
      expect(u).toMatchObject({ completionTokens: 1500, reasoningTokens: 1500 - answer });
    });

    it('gives redacted thinking the output beyond the answer, and a stream without thinking none', async () => {
      const redacted = await lastUsage([
        { event: 'messageStart', payload: { role: 'assistant' } },
        { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { reasoningContent: { redactedContent: 'RW5j' } } } },
        { event: 'contentBlockStop', payload: { contentBlockIndex: 0 } },
        ...text(1, 'Done.'),
        { event: 'messageStop', payload: { stopReason: 'end_turn' } },
        usage(300),
      ]);
      expect(redacted).toMatchObject({ completionTokens: 300, reasoningTokens: 300 - countTextTokens('Done.') });
      const plain = await lastUsage([{ event: 'messageStart', payload: { role: 'assistant' } }, ...text(0, 'Done.'), { event: 'messageStop', payload: { stopReason: 'end_turn' } }, usage(300)]);
      expect(plain).toMatchObject({ completionTokens: 300, reasoningTokens: 0 });
    });
  });

  const reasoningOf = (chunks: chatv1.ChatChunk[]) => chunks.map((c) => c.choices[0]?.delta?.extraJson ?? '').filter((x) => x !== '').map((x) => JSON.parse(x) as Record<string, unknown>);

  it("streams Claude's reasoning as reasoning_content deltas and the signed block once at its stop, before the answer", async () => {
    const transcript: TranscriptEntry[] = [
      { event: 'messageStart', payload: { role: 'assistant' } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { reasoningContent: { text: 'Count the ' } } } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { reasoningContent: { text: "r's." } } } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { reasoningContent: { text: '' } } } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { reasoningContent: { signature: 'RXAwQ0NrZ0lDeEFC' } } } },
      { event: 'contentBlockStop', payload: { contentBlockIndex: 0 } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 1, delta: { text: 'Three.' } } },
      { event: 'contentBlockStop', payload: { contentBlockIndex: 1 } },
      { event: 'messageStop', payload: { stopReason: 'end_turn' } },
    ];
    const { chunks } = await replay(encode(transcript), { includeUsage: false }, 7);
    const deltas = openai(chunks).map((c) => (c['choices'] as { delta: Record<string, unknown> }[])[0]?.delta);
    expect(deltas).toEqual([
      { role: 'assistant', content: '' },
      { reasoning_content: 'Count the ' },
      { reasoning_content: "r's." },
      { thinking_blocks: [{ type: 'thinking', thinking: "Count the r's.", signature: 'RXAwQ0NrZ0lDeEFC' }] },
      { content: 'Three.' },
      {},
    ]);
    // Other models' reasoning (DeepSeek, …) is unsigned: text only, no block to hand back.
    const unsigned = await replay(encode([...transcript.slice(0, 3), ...transcript.slice(5)]), { includeUsage: false });
    expect(reasoningOf(unsigned.chunks)).toEqual([{ reasoning_content: 'Count the ' }, { reasoning_content: "r's." }]);
  });

  it("sends Claude's redacted reasoning once as a redacted_thinking block, whole even when its bytes come in several deltas", async () => {
    const transcript: TranscriptEntry[] = [
      { event: 'messageStart', payload: { role: 'assistant' } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { reasoningContent: { redactedContent: 'ZW5jcnlw' } } } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { reasoningContent: { redactedContent: 'dGVk' } } } },
      { event: 'contentBlockStop', payload: { contentBlockIndex: 0 } },
      { event: 'contentBlockStart', payload: { contentBlockIndex: 1, start: { toolUse: { toolUseId: 'tooluse_r', name: 'lookup' } } } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 1, delta: { toolUse: { input: '{"q":"x"}' } } } },
      { event: 'contentBlockStop', payload: { contentBlockIndex: 1 } },
      { event: 'messageStop', payload: { stopReason: 'tool_use' } },
    ];
    const { chunks } = await replay(encode(transcript), { includeUsage: false });
    expect(reasoningOf(chunks)).toEqual([{ thinking_blocks: [{ type: 'redacted_thinking', data: 'ZW5jcnlwdGVk' }] }]);
    expect(chunks[chunks.length - 1]?.choices[0]?.finishReason).toBe('tool_calls');
  });

  it("sends every Claude reasoning block so far in each thinking_blocks delta, so the OpenAI SDK's stream helper ends with them all", async () => {
    const transcript: TranscriptEntry[] = [
      { event: 'messageStart', payload: { role: 'assistant' } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 0, delta: { reasoningContent: { redactedContent: 'ZW5jcnlwdGVk' } } } },
      { event: 'contentBlockStop', payload: { contentBlockIndex: 0 } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 1, delta: { reasoningContent: { text: 'Oslo ' } } } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 1, delta: { reasoningContent: { text: 'first.' } } } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 1, delta: { reasoningContent: { signature: 'c2lnLTE=' } } } },
      { event: 'contentBlockStop', payload: { contentBlockIndex: 1 } },
      { event: 'contentBlockStart', payload: { contentBlockIndex: 2, start: { toolUse: { toolUseId: 'tooluse_o', name: 'get_weather' } } } },
      { event: 'contentBlockDelta', payload: { contentBlockIndex: 2, delta: { toolUse: { input: '{"city":"Oslo"}' } } } },
      { event: 'contentBlockStop', payload: { contentBlockIndex: 2 } },
      { event: 'messageStop', payload: { stopReason: 'tool_use' } },
    ];
    const { chunks } = await replay(encode(transcript), { includeUsage: false });
    const redacted = { type: 'redacted_thinking', data: 'ZW5jcnlwdGVk' };
    const signed = { type: 'thinking', thinking: 'Oslo first.', signature: 'c2lnLTE=' };
    expect(reasoningOf(chunks)).toEqual([{ thinking_blocks: [redacted] }, { reasoning_content: 'Oslo ' }, { reasoning_content: 'first.' }, { thinking_blocks: [redacted, signed] }]);

    // The helper keeps the latest value of a field OpenAI does not define (and adds up only its own: reasoning_content is the last fragment).
    const lines = openai(chunks).map((c) => `${JSON.stringify(c)}\n`).join('');
    const final = await ChatCompletionStream.fromReadableStream(new Response(lines).body as ReadableStream).finalChatCompletion();
    const message: Record<string, unknown> = { ...final.choices[0]?.message };
    expect(message['thinking_blocks']).toEqual([redacted, signed]);
    expect(message['reasoning_content']).toBe('first.');
  });

  it('rejects a delta for a tool block that never started', async () => {
    const bytes = encode([{ event: 'contentBlockDelta', payload: { contentBlockIndex: 3, delta: { toolUse: { input: '{}' } } } }]);
    await expect(replayError(bytes).then((r) => r.error)).resolves.toMatchObject({ kind: 'upstream_error' });
  });
});
