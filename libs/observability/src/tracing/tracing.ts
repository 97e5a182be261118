import { status as grpcStatus } from '@grpc/grpc-js';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context, defaultTextMapGetter, defaultTextMapSetter, diag, DiagLogLevel, ProxyTracerProvider, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type DiagLogger, type Link, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, SamplingDecision, SimpleSpanProcessor, TraceIdRatioBasedSampler, type Sampler, type SamplingResult, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { TracingConfig } from '@openrouter/config';
import type { Logger } from 'pino';

export type { Context, Span, SpanExporter, Tracer };

export interface TracingOptions {
  /** Spans go here instead of OTLP (tests use an in-memory exporter); exported one by one. */
  spanExporter?: SpanExporter;
  /**
   * The service is where requests from outside arrive (ingress): a remote parent's sampling
   * decision is the client's, followed only with `trustClientSampling`; its trace id is kept.
   */
  edge?: boolean;
  /**
   * Where OpenTelemetry's own warnings and errors go (a span export that failed: the collector
   * unreachable, refusing the headers); see {@link routeDiagnostics}. Without one they are dropped.
   */
  logger?: Logger;
}

/**
 * OpenTelemetry's diagnostics as log lines: `warn` and `error` at `warn` and `error`, with
 * `component: opentelemetry`. Without a diagnostic logger OpenTelemetry says nothing at all: an
 * exporter that fails every export (a collector down, an endpoint refusing the credentials) would
 * leave the traces missing without a word.
 */
class PinoDiagLogger implements DiagLogger {
  private readonly log: Logger;

  constructor(logger: Logger) {
    this.log = logger.child({ component: 'opentelemetry' });
  }

  error(message: string, ...args: unknown[]): void {
    this.log.error(PinoDiagLogger.fields(args), message);
  }
  warn(message: string, ...args: unknown[]): void {
    this.log.warn(PinoDiagLogger.fields(args), message);
  }
  info(message: string, ...args: unknown[]): void {
    this.log.info(PinoDiagLogger.fields(args), message);
  }
  debug(message: string, ...args: unknown[]): void {
    this.log.debug(PinoDiagLogger.fields(args), message);
  }
  verbose(message: string, ...args: unknown[]): void {
    this.log.trace(PinoDiagLogger.fields(args), message);
  }

  /** The arguments of a message: an error as `err` (serialized, with its stack), anything else as `details`. */
  private static fields(args: unknown[]): Record<string, unknown> {
    const err = args.find((a) => a instanceof Error);
    const details = args.filter((a) => a !== err);
    return { ...(err ? { err } : {}), ...(details.length > 0 ? { details } : {}) };
  }
}

/**
 * Routes OpenTelemetry's diagnostics (at `warn` and above) to `logger`. They are the process's, one
 * logger for every tracer in it: the last service of the embedded gateway to start tracing is the
 * one its lines name.
 */
