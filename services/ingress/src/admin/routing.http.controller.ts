import { Controller, Get, HttpCode, Inject, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { parseChatRequest } from '@openrouter/openai-wire';
import { AccessService } from '../access/access.service';
import { RouterPort } from '../router.port';
import { applyRouteHeaders } from '../routes/chat.service';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { explainQuery, parseInput } from './admin-input';
import { grayReleasesAcrossReplicas, healthAcrossReplicas } from './router-replicas';

/**
 * Routing state from the router: how a request would be routed, deployment health, gray
 * releases. In a scaled deployment each router replica keeps its own live statistics (circuit
 * breakers, windows): health and gray releases ask every replica the router's name resolves to
 * and answer across them, with the replicas that did not answer named.
 */
@Controller('admin/v1')
@UseGuards(AdminGuard)
@Roles('admin')
export class RoutingHttpController {
  constructor(
    @Inject(RouterPort) private readonly router: RouterPort,
    @Inject(AccessService) private readonly access: AccessService,
  ) {}

  /**
   * The routing decision for a chat request body — task type, candidates, scores — without calling
   * a provider; as a key's request (`?key=`), or a tenant's (`?org=&team=&project=`), would be
   * routed under their policies and allowed models.
   */
  @Post('route/explain')
  @HttpCode(200)
  async explain(@Req() req: FastifyRequest, @Query() query: unknown) {
    const as = parseInput(explainQuery, query);
    const request = parseChatRequest(req.body);
    applyRouteHeaders(request, req.headers);
    const context = await this.access.explainContext(adminOf(req), String(req.id), as);
    return snakeCase(await this.router.explain({ context, request }));
  }

  @Get('providers/health')
  @Roles('viewer')
  async health() {
    return snakeCase(healthAcrossReplicas(await this.router.eachReplica((replica) => replica.providersHealth())));
  }

  @Get('routing/gray-releases')
  @Roles('viewer')
  async grayReleases() {
    return snakeCase(grayReleasesAcrossReplicas(await this.router.eachReplica((replica) => replica.grayReleases())));
  }
}

/** The contracts' camelCase objects with the API's snake_case keys. */
export function snakeCase(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCase);
  if (Buffer.isBuffer(value) || value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snakeCase(v)]));
}
