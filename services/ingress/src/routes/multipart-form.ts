import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { isAudioUploadEndpoint, markFormBody, type AudioUpload } from '@openrouter/openai-wire';
import { AccessService } from '../access/access.service';
import { INTERNAL_CALL_HEADER } from '../access/internal-call';
import { presentedKey } from '../auth/api-key.guard';
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

/** The most parts a form may have: OpenAI's forms hold a file or up to 16 images and a few fields. */
export const MAX_FORM_PARTS = 1_000;
/** The most header lines one part may have. */
const MAX_PART_HEADERS = 64;

/**
 * A `multipart/form-data` body as a plain object: each file as an {@link AudioUpload}, each text
 * field as a string, a field sent several times (`timestamp_granularities[]`) as a list of its
 * values in order. The object is marked as a form (`markFormBody`). A body that is not a valid
 * form is a 400 (`invalid_multipart`).
 *
 * Parsed by busboy from the body read whole: a file's bytes are the slices busboy hands over of
 * the body (a view when it comes in one, else one copy), where the platform's parser
 * (`Response.formData()`) copied a form about four times (the body into the Response, each part
 * into a Blob, each Blob into an ArrayBuffer), so a 50 MiB image edit held some 250 MB when read.
 */
export function readMultipartForm(body: Uint8Array, contentType: string): Promise<Record<string, unknown>> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      // Only the route's body limit bounds a file or a field (busboy's default field is 1 MB).
      // busboy refuses a form as its count of parts reaches the limit: one more lets the 1,000th part in.
      limits: { parts: MAX_FORM_PARTS + 1, fieldSize: body.byteLength, headerPairs: MAX_PART_HEADERS },
      defParamCharset: 'utf8',
      preservePath: true,
    });
  } catch (error) {
    return Promise.reject(invalidForm('missing or invalid boundary in the content type', error));
  }
  return new Promise((resolve, reject) => {
    const fields: Record<string, unknown> = {};
    let failed = false;
    const fail = (error: GatewayError): void => {
      if (failed) return;
      failed = true;
      reject(error);
      parser.removeAllListeners('close');
    };
    const add = (name: string, value: string | AudioUpload): void => {
      // An own `__proto__` field would replace the object's prototype, as in a JSON body, where the key is refused too.
      if (name === '__proto__') return fail(new GatewayError('bad_request', "The form contains a '__proto__' field; this name is refused.", { param: name, code: 'invalid_value' }));
      // Own fields only: `toString` or `constructor` is a field like any other, not the prototype's.
      const previous = Object.hasOwn(fields, name) ? fields[name] : undefined;
      if (previous === undefined) fields[name] = value;
      else if (Array.isArray(previous)) previous.push(value);
      else fields[name] = [previous, value];
    };
    parser.on('field', (name: string | undefined, value) => (typeof name === 'string' ? add(unescaped(name), value) : fail(invalidForm('a part without a name'))));
    parser.on('file', (name: string | undefined, stream, info) => {
      // busboy destroys a part cut off by the end of the body with an error of its own (besides the
      // parser's): without a listener, that error would be thrown out of the process.
      stream.on('error', (error: unknown) => fail(invalidForm('unexpected end of form', error)));
      if (typeof name !== 'string') {
        stream.resume();
        return fail(invalidForm('a part without a name'));
      }
      // A media type with characters one cannot have is none; any other is lowercased, as a File's `type` is.
      const type = /^[\x20-\x7e]*$/.test(info.mimeType) ? info.mimeType.toLowerCase() : '';
      // Added now, filled when its bytes have come: the fields keep the order of the form.
      const upload: { -readonly [K in keyof AudioUpload]: AudioUpload[K] } = { data: new Uint8Array(0), filename: unescaped(info.filename ?? ''), contentType: type || UNTYPED };
      add(unescaped(name), upload);
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const data = chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks);
        upload.data = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      });
    });
    parser.on('partsLimit', () => fail(invalidForm(`more than ${MAX_FORM_PARTS} parts`)));
    parser.on('error', (error: unknown) => fail(invalidForm(error instanceof Error ? error.message.replace(/\.$/, '').toLowerCase() : 'unreadable', error)));
    parser.on('close', () => {
      if (!failed) resolve(markFormBody(fields));
    });
    parser.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  });
}

/**
 * A name or filename as its sender meant it: browsers and the fetch standard's FormData (Node's,
 * the OpenAI SDK's) write a line feed, a carriage return and a double quote in them as `%0A`,
 * `%0D` and `%22` (the HTML standard's multipart encoding), which busboy leaves as they are.
 */
function unescaped(text: string): string {
  return text.includes('%') ? text.replace(/%0A/gi, '\n').replace(/%0D/gi, '\r').replace(/%22/g, '"') : text;
}

