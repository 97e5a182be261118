import type { adapterv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { createMetricsRegistry, RouterMetrics } from '@openrouter/observability';
import { unusedAdapters } from '../adapter-port.testing';
import type { AdapterPort } from '../router.service';
import { instrumentAdapterPort } from './router-telemetry';

function port(failing: Set<string>): AdapterPort {
  const refused = (provider: string): Promise<never> | undefined => (failing.has(provider) ? Promise.reject(new GatewayError('upstream_error', 'down', { retryable: true })) : undefined);
  return {
    ...unusedAdapters(),
    chat(request) {
      let sent = false;
      return {
        async next() {
          if (failing.has(request.provider)) throw new GatewayError('upstream_error', 'down', { retryable: true });
          if (sent) return { done: true, value: undefined };
          sent = true;
          return { done: false, value: {} as adapterv1.ChatResponse };
        },
      };
    },
    embed: async () => ({}) as adapterv1.EmbedResponse,
    moderate: async () => ({}) as adapterv1.ModerateResponse,
    generateImages: async () => ({}) as adapterv1.GenerateImagesResponse,
    transcribe: (request) => refused(request.provider) ?? Promise.resolve({}),
    speak: (request) =>
      (async function* (): AsyncGenerator<adapterv1.SpeakResponse> {
        // The media type first, then the failure or the audio: a piece without audio decides nothing.
        yield { response: { audio: Buffer.alloc(0), contentType: 'audio/mpeg', characters: 0 } };
        await refused(request.provider);
        yield { response: { audio: Buffer.from('ID3'), contentType: '', characters: 0 } };
      })(),
  };
}

const chat = (provider: string, upstreamModel: string): adapterv1.ChatRequest => ({ requestId: 'r1', provider, upstreamModel, timeoutMs: 0 }) as adapterv1.ChatRequest;

describe('router attempt metrics', () => {
  it('counts each adapter call as an attempt, later ones of a request as retries, a change of deployment as a failover', async () => {
    const registry = createMetricsRegistry('router', { processMetrics: false });
    const instrumented = instrumentAdapterPort(port(new Set(['a'])), new RouterMetrics(registry));
    const signal = new AbortController().signal;
    await expect(instrumented.chat(chat('a', 'm-a'), signal, 'd-a').next()).rejects.toThrow('down');
    await expect(instrumented.chat(chat('a', 'm-a'), signal, 'd-a').next()).rejects.toThrow('down');
    const served = instrumented.chat(chat('b', 'm-b'), signal, 'd-b');
    expect((await served.next()).done).toBe(false);
    expect((await served.next()).done).toBe(true);
    const text = await registry.metrics();
    expect(text).toContain('openrouter_router_attempts_total{provider="a",deployment="d-a",outcome="upstream_error",service="router"} 2');
    expect(text).toContain('openrouter_router_attempts_total{provider="b",deployment="d-b",outcome="ok",service="router"} 1');
    expect(text).toContain('openrouter_router_retries_total{provider="a",deployment="d-a",service="router"} 1');
    expect(text).toContain('openrouter_router_retries_total{provider="b",deployment="d-b",service="router"} 1');
    expect(text).toContain('openrouter_router_failovers_total{from_deployment="d-a",to_deployment="d-b",service="router"} 1');
  });

  it('counts an attempt stopped by its timeout as a timeout, so the next one is a failover; one stopped by its client as cancelled', async () => {
    const registry = createMetricsRegistry('router', { processMetrics: false });
    const hangs: AdapterPort = {
      ...unusedAdapters(),
      chat: (_request, signal) =>
        (async function* () {
          await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
          yield { completion: {} } as adapterv1.ChatResponse;
        })(),
      embed: async () => ({}) as adapterv1.EmbedResponse,
      moderate: async () => ({}) as adapterv1.ModerateResponse,
      generateImages: async () => ({}) as adapterv1.GenerateImagesResponse,
    };
    const instrumented = instrumentAdapterPort(
      { ...hangs, chat: (request, signal, deployment) => (deployment === 'd-fast' ? port(new Set()).chat(request, signal, deployment) : hangs.chat(request, signal, deployment)) },
      new RouterMetrics(registry),
    );
    const timedOut = new AbortController();
    const slow = instrumented.chat(chat('a', 'm'), timedOut.signal, 'd-slow').next();
    timedOut.abort(new GatewayError('timeout', 'The deployment d-slow did not answer in time.'));
    await expect(slow).rejects.toThrow('aborted');
    expect((await instrumented.chat(chat('b', 'm'), new AbortController().signal, 'd-fast').next()).done).toBe(false);
    const left = new AbortController();
    const gone = instrumented.chat({ ...chat('a', 'm'), requestId: 'r2' }, left.signal, 'd-slow').next();
    left.abort();
    await expect(gone).rejects.toThrow('aborted');
    const text = await registry.metrics();
    expect(text).toContain('openrouter_router_attempts_total{provider="a",deployment="d-slow",outcome="timeout",service="router"} 1');
    expect(text).toContain('openrouter_router_attempts_total{provider="a",deployment="d-slow",outcome="cancelled",service="router"} 1');
    expect(text).toContain('openrouter_router_failovers_total{from_deployment="d-slow",to_deployment="d-fast",service="router"} 1');
    expect(text).toContain('openrouter_router_retries_total{provider="b",deployment="d-fast",service="router"} 1');
  });

  it('counts an attempt under the deployment called, when two serve the same model on the same provider, and only once it answered', async () => {
    const registry = createMetricsRegistry('router', { processMetrics: false });
    // mini-b opens its message (the role only), then fails: failover moves on, and so does the count.
    const opening = { chunk: { choices: [{ index: 0, delta: { role: 'assistant', content: '', toolCalls: [] } }] } } as unknown as adapterv1.ChatResponse;
    const twoOfOne: AdapterPort = {
      ...unusedAdapters(),
      chat: (_request, _signal, deployment) =>
        (async function* () {
          yield opening;
          if (deployment === 'mini-b') throw new GatewayError('overloaded', 'busy');
          yield { completion: {} } as adapterv1.ChatResponse;
        })(),
      embed: async () => ({}) as adapterv1.EmbedResponse,
      moderate: async () => ({}) as adapterv1.ModerateResponse,
      generateImages: async () => ({}) as adapterv1.GenerateImagesResponse,
    };
    const instrumented = instrumentAdapterPort(twoOfOne, new RouterMetrics(registry));
    const signal = new AbortController().signal;
    const failing = instrumented.chat(chat('sim', 'gpt-4o-mini'), signal, 'mini-b');
    expect((await failing.next()).done).toBe(false);
    await expect(failing.next()).rejects.toThrow('busy');
    const served = instrumented.chat(chat('sim', 'gpt-4o-mini'), signal, 'mini-a');
    await served.next();
    await served.next();
    const text = await registry.metrics();
    expect(text).toContain('openrouter_router_attempts_total{provider="sim",deployment="mini-b",outcome="overloaded",service="router"} 1');
    expect(text).toContain('openrouter_router_attempts_total{provider="sim",deployment="mini-a",outcome="ok",service="router"} 1');
    expect(text).toContain('openrouter_router_failovers_total{from_deployment="mini-b",to_deployment="mini-a",service="router"} 1');
    expect(text).not.toContain('deployment="mini-a",outcome="overloaded"');
  });

  it('counts transcription and speech calls as attempts, a second deployment after a failed one as a failover', async () => {
    const registry = createMetricsRegistry('router', { processMetrics: false });
    const instrumented = instrumentAdapterPort(port(new Set(['a'])), new RouterMetrics(registry));
    const signal = new AbortController().signal;
    const transcription = (provider: string): adapterv1.TranscribeRequest => ({ requestId: 't1', provider, upstreamModel: 'whisper-1', timeoutMs: 0 });
    const speech = (provider: string): adapterv1.SpeakRequest => ({ requestId: 's1', provider, upstreamModel: 'tts-1', timeoutMs: 0 });
    await expect(instrumented.transcribe(transcription('a'), signal, 'whisper-a')).rejects.toThrow('down');
    await instrumented.transcribe(transcription('b'), signal, 'whisper-b');
    const failing = instrumented.speak(speech('a'), signal, 'tts-a');
    expect((await failing.next()).done).toBe(false);
    await expect(failing.next()).rejects.toThrow('down');
    const served = instrumented.speak(speech('b'), signal, 'tts-b');
    await served.next();
    // Not decided by the piece with the media type alone: no attempt is counted yet.
    expect(await registry.metrics()).not.toContain('deployment="tts-b"');
    await served.next();
    const text = await registry.metrics();
    expect(text).toContain('openrouter_router_attempts_total{provider="a",deployment="whisper-a",outcome="upstream_error",service="router"} 1');
    expect(text).toContain('openrouter_router_attempts_total{provider="b",deployment="whisper-b",outcome="ok",service="router"} 1');
    expect(text).toContain('openrouter_router_failovers_total{from_deployment="whisper-a",to_deployment="whisper-b",service="router"} 1');
    expect(text).toContain('openrouter_router_attempts_total{provider="a",deployment="tts-a",outcome="upstream_error",service="router"} 1');
    expect(text).toContain('openrouter_router_attempts_total{provider="b",deployment="tts-b",outcome="ok",service="router"} 1');
    expect(text).toContain('openrouter_router_failovers_total{from_deployment="tts-a",to_deployment="tts-b",service="router"} 1');
  });

  it('counts a request’s guardrail moderation calls apart from its own: a moderation that failed makes no retry or failover of the chat, nor of the other moderation model', async () => {
    const registry = createMetricsRegistry('router', { processMetrics: false });
    const instrumented = instrumentAdapterPort(
      { ...port(new Set()), moderate: (request) => (request.provider === 'down' ? Promise.reject(new GatewayError('upstream_error', 'down', { retryable: true })) : Promise.resolve({})) },
      new RouterMetrics(registry),
    );
    const signal = new AbortController().signal;
    // As the router sends them: every call of the request under its id, each moderation model's call (in parallel) naming that model.
    const moderation = (provider: string, model: string): adapterv1.ModerateRequest => ({ requestId: 'r1', provider, upstreamModel: 'omni', timeoutMs: 0, request: { model, texts: ['hi'], parts: [], extraJson: '' } });
    const failed = instrumented.moderate(moderation('down', 'mod'), signal, 'mod-a');
    const other = instrumented.moderate(moderation('b', 'mod-2'), signal, 'mod2-a');
    await expect(failed).rejects.toThrow('down');
    await other;
    // The guardrail fails open: the chat is served, its first attempt on its own deployment.
    const served = instrumented.chat({ ...chat('b', 'gpt-4o'), request: { model: 'gpt' } as adapterv1.ChatRequest['request'] }, signal, 'gpt-b');
    await served.next();
    const text = await registry.metrics();
    expect(text).toContain('openrouter_router_attempts_total{provider="down",deployment="mod-a",outcome="upstream_error",service="router"} 1');
    expect(text).toContain('openrouter_router_attempts_total{provider="b",deployment="gpt-b",outcome="ok",service="router"} 1');
    expect(text).not.toMatch(/openrouter_router_(retries|failovers)_total\{/);
    // The moderation model's own failover is counted as ever.
    await instrumented.moderate(moderation('b', 'mod'), signal, 'mod-b');
    expect(await registry.metrics()).toContain('openrouter_router_failovers_total{from_deployment="mod-a",to_deployment="mod-b",service="router"} 1');
  });
});
