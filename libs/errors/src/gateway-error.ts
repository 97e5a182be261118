/**
 * The one error model inside the gateway. Domain code throws GatewayError with a kind; each edge
 * maps kinds exhaustively (gRPC status between services, OpenAI's error JSON at ingress).
 */
export const ERROR_KINDS = [
  'bad_request',
  'auth_failed',
  'permission_denied',
  'not_found',
  /** The request conflicts with the current state: an id that is taken, an operation still in progress. */
  'conflict',
  'rate_limited',
  'budget_exceeded',
  'overloaded',
  'context_length_exceeded',
  'content_filtered',
  'timeout',
  'unavailable',
  'upstream_error',
  'cancelled',
  'internal',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

/** Kinds worth another attempt on a different (or the same, later) deployment. */
const RETRYABLE: ReadonlySet<ErrorKind> = new Set<ErrorKind>(['rate_limited', 'overloaded', 'timeout', 'unavailable', 'upstream_error']);

/**
 * Input tokens a provider billed for a request that then failed (the calls of a split embeddings
 * request that answered before another failed), and the route that served them once named.
 */
export interface BilledUsage {
  promptTokens: number;
  estimated: boolean;
  model?: string | undefined;
  deployment?: string | undefined;
  upstreamModel?: string | undefined;
}

export interface GatewayErrorOptions {
  param?: string | undefined;
  code?: string | undefined;
  retryable?: boolean | undefined;
  retryAfterMs?: number | undefined;
  upstreamStatus?: number | undefined;
  provider?: string | undefined;
  billed?: BilledUsage | undefined;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  readonly param: string | undefined;
  readonly code: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly upstreamStatus: number | undefined;
  readonly provider: string | undefined;
  readonly billed: BilledUsage | undefined;

  constructor(kind: ErrorKind, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.kind = kind;
    this.retryable = options.retryable ?? RETRYABLE.has(kind);
    this.param = options.param;
    this.code = options.code;
    this.retryAfterMs = options.retryAfterMs;
    this.upstreamStatus = options.upstreamStatus;
    this.provider = options.provider;
    this.billed = options.billed;
  }

  /** This error with `changes` (the same kind and message). */
  with(changes: GatewayErrorOptions): GatewayError {
    const { kind, message, retryable, param, code, retryAfterMs, upstreamStatus, provider, billed, cause } = this;
    return new GatewayError(kind, message, { retryable, param, code, retryAfterMs, upstreamStatus, provider, billed, cause, ...changes });
  }

  static isKind(value: string): value is ErrorKind {
    return (ERROR_KINDS as readonly string[]).includes(value);
  }

  /** Any thrown value as a GatewayError; unknown failures become `internal` without leaking their text. */
  static from(error: unknown): GatewayError {
    if (error instanceof GatewayError) return error;
    return new GatewayError('internal', 'The gateway failed to process the request.', { cause: error });
  }
}
