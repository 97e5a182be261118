import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { AdminAuth } from './admin-auth';
import { AdminGuard } from './admin.guard';

const SECRET = 'admin-guard-spec-secret';

async function attempt(auth: AdminAuth, authorization?: string): Promise<GatewayError | FastifyRequest> {
  const request = { headers: authorization ? { authorization } : {} } as FastifyRequest;
  const context = { switchToHttp: () => ({ getRequest: () => request }), getHandler: () => attempt, getClass: () => AdminGuard } as unknown as ExecutionContext;
  try {
    await new AdminGuard(auth, new Reflector()).canActivate(context);
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
});
