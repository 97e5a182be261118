import { INTERNAL_CALL_HEADER } from '../access/internal-call';
import { Inject, Injectable, Optional, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TAG_NAME } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import type { routerv1 } from '@openrouter/contracts';
import { AccessService, type TrafficAttributes } from '../access/access.service';
import type { ApiKeyRecord } from '../access/key-record';
import type { Admission } from '../access/rate-limiter';
import { RateLimitedError } from '../access/rate-limiter';
import { BudgetService } from '../budgets/budget.service';
import { reserveBudget } from '../budgets/budget-request';
import { onResponseClose, stopIfClientLeft } from '../routes/client-connection';

declare module 'fastify' {
  interface FastifyRequest {
    requestContext?: routerv1.RequestContext;
    admission?: Admission;
    /** The caller's key, once checked (by `KeyGuard`, ahead of a body's translation). */
    apiKeyRecord?: ApiKeyRecord;
  }
}

/**
 * Authenticates the caller's key (`Authorization: Bearer <key>`, or `x-api-key` as Anthropic's
 * SDKs send it), attaches the caller's request context and charges the request to its rate
 * limits. The rate-limit headers go on the response whatever follows.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    @Inject(AccessService) private readonly access: AccessService,
    @Optional() @Inject(BudgetService) private readonly budgets?: BudgetService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const body = request.body;
    const authenticated = await authenticate(this.access, request);
    request.requestContext = authenticated.context;
    // Every check below awaits Redis: a client that leaves meanwhile is stopped after each one,
    // so its request never reaches a provider and holds nothing.
    stopIfClientLeft(reply);
    const model = typeof body === 'object' && body !== null && typeof (body as Record<string, unknown>)['model'] === 'string' ? String((body as Record<string, unknown>)['model']) : '';
    let admission: Admission;
    try {
      admission = await this.access.admit(authenticated.record, authenticated.context, model, body, request.routeOptions.url);
      setHeaders(reply, admission.headers);
    } catch (error) {
      if (error instanceof RateLimitedError) setHeaders(reply, error.headers);
      throw error;
    }
    request.admission = admission;
    // A metered request's usage record corrects the token charge; one refused before it was
    // metered (its budget, its client gone) used nothing and gets its estimate back.
    onResponseClose(reply, () => {
      if (!request.metered) void admission.settle(0);
    });
    if (this.budgets) await reserveBudget(this.budgets, request, reply);
    // The reservation and the admission are given back by their close listeners (the request is not metered).
    stopIfClientLeft(reply);
    return true;
  }
}

/**
 * Checks the caller's key before anything else is done with the request: for endpoints whose body
 * is translated (Responses, Messages), so that a caller without a valid key costs no more than the
 * key check. The guard that follows (`ApiKeyGuard`) builds the context from the translated body.
 */
@Injectable()
export class KeyGuard implements CanActivate {
  constructor(@Inject(AccessService) private readonly access: AccessService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    request.apiKeyRecord = await keyOf(this.access, request);
    return true;
  }
}

/**
 * Authenticates a request that calls no provider and spends nothing (`POST
 * /v1/messages/count_tokens`): charged to its request limits (it costs the gateway work), not to
 * token limits, and reserves no budget. No usage record is written for it.
 */
@Injectable()
export class UnmeteredApiKeyGuard implements CanActivate {
  constructor(@Inject(AccessService) private readonly access: AccessService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const authenticated = await authenticate(this.access, request);
    request.requestContext = authenticated.context;
    const body = request.body;
    const model = typeof body === 'object' && body !== null && typeof (body as Record<string, unknown>)['model'] === 'string' ? String((body as Record<string, unknown>)['model']) : '';
    try {
      setHeaders(reply, (await this.access.admitRequest(authenticated.record, authenticated.context, model)).headers);
    } catch (error) {
      if (error instanceof RateLimitedError) setHeaders(reply, error.headers);
      throw error;
    }
    return true;
  }
}

/** The caller's key, once it is known to be valid and allowed from the address the request comes from. */
async function keyOf(access: AccessService, request: FastifyRequest): Promise<ApiKeyRecord> {
  if (request.apiKeyRecord) return request.apiKeyRecord;
  const internal = request.headers[INTERNAL_CALL_HEADER];
  if (internal !== undefined) {
    // A call this process makes for a key (a batch's line): the key was checked, from its
    // address, when the work was created; it must still be active now.
    const record = typeof internal === 'string' ? await access.keyOfInternalCall(internal) : undefined;
    if (!record) throw new GatewayError('auth_failed', 'The API key this request is made for is not valid (unknown, revoked or expired).', { code: 'invalid_api_key' });
    return record;
  }
  const record = await access.keyOf(presentedKey(request.headers));
  if (!record) throw new GatewayError('auth_failed', 'Incorrect API key provided.', { code: 'invalid_api_key' });
  await access.requireAllowedAddress(record, access.clients.of(request.raw));
  access.noteUse(record);
  return record;
}

