import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import type { routerv1 } from '@openrouter/contracts';
import type { KeyStore } from './key-store';

export const KEY_STORE = Symbol('KEY_STORE');

declare module 'fastify' {
  interface FastifyRequest {
    requestContext?: routerv1.RequestContext;
  }
}

/** Accepts `Authorization: Bearer <key>` and attaches the caller's request context. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(@Inject(KEY_STORE) private readonly keys: KeyStore) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1]) {
      throw new GatewayError('auth_failed', "You didn't provide an API key. Provide it in the Authorization header as 'Bearer YOUR_KEY'.", { code: 'missing_api_key' });
    }
    const tenant = this.keys.find(match[1]);
    if (!tenant) throw new GatewayError('auth_failed', 'Incorrect API key provided.', { code: 'invalid_api_key' });
    request.requestContext = { ...tenant, requestId: String(request.id), endUser: '' };
    return true;
  }
}

export function requestContextOf(request: FastifyRequest): routerv1.RequestContext {
  if (!request.requestContext) throw new GatewayError('auth_failed', 'The request is not authenticated.');
  return request.requestContext;
}
