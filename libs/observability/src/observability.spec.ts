import { Writable } from 'node:stream';
import { Metadata } from '@grpc/grpc-js';
import { context, diag, ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { globalErrorHandler } from '@opentelemetry/core';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { tracingSchema } from '@openrouter/config';
import { createLogger, NestPinoLogger } from './logger';
import { IngressMetrics } from './metrics/ingress.metrics';
import { createMetricsRegistry } from './metrics/metrics-registry';
import { RouterMetrics } from './metrics/router.metrics';
import { extractFromMetadata, injectIntoMetadata, tracingClientOptions } from './tracing/grpc-tracing';
import { spanErrorMessage, Tracing } from './tracing/tracing';
import { createTelemetry } from './telemetry';
import { UpstreamInstrumentation } from './upstream-instrumentation';

describe('metrics registries', () => {
  it('are one per service instance: the same metric names live side by side, each with its service label', async () => {
    const a = createMetricsRegistry('ingress', { processMetrics: false });
    const b = createMetricsRegistry('ingress', { processMetrics: false });
    const one = new IngressMetrics(a);
    new IngressMetrics(b);
    one.responded('/v1/models', 200, false);
    expect(await a.metrics()).toContain('openrouter_requests_total{endpoint="/v1/models",model="none",provider="none",status="200",service="ingress"} 1');
    expect(await b.metrics()).not.toContain('openrouter_requests_total{');
  });

  it('counts a metered request once, with its model and provider, not again when its response ends (before or after)', async () => {
    const registry = createMetricsRegistry('ingress', { processMetrics: false });
    const metrics = new IngressMetrics(registry);
    // A request cut during its provider call: the response ends first, its metering once the call unwound.
    metrics.responded('/v1/chat/completions', 499, true);
    metrics.metered({ endpoint: '/v1/chat/completions', model: 'gpt', provider: 'p', httpStatus: 499, outcome: 'cancelled', errorKind: '', stream: false, latencyMs: 90, ttftMs: 0, upstreamMs: 0, promptTokens: 10, completionTokens: 0, cost: 0.1, currency: 'USD' });
    metrics.metered({ endpoint: '/v1/chat/completions', model: 'gpt', provider: 'p', httpStatus: 200, outcome: 'ok', errorKind: '', stream: true, latencyMs: 900, ttftMs: 300, upstreamMs: 250, promptTokens: 10, completionTokens: 20, cost: 0.5, currency: 'USD' });
    metrics.responded('/v1/chat/completions', 200, true);
    metrics.responded('/v1/chat/completions', 429, false);
    metrics.responded('/v1/chat/completions', 402, false);
    const text = await registry.metrics();
    expect(text).toContain('openrouter_requests_total{endpoint="/v1/chat/completions",model="gpt",provider="p",status="200",service="ingress"} 1');
    expect(text).toContain('openrouter_requests_total{endpoint="/v1/chat/completions",model="gpt",provider="p",status="499",service="ingress"} 1');
    expect(text).not.toMatch(/openrouter_requests_total\{endpoint="\/v1\/chat\/completions",model="none",provider="none",status="(200|499)"/);
    expect(text).toContain('openrouter_rate_limited_requests_total{endpoint="/v1/chat/completions",service="ingress"} 1');
    expect(text).toContain('openrouter_budget_rejected_requests_total{endpoint="/v1/chat/completions",service="ingress"} 1');
    expect(text).toContain('openrouter_gateway_overhead_seconds_sum{service="ingress",endpoint="/v1/chat/completions"} 0.05');
    expect(text).toContain('openrouter_tokens_total{model="gpt",provider="p",direction="output",service="ingress"} 20');
  });

  it('reads circuit state at scrape time and counts retries and failovers', async () => {
    const registry = createMetricsRegistry('router', { processMetrics: false });
    const metrics = new RouterMetrics(registry);
    let state: 'closed' | 'open' = 'closed';
    metrics.readCircuitsFrom(() => [{ provider: 'p', deployment: 'd1', state }]);
    metrics.attempt('p', 'd1', 'upstream_error', 0, undefined);
    metrics.attempt('p', 'd1', 'upstream_error', 1, 'd1');
    metrics.attempt('q', 'd2', 'ok', 2, 'd1');
    expect(await registry.metrics()).toContain('openrouter_circuit_state{provider="p",deployment="d1",service="router"} 0');
    state = 'open';
    const text = await registry.metrics();
    expect(text).toContain('openrouter_circuit_state{provider="p",deployment="d1",service="router"} 2');
    expect(text).toContain('openrouter_router_retries_total{provider="p",deployment="d1",service="router"} 1');
    expect(text).toContain('openrouter_router_failovers_total{from_deployment="d1",to_deployment="d2",service="router"} 1');
  });
});

describe('tracing', () => {
  it('costs nothing when disabled: no propagation, no spans, the gRPC client gets no interceptor', async () => {
    const tracing = Tracing.create('router', tracingSchema.parse({}));
    expect(tracing.enabled).toBe(false);
    expect(tracing.headers()).toEqual({});
    expect(tracing.extract({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' })).toBe(ROOT_CONTEXT);
    expect(tracingClientOptions(tracing)).toEqual({});
    const upstream = new UpstreamInstrumentation(undefined, tracing);
    await expect(upstream.call({ provider: 'p', operation: 'embedding', upstreamModel: 'm' }, new AbortController().signal, async () => 42)).resolves.toBe(42);
  });

  it('carries the span context through gRPC metadata and W3C headers', () => {
    const exporter = new InMemorySpanExporter();
    const tracing = Tracing.create('ingress', tracingSchema.parse({ enabled: true }), { spanExporter: exporter });
    const span = tracing.tracer.startSpan('parent');
    const metadata = new Metadata();
    injectIntoMetadata(tracing, trace.setSpan(ROOT_CONTEXT, span), metadata);
    expect(String(metadata.get('traceparent')[0])).toMatch(new RegExp(`^00-${span.spanContext().traceId}-${span.spanContext().spanId}-01$`));
    const remote = trace.getSpanContext(extractFromMetadata(tracing, metadata));
    expect(remote).toMatchObject({ traceId: span.spanContext().traceId, spanId: span.spanContext().spanId, isRemote: true });
    const child = tracing.tracer.startSpan('child', {}, extractFromMetadata(tracing, metadata));
    child.end();
    span.end();
    expect(exporter.getFinishedSpans().map((s) => [s.name, s.spanContext().traceId])).toEqual([
      ['child', span.spanContext().traceId],
      ['parent', span.spanContext().traceId],
    ]);
    expect(exporter.getFinishedSpans()[0]?.resource.attributes['service.name']).toBe('openrouter-ingress');
  });

  it("at the edge, samples a client's trace by the ratio (keeping its id) unless told to trust the client; inside, follows the caller", () => {
    const sampled = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const unsampled = '00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-00';
    const recorded = (settings: Record<string, unknown>, edge: boolean, traceparent: string): { traceId: string; recorded: boolean } => {
      const tracing = Tracing.create('ingress', tracingSchema.parse({ enabled: true, ...settings }), { spanExporter: new InMemorySpanExporter(), edge });
      const span = tracing.tracer.startSpan('POST /v1/chat/completions', {}, tracing.extract({ traceparent }));
      span.end();
      return { traceId: span.spanContext().traceId, recorded: span.isRecording() || (span.spanContext().traceFlags & 1) === 1 };
    };
    // A client asks for its trace to be recorded; the edge's ratio of 0 says no, and the id stays.
    expect(recorded({ sampleRatio: 0 }, true, sampled)).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', recorded: false });
    // A client asks not to be recorded; the edge's ratio of 1 records it.
    expect(recorded({ sampleRatio: 1 }, true, unsampled)).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4737', recorded: true });
    // Trusted clients, and every service behind the edge, follow the caller's decision.
    expect(recorded({ sampleRatio: 0, trustClientSampling: true }, true, sampled).recorded).toBe(true);
    expect(recorded({ sampleRatio: 0 }, false, sampled).recorded).toBe(true);
    expect(recorded({ sampleRatio: 1 }, false, unsampled).recorded).toBe(false);
  });

  it('cannot be steered at the edge by a trace id chosen to be sampled at any ratio (its words XOR to zero)', () => {
    const tracing = Tracing.create('ingress', tracingSchema.parse({ enabled: true, sampleRatio: 0.01 }), { spanExporter: new InMemorySpanExporter(), edge: true });
    let recorded = 0;
    for (let i = 0; i < 400; i++) {
      const span = tracing.tracer.startSpan('POST /v1/chat/completions', {}, tracing.extract({ traceparent: '00-deadbeefdeadbeefdeadbeefdeadbeef-00f067aa0ba902b7-01' }));
      if (span.isRecording()) recorded++;
      span.end();
    }
    // About 4 of 400 at 1 %; a trace-id ratio would record all 400. (P(more than 40) is below 1e-20.)
    expect(recorded).toBeLessThan(40);
  });

  it('makes provider calls client spans of the active span, timing them in the registry', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = Tracing.create('adapter', tracingSchema.parse({ enabled: true }), { spanExporter: exporter });
    const registry = createMetricsRegistry('adapter', { processMetrics: false });
    const upstream = new UpstreamInstrumentation(registry, tracing);
    const server = tracing.tracer.startSpan('server');
    async function* answer(): AsyncGenerator<number> {
      yield 1;
      yield 2;
    }
    const got: number[] = [];
    await context.with(trace.setSpan(ROOT_CONTEXT, server), async () => {
      for await (const n of upstream.stream({ provider: 'sim', operation: 'chat', upstreamModel: 'm' }, new AbortController().signal, answer)) got.push(n);
    });
    await expect(
      upstream.call({ provider: 'sim', operation: 'embedding', upstreamModel: 'e' }, new AbortController().signal, async () => {
        throw Object.assign(new Error('down: the provider quoted "SECRET-PROMPT"'), { kind: 'unavailable', code: 'upstream_503' });
      }),
    ).rejects.toThrow('down');
    server.end();
    expect(got).toEqual([1, 2]);
    const provider = exporter.getFinishedSpans().find((s) => s.name === 'POST sim');
    expect(provider?.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    // The failed call's span says what failed, not the error's text (which can quote the input).
    const failed = exporter.getFinishedSpans().find((s) => s.name === 'POST sim' && s.attributes['gen_ai.operation.name'] === 'embedding');
    expect(failed?.status.message).toBe('unavailable (upstream_503)');
    const text = await registry.metrics();
    expect(text).toContain('openrouter_upstream_requests_total{provider="sim",operation="chat",outcome="ok",service="adapter"} 1');
    expect(text).toContain('openrouter_upstream_requests_total{provider="sim",operation="embedding",outcome="unavailable",service="adapter"} 1');
    expect(text).toContain('openrouter_upstream_first_event_seconds_count{service="adapter",provider="sim",operation="chat"} 1');
  });

  it('counts the audio operations apart (transcription, translation, speech), a cancelled call as cancelled whatever it threw', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = Tracing.create('adapter', tracingSchema.parse({ enabled: true }), { spanExporter: exporter });
    const registry = createMetricsRegistry('adapter', { processMetrics: false });
    const upstream = new UpstreamInstrumentation(registry, tracing);
    const live = new AbortController().signal;
    await upstream.call({ provider: 'sim', operation: 'transcription', upstreamModel: 'whisper-1' }, live, async () => 'text');
    await upstream.call({ provider: 'sim', operation: 'translation', upstreamModel: 'whisper-1' }, live, async () => 'text');
    await upstream.call({ provider: 'sim', operation: 'speech', upstreamModel: 'tts-1' }, live, async () => 'audio');
    const cancelled = new AbortController();
    cancelled.abort();
    await expect(
      upstream.call({ provider: 'sim', operation: 'speech', upstreamModel: 'tts-1' }, cancelled.signal, async () => {
        throw Object.assign(new Error('cut'), { kind: 'upstream_error' });
      }),
    ).rejects.toThrow('cut');
    const text = await registry.metrics();
    expect(text).toContain('openrouter_upstream_requests_total{provider="sim",operation="transcription",outcome="ok",service="adapter"} 1');
    expect(text).toContain('openrouter_upstream_requests_total{provider="sim",operation="translation",outcome="ok",service="adapter"} 1');
    expect(text).toContain('openrouter_upstream_requests_total{provider="sim",operation="speech",outcome="ok",service="adapter"} 1');
    expect(text).toContain('openrouter_upstream_requests_total{provider="sim",operation="speech",outcome="cancelled",service="adapter"} 1');
    expect(text).toContain('openrouter_upstream_duration_seconds_count{service="adapter",provider="sim",operation="transcription",outcome="ok"} 1');
    expect(exporter.getFinishedSpans().map((s) => [s.attributes['gen_ai.operation.name'], s.attributes['gen_ai.request.model'], s.attributes['openrouter.outcome']])).toEqual([
      ['transcription', 'whisper-1', 'ok'],
      ['translation', 'whisper-1', 'ok'],
      ['speech', 'tts-1', 'ok'],
      ['speech', 'tts-1', 'cancelled'],
    ]);
  });
});

/** A stream that keeps the lines written to it. */
function collectingSink(): { lines: string[]; sink: Writable } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, sink };
}

describe('logger', () => {
  it('writes JSON with the service and the active trace ids, and redacts secrets', () => {
    const { lines, sink } = collectingSink();
    const logger = createLogger('ingress', 'info', sink);
    const tracing = Tracing.create('ingress', tracingSchema.parse({ enabled: true }), { spanExporter: new InMemorySpanExporter() });
    const span = tracing.tracer.startSpan('request');
    context.with(trace.setSpan(ROOT_CONTEXT, span), () => {
      logger.info({ requestId: 'r1', orgId: 'acme', req: { headers: { authorization: 'Bearer sk-secret', 'x-api-key': 'k', cookie: 'c', 'x-openrouter-internal-call': 'secret.key-1' } }, secret: 's', channel: { secret: 's2' } }, 'hello');
    });
    span.end();
    const line = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({ service: 'ingress', requestId: 'r1', orgId: 'acme', traceId: span.spanContext().traceId, spanId: span.spanContext().spanId, secret: '[redacted]', channel: { secret: '[redacted]' } });
    expect(line['req']).toEqual({ headers: { authorization: '[redacted]', 'x-api-key': '[redacted]', cookie: '[redacted]', 'x-openrouter-internal-call': '[redacted]' } });
    expect(lines.join('')).not.toContain('sk-secret');
  });

  it('redacts a secret field at any depth and in any case, in errors and their causes too, without changing what was logged', () => {
    const { lines, sink } = collectingSink();
    const logger = createLogger('adapter', 'info', sink);
    const upstream = { headers: { authorization: 'Bearer sk-nested-1', 'content-type': 'application/json' } };
    const provider = { openai: { apiKey: 'sk-nested-2', baseUrl: 'https://api.openai.com/v1' } };
    // An HTTP client's error carries the request it failed, headers and all.
    const cause = Object.assign(new Error('socket hang up'), { config: { headers: { 'X-Api-Key': 'sk-nested-3' } } });
    const failure = Object.assign(new Error('request failed', { cause }), { config: { headers: { Authorization: 'Bearer sk-nested-4' } } });
    logger.info({ upstream, provider, list: [{ password: 'sk-nested-5' }] }, 'deep');
    logger.warn({ err: failure, attempt: { error: cause } }, 'failed');
    const [deep, failed] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(deep).toMatchObject({ upstream: { headers: { authorization: '[redacted]', 'content-type': 'application/json' } }, provider: { openai: { apiKey: '[redacted]', baseUrl: 'https://api.openai.com/v1' } }, list: [{ password: '[redacted]' }] });
    expect(failed).toMatchObject({ err: { message: 'request failed: socket hang up', config: { headers: { Authorization: '[redacted]' } } }, attempt: { error: { config: { headers: { 'X-Api-Key': '[redacted]' } } } } });
    expect(lines.join('')).not.toMatch(/sk-nested/);
    // What the caller logged is as it was.
    expect(upstream.headers.authorization).toBe('Bearer sk-nested-1');
    expect(failure.config.headers.Authorization).toBe('Bearer sk-nested-4');
    expect(failure.message).toBe('request failed');
  });

  it("keeps a Kafka message's key: it names an organisation, not a secret", () => {
    const { lines, sink } = collectingSink();
    createLogger('billing', 'info', sink).error({ reason: 'undecodable', key: 'acme' }, 'poison usage message dropped');
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ reason: 'undecodable', key: 'acme' });
  });

  it('does not quote the text a JSON.parse failure quotes (a provider answer, a client body), anywhere in the cause chain', () => {
    const { lines, sink } = collectingSink();
    const logger = createLogger('adapter', 'debug', sink);
    let parseFailure: unknown;
    try {
      JSON.parse('ANSWER-MARKER and the rest of an answer that is not JSON');
    } catch (error) {
      parseFailure = error;
    }
    const failure = Object.assign(new Error('The provider "openai" returned a malformed response.', { cause: parseFailure }), { kind: 'upstream_error' });
    logger.debug({ requestId: 'r1', err: failure }, 'provider call failed');
    logger.warn({ err: parseFailure }, 'could not read');
    expect(lines.join('\n')).not.toContain('ANSWER-M');
    const line = JSON.parse(lines[0] ?? '{}') as { err: { type: string; kind: string; message: string; stack: string } };
    expect(line.err).toMatchObject({ type: 'Error', kind: 'upstream_error' });
    expect(line.err.message).toContain('returned a malformed response');
    expect(line.err.stack).toMatch(/caused by: SyntaxError: Unexpected token in JSON/);
    // The error itself is left as it was.
    expect((parseFailure as Error).message).toContain('ANSWER-M');
  });

  it("logs a Redis command's error with the command's name, not its arguments (a store's values and keys)", () => {
    const { lines, sink } = collectingSink();
    const logger = createLogger('ingress', 'warn', sink);
    // As ioredis attaches it to a reply error.
    const failure = Object.assign(new Error('OOM command not allowed when used memory > maxmemory'), { command: { name: 'eval', args: ['SCRIPT-MARKER', '2', 'prefix:chatcmpl:owner:x', Buffer.from('SEALED-MARKER')] } });
    logger.warn({ err: failure }, 'a chat completion could not be stored');
    const line = JSON.parse(lines[0] ?? '{}') as { err: { message: string; command: unknown } };
    expect(line.err.message).toContain('OOM');
    expect(line.err.command).toEqual({ name: 'eval' });
    expect(lines.join('')).not.toMatch(/MARKER|chatcmpl/);
  });

  it('redacts the errors inside an error: those of an AggregateError, and one held in a field', () => {
    const { lines, sink } = collectingSink();
    const logger = createLogger('adapter', 'info', sink);
    const attempt = Object.assign(new Error('connect failed'), { config: { headers: { authorization: 'Bearer sk-LEAK-1' } } });
    const failure = new AggregateError([attempt], 'every address failed');
    const wrapped = Object.assign(new Error('request failed'), { original: Object.assign(new Error('socket hang up'), { apiKey: 'sk-LEAK-2' }) });
    logger.error({ err: failure }, 'aggregate');
    logger.error({ err: wrapped }, 'field');
    expect(lines.join('')).not.toMatch(/sk-LEAK/);
    const [aggregate, field] = lines.map((l) => JSON.parse(l) as { err: Record<string, unknown> });
    expect(aggregate?.err).toMatchObject({ type: 'AggregateError', message: 'every address failed', aggregateErrors: [{ type: 'Error', message: 'connect failed', config: { headers: { authorization: '[redacted]' } } }] });
    expect(field?.err).toMatchObject({ type: 'Error', message: 'request failed', original: { type: 'Error', message: 'socket hang up', apiKey: '[redacted]' } });
    // What the caller logged is as it was.
    expect(attempt.config.headers.authorization).toBe('Bearer sk-LEAK-1');
  });

  it("logs the commands of a failed Redis transaction's errors by name only (EXECABORT's previousErrors)", () => {
    const { lines, sink } = collectingSink();
    const logger = createLogger('ingress', 'warn', sink);
    // As ioredis reports a MULTI/EXEC whose commands Redis refused.
    const refused = Object.assign(new Error('OOM command not allowed when used memory > maxmemory.'), { command: { name: 'set', args: ['prefix:idem:KEY-MARKER', Buffer.from('SEALED-MARKER')] } });
    const failure = Object.assign(new Error('EXECABORT Transaction discarded because of previous errors.'), { command: { name: 'exec', args: [] }, previousErrors: [refused] });
    logger.warn({ err: failure }, 'store failed');
    expect(lines.join('')).not.toMatch(/MARKER/);
    const line = JSON.parse(lines[0] ?? '{}') as { err: Record<string, unknown> };
    expect(line.err).toMatchObject({ message: 'EXECABORT Transaction discarded because of previous errors.', command: { name: 'exec' }, previousErrors: [{ type: 'Error', message: 'OOM command not allowed when used memory > maxmemory.', command: { name: 'set' } }] });
    expect(refused.command.args).toHaveLength(2);
  });

  it("keeps NestJS's start-up chatter out of an info log, and its warnings and errors in", () => {
    const { lines, sink } = collectingSink();
    const nest = new NestPinoLogger(createLogger('router', 'info', sink));
    nest.log('Mapped {/health, GET} route', 'RouterExplorer');
    nest.warn('something odd', 'NestApplication');
    nest.error('it broke', 'stack', 'ExceptionHandler');
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>).map((l) => [l['level'], l['context'], l['msg']])).toEqual([
      [40, 'NestApplication', 'something odd'],
      [50, 'ExceptionHandler', 'it broke'],
    ]);
  });
});

