import { promises as dns, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Dispatcher } from 'undici';
import { GatewayError } from '@openrouter/errors';
import { createUpstreamDispatcher, DIRECT_EGRESS, mayProxy, type Egress } from './http-upstream';

/** An image as bytes, for providers that take images inline rather than by URL. */
export interface InlineImage {
  mediaType: string;
  /** Base64 of the image bytes. */
  base64: string;
}

/**
 * Fetches (or decodes) the bytes of an image URL; what the request translations are given.
 * `param` is the content part the URL came from, named by a refusal (`messages` when not given).
 */
export type ImageLoader = (url: string, param?: string) => Promise<InlineImage>;

export interface ImageFetchOptions {
  signal: AbortSignal;
  /** Largest image accepted, in bytes (default 20 MiB). */
  maxBytes?: number;
  /** Longest wait for the response headers of each hop, and between two chunks of the body (default 15 s). */
  timeoutMs?: number;
  /**
   * Longest one image's fetch may take in all, redirects and body included (default 30 s): the
   * idle timeouts alone let a server that sends a byte now and then hold the fetch for ever.
   */
  deadlineMs?: number;
  /**
   * Bytes all the images of one `loader` (one provider call) may total, fetched or given as data
   * URLs (default 50 MiB): what the call holds and sends, whatever the number of images.
   */
  maxTotalBytes?: number;
}

/** Where image URLs may be fetched from: `adapter.imageFetch` in the configuration. */
export interface ImageFetchPolicy {
  /** Also fetch from loopback, private, link-local and other non-public addresses. */
  allowPrivateNetworks: boolean;
  /** Host names fetched from whatever address they resolve to. */
  allowedHosts: readonly string[];
}

/** The default: public addresses only. */
export const PUBLIC_ADDRESSES_ONLY: ImageFetchPolicy = { allowPrivateNetworks: false, allowedHosts: [] };

/** All the addresses of a host name (`dns.lookup` by default; tests give their own). */
export type HostResolver = (hostname: string) => Promise<LookupAddress[]>;

export interface ImageSourceOptions {
  /** Gets the reason of each failed fetch at debug level; the client only learns that it failed. */
  logger?: { debug(details: Record<string, unknown>, message: string): void };
  resolve?: HostResolver;
  /** The environment's forward proxies, which images are fetched through (NO_PROXY hosts directly). Unset: direct. */
  egress?: Egress;
}

const DATA_URL = /^data:([a-z]+\/[a-z0-9.+-]+)?(;[a-z-]+=[^;,]*)*;base64,(.*)$/is;
/** A character outside standard base64 (RFC 4648), or `=` anywhere but in the (at most two) last places. */
const NOT_BASE64 = /[^A-Za-z0-9+/=]|=(?!=?$)/;
const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_DEADLINE_MS = 30_000;
const DEFAULT_MAX_TOTAL_BYTES = 50 * 1024 * 1024;
/** Images of one call fetched at a time, where a translation fetches them side by side (Bedrock). */
export const IMAGE_FETCH_CONCURRENCY = 4;
const SUPPORTED = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
/** Image hosts (CDNs, object stores, wikis) commonly answer with a redirect, and some refuse requests without a User-Agent. */
const MAX_REDIRECTS = 5;
const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'open-router-gateway/1.0 (image fetch)';

/**
 * Why a fetch failed, for the log only: the client gets one message for every failure, so what
 * answered at a URL (a status, a content type, a closed port) cannot be read from the gateway.
 */
class ImageFetchFailure extends Error {}

/** A connection refused by the policy, before it was made. */
export class ImageAddressRefused extends ImageFetchFailure {
  readonly code = 'ERR_IMAGE_ADDRESS_REFUSED';
}

/** A fetch that outlived its deadline (`ImageFetchOptions.deadlineMs`). */
export class ImageDeadlineExceeded extends ImageFetchFailure {
  readonly code = 'ERR_IMAGE_DEADLINE';
}

