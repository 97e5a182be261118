import { Catch, HttpException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import type { Logger } from '@openrouter/observability';
import { toClientError, toOpenAIError } from '@openrouter/openai-wire';
import { PeerUnreachableError } from './billing.client';

/** Anything thrown while serving the API, as a GatewayError. Client mistakes never become 5xx. */
export function asGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  // Body-parsing failures reach here either as Fastify's own errors or wrapped by Nest.
  const status = error instanceof HttpException ? error.getStatus() : (error as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 404) return new GatewayError('not_found', 'Unknown request URL. Please check the URL and method.', { code: 'unknown_url' });
    if (status === 413) return new GatewayError('bad_request', 'The request body is too large.', { code: 'request_too_large' });
    if (status === 415) return new GatewayError('bad_request', 'The request body must be sent as application/json.', { code: 'invalid_content_type' });
    const message = error instanceof Error ? error.message : '';
    if (/UTF-8/.test(message)) return new GatewayError('bad_request', 'The request body is not valid UTF-8.', { code: 'invalid_encoding' });
    if (/JSON/i.test(message)) return new GatewayError('bad_request', 'We could not parse the JSON body of your request. The body must be a valid JSON object.', { code: 'invalid_json' });
    return new GatewayError('bad_request', 'The request could not be read.', { code: 'invalid_request' });
  }
  if (error instanceof SyntaxError) return new GatewayError('bad_request', 'We could not parse the JSON body of your request.', { code: 'invalid_json' });
  // A client value nested deeper than a recursive walk of it (JSON.stringify, a schema) can follow.
  // Bodies and JSON headers are held to a nesting limit before this; this is the backstop.
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return new GatewayError('bad_request', 'The request is nested too deeply to process.', { code: 'json_too_deep', cause: error });
  }
  return GatewayError.from(error);
}

export function sendError(reply: FastifyReply, error: GatewayError): void {
  const response = toOpenAIError(error);
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return;
  }
  void reply.status(response.status).headers(response.headers).send(response.body);
}

/** An error in the shape of the API the request called (Anthropic's on `/v1/messages`), with the request id. */
function sendClientError(reply: FastifyReply, error: GatewayError, request: FastifyRequest): void {
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return;
  }
  const response = toClientError(request.url, error, String(request.id));
  void reply.status(response.status).headers(response.headers).send(response.body);
}

/**
 * The admin API answers every missing resource with `code: "not_found"`, whichever layer found it
 * missing (a tenant look-up deeper down may name none); codes that say more (`unknown_url`) stay.
 */
export function inAdminTerms(url: string, error: GatewayError): GatewayError {
  if (!url.startsWith('/admin/') || error.kind !== 'not_found' || error.code !== undefined || error.upstreamStatus !== undefined) return error;
  return new GatewayError('not_found', error.message, { param: error.param, code: 'not_found', cause: error });
}

/**
 * A call cancelled because the server's shutdown grace is over (its request's `shutdownSignal`
 * aborted): its client has not left, and is told the shutdown's error instead.
 */
function toldAtShutdown(error: GatewayError, shutdown: AbortSignal): GatewayError {
  return error.kind === 'cancelled' && shutdown.aborted && shutdown.reason instanceof GatewayError ? shutdown.reason : error;
}

/** Errors in OpenAI's shape; on Anthropic's Messages API routes, in Anthropic's. */
@Catch()
export class OpenAIExceptionFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const error = inAdminTerms(request.url, toldAtShutdown(asGatewayError(exception), request.shutdownSignal));
    if (error.kind === 'internal') this.logger.error({ err: error.cause ?? error }, 'request failed');
    // The answer names the service only; the log says where it was dialled and what failed.
    else if (error.cause instanceof PeerUnreachableError) this.logger.warn({ peer: error.cause.peer, address: error.cause.address, err: error.cause.cause, code: error.code }, error.cause.message);
    sendClientError(reply, error, request);
  }
}
