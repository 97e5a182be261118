import { EventEmitter } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { chatv1 } from '@openrouter/contracts';
import type { UsageTrack } from '../usage/usage-recorder';
import type { TranslatedApi } from '../routes/chat.service';
import { sendChatHit, sendLegacyHit, sendTranslatedHit } from './cache-replies';
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

  end(text?: string): void {
    if (text !== undefined) this.written.push(text);
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
      ends: { decorate: (end) => void end.push({ type: 'decorated' }), failure: () => [] },
    }),
  };

  it('answers whole with the API\'s answer built from the stored completion under a fresh id, and the hit headers', async () => {
    let sent: unknown;
    let headers: Record<string, string> = {};
    const raw = new ReadingResponse();
    const reply = {
      raw,
      headers(h: Record<string, string>) {
        headers = h;
        return this;
      },
      send: async (body: unknown) => {
        sent = body;
        raw.emit('finish');
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

describe('sendLegacyHit', () => {
  /** Two prompts' choices stored as one completion, numbered across prompts. */
  const legacy: CacheHit & { completion: chatv1.ChatCompletion } = {
    ...hit,
    completion: {
      ...completion,
      choices: [0, 1].map((index) => ({ index, message: { role: 'assistant', content: `answer ${index}`, toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' })),
    },
  };

  it('answers whole with one text_completion under a fresh cmpl- id, its choices as stored, and the hit headers', async () => {
    let sent: unknown;
    let headers: Record<string, string> = {};
    const raw = new ReadingResponse();
    const reply = {
      raw,
      headers(h: Record<string, string>) {
        headers = h;
        return this;
      },
      send: async (body: unknown) => {
        sent = body;
        raw.emit('finish');
      },
    } as unknown as FastifyReply;
    await sendLegacyHit({ id: 'r1' } as FastifyRequest, reply, { stream: false, includeUsage: false }, legacy, track, 1_000);
    expect(sent).toMatchObject({
      object: 'text_completion',
      model: 'gpt-4o-mini',
      choices: [
        { index: 0, text: 'answer 0', finish_reason: 'stop' },
        { index: 1, text: 'answer 1', finish_reason: 'stop' },
      ],
      usage: { prompt_tokens: 5, completion_tokens: 4 },
    });
    expect((sent as { id: string }).id).toMatch(/^cmpl-/);
    expect(headers).toMatchObject({ 'x-openrouter-cache': 'hit', age: '3', 'x-openrouter-cost': '0', 'x-request-id': 'r1' });
  });

  it('replays a streamed hit as legacy chunks: each choice\'s text, its finish, the usage chunk when asked for, and [DONE]', async () => {
    const raw = new ReadingResponse();
    const reply = { raw, hijack: () => undefined } as unknown as FastifyReply;
    await sendLegacyHit({ id: 'r1' } as FastifyRequest, reply, { stream: true, includeUsage: true }, legacy, track, 1_000);
    const events = raw.written.map((w) => w.replace(/^data: /, '').trim());
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as { id: string; object: string; choices: Array<{ index: number; text: string; finish_reason: string | null }>; usage?: unknown });
    expect(chunks.map((c) => c.choices.map((ch) => [ch.index, ch.text, ch.finish_reason]))).toEqual([[[0, 'answer 0', null]], [[0, '', 'stop']], [[1, 'answer 1', null]], [[1, '', 'stop']], []]);
    expect(chunks.every((c) => c.object === 'text_completion')).toBe(true);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]?.id).toMatch(/^cmpl-/);
    expect(chunks.at(-1)?.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 4 });
    expect(raw.head).toMatchObject({ 'x-openrouter-cache': 'hit', 'x-openrouter-cost': '0' });
  });
});