/** The images of one call went over their byte budget (`ImageFetchOptions.maxTotalBytes`). */
class ImageBudgetExceeded extends Error {}

/** The bytes the images of one call may still take; shared by all of them, charged as they arrive. */
class ByteBudget {
  private used = 0;

  constructor(readonly max: number) {}

  charge(bytes: number): void {
    this.used += bytes;
    if (this.used > this.max) throw new ImageBudgetExceeded(`the images of the call total more than ${this.max} bytes`);
  }
}

/**
 * True for a globally routable unicast address. Loopback, RFC 1918 private, link-local (cloud
 * metadata at 169.254.169.254), carrier-grade NAT, unspecified, broadcast, multicast, reserved
 * and documentation ranges are not, nor IPv6 loopback, unique-local, link-local and the
 * prefixes that embed an IPv4 address (IPv4-mapped addresses are judged by that address).
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const parsed = ipaddr.process(address);
  // The deprecated IPv4-compatible form (::a.b.c.d, RFC 4291) embeds an IPv4 address too.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).parts.slice(0, 6).every((part) => part === 0)) return false;
  return parsed.range() === 'unicast';
}

/** Splits a base64 data URL; undefined when `url` is not one. */
export function parseDataUrl(url: string): InlineImage | undefined {
  const match = DATA_URL.exec(url);
  if (!match) return undefined;
  return { mediaType: (match[1] ?? 'application/octet-stream').toLowerCase(), base64: match[3] ?? '' };
}

/**
 * Whether a data URL's payload is base64 a provider can decode: standard alphabet, not empty, and
 * of a length whole bytes make (a multiple of 4 when padded). A scan, not a decode: images reach
 * megabytes, and the provider decodes them anyway.
 */
export function isBase64(payload: string): boolean {
  const length = payload.length;
  if (length === 0 || (payload.endsWith('=') ? length % 4 !== 0 : length % 4 === 1)) return false;
  return !NOT_BASE64.test(payload);
}

/**
 * The bytes of image parts: decoded from a data URL, or fetched from an http(s) URL
 * (fetch-and-inline), following up to MAX_REDIRECTS redirects. Only addresses the policy allows
 * are connected to: a host name is resolved and checked when its connection is made, and that
 * connection goes to the address checked (no second lookup a DNS rebinding could answer), for
 * the first URL and every redirect hop alike; an IP literal is checked before the request.
 */
export class ImageSource {
  private readonly agent: Dispatcher;
  private readonly allowedHosts: ReadonlySet<string>;
  private readonly resolve: HostResolver;
  private readonly proxied: boolean;

  constructor(
    private readonly policy: ImageFetchPolicy = PUBLIC_ADDRESSES_ONLY,
    private readonly options: ImageSourceOptions = {},
  ) {
    this.allowedHosts = new Set(policy.allowedHosts.map(normalHost));
    this.resolve = options.resolve ?? ((hostname) => dns.lookup(hostname, { all: true }));
    const egress = options.egress ?? DIRECT_EGRESS;
    this.proxied = mayProxy(egress);
    this.agent = createUpstreamDispatcher(egress, undefined, { keepAliveTimeout: 10_000, connections: 16, connect: { lookup: this.lookup } });
  }

  /**
   * `load` bound to a call's signal and limits, as the request translations take it: one loader
   * per provider call, whose images share one byte budget (`maxTotalBytes`).
   */
  loader(options: ImageFetchOptions): ImageLoader {
    const budget = new ByteBudget(options.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES);
    return (url, param = 'messages') => this.loadWithin(url, options, param, budget);
  }

  /** One image, with a budget of its own. Refusals name `param`, the content part the URL came from. */
  load(url: string, options: ImageFetchOptions, param = 'messages'): Promise<InlineImage> {
    return this.loadWithin(url, options, param, new ByteBudget(options.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES));
  }

