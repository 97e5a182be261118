import { createHash } from 'node:crypto';
import { applyDecorators, Inject, Injectable, UseInterceptors, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { catchError, from, mergeMap, of, throwError, type Observable } from 'rxjs';
import { GatewayError } from '@openrouter/errors';
import { AccessService } from '../access/access.service';
import { adminOf } from './admin.guard';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const REPLAYED_HEADER = 'idempotent-replayed';
const MAX_KEY_LENGTH = 255;

/**
 * The `Idempotency-Key` header, from the request's raw header lines (name, value, name, value…):
 * undefined when absent; 1–255 printable ASCII characters (a UUID is the usual choice), sent once,
 * else `400 invalid_idempotency_key`. Read raw because Node joins a header sent twice into one
 * value (`a, b`), which would pass for a key of its own.
 */
export function idempotencyKeyOf(rawHeaders: readonly string[]): string | undefined {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === IDEMPOTENCY_KEY_HEADER) values.push(rawHeaders[i + 1] ?? '');
  }
  const header = values[0];
  if (header === undefined) return undefined;
  const invalid = (why: string) => new GatewayError('bad_request', `Invalid Idempotency-Key header: ${why}.`, { param: 'Idempotency-Key', code: 'invalid_idempotency_key' });
  if (values.length > 1) throw invalid('send it once');
  if (header.length === 0) throw invalid('it is empty');
  if (header.length > MAX_KEY_LENGTH) throw invalid(`it has ${header.length} characters, and at most ${MAX_KEY_LENGTH} are allowed`);
  if (!/^[\x20-\x7e]+$/.test(header)) throw invalid('it may hold printable ASCII characters only');
  return header;
}

/**
 * What makes two requests the same request: method, path and body (its keys in any order). A key
 * sent again with another fingerprint is refused rather than answered with another request's answer.
 */
export function requestFingerprint(method: string, url: string, body: unknown): string {
  const path = url.split('?', 1)[0] ?? url;
  return createHash('sha256').update(`${method}\0${path}\0${canonicalJson(body)}`).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return value === undefined ? 'null' : JSON.stringify(value);
}

/**
 * Replays an admin write (a creating POST, a rotation, a PATCH) sent again with the same
 * `Idempotency-Key` by the same caller within 24 h: the first answer, status and body, with
 * `Idempotent-Replayed: true`, on any replica sharing the store. Only answers are kept: a refused
 * or failed request frees its key.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(
    @Inject(AccessService) private readonly access: AccessService,
    @Inject(Reflector) private readonly reflector: Reflector,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const key = idempotencyKeyOf(request.raw.rawHeaders);
    if (key === undefined) return next.handle();
    // As Nest answers without `@HttpCode`: 201 to a POST, 200 to anything else.
    const status = this.reflector.get<number | undefined>(HTTP_CODE_METADATA, context.getHandler()) ?? (request.method === 'POST' ? 201 : 200);
    const attempt = await this.access.idempotency.begin(adminOf(request).id, key, requestFingerprint(request.method, request.url, request.body));
    if (attempt.kind === 'replay') {
      void reply.status(attempt.answer.status).header(REPLAYED_HEADER, 'true');
      return of(attempt.answer.body);
    }
    return next.handle().pipe(
      mergeMap(async (body: unknown) => {
        await attempt.complete({ status, body });
        return body;
      }),
      catchError((error: unknown) => from(attempt.release()).pipe(mergeMap(() => throwError(() => error)))),
    );
  }
}

/** Marks an admin write as replayable with `Idempotency-Key`. */
export const Idempotent = () => applyDecorators(UseInterceptors(IdempotencyInterceptor));
