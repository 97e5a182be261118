import { EventEmitter } from 'node:events';
import type { ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { AccessService } from '../access/access.service';
import { MemoryAccessRepository } from '../access/access.repository';
import { hashApiKey } from '../access/api-key';
import { MemoryCounterStore } from '../access/counter.store';
import { ingressTestConfig } from '../test-config.testing';
import { ApiKeyGuard, KeyGuard, presentedKey, trafficAttributes, UnmeteredApiKeyGuard } from './api-key.guard';

const KEY = 'sk-or-good-key';
const SECRET = 'guard-spec-secret-0000';

/** The real access layer over in-memory stores: one configured key, allowed 2 requests and 50 tokens a minute. */
async function accessWithKey(): Promise<AccessService> {
  const config = ingressTestConfig({
    access: { keyHashSecret: SECRET, orgs: [{ id: 'acme' }], keys: [{ id: 'key-1', hash: hashApiKey(SECRET, KEY), org: 'acme', limits: { rpm: 2, tpm: 50 } }] },
  });
  const access = new AccessService(config, new MemoryAccessRepository(), new MemoryCounterStore(), createLogger('guard-spec', 'silent'), undefined);
  await access.start();
  return access;
}

function httpContext(headers: Record<string, string>, peer = '127.0.0.1'): { context: ExecutionContext; request: FastifyRequest; raw: EventEmitter & { setHeader: jest.Mock } } {
  const incoming = { headers, socket: { remoteAddress: peer } };
  const request = { id: 'req-1', headers, body: { model: 'm', messages: [] }, method: 'POST', routeOptions: { url: '/v1/messages' }, raw: incoming } as unknown as FastifyRequest;
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
    const guard = new ApiKeyGuard(await accessWithKey());
    const { context, request, raw } = httpContext({ 'x-api-key': KEY, 'anthropic-version': '2023-06-01' });
    await expect(guard.canActivate(context)).resolves.toBe(true);
    expect(request.requestContext).toMatchObject({ requestId: 'req-1', orgId: 'acme', keyId: 'key-1' });
    expect(raw.setHeader).toHaveBeenCalledWith('x-ratelimit-remaining-requests', '1');
  });

  it('refuses a wrong x-api-key with 401 invalid_api_key, admitting nothing', async () => {
    const access = await accessWithKey();
    const error = await refusal(() => new ApiKeyGuard(access).canActivate(httpContext({ 'x-api-key': 'sk-wrong' }).context));
    expect(error).toMatchObject({ kind: 'auth_failed', code: 'invalid_api_key' });
    // Nothing was charged: the key's two requests are still there.
    const { context, raw } = httpContext({ authorization: `Bearer ${KEY}` });
    await new ApiKeyGuard(access).canActivate(context);
    expect(raw.setHeader).toHaveBeenCalledWith('x-ratelimit-remaining-requests', '1');
  });

  it('after KeyGuard, builds the context from the body as it is then (translated), checking the key once', async () => {
    const access = await accessWithKey();
    const keyOf = jest.spyOn(access, 'keyOf');
    const { context, request } = httpContext({ 'x-api-key': KEY });
    await new KeyGuard(access).canActivate(context);
    expect(request.requestContext).toBeUndefined();
    request.body = { model: 'm', messages: [], user: 'end-user-7' };
    await new ApiKeyGuard(access).canActivate(context);
    expect(request.requestContext).toMatchObject({ keyId: 'key-1', endUser: 'end-user-7' });
    expect(keyOf).toHaveBeenCalledTimes(1);
  });
});

