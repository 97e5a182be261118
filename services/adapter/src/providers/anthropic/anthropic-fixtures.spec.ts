import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseChatRequest, toOpenAIChunk, toOpenAICompletion } from '@openrouter/openai-wire';
import { readServerSentEvents } from '../http-upstream';
import { ImageSource } from '../image-source';
import { toAnthropicRequest } from './anthropic-request';
import { parseAnthropicMessage } from './anthropic-response';
import { AnthropicStreamTranslator } from './anthropic-stream';

/**
 * Recorded-style fixtures of Anthropic's wire format: client bodies with the Messages body they
 * must become, Messages responses with the chat.completion they must become, and complete SSE
 * transcripts with the chunks the client must see.
 */
const FIXTURES = join(__dirname, 'fixtures');
const PUBLIC_MODEL = 'claude-sonnet-4-5';
const NOW = 1_700_000_000;
const fixtures = (prefix: string, suffix: string): string[] => readdirSync(FIXTURES).filter((f) => f.startsWith(prefix) && f.endsWith(suffix));
const json = <T>(name: string): T => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as T;

interface RequestFixture {
  upstreamModel: string;
  openai: unknown;
  anthropic: unknown;
}
interface ResponseFixture {
  responseTool: string | null;
  anthropic: unknown;
  openai: unknown;
  usage: chatv1.Usage;
}
interface StreamFixture {
  includeUsage: boolean;
  responseTool: string | null;
  chunks: unknown[];
  error?: { kind: string; retryable: boolean };
}

/** The transcript's bytes in small slices, so events and multi-byte characters straddle reads. */
async function* slices(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

describe('Anthropic fixtures', () => {
  describe.each(fixtures('request-', '.json'))('request %s', (name) => {
    it('becomes the expected Messages body', async () => {
      const f = json<RequestFixture>(name);
      const { body } = await toAnthropicRequest(parseChatRequest(f.openai), f.upstreamModel, { defaultMaxTokens: 4096, thinking: 'adaptive', loadImage: new ImageSource().loader({ signal: new AbortController().signal }) });
      expect(body).toEqual(f.anthropic);
    });
  });

  describe.each(fixtures('response-', '.json'))('response %s', (name) => {
    it('becomes the expected chat.completion and usage', () => {
      const f = json<ResponseFixture>(name);
      const completion = parseAnthropicMessage(f.anthropic, { responseTool: f.responseTool ?? undefined, provider: 'anthropic', now: NOW });
      expect(toOpenAICompletion(completion, PUBLIC_MODEL)).toEqual(f.openai);
      expect(completion.usage).toEqual(f.usage);
    });
  });

  describe.each(fixtures('stream-', '.sse'))('stream %s', (name) => {
    it.each([1, 7, 4096])('replays into the expected chunks (read in %i-byte slices)', async (size) => {
      const f = json<StreamFixture>(name.replace(/\.sse$/, '.expected.json'));
      const translator = new AnthropicStreamTranslator({ responseTool: f.responseTool ?? undefined, includeUsage: f.includeUsage, provider: 'anthropic', now: NOW });
      const seen: unknown[] = [];
      const signal = new AbortController().signal;
      let thrown: unknown;
      try {
        for await (const event of readServerSentEvents(slices(readFileSync(join(FIXTURES, name)), size), signal, 'anthropic')) {
          for (const chunk of translator.accept(event.data)) seen.push(toOpenAIChunk(chunk, PUBLIC_MODEL));
        }
      } catch (error) {
        thrown = error;
      }
      expect(seen).toEqual(f.chunks);
      if (f.error) {
        expect(thrown).toBeInstanceOf(GatewayError);
        expect(thrown).toMatchObject(f.error);
        expect(translator.complete).toBe(false);
      } else {
        expect(thrown).toBeUndefined();
        expect(translator.complete).toBe(true);
      }
    });
  });
});
