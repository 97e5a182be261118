import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '@openrouter/errors';
import { createLogger } from '@openrouter/observability';
import { MemoryAccessRepository } from '../access/access.repository';
import { AccessService } from '../access/access.service';
import { MemoryCounterStore } from '../access/counter.store';
import { ingressTestConfig } from '../test-config.testing';
import { AdminAuth } from './admin-auth';
import { AdminGuard } from './admin.guard';

const SECRET = 'admin-guard-spec-secret';

function accessWith(admin: Record<string, unknown> = {}, trustedProxies: string[] = []): { access: AccessService; refused: string[] } {
  const config = ingressTestConfig({ ingress: { http: { port: 0 }, router: '127.0.0.1:1', trustedProxies }, access: { keyHashSecret: SECRET, admin } });
  const refused: string[] = [];
  const access = new AccessService(config, new MemoryAccessRepository(), new MemoryCounterStore(), createLogger('admin-guard-spec', 'silent'), undefined, undefined, { onAddressRefused: (api) => refused.push(api) });
  return { access, refused };
}

async function attempt(auth: AdminAuth, authorization?: string, { access = accessWith().access, peer = '127.0.0.1', forwardedFor }: { access?: AccessService; peer?: string; forwardedFor?: string } = {}): Promise<GatewayError | FastifyRequest> {
  const headers = { ...(authorization && { authorization }), ...(forwardedFor && { 'x-forwarded-for': forwardedFor }) };
  const raw = { headers, socket: { remoteAddress: peer } } as unknown as IncomingMessage;
  const request = { headers, raw } as unknown as FastifyRequest;
  const context = { switchToHttp: () => ({ getRequest: () => request }), getHandler: () => attempt, getClass: () => AdminGuard } as unknown as ExecutionContext;
  try {
    await new AdminGuard(auth, new Reflector(), access).canActivate(context);
    return request;
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
}

describe('AdminGuard', () => {
  it('says the admin API has no keys when none is configured and the development admin key is off, instead of calling every key wrong', async () => {
    const refused = await attempt(new AdminAuth(SECRET, [], undefined), 'Bearer sk-or-admin-anything');
    expect(refused).toBeInstanceOf(GatewayError);
    expect(refused).toMatchObject({ kind: 'auth_failed', code: 'admin_api_without_keys' });
    expect((refused as GatewayError).message).toContain('OPENROUTER_ADMIN_KEY');
  });

  it('calls a key it does not know wrong, and admits the development admin key', async () => {
    const auth = new AdminAuth(SECRET, [], 'sk-or-admin-dev');
    expect(await attempt(auth, 'Bearer sk-or-admin-other')).toMatchObject({ kind: 'auth_failed', code: 'invalid_admin_key', message: 'Incorrect admin key provided.' });
    expect(await attempt(auth, 'Bearer sk-or-admin-dev')).toMatchObject({ admin: { id: 'dev-admin', role: 'admin' } });
  });

  it('refuses a call from an address outside access.admin.allowedIps before looking at its key, with a valid key as with a wrong one', async () => {
    const auth = new AdminAuth(SECRET, [], 'sk-or-admin-dev');
    const { access, refused } = accessWith({ allowedIps: ['10.20.0.0/16', '2001:db8::7'] });
    for (const key of ['Bearer sk-or-admin-dev', 'Bearer sk-or-admin-other', undefined]) {
      const error = await attempt(auth, key, { access, peer: '192.0.2.9' });
      expect(error).toMatchObject({ kind: 'permission_denied', code: 'ip_not_allowed' });
      expect((error as GatewayError).message).toBe('The admin API may not be called from the address 192.0.2.9: it is not in access.admin.allowedIps.');
    }
    expect(refused).toEqual(['admin', 'admin', 'admin']);
    expect(await attempt(auth, 'Bearer sk-or-admin-dev', { access, peer: '10.20.3.4' })).toMatchObject({ admin: { id: 'dev-admin' } });
    // A dual-stack socket's IPv4-mapped peer is its IPv4 address.
    expect(await attempt(auth, 'Bearer sk-or-admin-dev', { access, peer: '::ffff:10.20.3.4' })).toMatchObject({ admin: { id: 'dev-admin' } });
    expect(await attempt(auth, 'Bearer sk-or-admin-dev', { access, peer: '2001:db8::7' })).toMatchObject({ admin: { id: 'dev-admin' } });
    // An allowed peer with a wrong key is still a wrong key.
    expect(await attempt(auth, 'Bearer sk-or-admin-other', { access, peer: '10.20.3.4' })).toMatchObject({ code: 'invalid_admin_key' });
  });

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    const auth = new AdminAuth(SECRET, [], 'sk-or-admin-dev');
    const { access } = accessWith({ allowedIps: ['10.20.0.0/16'] }, ['172.16.0.0/12']);
    // The caller's address goes with it, for the audit entries of its changes.
    expect(await attempt(auth, 'Bearer sk-or-admin-dev', { access, peer: '172.16.0.2', forwardedFor: '10.20.3.4' })).toMatchObject({ admin: { id: 'dev-admin', address: '10.20.3.4' } });
    // From a peer that is no proxy of ours, the header is the client's own claim.
    expect(await attempt(auth, 'Bearer sk-or-admin-dev', { access, peer: '192.0.2.9', forwardedFor: '10.20.3.4' })).toMatchObject({ code: 'ip_not_allowed' });
  });
});
