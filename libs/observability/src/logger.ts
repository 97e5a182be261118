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
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["api-key"]',
  'headers["x-goog-api-key"]',
  'headers["proxy-authorization"]',
  'headers.cookie',
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

/**
 * The service's JSON logger: every line has `service`, and `traceId`/`spanId` when a span is
 * active (tracing on), so a log line leads to its trace.
 */
export function createLogger(service: string, level: LevelWithSilent, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service }, mixin: activeTraceIds, redact: { paths: REDACT, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
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