describe('tracing diagnostics', () => {
  afterEach(() => diag.disable());

  it("logs OpenTelemetry's own errors (a span export that failed) through the service's logger, never silently", () => {
    const { lines, sink } = collectingSink();
    createTelemetry('billing', { metrics: { enabled: false, processMetrics: false }, tracing: tracingSchema.parse({ enabled: true, otlpEndpoint: 'http://127.0.0.1:1/v1/traces' }) }, { logger: createLogger('billing', 'info', sink) });
    // What the batch span processor does with a failed export.
    globalErrorHandler(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }));
    diag.warn('Dropped 3 spans because maxQueueSize reached');
    diag.info('chatter');
    const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string; service: string; component: string });
    expect(logged).toEqual([
      expect.objectContaining({ level: 50, service: 'billing', component: 'opentelemetry', msg: expect.stringContaining('ECONNREFUSED') }),
      expect.objectContaining({ level: 40, service: 'billing', component: 'opentelemetry', msg: 'Dropped 3 spans because maxQueueSize reached' }),
    ]);
  });

  it('are left alone with tracing off', () => {
    const { lines, sink } = collectingSink();
    createTelemetry('billing', { metrics: { enabled: false, processMetrics: false }, tracing: tracingSchema.parse({ enabled: false }) }, { logger: createLogger('billing', 'info', sink) });
    diag.error('not routed');
    expect(lines).toEqual([]);
  });
});

