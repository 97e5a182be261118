import { Metadata, status, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { errorv1 } from '@openrouter/contracts';
import { GatewayError, type ErrorKind } from '@openrouter/errors';
import { MAX_MESSAGE_BYTES } from './grpc-server';

/** Trailer that carries the canonical error across a gRPC hop. */
export const ERROR_TRAILER = 'openrouter-error-bin';

function statusFor(kind: ErrorKind): status {
  switch (kind) {
    case 'bad_request':
    case 'context_length_exceeded':
    case 'content_filtered':
      return status.INVALID_ARGUMENT;
    case 'auth_failed':
      return status.UNAUTHENTICATED;
    case 'permission_denied':
      return status.PERMISSION_DENIED;
    case 'not_found':
      return status.NOT_FOUND;
    case 'conflict':
      return status.ALREADY_EXISTS;
    case 'rate_limited':
    case 'budget_exceeded':
      return status.RESOURCE_EXHAUSTED;
    case 'overloaded':
    case 'unavailable':
    case 'upstream_error':
      return status.UNAVAILABLE;
    case 'timeout':
      return status.DEADLINE_EXCEEDED;
    case 'cancelled':
      return status.CANCELLED;
    case 'internal':
      return status.INTERNAL;
  }
}

/**
 * The most characters of an error's message (and of its `param` and `code`) a status carries. The
 * message goes out twice in the trailers (percent-encoded as `grpc-message`, up to 9 bytes a
 * character, and in the detail), and HTTP/2 peers hold trailers to a header-list limit: past it
 * (about 110 KB, a message quoting 12,000 CJK characters a client sent as its model) the status is
 * never delivered and the whole connection stalls, every other call on it with it.
 */
export const STATUS_MESSAGE_MAX = 2_048;
const STATUS_FIELD_MAX = 256;

/** `text` cut to `max` code points, marked as cut; never halfway through a surrogate pair. */
function bounded(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = Array.from(text.slice(0, max + 1)).slice(0, max - 1).join('');
  return `${cut}…`;
}

/** A GatewayError as the status object a grpc-js handler passes to its callback or `destroy`. */
export function toGrpcStatus(error: unknown): Partial<StatusObject> & { code: status; details: string; metadata: Metadata } {
  const e = GatewayError.from(error);
  const metadata = new Metadata();
  const message = bounded(e.message, STATUS_MESSAGE_MAX);
  const detail = errorv1.ErrorDetail.encode({
    kind: e.kind,
    message,
    retryable: e.retryable,
    param: e.param === undefined ? undefined : bounded(e.param, STATUS_FIELD_MAX),
    code: e.code === undefined ? undefined : bounded(e.code, STATUS_FIELD_MAX),
    retryAfterMs: e.retryAfterMs,
    upstreamStatus: e.upstreamStatus,
    provider: e.provider,
    billed: e.billed && { promptTokens: e.billed.promptTokens, estimated: e.billed.estimated, model: e.billed.model ?? '', deployment: e.billed.deployment ?? '', upstreamModel: e.billed.upstreamModel ?? '' },
  }).finish();
  metadata.set(ERROR_TRAILER, Buffer.from(detail));
  return { code: statusFor(e.kind), details: message, metadata };
}

/** Anything a gRPC client call rejected with, as a GatewayError. */
export function fromGrpcError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  const serviceError = error as Partial<ServiceError>;
  const raw = serviceError.metadata?.get(ERROR_TRAILER)[0];
  if (raw instanceof Buffer) {
    try {
      const d = errorv1.ErrorDetail.decode(raw);
      if (GatewayError.isKind(d.kind)) {
        return new GatewayError(d.kind, d.message, {
          retryable: d.retryable,
          param: d.param,
          code: d.code,
          retryAfterMs: d.retryAfterMs,
          upstreamStatus: d.upstreamStatus,
          provider: d.provider,
          billed: d.billed && { promptTokens: d.billed.promptTokens, estimated: d.billed.estimated, model: d.billed.model || undefined, deployment: d.billed.deployment || undefined, upstreamModel: d.billed.upstreamModel || undefined },
        });
      }
    } catch {
      // fall through to the status code
    }
  }
  switch (serviceError.code) {
    case status.CANCELLED:
      return new GatewayError('cancelled', 'The request was cancelled.', { cause: error });
    case status.DEADLINE_EXCEEDED:
      return new GatewayError('timeout', 'The request timed out inside the gateway.', { cause: error });
    case status.UNAVAILABLE:
      return new GatewayError('unavailable', 'An internal gateway service is unavailable.', { cause: error });
    case status.ALREADY_EXISTS:
      return new GatewayError('conflict', 'The request conflicts with the current state of the resource.', { cause: error });
    case status.RESOURCE_EXHAUSTED:
      return messageTooLarge(serviceError.details ?? '', error) ?? connectionFailed(error);
    case status.UNAUTHENTICATED:
      // A peer refused this service's own token (grpc.auth.token differs between the services), not
      // the client's key: the gateway is misconfigured, so a server error, never auth_failed's 401.
      return new GatewayError('internal', 'A gateway service refused the service token of the service that called it (grpc.auth.token differs between the services).', { cause: error, code: 'service_token_refused' });
    case status.INTERNAL:
    case status.UNKNOWN:
      return connectionFailed(error);
    default:
      return GatewayError.from(error);
  }
}

/**
 * A status with no error trailer that no handler of the gateway sends (every one answers through
 * `toGrpcStatus`, trailer included): grpc-js, HTTP/2 or a proxy between the services ended the call
 * ("Received RST_STREAM with code 2", a mesh's reset as a pod goes, "Bandwidth exhausted"). It is
 * the connection failing, as "Connection dropped" (UNAVAILABLE) is: retryable, so the router moves
 * on to its next candidate, which it never does once an answer has begun.
 */
function connectionFailed(cause: unknown): GatewayError {
  return new GatewayError('unavailable', 'The connection to an internal gateway service failed.', { cause, code: 'internal_connection_failed' });
}

/**
 * grpc-js's own refusal of a message over the size limit of the hops (RESOURCE_EXHAUSTED, no error
 * trailer, details saying the message is "larger than" the limit), as the gateway's error: a
 * request too large to pass (413 `request_too_large`: what the client sent, with a conversation it
 * continues, is more than one message carries, and sending it again will not help), or an answer
 * too large (a server error, `response_too_large`). Every service sets the same limit
 * (`MAX_MESSAGE_BYTES`) both ways, so a side that sends too much is refused by its own channel
 * before the peer sees it: what the server refuses to send ("Sent message …") is an answer, and
 * anything else (this side's "Attempted to send …", or a peer's "Received message …") the request.
 * Undefined for any other RESOURCE_EXHAUSTED.
 */
function messageTooLarge(details: string, cause: unknown): GatewayError | undefined {
  if (!/larger than/i.test(details)) return undefined;
  const limit = `${MAX_MESSAGE_BYTES} bytes (${MAX_MESSAGE_BYTES / (1024 * 1024)} MiB)`;
  if (/^sent message/i.test(details)) {
    return new GatewayError('internal', `The answer is too large to pass between the gateway's services, which carry at most ${limit} in one message: ask for less at once.`, { cause, code: 'response_too_large' });
  }
  return new GatewayError(
    'bad_request',
    `The request is too large to pass between the gateway's services, which carry at most ${limit} in one message, the conversation it continues included: send less, or start a new conversation.`,
    { cause, code: 'request_too_large' },
  );
}
