import { Controller, HttpCode, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { codePoints, isJsonTranscription, parseSpeechRequest, parseTranscriptionRequest, speechContentType } from '@openrouter/openai-wire';
import { ApiKeyGuard, KeyGuard, requestContextOf } from '../auth/api-key.guard';
import { RouterPort } from '../router.port';
import { UsageRecorder, type UsageTrack } from '../usage/usage-recorder';
import { routeHeaders } from './chat.service';
import { clientGone, cutWhenStalled, cutWhenWholeAnswerStalls, stopIfClientLeft, toldOnFailure } from './client-connection';
import { REQUEST_BOUNDS, type RequestBounds } from './request-bounds';
import { drained } from './sse.writer';

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

/**
 * OpenAI's Audio API. Transcriptions and translations (`POST /v1/audio/transcriptions`,
 * `/v1/audio/translations`) take a multipart form with the audio in `file` (read at ingress up to
 * `ingress.limits.audioBytes`) and are routed to a model with the `transcription` capability;
 * speech (`POST /v1/audio/speech`) takes JSON and is routed to a model with the `speech`
 * capability, answered with the audio itself, streamed as the provider makes it. Each is admitted
 * like any request (key, network lists, rate limits, budget reservation) and metered: a
 * transcription at its tokens (the provider's, for token-billed models) and its audio's length
 * (`perAudioMinute`), speech at its characters (`perMillionCharacters`).
 */
@Controller('v1/audio')
@UseGuards(KeyGuard, ApiKeyGuard)
export class AudioHttpController {
  constructor(
    private readonly router: RouterPort,
    private readonly usage: UsageRecorder,
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
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
    // The audio streams as the provider makes it: a client that leaves stops the call down to the
    // provider, as a chat stream's does.
    const signal = clientGone(reply);
    const pieces = this.router.speak({ context: requestContextOf(req), request }, signal);
    try {
      // Until the first piece, a failure is answered as any error is.
      const { decision, first } = await usage.guard(firstPiece(pieces));
      usage.routed(decision);
      // What is spoken is the request's input: counted from the first audio, so a stream cut or
      // left before its end (or an answer without its count) is still billed for it.
      const characters = codePoints(request.input);
      usage.speech(undefined, characters);
      stopIfClientLeft(reply);
      await streamSpeech(reply, signal, usage, this.bounds.streamStallMs, {
        headers: { ...routeHeaders(decision), 'x-request-id': String(req.id), 'content-type': first.contentType || speechContentType(request.responseFormat) },
        first,
        rest: pieces,
        characters,
      });
    } finally {
      // Stopped before the stream was read to its end: the call is let go of.
      pieces.return(undefined).catch(() => undefined);
    }
  }

  private async serveTranscription(req: FastifyRequest, reply: FastifyReply, translate: boolean): Promise<void> {
    const usage = this.usage.track(req, reply, translate ? 'translation' : 'transcription');
    const request = parseTranscriptionRequest(req.body, { translate });
    stopIfClientLeft(reply);
    // The provider bills audio it has begun on, so the call runs on without its client.
    const { decision, response } = await usage.guard(this.router.transcribe({ context: requestContextOf(req), request }));
    if (!decision || !response) throw new GatewayError('upstream_error', `The router returned no ${translate ? 'translation' : 'transcription'}.`);
    usage.routed(decision);
    // The audio's length as the provider reported it, else as ingress read it from the file.
    usage.transcription(response.usage, response.audioMs || request.durationMs);
    stopIfClientLeft(reply);
    const json = isJsonTranscription(request.responseFormat);
    // A client that stops reading its answer is cut, so its request is recorded (as cancelled).
    cutWhenWholeAnswerStalls(reply.raw, this.bounds.streamStallMs);
    await reply.headers({ ...headersOf(req, decision, usage), 'content-type': json ? JSON_TYPE : TEXT_TYPE }).send(json ? withCost(response.body, usage) : response.body);
  }
}

/** The first piece of a speech stream, with the route that serves it (the router sends them together). */
async function firstPiece(pieces: AsyncGenerator<routerv1.SpeakResponse>): Promise<{ decision: routerv1.RouteDecision; first: chatv1.SpeechResponse }> {
  const head = await pieces.next();
  if (head.done || !head.value.decision || !head.value.response) throw new GatewayError('upstream_error', 'The router returned no speech.');
  return { decision: head.value.decision, first: head.value.response };
}

/** An opened speech stream: its response headers, its first piece, the pieces after it, and the input's characters. */
interface OpenedSpeech {
  headers: Record<string, string>;
  first: chatv1.SpeechResponse;
  rest: AsyncGenerator<routerv1.SpeakResponse>;
  characters: number;
}

/**
 * Sends speech's audio as it arrives: each piece's bytes written once the client has taken the
 * ones before (a client that stops reading is cut after `stallMs` without progress, as a chat
 * stream's is), and metered at its end with the last piece's usage and count. The cost is known
 * only then: there is no `x-openrouter-cost` header, as on a chat stream. A failure after the
 * headers cannot be told in audio: the connection is cut so the client's download fails, rather
 * than ending as a complete file would.
 */
async function streamSpeech(reply: FastifyReply, signal: AbortSignal, usage: UsageTrack, stallMs: number, speech: OpenedSpeech): Promise<void> {
  reply.hijack();
  const response = reply.raw;
  // `x-accel-buffering`: a proxy in front (nginx) passes each piece on instead of holding the answer.
  response.writeHead(200, { ...speech.headers, 'x-accel-buffering': 'no' });
  cutWhenStalled(response, stallMs);
  let reported: chatv1.Usage | undefined;
  let characters = 0;
  const send = async (piece: chatv1.SpeechResponse): Promise<void> => {
    // The last piece carries the usage and the count.
    reported = piece.usage ?? reported;
    characters = piece.characters || characters;
    if (piece.audio.length > 0 && !response.destroyed && !response.write(piece.audio)) await drained(response);
  };
  try {
    await send(speech.first);
    for await (const message of speech.rest) if (message.response) await send(message.response);
  } catch (error) {
    if (toldOnFailure(error, signal)) usage.cutByFailure(error);
    else usage.failed(error);
    response.destroy();
    return;
  }
  usage.speech(reported, characters || speech.characters);
  if (!response.destroyed) response.end();
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
