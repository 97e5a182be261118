import type { LoggerService } from '@nestjs/common';
import pino, { type Logger, type LevelWithSilent } from 'pino';
import { activeTraceIds } from './tracing/tracing';

export type { Logger } from 'pino';

/** Paths that may hold secrets; prompt and completion bodies are never passed to a logger at all. */
const REDACT = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["api-key"]',
  'req.headers["x-goog-api-key"]',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'req.headers["x-openrouter-internal-call"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["api-key"]',
  'headers["x-goog-api-key"]',
  'headers["proxy-authorization"]',
  'headers.cookie',
  'headers["x-openrouter-internal-call"]',
  'authorization',
  'apiKey',
  '*.apiKey',
  'key',
  'devKey',
  'secret',
  '*.secret',
  'password',
  '*.password',
];

/** V8's JSON.parse message quotes the text it could not parse: `Unexpected token 'S', "Sure, here"... is not valid JSON`. */
const QUOTED_JSON = /is not valid JSON$/;
const WITHHELD_JSON = 'Unexpected token in JSON (the text is not logged)';

/**
 * An error as it may be logged: a JSON.parse failure anywhere in its cause chain loses the piece of
 * the text it quotes (a provider's answer, a client's body). Others are left as they are.
 */
function withoutQuotedText(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error) || depth > 8) return error;
  const cause = withoutQuotedText(error.cause, depth + 1);
  const quoting = error instanceof SyntaxError && QUOTED_JSON.test(error.message);
  if (!quoting && cause === error.cause) return error;
  const copy = Object.create(Object.getPrototypeOf(error) as object, Object.getOwnPropertyDescriptors(error)) as Error;
  if (quoting) {
    Object.defineProperty(copy, 'message', { value: WITHHELD_JSON, enumerable: false });
    Object.defineProperty(copy, 'stack', { value: error.stack?.replace(error.message, WITHHELD_JSON), enumerable: false });
  }
  if (cause !== error.cause) Object.defineProperty(copy, 'cause', { value: cause, enumerable: false });
  return copy;
}

/**
 * An error as logged: without the text a JSON.parse failure quotes, and, for a Redis command's
 * error (ioredis attaches the command, `{ name, args }`), with the command's name only: its
 * arguments are a store's values (sealed records, megabytes of them) and its keys.
 */
function serializeError(error: unknown): pino.SerializedError {
  const serialized = pino.stdSerializers.err(withoutQuotedText(error) as Error);
  const command: unknown = serialized['command'];
  if (typeof command === 'object' && command !== null && 'args' in command) serialized['command'] = { name: (command as { name?: unknown }).name };
  return serialized;
}

const serializers = { err: serializeError };

/**
 * The service's JSON logger: every line has `service`, and `traceId`/`spanId` when a span is
 * active (tracing on), so a log line leads to its trace.
 */
export function createLogger(service: string, level: LevelWithSilent, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service }, mixin: activeTraceIds, serializers, redact: { paths: REDACT, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/**
 * Routes NestJS's own framework messages into the service's JSON log. Its informational messages
 * (modules initialised, every route mapped, application started: some ninety lines for the
 * embedded gateway) are start-up chatter, logged at debug; each service logs its own start.
 */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.logger.trace({ context }, String(message));
  }
}
