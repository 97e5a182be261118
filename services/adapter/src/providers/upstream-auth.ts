import type { Dispatcher } from 'undici';
import { postJson, type UpstreamRequest } from './http-upstream';

/**
 * Where the credential headers of a provider's calls come from: a fixed key, or access tokens
 * fetched and refreshed (Vertex AI). Asked once per call, so a token source can fetch lazily.
 */
export interface UpstreamAuth {
  /** The credential headers of one call. */
  headers(signal: AbortSignal): Promise<Record<string, string>>;
  /**
   * The provider answered 401 to `headers`: true when fresh headers may be accepted (an expired
   * token was dropped), so the call is sent once more with them. `again`: the headers were the
   * fresh ones of that second try, refused as well (the answer is then passed on as it came).
   */
  refused?(headers: Record<string, string>, again?: boolean): boolean;
}

/** The same headers on every call, never refreshed. */
export function staticAuth(headers: Record<string, string>): UpstreamAuth {
  const fixed = Promise.resolve(headers);
  return { headers: () => fixed };
}

/**
 * POSTs JSON with the call's credentials laid over `request.headers`. A 401 the auth can cure is
 * sent once more with fresh credentials; any other answer is returned as it came.
 */
export async function postWithAuth(agent: Dispatcher, auth: UpstreamAuth, request: UpstreamRequest): Promise<Dispatcher.ResponseData> {
  const credentials = await auth.headers(request.signal);
  const response = await postJson(agent, { ...request, headers: { ...request.headers, ...credentials } });
  if (response.statusCode !== 401 || auth.refused?.(credentials) !== true) return response;
  // The refusal's body is dropped: the retry's answer, whatever it is, is the one that counts.
  await response.body.text().catch(() => '');
  const fresh = await auth.headers(request.signal);
  const retried = await postJson(agent, { ...request, headers: { ...request.headers, ...fresh } });
  if (retried.statusCode === 401) auth.refused?.(fresh, true);
  return retried;
}
