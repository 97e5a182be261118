import { InterceptingCall, type Interceptor, type Metadata, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { context, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { spanErrorMessage, type Tracing } from './tracing';

interface Binding {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

type Handler = (...args: unknown[]) => void;
interface ServerCall {
  metadata: Metadata;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
}

function metadataCarrier(metadata: Metadata): Record<string, string> {
  const carrier: Record<string, string> = {};
  for (const name of ['traceparent', 'tracestate']) {
    const value = metadata.get(name)[0];
    if (typeof value === 'string') carrier[name] = value;
  }
  return carrier;
}

/** The remote parent carried in a call's metadata. */
export function extractFromMetadata(tracing: Tracing, metadata: Metadata): Context {
  return tracing.extract(metadataCarrier(metadata));
}

/** Writes the context into gRPC metadata (`traceparent`, `tracestate`). */
export function injectIntoMetadata(tracing: Tracing, ctx: Context, metadata: Metadata): void {
  for (const [name, value] of Object.entries(tracing.headers(ctx))) metadata.set(name, value);
}

function endWith(span: Span, error: unknown): void {
  if (error) {
    const e = error as { code?: number };
    span.setAttribute('rpc.grpc.status_code', typeof e.code === 'number' ? e.code : 2);
    span.setStatus({ code: SpanStatusCode.ERROR, message: spanErrorMessage(error) });
  } else span.setAttribute('rpc.grpc.status_code', 0);
  span.end();
}

/**
 * Wraps a gRPC service binding so every call is a server span, child of the caller's span named in
 * the metadata, and the handler runs with it active. Tracing off: the binding itself.
 */
export function traceGrpcBinding<T extends Binding>(binding: T, tracing: Tracing): T {
  if (!tracing.enabled) return binding;
  const implementation: UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(binding.implementation)) {
    const definition = binding.definition[method];
    if (!definition) {
      implementation[method] = handler;
      continue;
    }
    const original = handler as unknown as Handler;
    const wrapped: Handler = (...args: unknown[]) => {
      const call = args[0] as ServerCall;
      const { span, active } = serverSpan(tracing, definition.path, extractFromMetadata(tracing, call.metadata));
      let ended = false;
      const end = (error?: unknown): void => {
        if (ended) return;
        ended = true;
        endWith(span, error);
      };
      if (definition.responseStream || definition.requestStream) {
        call.once('finish', () => end());
        call.once('error', (error) => end(error));
        call.once('cancelled', () => end({ code: 1, details: 'cancelled' }));
        call.once('close', () => end());
        context.with(active, () => original(...args));
        return;
      }
      const callback = args[1] as (error: unknown, ...rest: unknown[]) => void;
      context.with(active, () =>
        original(call, (error: unknown, ...rest: unknown[]) => {
          end(error);
          callback(error, ...rest);
        }),
      );
    };
    implementation[method] = wrapped as unknown as UntypedServiceImplementation[string];
  }
  return { ...binding, implementation };
}

/** A client interceptor that carries the caller's active span in the call's metadata. */
export function tracingInterceptor(tracing: Tracing): Interceptor {
  return (options, nextCall) => {
    const ctx = context.active();
    return new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        injectIntoMetadata(tracing, ctx, metadata);
        next(metadata, listener);
      },
    });
  };
}

/** Channel options for a gRPC client: the tracing interceptor when tracing is on, nothing otherwise. */
export function tracingClientOptions(tracing: Tracing): { interceptors?: Interceptor[] } {
  return tracing.enabled ? { interceptors: [tracingInterceptor(tracing)] } : {};
}

/** A server span for a gRPC method (`/pkg.Service/Method`, as in its definition), child of `parent`. */
function serverSpan(tracing: Tracing, methodPath: string, parent: Context): { span: Span; active: Context } {
  const path = methodPath.replace(/^\//, '');
  const [service = path, rpc = ''] = path.split('/');
  const span = tracing.tracer.startSpan(path, { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': rpc } }, parent);
  return { span, active: trace.setSpan(parent, span) };
}

/**
 * A streaming method called in process (the embedded gateway), traced as its gRPC call would be:
 * a server span named by the method's path (from its service definition), child of the caller's
 * active span, active while the callee works. Tracing off: the stream itself.
 */
export function traceStreamInProcess<A extends unknown[], T>(tracing: Tracing, methodPath: string, open: (...args: A) => AsyncIterable<T>): (...args: A) => AsyncIterable<T> {
  if (!tracing.enabled) return open;
  return async function* traced(...args: A): AsyncGenerator<T> {
    const { span, active } = serverSpan(tracing, methodPath, context.active());
    let failure: unknown;
    try {
      const messages = context.with(active, () => open(...args)[Symbol.asyncIterator]());
      try {
        for (;;) {
          const next = await context.with(active, () => messages.next());
          if (next.done) return;
          yield next.value;
        }
      } finally {
        await context.with(active, async () => messages.return?.());
      }
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      endWith(span, failure);
    }
  };
}

/** A unary method called in process, traced as its gRPC call would be. Tracing off: the method itself. */
export function traceUnaryInProcess<A extends unknown[], T>(tracing: Tracing, methodPath: string, run: (...args: A) => Promise<T>): (...args: A) => Promise<T> {
  if (!tracing.enabled) return run;
  return async (...args: A): Promise<T> => {
    const { span, active } = serverSpan(tracing, methodPath, context.active());
    try {
      const result = await context.with(active, () => run(...args));
      endWith(span, undefined);
      return result;
    } catch (error) {
      endWith(span, error);
      throw error;
    }
  };
}
