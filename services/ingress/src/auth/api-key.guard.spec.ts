import { EventEmitter } from 'node:events';
import type { ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import type { AccessService } from '../access/access.service';
import { ApiKeyGuard, presentedKey, UnmeteredApiKeyGuard } from './api-key.guard';

const KEY = 'sk-or-good-key';

/** The access layer as the guards use it: one valid key, and every admission recorded. */
class FakeAccess {
  readonly presented: string[] = [];
  admitted = 0;

  async authenticate(presented: string, requestId: string): Promise<{ record: { id: string }; context: routerv1.RequestContext } | undefined> {
    this.presented.push(presented);
    if (presented !== KEY) return undefined;
    return { record: { id: 'key-1' }, context: { requestId, orgId: 'default' } as routerv1.RequestContext };
  }

  async admit(): Promise<{ headers: Record<string, string>; settle: () => Promise<void> }> {
    this.admitted++;
    return { headers: { 'x-ratelimit-remaining-requests': '9' }, settle: async () => undefined };
  }
}

function httpContext(headers: Record<string, string>): { context: ExecutionContext; request: FastifyRequest; raw: EventEmitter & { setHeader: jest.Mock } } {
  const request = { id: 'req-1', headers, body: { model: 'm', messages: [] }, method: 'POST' } as unknown as FastifyRequest;
  const raw = Object.assign(new EventEmitter(), { destroyed: false, closed: false, writableFinished: false, setHeader: jest.fn() });
  const reply = { raw } as unknown as FastifyReply;
  const context = { switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }) } as unknown as ExecutionContext;
  return { context, request, raw };
}

async function refusal(run: () => Promise<unknown>): Promise<GatewayError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof GatewayError)) throw new Error('expected a GatewayError');
  return error;
}

describe('presentedKey', () => {
  it('reads Authorization: Bearer, and x-api-key when there is no Authorization header', () => {
    expect(presentedKey({ authorization: `Bearer ${KEY}` })).toBe(KEY);
    expect(presentedKey({ 'x-api-key': KEY })).toBe(KEY);
    expect(presentedKey({ 'x-api-key': ` ${KEY} ` })).toBe(KEY);
    // An empty Authorization header is no header.
    expect(presentedKey({ authorization: '', 'x-api-key': KEY })).toBe(KEY);
  });

  it('judges a request with both headers by its Authorization header alone', () => {
    expect(presentedKey({ authorization: 'Bearer sk-a', 'x-api-key': 'sk-b' })).toBe('sk-a');
    expect(() => presentedKey({ authorization: 'Basic abc', 'x-api-key': KEY })).toThrow(expect.objectContaining({ kind: 'auth_failed', code: 'missing_api_key' }) as Error);
  });

  it('refuses a request without a key, naming both headers', () => {
    for (const headers of [{}, { 'x-api-key': '' }, { 'x-api-key': '   ' }]) {
      let thrown: unknown;
      try {
        presentedKey(headers);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toMatchObject({ kind: 'auth_failed', code: 'missing_api_key' });
      expect((thrown as Error).message).toContain('x-api-key');
    }
  });
});

describe('ApiKeyGuard', () => {
  it('authenticates a key sent as x-api-key, then admits the request to its rate limits', async () => {
    const access = new FakeAccess();
    const guard = new ApiKeyGuard(access as unknown as AccessService);
    const { context, request, raw } = httpContext({ 'x-api-key': KEY, 'anthropic-version': '2023-06-01' });
    await expect(guard.canActivate(context)).resolves.toBe(true);
    expect(access.presented).toEqual([KEY]);
    expect(access.admitted).toBe(1);
    expect(request.requestContext).toMatchObject({ requestId: 'req-1', orgId: 'default' });
    expect(raw.setHeader).toHaveBeenCalledWith('x-ratelimit-remaining-requests', '9');
  });

  it('refuses a wrong x-api-key with 401 invalid_api_key, admitting nothing', async () => {
    const access = new FakeAccess();
    const error = await refusal(() => new ApiKeyGuard(access as unknown as AccessService).canActivate(httpContext({ 'x-api-key': 'sk-wrong' }).context));
    expect(error).toMatchObject({ kind: 'auth_failed', code: 'invalid_api_key' });
    expect(access.admitted).toBe(0);
  });
});

describe('UnmeteredApiKeyGuard', () => {
  it('authenticates without charging a rate limit', async () => {
    const access = new FakeAccess();
    const { context, request } = httpContext({ authorization: `Bearer ${KEY}` });
    await expect(new UnmeteredApiKeyGuard(access as unknown as AccessService).canActivate(context)).resolves.toBe(true);
    expect(request.requestContext).toMatchObject({ orgId: 'default' });
    expect(access.admitted).toBe(0);
  });

  it('refuses a missing or wrong key', async () => {
    const access = new FakeAccess();
    const guard = new UnmeteredApiKeyGuard(access as unknown as AccessService);
    await expect(refusal(() => guard.canActivate(httpContext({}).context))).resolves.toMatchObject({ code: 'missing_api_key' });
    await expect(refusal(() => guard.canActivate(httpContext({ 'x-api-key': 'sk-wrong' }).context))).resolves.toMatchObject({ code: 'invalid_api_key' });
  });
});