describe('consumer spans', () => {
  it('fail with the kind of the error, never its message (stored text, a client input)', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = Tracing.create('billing', tracingSchema.parse({ enabled: true }), { spanExporter: exporter });
    const failure = Object.assign(new Error('row 7: "my secret prompt" is not valid'), { kind: 'bad_request', code: 'invalid_value' });
    await expect(tracing.consume('openrouter.usage.v1 process', [{}], () => Promise.reject(failure))).rejects.toBe(failure);
    expect(exporter.getFinishedSpans().map((s) => s.status)).toEqual([{ code: SpanStatusCode.ERROR, message: 'bad_request (invalid_value)' }]);
  });
});

describe('spanErrorMessage', () => {
  it("names a failure by its kind and code or its gRPC status, never by its message", () => {
    expect(spanErrorMessage(Object.assign(new Error('quoted input'), { kind: 'bad_request', code: 'invalid_value' }))).toBe('bad_request (invalid_value)');
    expect(spanErrorMessage(Object.assign(new Error('quoted input'), { kind: 'timeout' }))).toBe('timeout');
    expect(spanErrorMessage({ code: 3, details: 'quoted input' })).toBe('INVALID_ARGUMENT');
    expect(spanErrorMessage(new Error('quoted input'))).toBe('error');
  });
});
