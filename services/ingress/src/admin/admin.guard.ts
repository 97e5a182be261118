import { Inject, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import type { AdminRole } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { AccessService } from '../access/access.service';
import { bearerToken } from '../auth/api-key.guard';
import { AdminAuth, type AdminPrincipal } from './admin-auth';

declare module 'fastify' {
  interface FastifyRequest {
    admin?: AdminPrincipal;
  }
}

const ROLES = 'openrouter:admin-roles';

/** The roles that may call a handler; `admin` may call everything. */
export const Roles = (...roles: AdminRole[]) => SetMetadata(ROLES, roles);

@Injectable()
export class AdminGuard implements CanActivate {
  constructor(
    @Inject(AdminAuth) private readonly auth: AdminAuth,
    @Inject(Reflector) private readonly reflector: Reflector,
    @Inject(AccessService) private readonly access: AccessService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    // Before the credential is looked at: from elsewhere, not even a key's validity is told.
    const address = this.access.clients.of(request.raw);
    this.access.requireAdminAddress(address);
    if (this.auth.empty) {
      throw new GatewayError('auth_failed', 'The admin API has no keys: configure access.admin.keys, access.admin.oidc, or a development admin key in access.admin.devKey (OPENROUTER_ADMIN_KEY).', {
        code: 'admin_api_without_keys',
      });
    }
    const principal = await this.auth.authenticate(bearerToken(request.headers.authorization));
    if (!principal) throw new GatewayError('auth_failed', 'Incorrect admin key provided.', { code: 'invalid_admin_key' });
    const allowed = this.reflector.getAllAndOverride<AdminRole[] | undefined>(ROLES, [context.getHandler(), context.getClass()]) ?? [];
    if (principal.role !== 'admin' && !allowed.includes(principal.role)) {
      throw new GatewayError('permission_denied', `The role "${principal.role}" may not call this endpoint.`, { code: 'insufficient_role' });
    }
    // The address goes into the audit entries of the changes it makes.
    request.admin = { ...principal, address };
    return true;
  }
}

export function adminOf(request: FastifyRequest): AdminPrincipal {
  if (!request.admin) throw new GatewayError('auth_failed', 'The request is not authenticated.');
  return request.admin;
}
