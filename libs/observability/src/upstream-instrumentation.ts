import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import type { Registry } from 'prom-client';
import { label } from './metrics/metrics-registry';
import { UpstreamMetrics } from './metrics/upstream.metrics';
import { spanErrorMessage, Tracing } from './tracing/tracing';

export interface UpstreamCall {
  provider: string;
  /** What the call does: its metrics' `operation` label and its span's `gen_ai.operation.name`. */
  operation: 'chat' | 'embedding' | 'moderation' | 'image' | 'transcription' | 'translation' | 'speech';
  upstreamModel: string;
}

/** `kind` of an error that has one (the gateway's canonical errors), else `internal`. */
function outcomeOf(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) return 'cancelled';
  const kind = (error as { kind?: unknown } | null)?.kind;
  return typeof kind === 'string' ? kind : 'internal';
}

/**
 * Times provider calls (to the first event and to the end) and makes each a client span, child of
 * the adapter's server span. Both are optional: without a registry nothing is counted, with
 * tracing off no span is made.
 */
export class UpstreamInstrumentation {
  private readonly metrics: UpstreamMetrics | undefined;

  constructor(
    registry: Registry | undefined,
    private readonly tracing: Tracing = Tracing.disabled(),
  ) {
    this.metrics = registry ? new UpstreamMetrics(registry) : undefined;
  }

  async *stream<T>(call: UpstreamCall, signal: AbortSignal, open: () => AsyncGenerator<T>): AsyncGenerator<T> {
    const span = this.startSpan(call);
    const started = performance.now();
    const labels = { provider: label(call.provider), operation: call.operation };
    let first = true;
    let failure: unknown;
    let failed = false;
    try {
      const source = span ? this.tracing.withSpan(span, open) : open();
      for (;;) {
        const next = await (span ? this.tracing.withSpan(span, () => source.next()) : source.next());
        if (next.done) break;
        if (first) {
          first = false;
          this.metrics?.firstEvent.observe(labels, (performance.now() - started) / 1000);
        }
        yield next.value;
      }
    } catch (error) {
      failed = true;
      failure = error;
      throw error;
    } finally {
      const outcome = failed ? outcomeOf(failure, signal) : signal.aborted ? 'cancelled' : 'ok';
      this.finish(call, span, outcome, started, failure);
    }
  }

  async call<T>(call: UpstreamCall, signal: AbortSignal, run: () => Promise<T>): Promise<T> {
    const span = this.startSpan(call);
    const started = performance.now();
    try {
      const result = await (span ? this.tracing.withSpan(span, run) : run());
      this.finish(call, span, 'ok', started, undefined);
      return result;
    } catch (error) {
      this.finish(call, span, outcomeOf(error, signal), started, error);
      throw error;
    }
  }

  private startSpan(call: UpstreamCall): Span | undefined {
    if (!this.tracing.enabled) return undefined;
    return this.tracing.tracer.startSpan(`POST ${call.provider}`, {
      kind: SpanKind.CLIENT,
      attributes: { 'http.request.method': 'POST', 'gen_ai.system': call.provider, 'gen_ai.operation.name': call.operation, 'gen_ai.request.model': call.upstreamModel },
    });
  }

  private finish(call: UpstreamCall, span: Span | undefined, outcome: string, started: number, error: unknown): void {
    const seconds = (performance.now() - started) / 1000;
    const labels = { provider: label(call.provider), operation: call.operation, outcome };
    this.metrics?.requests.inc(labels);
    this.metrics?.duration.observe(labels, seconds);
    if (!span) return;
    span.setAttribute('openrouter.outcome', outcome);
    if (outcome !== 'ok' && outcome !== 'cancelled') span.setStatus({ code: SpanStatusCode.ERROR, message: error === undefined ? outcome : spanErrorMessage(error) });
    span.end();
  }
}
