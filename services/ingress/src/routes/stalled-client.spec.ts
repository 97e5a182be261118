import { connect, type Socket } from 'node:net';
import type { chatv1, routerv1, usagev1 } from '@openrouter/contracts';
import { callStreamInProcess } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import type { UsagePublisher } from '@openrouter/usage';
import { startIngress, type IngressHandle } from '../index';
import type { RouterCalls } from '../router.port';
import { ingressTestConfig } from '../test-config.testing';

const KEY = 'sk-or-dev-stalled-client-0123456789abcdef';
const CHUNK_CHARS = 8 * 1024;
/** 64 MiB: what the provider would have sent, and the gateway held, if nothing slowed it down. */
const CHUNKS = 8 * 1024;

const decision: routerv1.RouteDecision = { model: 'm', provider: 'sim', deployment: 'd', upstreamModel: 'u', attempts: 1, taskType: '', reason: '', experiment: '', experimentArm: '', attemptDetails: [], strategy: '' };

function chunk(): chatv1.ChatChunk {
  return { id: 'chatcmpl-1', created: 1, model: 'u', choices: [{ index: 0, delta: { content: 'x'.repeat(CHUNK_CHARS), toolCalls: [], extraJson: '' }, finishReason: undefined, logprobsJson: '' }] };
}

describe('a streamed answer whose client stops reading without closing', () => {
  let ingress: IngressHandle | undefined;
  let client: Socket | undefined;
  afterEach(async () => {
    client?.destroy();
    await ingress?.close();
  });

  it('pauses the provider, then is cut, cancelled down to the provider and metered', async () => {
    let produced = 0;
    let providerDone!: () => void;
    const providerFinished = new Promise<void>((resolve) => (providerDone = resolve));
    let providerAborted!: () => void;
    const providerStopped = new Promise<void>((resolve) => (providerAborted = resolve));
    // A fast provider, called in process as the embedded gateway calls its router.
    const chat: RouterCalls['chat'] = (_request, signal) =>
      callStreamInProcess(async function* (callee) {
        callee.addEventListener('abort', () => providerAborted(), { once: true });
        yield { routed: { decision, chunk: chunk() } };
        for (let i = 1; i < CHUNKS && !callee.aborted; i++) {
          produced += CHUNK_CHARS;
          yield { chunk: chunk() };
        }
        providerDone();
        await providerStopped;
      }, signal);
    let metered!: (event: usagev1.UsageEvent) => void;
    const usage = new Promise<usagev1.UsageEvent>((resolve) => (metered = resolve));
    const publisher: UsagePublisher = { publish: async (event) => metered(event), status: () => ({ mode: 'direct', pending: 0, outboxBytes: 0 }), close: async () => undefined };
    const config = ingressTestConfig({ ingress: { http: { host: '127.0.0.1', port: 0 }, router: '127.0.0.1:1', devKey: KEY }, access: { requests: { streamStallMs: 1_000 } } });
    ingress = await startIngress(config, createLogger('ingress', 'silent'), { router: { chat } as RouterCalls, usagePublisher: publisher });

    const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'Hi' }] });
    const socket = connect(ingress.httpPort, '127.0.0.1');
    client = socket;
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    // It reads nothing, and never closes.
    socket.pause();

    // Either the provider is held back and the stalled client cut (its request metered), or the
    // provider runs to its end, its answer held in the gateway.
    const first = await Promise.race([usage.then(() => 'metered'), providerFinished.then(() => 'provider finished')]);
    expect(produced).toBeLessThan(16 * 1024 * 1024);
    expect(first).toBe('metered');
    const event = await usage;
    expect(event.cancelled).toBe(true);
    await providerStopped;
  });

  it('does the same for streamed speech: the audio held back, then cut, cancelled and metered with its characters', async () => {
    let produced = 0;
    let providerDone!: () => void;
    const providerFinished = new Promise<void>((resolve) => (providerDone = resolve));
    let providerAborted!: () => void;
    const providerStopped = new Promise<void>((resolve) => (providerAborted = resolve));
    const piece = (): chatv1.SpeechResponse => ({ audio: Buffer.alloc(CHUNK_CHARS), contentType: 'audio/pcm', usage: undefined, characters: 0 });
    const speak: RouterCalls['speak'] = (_request, signal) =>
      callStreamInProcess(async function* (callee) {
        callee.addEventListener('abort', () => providerAborted(), { once: true });
        yield { decision, response: piece() };
        for (let i = 1; i < CHUNKS && !callee.aborted; i++) {
          produced += CHUNK_CHARS;
          yield { response: piece() };
        }
        providerDone();
        await providerStopped;
      }, signal);
    let metered!: (event: usagev1.UsageEvent) => void;
    const usage = new Promise<usagev1.UsageEvent>((resolve) => (metered = resolve));
    const publisher: UsagePublisher = { publish: async (event) => metered(event), status: () => ({ mode: 'direct', pending: 0, outboxBytes: 0 }), close: async () => undefined };
    const config = ingressTestConfig({ ingress: { http: { host: '127.0.0.1', port: 0 }, router: '127.0.0.1:1', devKey: KEY }, access: { requests: { streamStallMs: 1_000 } } });
    ingress = await startIngress(config, createLogger('ingress', 'silent'), { router: { speak } as RouterCalls, usagePublisher: publisher });

    const body = JSON.stringify({ model: 'm', input: 'Hi there', voice: 'alloy', response_format: 'pcm' });
    const socket = connect(ingress.httpPort, '127.0.0.1');
    client = socket;
    socket.write(`POST /v1/audio/speech HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    socket.pause();

    const first = await Promise.race([usage.then(() => 'metered'), providerFinished.then(() => 'provider finished')]);
    expect(produced).toBeLessThan(16 * 1024 * 1024);
    expect(first).toBe('metered');
    expect(await usage).toMatchObject({ cancelled: true, characters: 8 });
    await providerStopped;
  });
});
