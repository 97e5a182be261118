import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseChatRequest, toOpenAIChunk, toOpenAICompletion } from '@openrouter/openai-wire';
import { readServerSentEvents } from '../http-upstream';
import { ImageSource } from '../image-source';
import { toGeminiRequest } from './gemini-request';
import { fromGeminiResponse, toolCallId } from './gemini-response';
import { GeminiStreamTranslator } from './gemini-stream';
import { estimatedUsage } from './gemini-usage';

/**
 * Fixtures of Gemini's wire format: client bodies with the generateContent body they must
 * become, generateContent responses with the chat.completion they must become, and complete
 * `alt=sse` transcripts with the chunks the client must see (or the error it must get).
 * Placeholders `$callN` stand for the synthesized id of the N-th function call of the answer.
 */
const FIXTURES = join(__dirname, 'fixtures');
const PUBLIC_MODEL = 'gemini-flash';
const UPSTREAM_MODEL = 'gemini-2.5-flash';
const NOW = 1_700_000_000;
const REQUEST_ID = 'req-fixture';
const fixtures = (prefix: string, suffix: string): string[] => readdirSync(FIXTURES).filter((f) => f.startsWith(prefix) && f.endsWith(suffix));
const json = <T>(name: string): T => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as T;
const noEstimate = (): chatv1.Usage => estimatedUsage(-1, -1);

interface StreamFixture {
  includeUsage: boolean;
  /** The function a JSON answer was forced through, when the request had one. */
  answerTool?: string;
  chunks: unknown[];
  error?: { kind: string; retryable: boolean; retryAfterMs?: number };
}

/** Replaces `$callN` ids with the id the adapter synthesizes for the N-th call (by its name). */
function withCallIds(value: unknown, responseKey: string): unknown {
  const text = JSON.stringify(value);
  const names = [...text.matchAll(/"id":"\$call(\d+)"[^}]*?"name":"([^"]+)"/g)];
  let out = text;
  for (const [, position, name] of names) out = out.replace(`"$call${position}"`, JSON.stringify(toolCallId(responseKey, 0, Number(position), name ?? '')));
  return JSON.parse(out);
}

/** The transcript's bytes in small slices, so events and multi-byte characters straddle reads. */
async function* slices(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

describe('Gemini fixtures', () => {
  describe.each(fixtures('request-', '.json'))('request %s', (name) => {
    it('becomes the expected generateContent body', async () => {
      const f = json<{ openai: unknown; gemini: unknown; answerTool?: string }>(name);
      const { body, answerTool } = await toGeminiRequest(parseChatRequest(f.openai), new ImageSource().loader({ signal: new AbortController().signal }), UPSTREAM_MODEL);
      expect(body).toEqual(f.gemini);
      expect(answerTool).toBe(f.answerTool ?? undefined);
    });
  });

  describe.each(fixtures('response-', '.json'))('response %s', (name) => {
    it('becomes the expected chat.completion', () => {
      const f = json<{ gemini: { responseId?: string }; openai: unknown; answerTool?: string }>(name);
      const completion = fromGeminiResponse(f.gemini, { requestId: REQUEST_ID, created: NOW, upstreamModel: UPSTREAM_MODEL, provider: 'gemini', estimateUsage: noEstimate, answerTool: f.answerTool });
      expect(toOpenAICompletion(completion, PUBLIC_MODEL)).toEqual(withCallIds(f.openai, f.gemini.responseId ?? REQUEST_ID));
    });
  });

  describe.each(fixtures('stream-', '.sse'))('stream %s', (name) => {
    const expected = json<StreamFixture>(name.replace(/\.sse$/, '.expected.json'));

    it.each([7, 64, 100_000])('replays into the expected chunks when read %i bytes at a time', async (size) => {
      const signal = new AbortController().signal;
      const translator = new GeminiStreamTranslator({
        requestId: REQUEST_ID,
        created: NOW,
        upstreamModel: UPSTREAM_MODEL,
        includeUsage: expected.includeUsage,
        provider: 'gemini',
        estimateUsage: noEstimate,
        answerTool: expected.answerTool,
      });
      const seen: unknown[] = [];
      let error: unknown;
      try {
        for await (const event of readServerSentEvents(slices(readFileSync(join(FIXTURES, name)), size), signal, 'gemini')) {
          for (const chunk of translator.accept(JSON.parse(event.data))) seen.push(toOpenAIChunk(chunk, PUBLIC_MODEL));
        }
        for (const chunk of translator.end()) seen.push(toOpenAIChunk(chunk, PUBLIC_MODEL));
      } catch (e) {
        error = e;
      }
      const responseKey = /"id":"chatcmpl-([^"]+)"/.exec(JSON.stringify(expected.chunks))?.[1] ?? REQUEST_ID;
      expect(seen).toEqual(withCallIds(expected.chunks, responseKey));
      if (expected.error) {
        expect(error).toBeInstanceOf(GatewayError);
        expect(error).toMatchObject(expected.error);
      } else {
        expect(error).toBeUndefined();
      }
    });
  });
});
