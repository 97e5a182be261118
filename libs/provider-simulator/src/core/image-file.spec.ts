import { imageDimensions, imageFormatOfContentType, sniffImageFormat } from './image-file';
import { solidPng } from './png-image';

/** A baseline JPEG's head: SOI, a JFIF APP0 segment, then SOF0 with the size (the scan never comes). */
function jpegHead(width: number, height: number, frameMarker = 0xc0): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, ...Buffer.from('JFIF\0'), 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  const dht = Buffer.from([0xff, 0xc4, 0x00, 0x04, 0x00, 0x00]);
  const sof = Buffer.from([0xff, frameMarker, 0x00, 0x11, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, dht, sof]);
}

function riffWebp(chunk: string, payload: Buffer): Buffer {
  const header = Buffer.alloc(20);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(12 + payload.length, 4);
  header.write('WEBP', 8, 'ascii');
  header.write(chunk, 12, 'ascii');
  header.writeUInt32LE(payload.length, 16);
  return Buffer.concat([header, payload]);
}

const uint24le = (value: number): number[] => [value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff];

describe('sniffImageFormat', () => {
  it('knows PNG, JPEG and WebP by their first bytes, and nothing else', () => {
    expect(sniffImageFormat(solidPng([1, 2, 3]))).toBe('png');
    expect(sniffImageFormat(jpegHead(4, 4))).toBe('jpeg');
    expect(sniffImageFormat(riffWebp('VP8X', Buffer.alloc(10)))).toBe('webp');
    expect(sniffImageFormat(Buffer.from('GIF89a'))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from('RIFF\0\0\0\0WAVE'))).toBeUndefined();
    expect(sniffImageFormat(new Uint8Array())).toBeUndefined();
  });
});

describe('imageFormatOfContentType', () => {
  it.each([
    ['image/png', 'png'],
    ['IMAGE/PNG; charset=binary', 'png'],
    ['image/jpeg', 'jpeg'],
    ['image/jpg', 'jpeg'],
    ['image/webp', 'webp'],
    ['image/gif', undefined],
    ['application/octet-stream', undefined],
    ['', undefined],
  ])('reads %s as %s', (type, format) => {
    expect(imageFormatOfContentType(type)).toBe(format);
  });
});

describe('imageDimensions', () => {
  it("reads a PNG's IHDR", () => {
    expect(imageDimensions(solidPng([0, 0, 0], 12, 5), 'png')).toEqual({ width: 12, height: 5 });
  });

  it("reads a JPEG's start-of-frame past other segments, progressive frames too", () => {
    expect(imageDimensions(jpegHead(1536, 1024), 'jpeg')).toEqual({ width: 1536, height: 1024 });
    expect(imageDimensions(jpegHead(300, 700, 0xc2), 'jpeg')).toEqual({ width: 300, height: 700 });
  });

  it("reads WebP's VP8X canvas, a lossy VP8 frame and a lossless VP8L frame", () => {
    expect(imageDimensions(riffWebp('VP8X', Buffer.from([0, 0, 0, 0, ...uint24le(2047), ...uint24le(1023)])), 'webp')).toEqual({ width: 2048, height: 1024 });
    expect(imageDimensions(riffWebp('VP8 ', Buffer.from([0, 0, 0, 0x9d, 0x01, 0x2a, 640 & 0xff, 640 >> 8, 480 & 0xff, 480 >> 8])), 'webp')).toEqual({ width: 640, height: 480 });
    // VP8L packs width-1 and height-1 in 14 bits each: 99 and 49 here.
    const bits = 99 | (49 << 14);
    expect(imageDimensions(riffWebp('VP8L', Buffer.from([0x2f, bits & 0xff, (bits >> 8) & 0xff, (bits >> 16) & 0xff, (bits >> 24) & 0xff, 0, 0, 0, 0, 0])), 'webp')).toEqual({
      width: 100,
      height: 50,
    });
  });

  it('is undefined when the header is cut short or is not the format named', () => {
    expect(imageDimensions(solidPng([0, 0, 0]).subarray(0, 20), 'png')).toBeUndefined();
    expect(imageDimensions(jpegHead(10, 10).subarray(0, 30), 'jpeg')).toBeUndefined();
    expect(imageDimensions(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 2]), 'jpeg')).toBeUndefined();
    expect(imageDimensions(riffWebp('VP8 ', Buffer.alloc(10)), 'webp')).toBeUndefined();
    expect(imageDimensions(Buffer.from('not an image at all, only text'), 'png')).toBeUndefined();
    expect(imageDimensions(solidPng([0, 0, 0]), 'jpeg')).toBeUndefined();
  });
});
