import { Controller, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { codePoints, isJsonTranscription, parseSpeechRequest, parseTranscriptionRequest, speechContentType } from '@openrouter/openai-wire';
import { ApiKeyGuard, KeyGuard, requestContextOf } from '../auth/api-key.guard';
import { RouterPort } from '../router.port';
import { UsageRecorder, type UsageTrack } from '../usage/usage-recorder';
import { routeHeaders } from './chat.service';
import { stopIfClientLeft } from './client-connection';

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

/**
 * OpenAI's Audio API. Transcriptions and translations (`POST /v1/audio/transcriptions`,
 * `/v1/audio/translations`) take a multipart form with the audio in `file` (read at ingress up to
 * `ingress.limits.audioBytes`) and are routed to a model with the `transcription` capability;
 * speech (`POST /v1/audio/speech`) takes JSON and is routed to a model with the `speech`
 * capability, answered with the audio itself. Each is admitted like any request (key, network
 * lists, rate limits, budget reservation) and metered: a transcription at its tokens (the
 * provider's, for token-billed models) and its audio's length (`perAudioMinute`), speech at its
 * characters (`perMillionCharacters`).
 */
@Controller('v1/audio')
@UseGuards(KeyGuard, ApiKeyGuard)
export class AudioHttpController {
  constructor(
    private readonly router: RouterPort,
    private readonly usage: UsageRecorder,
  ) {}

  @Post('transcriptions')
  @HttpCode(200)
  async transcribe(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.serveTranscription(req, reply, false);
  }

  @Post('translations')
  @HttpCode(200)
  async translate(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.serveTranscription(req, reply, true);
  }

  @Post('speech')
  @HttpCode(200)
  async speak(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const usage = this.usage.track(req, reply, 'speech');
    const request = parseSpeechRequest(req.body);
    // Gone while the request was admitted: nothing has been spent yet.
    stopIfClientLeft(reply);
    // A provider bills the speech it has begun making, whether or not the client waits for it:
    // a client that leaves does not stop the call, and its record carries what it cost.
    const { decision, response } = await usage.guard(this.router.speak({ context: requestContextOf(req), request }));
    if (!decision || !response) throw new GatewayError('upstream_error', 'The router returned no speech.');
    usage.routed(decision);
    // What was spoken is the request's input: counted here too, so an answer without its count is still billed.
    usage.speech(response.usage, response.characters || codePoints(request.input));
    stopIfClientLeft(reply);
    await reply
      .headers({ ...headersOf(req, decision, usage), 'content-type': response.contentType || speechContentType(request.responseFormat) })
      .send(response.audio);
  }

  private async serveTranscription(req: FastifyRequest, reply: FastifyReply, translate: boolean): Promise<void> {
    const usage = this.usage.track(req, reply, translate ? 'translation' : 'transcription');
    const request = parseTranscriptionRequest(req.body, { translate });
    stopIfClientLeft(reply);
    // As speech: the provider bills audio it has begun on, so the call runs on without its client.
    const { decision, response } = await usage.guard(this.router.transcribe({ context: requestContextOf(req), request }));
    if (!decision || !response) throw new GatewayError('upstream_error', `The router returned no ${translate ? 'translation' : 'transcription'}.`);
    usage.routed(decision);
    // The audio's length as the provider reported it, else as ingress read it from the file.
    usage.transcription(response.usage, response.audioMs || request.durationMs);
    stopIfClientLeft(reply);
    const json = isJsonTranscription(request.responseFormat);
    await reply.headers({ ...headersOf(req, decision, usage), 'content-type': json ? JSON_TYPE : TEXT_TYPE }).send(json ? withCost(response.body, usage) : response.body);
  }
}

/** The route's headers, the request id and the exact cost, as on every answer. */
function headersOf(req: FastifyRequest, decision: routerv1.RouteDecision, usage: UsageTrack): Record<string, string> {
  return { ...routeHeaders(decision), 'x-request-id': String(req.id), ...usage.costHeaders() };
}

/**
 * A JSON transcription with its cost in `usage`, as every JSON answer's (`UsageTrack.decorate`);
 * the provider's text as it is when it is not a JSON object with a usage to add it to.
 */
function withCost(body: string, usage: UsageTrack): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return body;
  }
  const report = (parsed as { usage?: unknown } | null)?.usage;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || typeof report !== 'object' || report === null) return body;
  return JSON.stringify(usage.decorate(parsed));
}
