import { GatewayError, type ErrorKind, type GatewayErrorOptions } from '@openrouter/errors';

/** What Bedrock says about a failed call, from the HTTP response or a stream exception frame. */
export interface BedrockFailure {
  /** HTTP status; for a stream exception frame, the status Bedrock documents for that exception. */
  status: number;
  /** `x-amzn-errortype`, body `__type`, or the frame's `:exception-type` (any case, any `:uri` suffix). */
  errorType: string | undefined;
  message: string | undefined;
  retryAfterMs?: number | undefined;
}

interface Mapping {
  kind: ErrorKind;
  /** Status used when the failure arrives without one (a stream exception frame). */
  status: number;
  retryable?: boolean;
  /**
   * What the client is told instead of the provider's own text, which is then kept in the error's
   * `cause` (the adapter's log shows it; no response carries it): auth failures can quote
   * credentials, and an access refusal names the gateway's AWS account and IAM role.
   */
  hiddenAs?: string;
  code?: string;
}

const CREDENTIALS_REFUSED = "rejected the gateway's AWS credentials";
const ACCESS_REFUSED = "refused the gateway's AWS account access to the model";
/** A refusal of the gateway's account (IAM policy, model access, region): another deployment may serve the request. */
const ACCESS_DENIED: Mapping = { kind: 'permission_denied', status: 403, retryable: true, hiddenAs: ACCESS_REFUSED, code: 'upstream_access_denied' };
const AUTH_FAILED: Mapping = { kind: 'auth_failed', status: 403, retryable: true, hiddenAs: CREDENTIALS_REFUSED, code: 'upstream_auth_failed' };

/**
 * Every Bedrock Runtime error type, keyed in lower case so `ThrottlingException` (HTTP
 * `x-amzn-errortype`) and `throttlingException` (stream `:exception-type`) find the same entry.
 */
const BY_TYPE: ReadonlyMap<string, Mapping> = new Map<string, Mapping>([
  ['validationexception', { kind: 'bad_request', status: 400 }],
  ['serializationexception', { kind: 'bad_request', status: 400 }],
  ['accessdeniedexception', ACCESS_DENIED],
  ['unrecognizedclientexception', AUTH_FAILED],
  ['invalidsignatureexception', AUTH_FAILED],
  ['incompletesignatureexception', AUTH_FAILED],
  ['missingauthenticationtokenexception', AUTH_FAILED],
  ['expiredtokenexception', AUTH_FAILED],
  ['resourcenotfoundexception', { kind: 'not_found', status: 404, retryable: true }],
  ['throttlingexception', { kind: 'rate_limited', status: 429, code: 'rate_limit_exceeded' }],
  ['toomanyrequestsexception', { kind: 'rate_limited', status: 429, code: 'rate_limit_exceeded' }],
  ['servicequotaexceededexception', { kind: 'rate_limited', status: 400, code: 'quota_exceeded' }],
  ['serviceunavailableexception', { kind: 'unavailable', status: 503 }],
  ['modelnotreadyexception', { kind: 'unavailable', status: 429, code: 'model_not_ready' }],
  ['modeltimeoutexception', { kind: 'timeout', status: 408 }],
  ['internalserverexception', { kind: 'upstream_error', status: 500 }],
  ['modelerrorexception', { kind: 'upstream_error', status: 424, code: 'model_error' }],
  ['modelstreamerrorexception', { kind: 'upstream_error', status: 424, code: 'model_stream_error' }],
]);

