import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { fromGeminiResponse } from './gemini-response';
import { GeminiStreamTranslator } from './gemini-stream';
import { estimatedUsage } from './gemini-usage';

const ctx = { requestId: 'req-1', created: 1_700_000_000, upstreamModel: 'gemini-2.5-flash', provider: 'gemini', estimateUsage: (): chatv1.Usage => estimatedUsage(1, 1) };
const usageMetadata = { promptTokenCount: 2595, totalTokenCount: 2595 };
const response = (candidate: Record<string, unknown>) => ({ candidates: [{ index: 0, ...candidate }], usageMetadata, modelVersion: 'gemini-2.5-flash', responseId: 'resp-1' });

function failure(run: () => unknown): GatewayError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('expected a GatewayError');
}

describe('a Gemini candidate that ended without content', () => {
  const FAILED = ['MALFORMED_FUNCTION_CALL', 'UNEXPECTED_TOOL_CALL', 'TOO_MANY_TOOL_CALLS', 'OTHER', 'LANGUAGE', 'FINISH_REASON_UNSPECIFIED', 'MISSING_THOUGHT_SIGNATURE', 'A_REASON_ADDED_LATER'];

  it.each(FAILED)('is a non-retryable upstream_error (502) when it ended with %s, not an empty 200', (reason) => {
    const error = failure(() => fromGeminiResponse(response({ finishReason: reason }), ctx));
    expect(error).toMatchObject({ kind: 'upstream_error', retryable: false, provider: 'gemini' });
    expect(error.message).toBe(`The provider "gemini" ended the answer without content (finish reason ${reason}).`);
  });

  it('keeps the answers of the other candidates (n > 1): the failed one is an empty choice', () => {
    const two = {
      candidates: [
        { index: 0, content: { role: 'model', parts: [{ text: 'A fine answer' }] }, finishReason: 'STOP' },
        { index: 1, finishReason: 'MALFORMED_FUNCTION_CALL' },
      ],
      usageMetadata,
      modelVersion: 'gemini-2.5-flash',
      responseId: 'resp-2',
    };
    expect(fromGeminiResponse(two, ctx).choices.map((c) => [c.index, c.message?.content, c.finishReason])).toEqual([
      [0, 'A fine answer', 'stop'],
      [1, '', 'stop'],
    ]);
    const translator = new GeminiStreamTranslator({ ...ctx, includeUsage: false });
    const chunks = translator.accept({ ...two, candidates: [{ index: 0, content: { role: 'model', parts: [{ text: 'A fine answer' }] } }] });
    chunks.push(...translator.accept({ ...two, candidates: [{ index: 0, finishReason: 'STOP' }, { index: 1, finishReason: 'MALFORMED_FUNCTION_CALL' }] }));
    expect(chunks.flatMap((c) => c.choices.filter((ch) => ch.finishReason).map((ch) => [ch.index, ch.finishReason]))).toEqual([
      [0, 'stop'],
      [1, 'stop'],
    ]);
  });

  it('quotes the finishMessage', () => {
    const finishMessage = "Malformed function call: print(default_api.get_weather(city='Paris'))";
    const error = failure(() => fromGeminiResponse(response({ finishReason: 'MALFORMED_FUNCTION_CALL', finishMessage, content: { role: 'model', parts: [{ text: 'thinking…', thought: true }] } }), ctx));
    expect(error.message).toBe(`The provider "gemini" ended the answer without content (finish reason MALFORMED_FUNCTION_CALL): ${finishMessage}`);
  });

  it.each(FAILED)('fails a stream whose candidate ended with %s before it sent anything', (reason) => {
    const translator = new GeminiStreamTranslator({ ...ctx, includeUsage: true });
    const error = failure(() => translator.accept(response({ finishReason: reason, finishMessage: 'why' })));
    expect(error).toMatchObject({ kind: 'upstream_error', retryable: false, message: `The provider "gemini" ended the answer without content (finish reason ${reason}): why` });
  });

  it.each([
    ['STOP', 'stop'],
    ['MAX_TOKENS', 'length'],
    ['SAFETY', 'content_filter'],
    ['SPII', 'content_filter'],
    ['PROHIBITED_CONTENT', 'content_filter'],
    ['MODEL_ARMOR', 'content_filter'],
  ])('stays an answer when it ended with %s', (reason, finish) => {
    expect(fromGeminiResponse(response({ finishReason: reason }), ctx).choices[0]?.finishReason).toBe(finish);
    const translator = new GeminiStreamTranslator({ ...ctx, includeUsage: false });
    expect(translator.accept(response({ finishReason: reason })).map((c) => c.choices[0]?.finishReason)).toEqual([undefined, finish]);
  });

  it.each(['MALFORMED_FUNCTION_CALL', 'OTHER', 'LANGUAGE'])('keeps an answer that has text or a call, whatever its reason (%s)', (reason) => {
    expect(fromGeminiResponse(response({ finishReason: reason, content: { role: 'model', parts: [{ text: 'Partial answer' }] } }), ctx).choices[0]).toMatchObject({ finishReason: 'stop', message: { content: 'Partial answer' } });
    const call = { functionCall: { name: 'get_weather', args: { city: 'Paris' } } };
    expect(fromGeminiResponse(response({ finishReason: reason, content: { role: 'model', parts: [call] } }), ctx).choices[0]?.finishReason).toBe('tool_calls');
    const translator = new GeminiStreamTranslator({ ...ctx, includeUsage: false });
    translator.accept(response({ content: { role: 'model', parts: [{ text: 'Partial' }] } }));
    expect(translator.accept(response({ finishReason: reason })).map((c) => c.choices[0]?.finishReason)).toEqual(['stop']);
  });
});
