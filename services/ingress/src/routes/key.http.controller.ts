import { Controller, Get, Inject, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { AccessService } from '../access/access.service';
import { KeyGuard, presentedKey } from '../auth/api-key.guard';
import { BudgetService } from '../budgets/budget.service';
import { KeySelfService, keySelfView, type KeySelfView } from './key-self.service';

/**
 * `GET /v1/key`: what the caller's own key is, and what it may still spend. Authenticated like
 * every `/v1` endpoint (`KeyGuard`: Bearer or `x-api-key`, a bad key is a 401), but charged to no
 * rate limit and reserving no budget: reading one's remaining budget must not use up what it reads.
 */
@Controller('v1/key')
@UseGuards(KeyGuard)
export class KeyHttpController {
  private readonly keys: KeySelfService;

  constructor(
    @Inject(AccessService) private readonly access: AccessService,
    @Inject(BudgetService) budgets: BudgetService,
  ) {
    this.keys = new KeySelfService(access, budgets);
  }

  @Get()
  async get(@Req() req: FastifyRequest): Promise<KeySelfView> {
    const record = req.apiKeyRecord;
    if (!record) throw new GatewayError('auth_failed', 'The request is not authenticated.');
    return keySelfView(await this.keys.describe(record, presentedKey(req.headers), String(req.id), this.access.clients.of(req.raw)));
  }
}
