import type { Dispatcher } from 'undici';
import type { GatewayError } from '@openrouter/errors';
import type { Secret } from './credential-file';
import { postForm, postJson, type UpstreamFormRequest, type UpstreamRequest } from './http-upstream';

/**
 * Whether fresh credentials may cure a refusal of `used`, the credentials a call was made with:
 * true when the call should be sent once more with those the source gives now. `again`: `used`
 * were the fresh ones of that second try, refused as well (the answer is then passed on as it
 * came). `status`: the HTTP status of the refusal.
 */
export type RefusalHandler<C> = (used: C, again?: boolean, status?: number) => boolean | Promise<boolean>;

/**
 * Where the credential headers of a provider's calls come from: a fixed key, a key read from a
 * file that may change, or access tokens fetched and refreshed (Vertex AI, Entra ID). Asked once
 * per call, so a token source can fetch lazily, and a call keeps the headers it started with.
 */
export interface UpstreamAuth {
  /** The credential headers of one call. */
  headers(signal: AbortSignal): Promise<Record<string, string>>;
  /** The provider refused `headers` (see RefusalHandler); unset: a refusal is passed on as it came. */
  refused?: RefusalHandler<Record<string, string>>;
}

/** The same headers on every call, never refreshed. */
export function staticAuth(headers: Record<string, string>): UpstreamAuth {
  const fixed = Promise.resolve(headers);
  return { headers: () => fixed };
}

/**
 * The headers of a secret, which a file may change: a refusal reads the file again at once (rate
 * limited), and the call is sent once more when it now holds another secret. An inline secret
 * never changes, so its refusals are passed on as they came.
 */
export function secretAuth(secret: Secret, headersOf: (value: string) => Record<string, string>): UpstreamAuth {
  return {
    headers: () => Promise.resolve(headersOf(secret.value())),
    async refused(used, again) {
      if (again === true) return false;
      await secret.reread();
      return !sameHeaders(headersOf(secret.value()), used);
    },
  };
}

function sameHeaders(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

/** An error answer as the family's canonical error, from the response (its headers) and its body's text. */
export type ErrorAnswerParser = (response: Dispatcher.ResponseData, bodyText: string) => GatewayError;

/**
 * An answer refusing the gateway's own credentials: a 401 or 403, or what the family's error
 * mapping reads as one whatever its status (Gemini answers a wrong key with 400 API_KEY_INVALID).
 */
export function refusesCredentials(status: number, error: GatewayError): boolean {
  return status === 401 || status === 403 || error.kind === 'auth_failed';
}

/**
 * Sends a call with `credentials` from `take`, and once more with fresh ones when the provider
 * refused them and `refused` says fresh ones may cure it (a rotated key, an expired token). A
 * success is returned; an error answer is thrown as `parseError` reads it (the second try's, when
 * there was one).
 */
export async function sendWithCredentials<C>(
  take: () => Promise<C>,
  refused: RefusalHandler<C> | undefined,
  send: (credentials: C) => Promise<Dispatcher.ResponseData>,
  parseError: ErrorAnswerParser,
): Promise<Dispatcher.ResponseData> {
  const used = await take();
  const response = await send(used);
  if (response.statusCode < 400) return response;
  const error = parseError(response, await response.body.text().catch(() => ''));
  if (refused === undefined || !refusesCredentials(response.statusCode, error) || !(await refused(used, false, response.statusCode))) throw error;
  const fresh = await take();
  const retried = await send(fresh);
  if (retried.statusCode < 400) return retried;
  const again = parseError(retried, await retried.body.text().catch(() => ''));
  if (refusesCredentials(retried.statusCode, again)) await refused(fresh, true, retried.statusCode);
  throw again;
}

/**
 * POSTs JSON with the call's credentials laid over `request.headers`. A refusal the auth can cure
 * is sent once more with fresh credentials; an error answer is thrown as `parseError` reads it.
 */
export function postWithAuth(agent: Dispatcher, auth: UpstreamAuth, request: UpstreamRequest, parseError: ErrorAnswerParser): Promise<Dispatcher.ResponseData> {
  const refused = auth.refused;
  return sendWithCredentials(
    () => auth.headers(request.signal),
    refused === undefined ? undefined : (used, again, status) => refused.call(auth, used, again, status),
    (credentials) => postJson(agent, { ...request, headers: { ...request.headers, ...credentials } }),
    parseError,
  );
}

/** `postWithAuth` for a multipart form: built anew for each send, with the same credential retry. */
export function postFormWithAuth(agent: Dispatcher, auth: UpstreamAuth, request: UpstreamFormRequest, parseError: ErrorAnswerParser): Promise<Dispatcher.ResponseData> {
  const refused = auth.refused;
  return sendWithCredentials(
    () => auth.headers(request.signal),
    refused === undefined ? undefined : (used, again, status) => refused.call(auth, used, again, status),
    (credentials) => postForm(agent, { ...request, headers: { ...request.headers, ...credentials } }),
    parseError,
  );
}