  private async loadWithin(url: string, options: ImageFetchOptions, param: string, budget: ByteBudget): Promise<InlineImage> {
    const inline = parseDataUrl(url);
    if (inline) {
      const image = checked(inline, param);
      // The per-image limit holds for bytes given inline as for fetched ones: a provider with a
      // smaller one (Bedrock's 3.75 MB) refuses a larger image without naming the part.
      const bytes = decodedLength(image.base64);
      const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
      if (bytes > maxBytes) throw invalidImage(`is ${bytes} bytes, more than the ${maxBytes} bytes this model takes in one image`, param);
      try {
        budget.charge(bytes);
      } catch (error) {
        throw overBudget(budget, param, error);
      }
      return image;
    }
    const target = httpUrl(url);
    if (!target) throw invalidImage('is neither an http(s) URL nor a base64 data URL', param);
    // The call's signal, or the deadline of this fetch: whichever comes first stops it.
    const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const stop = new AbortController();
    const cancel = (): void => stop.abort(options.signal.reason);
    if (options.signal.aborted) cancel();
    else options.signal.addEventListener('abort', cancel, { once: true });
    const deadline = setTimeout(() => stop.abort(new ImageDeadlineExceeded(`not fetched within ${deadlineMs} ms`)), deadlineMs).unref();
    try {
      return await this.fetchImage(target, options, stop.signal, param, budget);
    } finally {
      clearTimeout(deadline);
      options.signal.removeEventListener('abort', cancel);
    }
  }