/** The caller's key (checked here, or already by `KeyGuard`) and its request context, with the traffic attributes of the body as it now is. */
async function authenticate(access: AccessService, request: FastifyRequest): Promise<{ record: ApiKeyRecord; context: routerv1.RequestContext }> {
  const record = await keyOf(access, request);
  request.apiKeyRecord = record;
  return { record, context: await access.contextOf(record, String(request.id), trafficAttributes(request.headers, request.body)) };
}

/**
 * The key a request presents: `Authorization: Bearer <key>`, or, when there is no Authorization
 * header, `x-api-key: <key>` (how Anthropic's SDKs and tools send it). A request with both is
 * judged by its Authorization header alone.
 */
export function presentedKey(headers: FastifyRequest['headers']): string {
  const authorization = headers.authorization;
  if (authorization !== undefined && authorization !== '') return bearerToken(authorization);
  const apiKey = headers['x-api-key'];
  const key = typeof apiKey === 'string' ? apiKey.trim() : '';
  if (key !== '') return key;
  throw new GatewayError('auth_failed', "You didn't provide an API key. Provide it in the Authorization header as 'Bearer YOUR_KEY' (or in the x-api-key header).", { code: 'missing_api_key' });
}

export function bearerToken(header: string | undefined): string {
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!match?.[1]) {
    throw new GatewayError('auth_failed', "You didn't provide an API key. Provide it in the Authorization header as 'Bearer YOUR_KEY'.", { code: 'missing_api_key' });
  }
  return match[1];
}

/** App, end-user and tags a caller adds to its traffic: headers, and the body's end user ({@link bodyEndUser}). */
export function trafficAttributes(headers: FastifyRequest['headers'], body: unknown): TrafficAttributes {
  const header = (name: string): string | undefined => {
    const value = headers[name];
    return typeof value === 'string' && value.length > 0 ? value.slice(0, 256) : undefined;
  };
  const tags = headers['x-openrouter-tags'];
  return { app: header('x-openrouter-app'), endUser: header('x-openrouter-user') ?? bodyEndUser(body), tags: parseTags(typeof tags === 'string' ? tags : undefined) };
}

/** The end user a request body names: OpenAI's `user`, else its successor `safety_identifier` (non-empty strings, cut to 256 characters). */
export function bodyEndUser(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  for (const field of ['user', 'safety_identifier']) {
    const value = (body as Record<string, unknown>)[field];
    if (typeof value === 'string' && value.length > 0) return value.slice(0, 256);
  }
  return undefined;
}

/** How much of `x-openrouter-tags` is read: its first 256 characters, its first 16 tags (docs/access.md#tenancy). */
const TAGS_HEADER_CHARS = 256;
const TAGS_HEADER_COUNT = 16;

/**
 * `team=search,env=prod` → { team: 'search', env: 'prod' }: the tags of the header's first
 * {@link TAGS_HEADER_CHARS} characters, {@link TAGS_HEADER_COUNT} at most. A tag the character
 * limit cuts through is left out, never recorded with part of its value.
 */
export function parseTags(value: string | undefined): Record<string, string> {
  const tags: Record<string, string> = {};
  if (!value) return tags;
  let read = value;
  if (value.length > TAGS_HEADER_CHARS) {
    read = value.slice(0, TAGS_HEADER_CHARS);
    // Whole only when the character after the limit ends it.
    if (value[TAGS_HEADER_CHARS] !== ',') read = read.slice(0, Math.max(0, read.lastIndexOf(',')));
  }
  for (const pair of read.split(',').slice(0, TAGS_HEADER_COUNT)) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    const key = pair.slice(0, at).trim();
    const v = pair.slice(at + 1).trim();
    if (TAG_NAME.test(key)) tags[key] = v.slice(0, 128);
  }
  return tags;
}

function setHeaders(reply: FastifyReply, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) reply.raw.setHeader(name, value);
}

export function requestContextOf(request: FastifyRequest): routerv1.RequestContext {
  if (!request.requestContext) throw new GatewayError('auth_failed', 'The request is not authenticated.');
  return request.requestContext;
}