describe('network allow lists', () => {
  /** A key of the project acme/platform/search, with allow lists at the organisation and on the key. */
  async function accessWithAllowLists(): Promise<AccessService> {
    const config = ingressTestConfig({
      ingress: { http: { port: 0 }, router: '127.0.0.1:1', trustedProxies: ['10.0.0.1'] },
      access: {
        keyHashSecret: SECRET,
        orgs: [{ id: 'acme', policy: { allowedIps: ['192.0.2.0/24', '2001:db8::/32'] }, teams: [{ id: 'platform', projects: [{ id: 'search' }] }] }],
        keys: [{ id: 'key-1', hash: hashApiKey(SECRET, KEY), org: 'acme', project: 'search', policy: { allowedIps: ['192.0.2.128/25', '2001:db8::/32'] }, limits: { rpm: 2 } }],
      },
    });
    const access = new AccessService(config, new MemoryAccessRepository(), new MemoryCounterStore(), createLogger('guard-spec', 'silent'), undefined);
    await access.start();
    return access;
  }

  it('admits a key from an address every level allows, and refuses it (403 ip_not_allowed, naming the level) from any other, charging nothing', async () => {
    const access = await accessWithAllowLists();
    const org = await refusal(() => new ApiKeyGuard(access).canActivate(httpContext({ authorization: `Bearer ${KEY}` }, '198.51.100.7').context));
    expect(org).toMatchObject({ kind: 'permission_denied', code: 'ip_not_allowed', message: "This API key may not be used from the address 198.51.100.7: it is not in its organisation's allowed_ips." });
    // In the organisation's range, but not in the key's narrower one.
    const key = await refusal(() => new KeyGuard(access).canActivate(httpContext({ authorization: `Bearer ${KEY}` }, '192.0.2.5').context));
    expect(key).toMatchObject({ code: 'ip_not_allowed', message: 'This API key may not be used from the address 192.0.2.5: it is not in its own allowed_ips.' });
    // The refusals used none of the key's 2 requests a minute.
    for (const [peer, remaining] of [['192.0.2.200', '1'], ['2001:db8::5', '0']] as const) {
      const { context, raw } = httpContext({ authorization: `Bearer ${KEY}` }, peer);
      await expect(new ApiKeyGuard(access).canActivate(context)).resolves.toBe(true);
      expect(raw.setHeader).toHaveBeenCalledWith('x-ratelimit-remaining-requests', remaining);
    }
  });

  it('takes the client from X-Forwarded-For past a trusted proxy only, and refuses an address it cannot tell', async () => {
    const access = await accessWithAllowLists();
    // Through the trusted proxy: the address it appended is the client's, whatever the client put before it.
    await expect(new KeyGuard(access).canActivate(httpContext({ authorization: `Bearer ${KEY}`, 'x-forwarded-for': '198.51.100.7, 192.0.2.200' }, '10.0.0.1').context)).resolves.toBe(true);
    await expect(refusal(() => new KeyGuard(access).canActivate(httpContext({ authorization: `Bearer ${KEY}`, 'x-forwarded-for': '192.0.2.200, 198.51.100.7' }, '10.0.0.1').context))).resolves.toMatchObject({
      message: expect.stringContaining('the address 198.51.100.7') as string,
    });
    // Straight from a client, its own X-Forwarded-For is not believed.
    await expect(refusal(() => new KeyGuard(access).canActivate(httpContext({ authorization: `Bearer ${KEY}`, 'x-forwarded-for': '192.0.2.200' }, '198.51.100.7').context))).resolves.toMatchObject({ code: 'ip_not_allowed' });
    // A proxy that forwards something that is no address: unknown, so refused.
    const unknown = await refusal(() => new KeyGuard(access).canActivate(httpContext({ authorization: `Bearer ${KEY}`, 'x-forwarded-for': 'unknown' }, '10.0.0.1').context));
    expect(unknown).toMatchObject({ code: 'ip_not_allowed', message: "This API key may not be used from an address that cannot be determined: it is not in its organisation's allowed_ips." });
  });

  it('still calls a wrong key wrong, from anywhere', async () => {
    const access = await accessWithAllowLists();
    await expect(refusal(() => new KeyGuard(access).canActivate(httpContext({ authorization: 'Bearer sk-wrong' }, '198.51.100.7').context))).resolves.toMatchObject({ code: 'invalid_api_key' });
  });
});

describe('KeyGuard', () => {
  it('refuses a missing or wrong key before anything reads the body', async () => {
    const guard = new KeyGuard(await accessWithKey());
    await expect(refusal(() => guard.canActivate(httpContext({}).context))).resolves.toMatchObject({ code: 'missing_api_key' });
    await expect(refusal(() => guard.canActivate(httpContext({ 'x-api-key': 'sk-wrong' }).context))).resolves.toMatchObject({ code: 'invalid_api_key' });
  });
});

