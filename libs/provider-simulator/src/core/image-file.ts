/** The image formats OpenAI's image edits take. */
export type ImageFileFormat = 'png' | 'jpeg' | 'webp';

export const IMAGE_FILE_CONTENT_TYPES: Readonly<Record<ImageFileFormat, string>> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

export interface ImageDimensions {
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** What the bytes are by their magic: PNG's signature, JPEG's SOI marker, or a RIFF `WEBP` container; undefined for anything else. */
export function sniffImageFormat(bytes: Uint8Array): ImageFileFormat | undefined {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  return undefined;
}

/** The format a Content-Type names (`image/jpg` taken for `image/jpeg`, parameters ignored); undefined for any other type. */
export function imageFormatOfContentType(contentType: string): ImageFileFormat | undefined {
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'image/png') return 'png';
  if (type === 'image/jpeg' || type === 'image/jpg') return 'jpeg';
  if (type === 'image/webp') return 'webp';
  return undefined;
}

/**
 * An image's size in pixels, read from its header: PNG's IHDR, JPEG's first start-of-frame
 * segment, WebP's VP8X canvas or VP8 / VP8L frame header. Undefined when the header is not there.
 */
export function imageDimensions(bytes: Uint8Array, format: ImageFileFormat): ImageDimensions | undefined {
  switch (format) {
    case 'png':
      return pngDimensions(bytes);
    case 'jpeg':
      return jpegDimensions(bytes);
    case 'webp':
      return webpDimensions(bytes);
  }
}

function pngDimensions(bytes: Uint8Array): ImageDimensions | undefined {
  if (bytes.length < 24 || sniffImageFormat(bytes) !== 'png' || ascii(bytes, 12, 16) !== 'IHDR') return undefined;
  return positive(uint32be(bytes, 16), uint32be(bytes, 20));
}

function jpegDimensions(bytes: Uint8Array): ImageDimensions | undefined {
  if (sniffImageFormat(bytes) !== 'jpeg') return undefined;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1] ?? 0;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at += 2; // a marker without a segment
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return undefined; // end of image, or scan data before any frame
    const length = uint16be(bytes, at + 2);
    // SOF0–SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (at + 9 > bytes.length) return undefined;
      return positive(uint16be(bytes, at + 7), uint16be(bytes, at + 5));
    }
    at += 2 + length;
  }
  return undefined;
}

function webpDimensions(bytes: Uint8Array): ImageDimensions | undefined {
  if (sniffImageFormat(bytes) !== 'webp' || bytes.length < 30) return undefined;
  const chunk = ascii(bytes, 12, 16);
  const at = (i: number): number => bytes[i] ?? 0;
  if (chunk === 'VP8X') return positive(1 + (at(24) | (at(25) << 8) | (at(26) << 16)), 1 + (at(27) | (at(28) << 8) | (at(29) << 16)));
  if (chunk === 'VP8 ') {
    if (at(23) !== 0x9d || at(24) !== 0x01 || at(25) !== 0x2a) return undefined;
    return positive((at(26) | (at(27) << 8)) & 0x3fff, (at(28) | (at(29) << 8)) & 0x3fff);
  }
  if (chunk === 'VP8L') {
    if (at(20) !== 0x2f) return undefined;
    return positive(1 + (at(21) | ((at(22) & 0x3f) << 8)), 1 + ((at(22) >> 6) | (at(23) << 2) | ((at(24) & 0x0f) << 10)));
  }
  return undefined;
}

function positive(width: number, height: number): ImageDimensions | undefined {
  return width > 0 && height > 0 ? { width, height } : undefined;
}

function ascii(bytes: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...bytes.subarray(from, to));
}

function uint16be(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
}

function uint32be(bytes: Uint8Array, at: number): number {
  return (((bytes[at] ?? 0) << 24) | ((bytes[at + 1] ?? 0) << 16) | ((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0)) >>> 0;
}
