import { Agent, type Dispatcher } from 'undici';
import { GatewayError } from '@openrouter/errors';

/** An image as bytes, for providers that take images inline rather than by URL. */
export interface InlineImage {
  mediaType: string;
  /** Base64 of the image bytes. */
  base64: string;
}

export interface ImageFetchOptions {
  signal: AbortSignal;
  /** Largest image accepted, in bytes (default 20 MiB). */
  maxBytes?: number;
  timeoutMs?: number;
}

const DATA_URL = /^data:([a-z]+\/[a-z0-9.+-]+)?(;[a-z-]+=[^;,]*)*;base64,(.*)$/is;
const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;
const SUPPORTED = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
const fetchAgent = new Agent({ keepAliveTimeout: 10_000, connections: 16 });
/** Image hosts (CDNs, object stores, wikis) commonly answer with a redirect, and some refuse requests without a User-Agent. */
const MAX_REDIRECTS = 5;
const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'open-router-gateway/1.0 (image fetch)';

/** Splits a base64 data URL; undefined when `url` is not one. */
export function parseDataUrl(url: string): InlineImage | undefined {
  const match = DATA_URL.exec(url);
  if (!match) return undefined;
  return { mediaType: (match[1] ?? 'application/octet-stream').toLowerCase(), base64: match[3] ?? '' };
}

/**
 * The bytes of an image part: decoded from a data URL, or fetched from an http(s) URL
 * (fetch-and-inline), following up to MAX_REDIRECTS redirects. Every hop is checked as the first
 * URL is (http or https only) and the size limit holds for the final body. Bad URLs, non-images
 * and oversized bodies are the caller's 400.
 */
export async function loadImage(url: string, options: ImageFetchOptions): Promise<InlineImage> {
  const inline = parseDataUrl(url);
  if (inline) return checked(inline);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const timeoutMs = options.timeoutMs ?? 15_000;
  let target = httpUrl(url);
  let response: Dispatcher.ResponseData;
  for (let redirects = 0; ; redirects++) {
    try {
      response = await fetchAgent.request({
        origin: target.origin,
        path: target.pathname + target.search,
        method: 'GET',
        headers: { 'user-agent': USER_AGENT, accept: 'image/*' },
        signal: options.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (error) {
      if (options.signal.aborted) throw new GatewayError('cancelled', 'The request was cancelled.', { cause: error });
      throw invalidImage('could not be downloaded', error);
    }
    if (!REDIRECTS.has(response.statusCode)) break;
    await response.body.dump().catch(() => undefined);
    const location = headerValue(response.headers['location']);
    if (location === undefined) throw invalidImage(`could not be downloaded (HTTP ${response.statusCode} without a Location)`);
    if (redirects >= MAX_REDIRECTS) throw invalidImage(`could not be downloaded (more than ${MAX_REDIRECTS} redirects)`);
    target = httpUrl(location, target);
  }
  if (response.statusCode !== 200) {
    await response.body.dump().catch(() => undefined);
    throw invalidImage(`could not be downloaded (HTTP ${response.statusCode})`);
  }
  const mediaType = String(response.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    const piece = chunk as Buffer;
    size += piece.length;
    if (size > maxBytes) {
      response.body.destroy();
      throw invalidImage(`is larger than ${maxBytes} bytes`);
    }
    chunks.push(piece);
  }
  return checked({ mediaType, base64: Buffer.concat(chunks).toString('base64') });
}

/** An http(s) URL, relative ones (a redirect's Location) resolved against `base`. */
function httpUrl(url: string, base?: URL): URL {
  let target: URL;
  try {
    target = new URL(url, base);
  } catch {
    throw invalidImage('is neither an http(s) URL nor a base64 data URL');
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') throw invalidImage('is neither an http(s) URL nor a base64 data URL');
  return target;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

function checked(image: InlineImage): InlineImage {
  if (!SUPPORTED.has(image.mediaType)) {
    throw invalidImage(`has type "${image.mediaType || 'unknown'}"; supported are ${[...SUPPORTED].join(', ')}`);
  }
  return image;
}

function invalidImage(reason: string, cause?: unknown): GatewayError {
  return new GatewayError('bad_request', `An image in the messages ${reason}.`, { param: 'messages', code: 'invalid_image_url', cause });
}
