import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import type { UsageTrack } from '../usage/usage-recorder';
import type { CacheHit } from './response-cache';
import { socketHitFrames, socketRequestCacheHeaders, upgradeCacheHeaders } from './socket-cache';

const usage: chatv1.Usage = { promptTokens: 5, completionTokens: 4, totalTokens: 9, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };
const completion: chatv1.ChatCompletion = { id: 'c1', created: 100, model: 'up', choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there', toolCalls: [], extraJson: '' }, finishReason: 'stop', logprobsJson: '' }], usage };
const hit: CacheHit & { completion: chatv1.ChatCompletion } = { model: 'gpt-4o-mini', provider: 'sim', deployment: 'sim-mini', upstreamModel: 'up', cost: { amount: '0.0001', currency: 'USD', priceVersion: 'v1' }, ageSeconds: 3, completion };

/** The metering a hit asks of its request's usage track, with the hits it was told of. */
function trackOf(): { track: UsageTrack; hits: unknown[] } {
  const hits: unknown[] = [];
  const track = {
    cacheHit: (origin: unknown, tokens: unknown) => void hits.push({ origin, tokens }),
    costHeaders: () => ({ 'x-openrouter-cost': '0' }),
    decorate: <T>(body: T): T => {
      const u = (body as { usage?: Record<string, unknown> }).usage;
      if (u) u['cost'] = 0;
      return body;
    },
    tokens: () => usage,
  } as unknown as UsageTrack;
  return { track, hits };
}

describe('the cache headers of a request on a WebSocket', () => {
  it('takes the upgrade\'s cache headers for every request of the socket, and nothing else of them', () => {
    expect(upgradeCacheHeaders({ 'x-openrouter-cache': 'use', 'x-openrouter-cache-ttl': '60', 'x-openrouter-route': '{}', authorization: 'Bearer k' })).toEqual({ 'x-openrouter-cache': 'use', 'x-openrouter-cache-ttl': '60' });
    expect(upgradeCacheHeaders({})).toEqual({});
  });

  it('lets a frame\'s own headers, in any case, win over the upgrade\'s one by one', () => {
    const socket = { 'x-openrouter-cache': 'use', 'x-openrouter-cache-ttl': '60' };
    expect(socketRequestCacheHeaders(socket, undefined)).toEqual(socket);
    expect(socketRequestCacheHeaders(socket, { 'X-OpenRouter-Cache': 'off' })).toEqual({ 'x-openrouter-cache': 'off', 'x-openrouter-cache-ttl': '60' });
    expect(socketRequestCacheHeaders({}, { 'x-openrouter-cache': 'refresh', 'x-openrouter-cache-ttl': '5' })).toEqual({ 'x-openrouter-cache': 'refresh', 'x-openrouter-cache-ttl': '5' });
  });

  it('refuses any other header in a frame, naming the frame\'s headers', () => {
    let refusal: unknown;
    try {
      socketRequestCacheHeaders({}, { 'x-openrouter-cache': 'use', 'x-openrouter-route': '{"policy":"cheapest"}' });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(GatewayError);
    expect(refusal).toMatchObject({ kind: 'bad_request', param: 'headers', code: 'invalid_value' });
    expect((refusal as GatewayError).message).toContain('x-openrouter-route');
  });
});

describe('socketHitFrames', () => {
  const headers = { 'x-ratelimit-remaining-requests': '9', 'x-request-id': 'sock:q1' };

  it('answers a whole request with one completion frame under a fresh id, with the hit\'s headers, and meters the hit', () => {
    const { track, hits } = trackOf();
    const frames = socketHitFrames('q1', { stream: false }, false, hit, track, headers);
    expect(frames).toHaveLength(1);
    const [frame] = frames as [Extract<(typeof frames)[number], { type: 'completion' }>];
    expect(frame).toMatchObject({ type: 'completion', id: 'q1' });
    expect(frame.headers).toEqual({
      'x-openrouter-cache': 'hit',
      age: '3',
      'x-openrouter-model': 'gpt-4o-mini',
      'x-openrouter-provider': 'sim',
      'x-openrouter-deployment': 'sim-mini',
      'x-openrouter-cost': '0',
      'x-ratelimit-remaining-requests': '9',
      'x-request-id': 'sock:q1',
    });
    const data = frame.data as { id: string; model: string; choices: Array<{ message: { content: string } }>; usage: Record<string, unknown> };
    expect(data.id).toMatch(/^chatcmpl-/);
    expect(data.id).not.toBe('c1');
    expect(data.model).toBe('gpt-4o-mini');
    expect(data.choices[0]?.message.content).toBe('Hello there');
    expect(data.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 4, cost: 0 });
    expect(hits).toEqual([{ origin: hit, tokens: usage }]);
  });

  it('replays a streamed request as start, the message, its finish, the usage chunk when asked for, and done, under one fresh id', () => {
    const { track } = trackOf();
    const frames = socketHitFrames('q2', { stream: true }, true, hit, track, headers);
    expect(frames.map((f) => f.type)).toEqual(['start', 'chunk', 'chunk', 'chunk', 'done']);
    expect(frames.every((f) => f.id === 'q2')).toBe(true);
    expect(frames[0]).toMatchObject({ headers: { 'x-openrouter-cache': 'hit', 'x-openrouter-cost': '0', 'x-request-id': 'sock:q1' } });
    const chunks = frames.slice(1, 4).map((f) => (f as { data: { id: string; choices: Array<{ delta: { content?: string }; finish_reason: string | null }>; usage?: Record<string, unknown> } }).data);
    expect(chunks[0]?.choices[0]?.delta.content).toBe('Hello there');
    expect(chunks[1]?.choices[0]?.finish_reason).toBe('stop');
    expect(chunks[2]?.choices).toEqual([]);
    expect(chunks[2]?.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 4, cost: 0 });
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]?.id).not.toBe('c1');
    // Without asking for usage: no usage chunk.
    expect(socketHitFrames('q3', { stream: true }, false, hit, trackOf().track, headers).map((f) => f.type)).toEqual(['start', 'chunk', 'chunk', 'done']);
  });
});
