import { EventEmitter } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { chatv1 } from '@openrouter/contracts';
import type { UsageTrack } from '../usage/usage-recorder';
import type { TranslatedApi } from '../routes/chat.service';
import { sendChatHit, sendTranslatedHit } from './cache-replies';
import type { CacheHit } from './response-cache';

/** A raw response whose client stopped reading: every write waits for a drain that never comes. */
class StalledResponse extends EventEmitter {
  writableNeedDrain = false;
  destroyed = false;
  readonly socket = { _handle: { writeQueueSize: 4096 } };
  readonly written: string[] = [];

  writeHead(): this {
    return this;
  }

  write(text: string): boolean {
    this.written.push(text);
    this.writableNeedDrain = true;
    return false;
  }

  end(): void {}

  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

const usage: chatv1.Usage = { promptTokens: 5, completionTokens: 4, totalTokens: 9, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };
const completion: chatv1.ChatCompletion = { id: 'c1', created: 100, model: 'up', choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there', toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' }], usage };
const hit: CacheHit & { completion: chatv1.ChatCompletion } = { model: 'gpt-4o-mini', provider: 'sim', deployment: 'sim-mini', upstreamModel: 'up', cost: { amount: '0.0001', currency: 'USD', priceVersion: 'v1' }, ageSeconds: 3, completion };

/** The metering a hit asks of its request's usage track. */
const track = {
  cacheHit: () => undefined,
  costHeaders: () => ({ 'x-openrouter-cost': '0' }),
  decorate: <T>(body: T): T => body,
  tokens: () => usage,
} as unknown as UsageTrack;

describe('sendChatHit', () => {
  const STALL_MS = 1_000;
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('cuts a streamed hit whose client stopped reading, as a provider stream is cut', async () => {
    const raw = new StalledResponse();
    const reply = { raw, hijack: () => undefined } as unknown as FastifyReply;
    const request = { stream: true } as chatv1.ChatRequest;
    const sent = sendChatHit({ id: 'r1' } as FastifyRequest, reply, request, hit, track, STALL_MS);
    await jest.advanceTimersByTimeAsync(3 * STALL_MS);
    expect(raw.destroyed).toBe(true);
    await expect(sent).resolves.toBeUndefined();
    expect(raw.written[0]).toContain('Hello there');
  });
});

/** A raw response that takes every write at once. */
class ReadingResponse extends EventEmitter {
  writableNeedDrain = false;
  destroyed = false;
  head: Record<string, string> = {};
  readonly written: string[] = [];

  writeHead(_status: number, headers: Record<string, string>): this {
    this.head = headers;
    return this;
  }

  write(text: string): boolean {
    this.written.push(text);
    return true;
  }

  end(): void {
    this.emit('finish');
  }
}

describe('sendTranslatedHit', () => {
  type Event = { type: string; text?: string; model?: string; id?: string; usage?: chatv1.Usage };
  /** An API whose answers show what they were built from. */
  const api: TranslatedApi<Event> = {
    headers: { 'request-id': 'r1' },
    whole: (c, model) => ({ model, id: c.id, text: c.choices[0]?.message?.content, usage: c.usage }),
    stream: (model) => ({
      translation: {
        start: () => [{ type: 'start', model }],
        chunk: (c) => c.choices.flatMap((choice) => (choice.delta?.content ? [{ type: 'text', text: choice.delta.content }] : choice.finishReason ? [{ type: 'finish', text: choice.finishReason }] : [])),
        complete: (u) => [{ type: 'end', usage: u }],
      },
      ends: { decorate: (end) => end.push({ type: 'decorated' }), failure: () => [] },
    }),
  };

  it('answers whole with the API\'s answer built from the stored completion under a fresh id, and the hit headers', async () => {
    let sent: unknown;
    let headers: Record<string, string> = {};
    const reply = {
      headers(h: Record<string, string>) {
        headers = h;
        return this;
      },
      send: async (body: unknown) => {
        sent = body;
      },
    } as unknown as FastifyReply;
    await sendTranslatedHit({ id: 'r1' } as FastifyRequest, reply, false, hit, track, 1_000, api);
    expect(sent).toEqual({ model: 'gpt-4o-mini', id: expect.stringMatching(/^chatcmpl-/), text: 'Hello there', usage });
    expect((sent as { id: string }).id).not.toBe('c1');
    expect(headers).toMatchObject({ 'x-openrouter-cache': 'hit', age: '3', 'x-openrouter-cost': '0', 'x-openrouter-model': 'gpt-4o-mini', 'request-id': 'r1' });
  });

  it('replays a streamed hit through the API\'s stream translation: start, the message, its finish, the decorated end', async () => {
    const raw = new ReadingResponse();
    const reply = { raw, hijack: () => undefined } as unknown as FastifyReply;
    await sendTranslatedHit({ id: 'r1' } as FastifyRequest, reply, true, hit, track, 1_000, api);
    const types = raw.written.map((w) => /^event: (\S+)/.exec(w)?.[1]);
    expect(types).toEqual(['start', 'text', 'finish', 'end', 'decorated']);
    expect(raw.written[1]).toContain('Hello there');
    expect(raw.written[3]).toContain('"promptTokens":5');
    expect(raw.head).toMatchObject({ 'x-openrouter-cache': 'hit', 'request-id': 'r1', 'content-type': 'text/event-stream; charset=utf-8' });
  });
});
