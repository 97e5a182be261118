import { EventEmitter } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { chatv1 } from '@openrouter/contracts';
import type { UsageTrack } from '../usage/usage-recorder';
import { sendChatHit } from './cache-replies';
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
