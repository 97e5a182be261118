import type { IncomingMessage } from 'node:http';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { isAudioUploadEndpoint, markFormBody, type AudioUpload } from '@openrouter/openai-wire';
import { IMAGE_EDIT_ENDPOINT } from '../budgets/worst-case-cost';

/** The largest bodies a form may have (`ingress.limits`): an audio upload's, an image edit's, a file upload's (`batches.maxFileBytes`), and any other route's (as a JSON body). */
export interface FormLimits {
  audioBytes: number;
  imageEditBytes: number;
  bodyBytes: number;
  /** `POST /v1/files`; absent: `bodyBytes`. */
  filesBytes?: number | undefined;
}
export const FORM_LIMITS = Symbol('FORM_LIMITS');

/** The route files are uploaded to (OpenAI's Files API). */
export const FILES_ENDPOINT = '/v1/files';

/** The media type of an upload that names none. */
const UNTYPED = 'application/octet-stream';

/**
 * A `multipart/form-data` body as a plain object, read with the platform's own WHATWG parser (no
 * dependency of its own): each file as an {@link AudioUpload}, each text field as a string, a
 * field sent several times (`timestamp_granularities[]`) as a list of its values in order. The
 * object is marked as a form (`markFormBody`). A body that is not a valid form is a 400.
 */
export async function readMultipartForm(body: Uint8Array, contentType: string): Promise<Record<string, unknown>> {
  let form: FormData;
  try {
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch (error) {
    throw new GatewayError('bad_request', 'The request body is not a valid multipart/form-data form (check its boundary and parts).', { code: 'invalid_multipart', cause: error });
  }
  const fields: Record<string, unknown> = {};
  for (const [name, entry] of form.entries()) {
    // An own `__proto__` field would replace the object's prototype, as in a JSON body, where the key is refused too.
    if (name === '__proto__') throw new GatewayError('bad_request', "The form contains a '__proto__' field; this name is refused.", { param: name, code: 'invalid_value' });
    const value = typeof entry === 'string' ? entry : await uploadOf(entry);
    const previous = fields[name];
    if (previous === undefined) fields[name] = value;
    else if (Array.isArray(previous)) previous.push(value);
    else fields[name] = [previous, value];
  }
  return markFormBody(fields);
}

async function uploadOf(file: File): Promise<AudioUpload> {
  return { data: new Uint8Array(await file.arrayBuffer()), filename: file.name, contentType: file.type || UNTYPED };
}

/** What a form sent to `route` (a route pattern) may weigh, and what its 413 calls it. */
export function formLimitOf(route: string | undefined, limits: FormLimits): { bytes: number; what: string } {
  if (isAudioUploadEndpoint(route)) return { bytes: limits.audioBytes, what: 'The audio upload' };
  if (route === IMAGE_EDIT_ENDPOINT) return { bytes: limits.imageEditBytes, what: 'The image edit' };
  if (route === FILES_ENDPOINT && limits.filesBytes !== undefined) return { bytes: limits.filesBytes, what: 'The file' };
  return { bytes: limits.bodyBytes, what: 'The request body' };
}

/** The 413 for a form larger than its route takes. */
function tooLarge(limit: { bytes: number; what: string }): GatewayError {
  return new GatewayError('bad_request', `${limit.what} is too large: at most ${limit.bytes} bytes are accepted.`, { code: 'request_too_large' });
}

/**
 * A request body read whole, but never past `limit`: a body that declares more (`Content-Length`)
 * is refused before a byte of it is read, and one that sends more is refused as the byte over the
 * limit arrives, so no route buffers more than its own limit.
 */
export async function readBounded(payload: AsyncIterable<Buffer | string>, declaredLength: string | undefined, limit: { bytes: number; what: string }): Promise<Buffer> {
  const declared = Number(declaredLength);
  if (declaredLength !== undefined && Number.isFinite(declared) && declared > limit.bytes) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of payload) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += bytes.length;
    if (size > limit.bytes) throw tooLarge(limit);
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Teaches the API's Fastify instance to read `multipart/form-data` bodies (`readMultipartForm`),
 * as OpenAI's Audio API and image edits send their uploads. Read whole, up to
 * `ingress.limits.audioBytes` on the audio upload routes (transcriptions, translations),
 * `imageEditBytes` on image edits, `batches.maxFileBytes` on file uploads and `bodyBytes`
 * elsewhere (`readBounded`: a larger form is refused as soon as that shows, never buffered to the
 * largest limit): a form sent to any other route is read the same way and refused by that route's
 * own validation, a 400, never a 5xx.
 */
@Injectable()
export class MultipartFormParser implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Inject(FORM_LIMITS) private readonly limits: FormLimits,
  ) {}

  onModuleInit(): void {
    const instance = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    instance.addContentTypeParser('multipart/form-data', async (request: FastifyRequest, payload: IncomingMessage) => {
      const body = await readBounded(payload, request.headers['content-length'], formLimitOf(request.routeOptions.url, this.limits));
      return readMultipartForm(body, request.headers['content-type'] ?? '');
    });
  }
}
