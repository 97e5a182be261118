import type { chatv1 } from '@openrouter/contracts';
import { GeminiStreamTranslator } from './gemini-stream';
import { estimatedUsage } from './gemini-usage';

/** An estimate of one token a character, so the expected counts are plain to read. */
const PROMPT_ESTIMATE = 7;
const translator = (includeUsage = true): GeminiStreamTranslator =>
  new GeminiStreamTranslator({
    requestId: 'req-1',
    created: 1_700_000_000,
    upstreamModel: 'gemini-2.5-flash',
    includeUsage,
    provider: 'vertex',
    estimateUsage: (text: string): chatv1.Usage => estimatedUsage(PROMPT_ESTIMATE, text.length),
  });
const text = (t: string, more: Record<string, unknown> = {}) => ({ candidates: [{ content: { parts: [{ text: t }], role: 'model' }, index: 0 }], ...more });
const thought = (t: string, more: Record<string, unknown> = {}) => ({ candidates: [{ content: { parts: [{ text: t, thought: true }], role: 'model' }, index: 0 }], ...more });
const finish = (usageMetadata: Record<string, unknown>) => ({ candidates: [{ content: { parts: [{ text: '' }], role: 'model' }, finishReason: 'STOP', index: 0 }], usageMetadata });
const usageOf = (chunks: chatv1.ChatChunk[]): chatv1.Usage | undefined => {
  expect(chunks).toHaveLength(1);
  expect(chunks[0]?.choices).toEqual([]);
  return chunks[0]?.usage;
};

describe('GeminiStreamTranslator usage', () => {
  describe('as Vertex AI streams it (an empty usageMetadata first, counts only on the last event)', () => {
    it('sends no usage for a stream that fails mid-answer, so ingress estimates the whole request rather than take a prompt of 0', () => {
      const t = translator();
      t.accept(text('Hello', { usageMetadata: {} }));
      t.accept(text(' there'));
      expect(t.usageSoFar()).toEqual([]);
    });

    it('reports the last event’s counts once the stream finished', () => {
      const t = translator();
      t.accept(text('Hello', { usageMetadata: {} }));
      t.accept(text(' there'));
      t.accept(finish({ promptTokenCount: 10, candidatesTokenCount: 3, totalTokenCount: 13 }));
      expect(usageOf(t.end())).toEqual({ promptTokens: 10, completionTokens: 3, totalTokens: 13, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false });
    });

    it('estimates the usage of a finished stream whose usageMetadata never counted anything', () => {
      const t = translator();
      t.accept(text('Hello', { usageMetadata: {} }));
      t.accept(finish({}));
      expect(usageOf(t.end())).toMatchObject({ promptTokens: PROMPT_ESTIMATE, completionTokens: 'Hello'.length, estimated: true });
    });
  });

  describe('as the Gemini API streams it (the prompt on every event, the output counted late)', () => {
    it('bills a failed thinking answer its reported thoughts plus the visible text streamed, not the larger of the two', () => {
      const t = translator();
      const visible = 'x'.repeat(2000);
      t.accept(text(visible, { usageMetadata: { promptTokenCount: 100, thoughtsTokenCount: 3000, totalTokenCount: 3100 } }));
      expect(usageOf(t.usageSoFar())).toEqual({ promptTokens: 100, completionTokens: 5000, totalTokens: 5100, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 3000, estimated: true });
    });

    it('estimates only the text streamed after the last event that counted the output', () => {
      const t = translator();
      t.accept(text('abcd', { usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 2, totalTokenCount: 12 } }));
      expect(usageOf(t.usageSoFar())).toMatchObject({ promptTokens: 10, completionTokens: 2, estimated: false });
      t.accept(text('efg'));
      expect(usageOf(t.usageSoFar())).toMatchObject({ promptTokens: 10, completionTokens: 2 + 'efg'.length, totalTokens: 15, estimated: true });
    });

    it('counts thought summaries as reasoning, apart from the visible text, until Gemini counts the thoughts', () => {
      const t = translator();
      t.accept(thought('Thinking', { usageMetadata: { promptTokenCount: 10, totalTokenCount: 10 } }));
      t.accept(text('Hi', { usageMetadata: { promptTokenCount: 10, totalTokenCount: 10 } }));
      expect(usageOf(t.usageSoFar())).toMatchObject({ promptTokens: 10, completionTokens: 'Thinking'.length + 'Hi'.length, reasoningTokens: 'Thinking'.length, estimated: true });
      t.accept(text('!', { usageMetadata: { promptTokenCount: 10, thoughtsTokenCount: 40, totalTokenCount: 50 } }));
      // Gemini's count of the thoughts replaces the summary's estimate: the summary is not the thinking.
      expect(usageOf(t.usageSoFar())).toMatchObject({ completionTokens: 40 + 'Hi!'.length, reasoningTokens: 40, estimated: true });
    });

    it('keeps counts an earlier event reported when a later one leaves them out', () => {
      const t = translator();
      t.accept(text('Hi', { usageMetadata: { promptTokenCount: 10, thoughtsTokenCount: 30, totalTokenCount: 40 } }));
      t.accept(text('!', { usageMetadata: {} }));
      expect(usageOf(t.usageSoFar())).toMatchObject({ promptTokens: 10, completionTokens: 30 + 'Hi!'.length, reasoningTokens: 30 });
    });
  });
});