  /** Fetches `target` (following redirects) with `signal`, the call's signal bounded by the fetch's deadline. */
  private async fetchImage(url: URL, options: ImageFetchOptions, signal: AbortSignal, param: string, budget: ByteBudget): Promise<InlineImage> {
    let target = url;
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let response: Dispatcher.ResponseData | undefined;
    try {
      for (let redirects = 0; ; redirects++) {
        this.checkLiteral(target);
        if (this.proxied) await this.checkBeforeProxy(target);
        response = await this.agent.request({
          origin: target.origin,
          path: target.pathname + target.search,
          method: 'GET',
          headers: { 'user-agent': USER_AGENT, accept: 'image/*' },
          signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        if (!REDIRECTS.has(response.statusCode)) break;
        await response.body.dump().catch(() => undefined);
        const location = headerValue(response.headers['location']);
        if (location === undefined) throw new ImageFetchFailure(`HTTP ${response.statusCode} without a Location`);
        if (redirects >= MAX_REDIRECTS) throw new ImageFetchFailure(`more than ${MAX_REDIRECTS} redirects`);
        const next = httpUrl(location, target);
        if (!next) throw new ImageFetchFailure('a redirect to a URL that is not http(s)');
        target = next;
      }
      if (response.statusCode !== 200) throw new ImageFetchFailure(`HTTP ${response.statusCode}`);
      const mediaType = String(response.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
      if (!SUPPORTED.has(mediaType)) throw new ImageFetchFailure(`content type "${mediaType}"`);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body) {
        const piece = chunk as Buffer;
        size += piece.length;
        if (size > maxBytes) throw new ImageFetchFailure(`more than ${maxBytes} bytes`);
        budget.charge(piece.length);
        chunks.push(piece);
      }
      return { mediaType, base64: Buffer.concat(chunks).toString('base64') };
    } catch (error) {
      // Whatever is left of the last body is dropped (and the abort that causes is nobody's error).
      response?.body.on('error', () => undefined).destroy();
      if (options.signal.aborted) throw new GatewayError('cancelled', 'The request was cancelled.', { cause: error });
      this.options.logger?.debug({ image: withoutQuery(target), err: error }, 'image fetch failed');
      if (error instanceof ImageBudgetExceeded) throw overBudget(budget, param, error);
      throw new GatewayError('bad_request', `An image in the messages could not be fetched: give a base64 data URL or an http(s) URL of a png, jpeg, gif or webp image of at most ${maxBytes} bytes, reachable from the public internet.`, {
        param,
        code: 'invalid_image_url',
        cause: error,
      });
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Node connects to an IP literal without a lookup, so the hook below never sees it. */
  private checkLiteral(target: URL): void {
    const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
    if (isIP(host) !== 0 && !this.allows(host, host)) throw new ImageAddressRefused(`the address ${host} is not public`);
  }

  /**
   * Through a proxy, the proxy resolves the host and connects: the lookup hook below never runs.
   * So the host is resolved here first and every address it resolves to must be allowed (the
   * proxy may pick any of them). A host NO_PROXY names goes direct and is checked by the hook too.
   */
  private async checkBeforeProxy(target: URL): Promise<void> {
    const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
    if (isIP(host) !== 0 || this.policy.allowPrivateNetworks || this.allowedHosts.has(normalHost(host))) return;
    const addresses = await this.resolve(host);
    const refused = addresses.filter((a) => !isPublicAddress(a.address));
    if (addresses.length === 0 || refused.length > 0) {
      throw new ImageAddressRefused(`${host} resolves to an address that is not public (${refused.map((a) => a.address).join(', ') || 'none'})`);
    }
  }

  private allows(hostname: string, address: string): boolean {
    return this.policy.allowPrivateNetworks || this.allowedHosts.has(normalHost(hostname)) || isPublicAddress(address);
  }

  /** The lookup every connection of the agent makes: only allowed addresses are returned, so only they are connected to. */
  private readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.resolve(hostname).then(
      (addresses) => {
        const family = options.family === 4 || options.family === 6 ? options.family : undefined;
        const usable = addresses.filter((a) => (family === undefined || a.family === family) && this.allows(hostname, a.address));
        const first = usable[0];
        if (!first) {
          const refused = new ImageAddressRefused(`${hostname} resolves to no allowed address (${addresses.map((a) => a.address).join(', ') || 'none'})`);
          callback(refused as NodeJS.ErrnoException, []);
        } else if (options.all) callback(null, usable);
        else callback(null, first.address, first.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, []),
    );
  };
}

/** An http(s) URL, relative ones (a redirect's Location) resolved against `base`; undefined for anything else. */
function httpUrl(url: string, base?: URL): URL | undefined {
  let target: URL;
  try {
    target = new URL(url, base);
  } catch {
    return undefined;
  }
  return target.protocol === 'https:' || target.protocol === 'http:' ? target : undefined;
}

function normalHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** For the log: a URL's query may carry a signature or a token. */
function withoutQuery(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

function checked(image: InlineImage, param: string): InlineImage {
  if (!SUPPORTED.has(image.mediaType)) {
    throw invalidImage(`has type "${image.mediaType || 'unknown'}"; supported are ${[...SUPPORTED].join(', ')}`, param);
  }
  // A provider refuses bytes it cannot decode without naming the part; refused here naming it.
  if (!isBase64(image.base64)) throw invalidImage('is a data URL whose data is not base64', param);
  return image;
}

/** Bytes a base64 payload decodes to. */
function decodedLength(base64: string): number {
  const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
  return Math.floor((base64.length * 3) / 4) - padding;
}

/**
 * The images of a call over their budget, refused naming the part that went over it. Only an
 * image that answered (status 200, an image type) is charged, so this says no more about what
 * answered at a URL than its success would.
 */
function overBudget(budget: ByteBudget, param: string, cause: unknown): GatewayError {
  return new GatewayError('bad_request', `The images in the messages total more than ${budget.max} bytes, the most the gateway sends a provider in one call: send fewer or smaller images.`, {
    param,
    code: 'invalid_image_url',
    cause,
  });
}

function invalidImage(reason: string, param: string): GatewayError {
  return new GatewayError('bad_request', `An image in the messages ${reason}.`, { param, code: 'invalid_image_url' });
}
