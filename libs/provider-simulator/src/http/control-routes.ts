import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Behaviour } from '../core/behaviour-config';
import { parseBehaviourPatch } from '../core/behaviour-config';
import { parseColourHex, solidPng } from '../core/png-image';
import type { ObservedRequest } from '../core/request-log';
import type { SimulatedServiceAccount } from '../wire/google-oauth';
import { parseJson, readRequestBody, writeJson } from './http-io';

const serviceAccountSchema = z.strictObject({ clientEmail: z.string().min(1), publicKey: z.string().min(1) });
const apiKeySchema = z.strictObject({ apiKey: z.string().min(1).nullable() });

export const CONTROL_PREFIX = '/_sim/';
/** Where the images of URL answers are fetched: `/_sim/images/<id>-<rrggbb>.png`, the colour in the name (nothing is stored). */
export const SIMULATED_IMAGE_PREFIX = '/_sim/images/';
const SIMULATED_IMAGE = /^\/_sim\/images\/[A-Za-z0-9]+-([0-9a-f]{6})\.png$/;

export interface SimulatorControl {
  behaviour(): Behaviour;
  configure(patch: Partial<Behaviour>): void;
  reset(): void;
  requests(): ObservedRequest[];
  trustServiceAccount(account: SimulatedServiceAccount): void;
  expireAccessTokens(): void;
  setApiKey(apiKey: string | undefined): void;
}

const controlError = (message: string): unknown => ({ error: { message, type: 'invalid_request_error', param: null, code: null } });

/** `/_sim/*`: lets another process (a benchmark, the gateway's e2e suite) drive the simulator. */
export async function handleControlRequest(req: IncomingMessage, res: ServerResponse, pathname: string, control: SimulatorControl): Promise<void> {
  const route = `${req.method ?? 'GET'} ${pathname}`;
  if (pathname.startsWith(SIMULATED_IMAGE_PREFIX)) return serveImage(req, res, pathname);
  switch (route) {
    case 'GET /_sim/behaviour':
      return writeJson(res, 200, { behaviour: control.behaviour() });
    case 'POST /_sim/behaviour': {
      const read = await readRequestBody(req);
      if (!read.ok) return read.reason === 'too_large' ? writeJson(res, 413, controlError('Request body too large.')) : undefined;
      const parsed = parseJson(read.body);
      if (!parsed.ok) return writeJson(res, 400, controlError(`Body is not valid JSON: ${parsed.message}`));
      const patch = parseBehaviourPatch(parsed.value);
      if (!patch.ok) return writeJson(res, 400, controlError(`Invalid behaviour: ${patch.message}`));
      control.configure(patch.value);
      return writeJson(res, 200, { behaviour: control.behaviour() });
    }
    case 'POST /_sim/reset':
      req.resume();
      control.reset();
      return writeJson(res, 200, { behaviour: control.behaviour() });
    case 'GET /_sim/requests':
      return writeJson(res, 200, { object: 'list', data: control.requests() });
    case 'POST /_sim/google/service-accounts': {
      const read = await readRequestBody(req);
      if (!read.ok) return read.reason === 'too_large' ? writeJson(res, 413, controlError('Request body too large.')) : undefined;
      const parsed = parseJson(read.body);
      const account = parsed.ok ? serviceAccountSchema.safeParse(parsed.value) : undefined;
      if (!account?.success) return writeJson(res, 400, controlError('Expected {"clientEmail": string, "publicKey": PEM string}.'));
      try {
        control.trustServiceAccount(account.data);
      } catch {
        return writeJson(res, 400, controlError('publicKey: not a PEM public key.'));
      }
      return writeJson(res, 200, { trusted: account.data.clientEmail });
    }
    case 'POST /_sim/api-key': {
      const read = await readRequestBody(req);
      if (!read.ok) return read.reason === 'too_large' ? writeJson(res, 413, controlError('Request body too large.')) : undefined;
      const parsed = parseJson(read.body);
      const key = parsed.ok ? apiKeySchema.safeParse(parsed.value) : undefined;
      if (!key?.success) return writeJson(res, 400, controlError('Expected {"apiKey": string} (or null: any key).'));
      control.setApiKey(key.data.apiKey ?? undefined);
      // The key itself is not echoed: the control route's answers may be logged.
      return writeJson(res, 200, { apiKeyRequired: key.data.apiKey !== null });
    }
    case 'POST /_sim/google/expire-tokens':
      req.resume();
      control.expireAccessTokens();
      return writeJson(res, 200, { expired: true });
    default:
      req.resume();
      return writeJson(res, 404, controlError(`Unknown control route: ${route}`));
  }
}

/** An image an answer pointed to by URL: no credentials, as a provider's signed file URL needs none. */
function serveImage(req: IncomingMessage, res: ServerResponse, pathname: string): void {
  req.resume();
  const colour = req.method === 'GET' || req.method === 'HEAD' ? parseColourHex(SIMULATED_IMAGE.exec(pathname)?.[1] ?? '') : undefined;
  if (colour === undefined) return writeJson(res, 404, controlError(`No such image: ${pathname}`));
  const png = solidPng(colour);
  res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length, 'cache-control': 'private, max-age=3600' });
  res.end(req.method === 'HEAD' ? undefined : png);
}
