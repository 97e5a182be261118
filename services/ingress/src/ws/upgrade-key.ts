import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from '@openrouter/errors';
import { presentedKey } from '../auth/api-key.guard';
import { BEARER_PROTOCOL_PREFIX, WS_PROTOCOL } from './ws-protocol';

/**
 * The key an upgrade presents. Its headers are read exactly as an HTTP request's (`presentedKey`):
 * `Authorization: Bearer <key>`, else, when there is no Authorization header, `x-api-key: <key>`;
 * with both, the Authorization header alone decides. When the headers present no key, the
 * subprotocol `bearer.<key>` does: browsers cannot set headers on a WebSocket, though they may add
 * an Authorization header of their own (the Basic credentials of the page's site).
 * Throws `auth_failed` (`missing_api_key`) when neither presents a key.
 */
export function upgradeKey(headers: IncomingHttpHeaders): string {
  try {
    return presentedKey(headers);
  } catch (error) {
    const key = protocolKey(headers['sec-websocket-protocol']);
    if (key) return key;
    // A header that presents no key (`Authorization: Basic …`, an empty x-api-key) is refused as over HTTP.
    if (headers.authorization || headers['x-api-key']) throw error;
    throw new GatewayError(
      'auth_failed',
      `You didn't provide an API key. Provide it in the Authorization header as 'Bearer YOUR_KEY', in the x-api-key header, or (from a browser) as the subprotocol '${BEARER_PROTOCOL_PREFIX}YOUR_KEY' beside '${WS_PROTOCOL}'.`,
      { code: 'missing_api_key' },
    );
  }
}

/** The key of a `bearer.<key>` subprotocol, if one is offered. */
function protocolKey(header: string | undefined): string | undefined {
  const bearer = (header ?? '')
    .split(',')
    .map((p) => p.trim())
    .find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX));
  return bearer ? bearer.slice(BEARER_PROTOCOL_PREFIX.length) : undefined;
}
