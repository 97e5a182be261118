import type { LoggerService } from '@nestjs/common';
import pino, { type Logger, type LevelWithSilent } from 'pino';
import { activeTraceIds } from './tracing/tracing';

export type { Logger } from 'pino';

/**
 * Field names that hold secrets wherever they are in a logged object, whatever their case
 * (docs/observability.md: "any field named …"): credentials of request headers and the
 * configuration's secret-holding keys. Prompt and completion bodies are never passed to a logger.
 *
 * `key` is not among them: the one field logged under that name is a Kafka message's key (an
 * organisation id, in billing's dead letters), and clients' keys are logged by id (`keyId`), never
 * in clear.
 */
const SECRET_FIELDS: ReadonlySet<string> = new Set(
  ['authorization', 'proxy-authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'cookie', 'set-cookie', 'x-openrouter-internal-call', 'apiKey', 'devKey', 'secret', 'password'].map((f) => f.toLowerCase()),
);

const CENSOR = '[redacted]';

/** Levels below the top that are searched: `err.config.headers.authorization` is three down. */
const REDACT_DEPTH = 8;

/**
 * `value` with every secret field (SECRET_FIELDS) in it censored, at any depth up to REDACT_DEPTH:
 * in plain objects, arrays and errors' own fields (an HTTP client's error carries the request's
 * headers). What holds none is returned as it is, and what holds one is copied on the way down,
 * so nothing the caller logged is changed. Not pino's `redact`: its wildcard paths (`*.*.apiKey`)
 * for these names cost some 80 µs a line per level of depth (measured), where this walk costs
 * a few µs at most for a usual line.
 */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null || depth > REDACT_DEPTH) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item: unknown, i) => {
      const redacted = redactSecrets(item, depth + 1);
      if (redacted !== item) (copy ??= [...value])[i] = redacted;
    });
    return copy ?? value;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  const error = value instanceof Error;
  // Class instances (a socket, a Buffer, a Date) are left alone: they are not logged field by field.
  if (!error && prototype !== Object.prototype && prototype !== null) return value;
  let copy: object | undefined;
  for (const [key, field] of Object.entries(value)) {
    const redacted = field !== undefined && SECRET_FIELDS.has(key.toLowerCase()) ? CENSOR : redactSecrets(field, depth + 1);
    if (redacted === field) continue;
    // An error stays an error (its serializer reads its message and stack), with the same fields.
    copy ??= error ? (Object.create(prototype as object, Object.getOwnPropertyDescriptors(value)) as object) : { ...value };
    Object.defineProperty(copy, key, { value: redacted, enumerable: true, writable: true, configurable: true });
  }
  return copy ?? value;
}

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

/** The prototype of the errors pino's serializer returns: not Object.prototype, so redactSecrets would pass them by. */
const SERIALIZED_ERROR: unknown = Object.getPrototypeOf(pino.stdSerializers.err(new Error()));

/** A Redis command as logged (ioredis attaches it to a reply error, `{ name, args }`): its name only. */
function commandName(command: unknown): unknown {
  return typeof command === 'object' && command !== null && 'args' in command ? { name: (command as { name?: unknown }).name } : command;
}

/**
 * A serialized error as plain fields, for redactSecrets to walk, and so are the errors inside it:
 * an AggregateError's (`aggregateErrors`), one held in a field, and errors listed in a field (which
 * the serializer leaves as they are: ioredis's EXECABORT lists the errors of the transaction's
 * commands in `previousErrors`), serialized here. A Redis command keeps its name only, wherever it
 * is: its arguments are a store's values (sealed records, megabytes of them) and its keys.
 */
function loggableFields(value: unknown, depth: number): unknown {
  if (depth > REDACT_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item: unknown) => loggableFields(item, depth + 1));
  if (value instanceof Error) return loggableFields(pino.stdSerializers.err(withoutQuotedText(value) as Error), depth);
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== SERIALIZED_ERROR) return value;
  const fields: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) fields[key] = key === 'command' ? commandName(field) : loggableFields(field, depth + 1);
  return fields;
}

/**
 * An error as logged: without the text a JSON.parse failure quotes, the commands of Redis errors
 * by name, and with its secrets censored, in the errors inside it too (see loggableFields).
 */
function serializeError(error: unknown): pino.SerializedError {
  // Its causes and the errors inside it are serialized from fields the walk of the logged object does not see.
  return redactSecrets(loggableFields(pino.stdSerializers.err(withoutQuotedText(error) as Error), 0)) as pino.SerializedError;
}

const serializers = { err: serializeError };

/**
 * The service's JSON logger: every line has `service`, and `traceId`/`spanId` when a span is
 * active (tracing on), so a log line leads to its trace.
 */
export function createLogger(service: string, level: LevelWithSilent, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service },
      mixin: activeTraceIds,
      serializers,
      // Before the serializers: an error is censored as it is logged, then serialized.
      formatters: { log: (object) => redactSecrets(object) as Record<string, unknown>, bindings: (bindings) => redactSecrets(bindings) as pino.Bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
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