// Claude's own overflow texts arrive inside a ValidationException: "prompt is too long: …" and
// "input length and `max_tokens` exceed context limit: …".
const CONTEXT_LENGTH = /too long|too many (input )?tokens|context (length|window|limit)|maximum (input|prompt) (length|size)|exceeds? the (model'?s? )?(max|context)/i;
/**
 * ValidationExceptions about the deployment's model id, not the client's request: an id Bedrock
 * does not know, or a model that must be called through an inference profile. They are the
 * gateway's misconfiguration, as another provider's 404 for an unknown model is, and another
 * deployment may serve the request.
 */
const DEPLOYMENT_MODEL = /provided model identifier is invalid|with on-demand throughput isn['’]?t supported/i;
// AWS messages may quote access key ids; they must not travel further.
const ACCESS_KEY_ID = /\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b/g;
// Nor the gateway's AWS account id, which the ARNs they quote carry (an inference profile, a role):
// `arn:aws:bedrock:us-east-1:123456789012:…` → `arn:aws:bedrock:us-east-1:[redacted]:…`.
const ARN_ACCOUNT_ID = /\b(arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:)\d{12}(?=:)/g;

/** `ThrottlingException:http://internal.amazon.com/coral/…` → `throttlingexception`. */
export function normalizeErrorType(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const bare = raw.split(':')[0]?.split('#').pop()?.trim().toLowerCase();
  return bare ? bare : undefined;
}

/** The status Bedrock documents for an exception type (stream exception frames carry none). */
export function statusOfErrorType(errorType: string | undefined): number | undefined {
  const key = normalizeErrorType(errorType);
  return key === undefined ? undefined : BY_TYPE.get(key)?.status;
}

/** A Bedrock failure as the canonical error the router acts on. */
export function toGatewayError(failure: BedrockFailure, provider: string): GatewayError {
  const type = normalizeErrorType(failure.errorType);
  const mapping = (type !== undefined ? BY_TYPE.get(type) : undefined) ?? byStatus(failure.status);
  // The log (a hidden message's cause) keeps the account id, which tells the operator which account refused.
  const logged = failure.message?.replace(ACCESS_KEY_ID, '[redacted]');
  const message = logged?.replace(ARN_ACCOUNT_ID, '$1[redacted]');
  const base: GatewayErrorOptions = { provider, upstreamStatus: failure.status, code: mapping.code ?? type };
  if (mapping.kind === 'bad_request' && CONTEXT_LENGTH.test(message ?? '')) {
    return new GatewayError('context_length_exceeded', `The request exceeds the model context length: ${message ?? ''}`.trim(), { ...base, code: 'context_length_exceeded' });
  }
  if (type === 'validationexception' && DEPLOYMENT_MODEL.test(message ?? '')) {
    return new GatewayError('not_found', `The provider "${provider}" does not know the model or endpoint: ${message ?? ''}`, { ...base, retryable: true });
  }
  if (mapping.hiddenAs !== undefined) {
    const said = new Error(`${failure.errorType?.split(':')[0] ?? `HTTP ${failure.status}`}: ${logged ?? '(no message)'}`);
    return new GatewayError(mapping.kind, `The provider "${provider}" ${mapping.hiddenAs}.`, { ...base, retryable: mapping.retryable, cause: said });
  }
  const text = message ? `The provider "${provider}" failed (${failure.errorType?.split(':')[0] ?? `HTTP ${failure.status}`}): ${message}` : `The provider "${provider}" failed (HTTP ${failure.status}).`;
  return new GatewayError(mapping.kind, mapping.kind === 'bad_request' && message ? message : text, {
    ...base,
    retryable: mapping.retryable,
    retryAfterMs: mapping.kind === 'rate_limited' ? failure.retryAfterMs : undefined,
  });
}

function byStatus(status: number): Mapping {
  switch (status) {
    case 400:
    case 422:
      return { kind: 'bad_request', status };
    case 401:
      return { ...AUTH_FAILED, status };
    case 403:
      return ACCESS_DENIED;
    case 404:
      return { kind: 'not_found', status, retryable: true };
    case 408:
    case 504:
      return { kind: 'timeout', status };
    case 429:
      return { kind: 'rate_limited', status, code: 'rate_limit_exceeded' };
    case 503:
      return { kind: 'unavailable', status };
  }
  return status >= 500 ? { kind: 'upstream_error', status } : { kind: 'bad_request', status };
}

/** Reads `{"message": …}` (or `Message`, `__type`) from an error body; anything else yields nothing. */
export function parseErrorBody(text: string): { message: string | undefined; type: string | undefined } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { message: undefined, type: undefined };
  }
  if (typeof parsed !== 'object' || parsed === null) return { message: undefined, type: undefined };
  const record = parsed as Record<string, unknown>;
  const message = record['message'] ?? record['Message'];
  const type = record['__type'];
  return { message: typeof message === 'string' && message !== '' ? message : undefined, type: typeof type === 'string' ? type : undefined };
}

/** An HTTP error response from Bedrock as the canonical error. */
export function parseBedrockErrorResponse(status: number, errorTypeHeader: string | undefined, bodyText: string, provider: string, retryAfterMs?: number): GatewayError {
  const body = parseErrorBody(bodyText);
  return toGatewayError({ status, errorType: errorTypeHeader ?? body.type, message: body.message, retryAfterMs }, provider);
}
