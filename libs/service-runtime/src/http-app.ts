import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { DynamicModule, INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Listen } from '@openrouter/config';
import { NestPinoLogger, type Logger } from '@openrouter/observability';

export interface HttpAppOptions {
  bodyLimit?: number;
  /** Accept the caller's `x-request-id` when it is well-formed, else make one. */
  requestIds?: boolean;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Boots a NestJS module on Fastify and listens; the caller owns `close()`. */
export async function startHttpApp(module: Type<unknown> | DynamicModule, listen: Listen, logger: Logger, options: HttpAppOptions = {}): Promise<{ app: NestFastifyApplication; port: number }> {
  const adapter = new FastifyAdapter({
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    logger: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    requestIdHeader: false,
    genReqId: options.requestIds
      ? (req: IncomingMessage) => {
          const given = req.headers['x-request-id'];
          return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        }
      : undefined,
  });
  const instance = adapter.getInstance();
  // JSON bodies must be valid UTF-8: bytes that are not are refused instead of silently replaced.
  const parseJson = instance.getDefaultJsonParser('error', 'error');
  instance.removeContentTypeParser('application/json');
  instance.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) {
      done(Object.assign(new Error('The request body is not valid UTF-8.'), { statusCode: 400 }), undefined);
      return;
    }
    parseJson(request, bytes.toString('utf8'), done);
  });
  if (options.requestIds) {
    adapter.getInstance().addHook('onRequest', async (request, reply) => {
      void reply.header('x-request-id', request.id);
    });
  }
  const app = await NestFactory.create<NestFastifyApplication>(module, adapter, { logger: new NestPinoLogger(logger), abortOnError: false, bufferLogs: false, bodyParser: false });
  await app.listen(listen.port, listen.host);
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  return { app, port };
}

export type { INestApplication };