export function routeDiagnostics(logger: Logger): void {
  diag.setLogger(new PinoDiagLogger(logger), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
}

const propagator = new W3CTraceContextPropagator();

/**
 * Samples with probability `ratio` by a draw of its own, not by the trace id: at the edge the trace
 * id is the client's, and a ratio by trace id could be steered (an id whose words XOR to zero is
 * sampled at any ratio above 0).
 */
class RandomRatioSampler implements Sampler {
  constructor(private readonly ratio: number) {}

  shouldSample(): SamplingResult {
    return { decision: Math.random() < this.ratio ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }

  toString(): string {
    return `RandomRatioSampler{${this.ratio}}`;
  }
}

/**
 * A span's parent in the process decides; a remote parent does too, except at the edge, where
 * the ratio decides (by a draw the client cannot steer) unless the client's decision is trusted.
 */
function sampler(config: TracingConfig, edge: boolean): Sampler {
  const root = new TraceIdRatioBasedSampler(config.sampleRatio);
  if (!edge || config.trustClientSampling) return new ParentBasedSampler({ root });
  const drawn = new RandomRatioSampler(config.sampleRatio);
  return new ParentBasedSampler({ root, remoteParentSampled: drawn, remoteParentNotSampled: drawn });
}
const NOOP_TRACER = new ProxyTracerProvider().getTracer('openrouter');

/** Whether this process's asynchronous context manager is registered. */
let contextManagerRegistered = false;

/**
 * Registers the process's asynchronous context manager, once: there is one per process by
 * OpenTelemetry's design, and a second registration (another service of the embedded gateway) is
 * refused with an error to the diagnostics, which are logged.
 */
function registerContextManager(): void {
  if (contextManagerRegistered) return;
  contextManagerRegistered = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

/**
 * A service's tracer. Disabled, it is free: no provider, no context manager, no spans, no
 * propagation work — callers check `enabled` before doing anything per request. Enabled, each
 * service instance has its own provider (the embedded gateway runs several in one process) with
 * the OTLP exporter from settings; the asynchronous context manager is the process's (one per
 * process by OpenTelemetry's design), so the active span follows awaits.
 */
export class Tracing {
  private constructor(
    readonly enabled: boolean,
    readonly tracer: Tracer,
    private readonly provider: BasicTracerProvider | undefined,
  ) {}

  static disabled(): Tracing {
    return new Tracing(false, NOOP_TRACER, undefined);
  }

  static create(service: string, config: TracingConfig, options: TracingOptions = {}): Tracing {
    if (!config.enabled) return Tracing.disabled();
    if (options.logger) routeDiagnostics(options.logger);
    const processors: SpanProcessor[] = [];
    if (options.spanExporter) processors.push(new SimpleSpanProcessor(options.spanExporter));
    else if (config.otlpEndpoint) {
      processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: config.otlpEndpoint, headers: config.headers, timeoutMillis: config.exportTimeoutMs })));
    }
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: `openrouter-${service}` }),
      sampler: sampler(config, options.edge === true),
      spanProcessors: processors,
    });
    registerContextManager();
    return new Tracing(true, provider.getTracer(`openrouter-${service}`), provider);
  }

  /** W3C `traceparent`/`tracestate` of `ctx` into a header map (HTTP, Kafka). */
  inject(ctx: Context, carrier: Record<string, string>): void {
    if (this.enabled) propagator.inject(ctx, carrier, defaultTextMapSetter);
  }

  /** The remote parent named by W3C headers; the root context when there is none. */
  extract(carrier: Record<string, string | string[] | undefined>): Context {
    if (!this.enabled) return ROOT_CONTEXT;
    return propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
  }

  /** Headers carrying the active (or given) span's context; empty when tracing is off. */
  headers(ctx: Context = context.active()): Record<string, string> {
    const carrier: Record<string, string> = {};
    this.inject(ctx, carrier);
    return carrier;
  }

  /** Runs `work` with `span` active, so spans started below it (and outgoing calls) are its children. */
  withSpan<T>(span: Span, work: () => T): T {
    return context.with(trace.setSpan(context.active(), span), work);
  }

  /**
   * Runs the handling of a batch of bus messages as one consumer span, linked to the span that
   * produced each message (named in its `traceparent` header). Tracing off: just `work()`.
   */
  async consume<T>(name: string, headers: ReadonlyArray<Record<string, string>>, work: () => Promise<T>): Promise<T> {
    if (!this.enabled) return work();
    const links: Link[] = [];
    for (const h of headers.slice(0, 128)) {
      const linked = trace.getSpanContext(this.extract(h));
      if (linked) links.push({ context: linked });
    }
    const span = this.tracer.startSpan(name, { kind: SpanKind.CONSUMER, links, attributes: { 'messaging.batch.message_count': headers.length } }, ROOT_CONTEXT);
    try {
      return await context.with(trace.setSpan(ROOT_CONTEXT, span), work);
    } catch (error) {
      // Never the error's message (a stored row's text, a client's input): spans are exported as logs are shipped.
      span.setStatus({ code: SpanStatusCode.ERROR, message: spanErrorMessage(error) });
      throw error;
    } finally {
      span.end();
    }
  }

  async forceFlush(): Promise<void> {
    await this.provider?.forceFlush();
  }

  /** Flushes what is buffered to the exporter and stops. */
  async shutdown(): Promise<void> {
    await this.provider?.shutdown();
  }
}

/** The trace and span ids of the active span, for log lines; empty when none. */
export function activeTraceIds(): { traceId?: string; spanId?: string } {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}

/**
 * What a failed span's status says: the error's canonical kind (and code) or its gRPC status name,
 * never its message, which can quote a provider's error text or the client's input, and spans are
 * exported to a tracing backend as logs are shipped.
 */
export function spanErrorMessage(error: unknown): string {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { kind?: unknown; code?: unknown };
  if (typeof e.kind === 'string') return typeof e.code === 'string' && e.code !== '' ? `${e.kind} (${e.code})` : e.kind;
  if (typeof e.code === 'number') return grpcStatus[e.code] ?? 'error';
  return 'error';
}
