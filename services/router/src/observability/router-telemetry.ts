import type { adapterv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import type { DeploymentCircuit, RouterMetrics } from '@openrouter/observability';
import { carriesAnswer, carriesAudio, type AdapterPort } from '../router.service';
import type { RoutingEngine } from '../routing/routing-engine';

/** Failovers remembered (see `failoverOf`), so later attempts count as retries and failovers. */
const REMEMBERED_REQUESTS = 10_000;

/** What the router sends an adapter: the request's id, and the client's request (the model it asked for). */
interface AdapterCall {
  requestId: string;
  provider: string;
  request?: { model: string } | undefined;
}

/**
 * Which failover a call is an attempt of: the request's calls of one kind for one requested model.
 * The request id alone does not tell: a request's guardrail moderation calls (one per moderation
 * model, in parallel) carry it too, and are failovers of their own before the request's.
 */
function failoverOf(kind: keyof AdapterPort, call: AdapterCall): string {
  return JSON.stringify([call.requestId, kind, call.request?.model ?? '']);
}

/** Every deployment's circuit, read at scrape time. */
export function deploymentCircuits(engine: Pick<RoutingEngine, 'catalog' | 'breakers'>): DeploymentCircuit[] {
  const circuits: DeploymentCircuit[] = [];
  for (const model of engine.catalog.list()) {
    for (const deployment of model.deployments) circuits.push({ provider: deployment.provider, deployment: deployment.id, state: engine.breakers.of(deployment.id).current() });
  }
  return circuits;
}

/**
 * An attempt's outcome: an attempt stopped by failover's timeout (the signal's reason says so) is a
 * `timeout` and its request may go on to a retry or failover; one stopped any other way (the
 * client went) is `cancelled`.
 */
function outcomeOf(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) return signal.reason instanceof GatewayError && signal.reason.kind === 'timeout' ? 'timeout' : 'cancelled';
  const kind = (error as { kind?: unknown } | null)?.kind;
  return typeof kind === 'string' ? kind : 'internal';
}

/**
 * The adapter port, counting each call as one attempt of its request, under the deployment called:
 * its outcome is decided by the first answer event (as failover decides it: an opening chunk that
 * only names the role does not decide it, nor a speech piece without audio), and a failover's later
 * attempts count as retries and, on another deployment, failovers (a request's guardrail
 * moderation calls are failovers apart from the request's own: see `failoverOf`).
 */
export function instrumentAdapterPort(port: AdapterPort, metrics: RouterMetrics): AdapterPort {
  const previous = new Map<string, { count: number; deployment: string }>();
  const record = (failover: string, provider: string, deployment: string, outcome: string): void => {
    const before = previous.get(failover);
    metrics.attempt(provider, deployment, outcome, before?.count ?? 0, before?.deployment);
    previous.delete(failover);
    if (outcome === 'ok' || outcome === 'cancelled') return;
    previous.set(failover, { count: (before?.count ?? 0) + 1, deployment });
    if (previous.size > REMEMBERED_REQUESTS) {
      const oldest = previous.keys().next().value;
      if (oldest !== undefined) previous.delete(oldest);
    }
  };
  return {
    chat(request: adapterv1.ChatRequest, signal: AbortSignal, deployment: string): AsyncIterator<adapterv1.ChatResponse> {
      return recordedStream(failoverOf('chat', request), request.provider, deployment, signal, port.chat(request, signal, deployment), carriesAnswer);
    },
    embed(request: adapterv1.EmbedRequest, signal: AbortSignal, deployment: string): Promise<adapterv1.EmbedResponse> {
      return recorded(failoverOf('embed', request), request.provider, deployment, signal, () => port.embed(request, signal, deployment));
    },
    moderate(request: adapterv1.ModerateRequest, signal: AbortSignal, deployment: string): Promise<adapterv1.ModerateResponse> {
      return recorded(failoverOf('moderate', request), request.provider, deployment, signal, () => port.moderate(request, signal, deployment));
    },
    generateImages(request: adapterv1.GenerateImagesRequest, signal: AbortSignal, deployment: string): Promise<adapterv1.GenerateImagesResponse> {
      return recorded(failoverOf('generateImages', request), request.provider, deployment, signal, () => port.generateImages(request, signal, deployment));
    },
    transcribe(request: adapterv1.TranscribeRequest, signal: AbortSignal, deployment: string): Promise<adapterv1.TranscribeResponse> {
      return recorded(failoverOf('transcribe', request), request.provider, deployment, signal, () => port.transcribe(request, signal, deployment));
    },
    speak(request: adapterv1.SpeakRequest, signal: AbortSignal, deployment: string): AsyncIterator<adapterv1.SpeakResponse> {
      return recordedStream(failoverOf('speak', request), request.provider, deployment, signal, port.speak(request, signal, deployment), carriesAudio);
    },
  };

  /**
   * A streamed call, recorded with its outcome once an event `decides` it (a chat chunk with some of
   * the answer, a speech piece with audio), or the stream ends or fails before one does.
   */
  function recordedStream<T>(failover: string, provider: string, deployment: string, signal: AbortSignal, inner: AsyncIterator<T>, decides: (event: T) => boolean): AsyncIterator<T> {
    let decided = false;
    let opened = false;
    return {
      async next(): Promise<IteratorResult<T>> {
        if (decided) return inner.next();
        try {
          const result = await inner.next();
          if (result.done || decides(result.value)) {
            decided = true;
            // A stream that ends after its opening is served as it is, as failover serves it.
            record(failover, provider, deployment, result.done && !opened ? 'upstream_error' : 'ok');
          }
          opened = true;
          return result;
        } catch (error) {
          decided = true;
          record(failover, provider, deployment, outcomeOf(error, signal));
          throw error;
        }
      },
      return: (value?: unknown) => (inner.return ? inner.return(value) : Promise.resolve({ done: true, value: undefined })),
      throw: (error?: unknown) => (inner.throw ? inner.throw(error) : Promise.reject(error)),
    };
  }

  /** A unary call, recorded with its outcome. */
  async function recorded<T>(failover: string, provider: string, deployment: string, signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    try {
      const response = await call();
      record(failover, provider, deployment, 'ok');
      return response;
    } catch (error) {
      record(failover, provider, deployment, outcomeOf(error, signal));
      throw error;
    }
  }
}