describe('UnmeteredApiKeyGuard', () => {
  it('charges request limits, never token limits, however large the prompt', async () => {
    const guard = new UnmeteredApiKeyGuard(await accessWithKey());
    const big = { model: 'm', messages: [{ role: 'user', content: 'word '.repeat(5_000) }] };
    for (const remaining of ['1', '0']) {
      const { context, request, raw } = httpContext({ authorization: `Bearer ${KEY}` });
      request.body = big;
      await expect(guard.canActivate(context)).resolves.toBe(true);
      expect(request.requestContext).toMatchObject({ orgId: 'acme' });
      expect(raw.setHeader).toHaveBeenCalledWith('x-ratelimit-remaining-requests', remaining);
      expect(raw.setHeader).not.toHaveBeenCalledWith('x-ratelimit-remaining-tokens', expect.anything());
    }
    // The key's 2 requests a minute are spent: a third count is refused as any request would be.
    await expect(refusal(() => guard.canActivate(httpContext({ authorization: `Bearer ${KEY}` }).context))).resolves.toMatchObject({ kind: 'rate_limited' });
  });

  it('refuses a missing or wrong key', async () => {
    const guard = new UnmeteredApiKeyGuard(await accessWithKey());
    await expect(refusal(() => guard.canActivate(httpContext({}).context))).resolves.toMatchObject({ code: 'missing_api_key' });
    await expect(refusal(() => guard.canActivate(httpContext({ 'x-api-key': 'sk-wrong' }).context))).resolves.toMatchObject({ code: 'invalid_api_key' });
  });
});

describe('trafficAttributes', () => {
  it('takes the end user from x-openrouter-user, else the body\'s user, else its safety_identifier', () => {
    expect(trafficAttributes({ 'x-openrouter-user': 'h' }, { user: 'u', safety_identifier: 's' }).endUser).toBe('h');
    expect(trafficAttributes({}, { user: 'u', safety_identifier: 's' }).endUser).toBe('u');
    expect(trafficAttributes({}, { user: '', safety_identifier: 's' }).endUser).toBe('s');
    expect(trafficAttributes({}, { safety_identifier: 'x'.repeat(300) }).endUser).toBe('x'.repeat(256));
    expect(trafficAttributes({}, { user: 7, safety_identifier: null }).endUser).toBeUndefined();
    expect(trafficAttributes({}, undefined).endUser).toBeUndefined();
  });

  it('reads the tags of the first 256 characters of x-openrouter-tags, leaving out whole a tag the limit cuts through', () => {
    const tagsOf = (header: string): Record<string, string> => trafficAttributes({ 'x-openrouter-tags': header }, undefined).tags ?? {};
    // 291 characters: team10's value is cut at the 256th, so team10 is left out (never `platform-`).
    const twelve = Array.from({ length: 12 }, (_, i) => `team${i}=platform-search-${i}`).join(',');
    expect(twelve.length).toBeGreaterThan(256);
    const read = tagsOf(twelve);
    expect(Object.keys(read)).toEqual(Array.from({ length: 10 }, (_, i) => `team${i}`));
    expect(read['team9']).toBe('platform-search-9');
    // A tag ending exactly at the limit (the next character a comma) is whole.
    const exact = `a=${'x'.repeat(125)},b=${'y'.repeat(125)}`;
    expect(exact.length).toBe(255);
    expect(tagsOf(`${exact}z,c=1`)).toEqual({ a: 'x'.repeat(125), b: `${'y'.repeat(125)}z` });
    // One tag longer than the limit: none.
    expect(tagsOf(`a=${'x'.repeat(300)}`)).toEqual({});
    // Within the limit, a value is cut to 128 characters, and 16 tags are read at most.
    expect(tagsOf(`env=prod,feature=${'x'.repeat(200)}`)).toEqual({ env: 'prod', feature: 'x'.repeat(128) });
    expect(Object.keys(tagsOf(Array.from({ length: 20 }, (_, i) => `t${i}=v`).join(',')))).toHaveLength(16);
  });
});
