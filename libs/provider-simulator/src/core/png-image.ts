import { crc32, deflateSync } from 'node:zlib';
import { hash32 } from './seeded-random';

/** Side of every simulated image, whatever `size` the request names: a real PNG, small enough to carry inline. */
export const SIMULATED_IMAGE_SIDE = 8;

export type Rgb = readonly [number, number, number];

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * The colour of image `index` for `prompt`: a hash of both under the seed, so equal requests get
 * equal images. An edit also passes its first input image (`source`), whose CRC-32 joins the hash:
 * the same prompt over another image answers another colour.
 */
export function imageColour(seed: number, prompt: string, index: number, source?: Uint8Array): Rgb {
  const sourceTag = source === undefined ? '' : `\u0000${crc32(source).toString(16)}`;
  const h = hash32(`${index}\u0000${prompt}${sourceTag}`, seed);
  return [(h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
}

/** `rrggbb`. */
export function colourHex(rgb: Rgb): string {
  return rgb.map((c) => c.toString(16).padStart(2, '0')).join('');
}

/** The colour `rrggbb` names, undefined for anything else. */
export function parseColourHex(hex: string): Rgb | undefined {
  if (!/^[0-9a-f]{6}$/i.test(hex)) return undefined;
  const value = Number.parseInt(hex, 16);
  return [(value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

/** A valid PNG (8-bit RGB, no interlace) of one colour, `width` × `height` pixels (square unless told). */
export function solidPng(rgb: Rgb, width = SIMULATED_IMAGE_SIDE, height = width): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: RGB
  // compression, filter and interlace methods stay 0
  const row = Buffer.alloc(1 + width * 3); // each scanline starts with filter type 0 (none)
  for (let x = 0; x < width; x++) row.set(rgb, 1 + x * 3);
  const pixels = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(pixels)), chunk('IEND', Buffer.alloc(0))]);
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length, 0);
  const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed) >>> 0, 0);
  return Buffer.concat([length, typed, crc]);
}