function invalidForm(what: string, cause?: unknown): GatewayError {
  return new GatewayError('bad_request', `The request body is not a valid multipart/form-data form (check its boundary and parts): ${what}.`, { code: 'invalid_multipart', cause });
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
 * limit arrives, so no route buffers more than its own limit. The body is a buffer of its own,
 * never a slice of Node's shared pool: the files of a form are views of it, and are passed on.
 */
export async function readBounded(payload: AsyncIterable<Buffer | string>, declaredLength: string | undefined, limit: { bytes: number; what: string }): Promise<Buffer> {
  const declared = Number(declaredLength);
  if (declaredLength !== undefined && Number.isFinite(declared) && declared > limit.bytes) throw tooLarge(limit);
  const expected = declaredLength !== undefined && Number.isSafeInteger(declared) && declared > 0 ? declared : undefined;
  // Once half of what it declared has come, a body goes straight into a buffer of that length, each
  // chunk then let go: kept until the end, the chunks would be a second copy of a 100 MiB upload.
  // Not before: a client that declares much and sends little holds no more than twice what it sent.
  let body: Buffer | undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of payload) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += bytes.length;
    if (size > limit.bytes) throw tooLarge(limit);
    if (body && size <= body.length) {
      bytes.copy(body, size - bytes.length);
      continue;
    }
    // More than it declared (Node's parser does not let that happen): gathered as a body of unknown length.
    if (body) chunks.push(body.subarray(0, size - bytes.length));
    body = undefined;
    chunks.push(bytes);
    if (expected !== undefined && size * 2 >= expected && size <= expected) {
      body = Buffer.allocUnsafeSlow(expected);
      let at = 0;
      for (const gathered of chunks) at += gathered.copy(body, at);
      chunks.length = 0;
    }
  }
  if (body && size === body.length) return body;
  // Less than it declared: copied to a buffer of its size, so that no uninitialised byte is reachable from it.
  if (body) chunks.push(body.subarray(0, size));
  const whole = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const chunk of chunks) at += chunk.copy(whole, at);
  return whole;
}

/** The routes whose forms may be larger than a JSON body: audio uploads, image edits, file uploads. */
export function isUploadRoute(route: string | undefined): boolean {
  return isAudioUploadEndpoint(route) || route === IMAGE_EDIT_ENDPOINT || route === FILES_ENDPOINT;
}

/** What checking an uploader's key takes of the access service. */
export type UploaderKeys = Pick<AccessService, 'keyOf' | 'keyOfInternalCall' | 'requireAllowedAddress' | 'clients'>;

/** The parts of a request the form reader looks at. */
export type FormRequest = Pick<FastifyRequest, 'headers' | 'raw'> & { routeOptions: { url?: string | undefined } };

/**
 * Refuses, before a byte of its body is read, a request whose key is missing, unknown, revoked or
 * not allowed from its address, with the answer the key guards would give it (401, or 403 for an
 * address). Upload forms are large (50 MiB for an image edit) and are read whole while the body is
 * parsed, before any guard runs: without this, callers with no key could have every replica hold
 * their uploads. The guards still check the key in full (rate limits, tenant, budget) afterwards.
 */
export async function refuseUnknownUploader(access: UploaderKeys, request: FormRequest): Promise<void> {
  const internal = request.headers[INTERNAL_CALL_HEADER];
  if (internal !== undefined) {
    // A call this process makes for a key (a batch's line): its credential is this process's own.
    if (typeof internal !== 'string' || !(await access.keyOfInternalCall(internal))) {
      throw new GatewayError('auth_failed', 'The API key this request is made for is not valid (unknown, revoked or expired).', { code: 'invalid_api_key' });
    }
    return;
  }
  const record = await access.keyOf(presentedKey(request.headers));
  if (!record) throw new GatewayError('auth_failed', 'Incorrect API key provided.', { code: 'invalid_api_key' });
  await access.requireAllowedAddress(record, access.clients.of(request.raw));
}

/**
 * A request's `multipart/form-data` body, read within its route's limit (`formLimitOf`), on an
 * upload route only once its key is known to be good (`refuseUnknownUploader`).
 */
export async function readForm(request: FormRequest, payload: AsyncIterable<Buffer | string>, limits: FormLimits, access: UploaderKeys): Promise<Record<string, unknown>> {
  const route = request.routeOptions.url;
  if (isUploadRoute(route)) await refuseUnknownUploader(access, request);
  const body = await readBounded(payload, request.headers['content-length'], formLimitOf(route, limits));
  return readMultipartForm(body, request.headers['content-type'] ?? '');
}

/**
 * Teaches the API's Fastify instance to read `multipart/form-data` bodies (`readForm`), as
 * OpenAI's Audio API and image edits send their uploads. Read whole, up to
 * `ingress.limits.audioBytes` on the audio upload routes (transcriptions, translations),
 * `imageEditBytes` on image edits, `batches.maxFileBytes` on file uploads and `bodyBytes`
 * elsewhere (`readBounded`: a larger form is refused as soon as that shows, never buffered to the
 * largest limit), and on those upload routes only from a caller with a good key: a form sent to
 * any other route is read the same way and refused by that route's own validation, a 400, never
 * a 5xx.
 */
@Injectable()
export class MultipartFormParser implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Inject(FORM_LIMITS) private readonly limits: FormLimits,
    @Inject(AccessService) private readonly access: AccessService,
  ) {}

  onModuleInit(): void {
    const instance = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    instance.addContentTypeParser('multipart/form-data', async (request: FastifyRequest, payload: IncomingMessage) => readForm(request, payload, this.limits, this.access));
  }
}
