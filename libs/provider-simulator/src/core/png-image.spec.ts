import { crc32, inflateSync } from 'node:zlib';
import { colourHex, imageColour, parseColourHex, solidPng } from './png-image';

describe('solidPng', () => {
  it('writes a valid PNG of one colour: signature, IHDR, IDAT and IEND with correct CRCs', () => {
    const png = solidPng([0x12, 0x34, 0x56], 8);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const chunks: { type: string; data: Buffer }[] = [];
    for (let at = 8; at < png.length; ) {
      const length = png.readUInt32BE(at);
      const type = png.toString('ascii', at + 4, at + 8);
      const data = png.subarray(at + 8, at + 8 + length);
      expect(png.readUInt32BE(at + 8 + length)).toBe(crc32(png.subarray(at + 4, at + 8 + length)));
      chunks.push({ type, data });
      at += 12 + length;
    }
    expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    const header = chunks[0]?.data ?? Buffer.alloc(0);
    expect([header.readUInt32BE(0), header.readUInt32BE(4), header[8], header[9]]).toEqual([8, 8, 8, 2]);
    const pixels = inflateSync(chunks[1]?.data ?? Buffer.alloc(0));
    expect(pixels).toHaveLength(8 * (1 + 8 * 3));
    expect([...pixels.subarray(0, 4)]).toEqual([0, 0x12, 0x34, 0x56]);
    expect([...pixels.subarray(pixels.length - 3)]).toEqual([0x12, 0x34, 0x56]);
  });

  it('draws a width × height rectangle when told both', () => {
    const png = solidPng([1, 2, 3], 6, 3);
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([6, 3]);
    const idat = png.subarray(8 + 25 + 8, 8 + 25 + 8 + png.readUInt32BE(8 + 25));
    expect(inflateSync(idat)).toHaveLength(3 * (1 + 6 * 3));
  });
});

describe('imageColour', () => {
  it('is the same for the same seed, prompt and index, and differs between images and prompts', () => {
    expect(imageColour(1, 'a cat', 0)).toEqual(imageColour(1, 'a cat', 0));
    expect(imageColour(1, 'a cat', 1)).not.toEqual(imageColour(1, 'a cat', 0));
    expect(imageColour(1, 'a dog', 0)).not.toEqual(imageColour(1, 'a cat', 0));
    expect(imageColour(2, 'a cat', 0)).not.toEqual(imageColour(1, 'a cat', 0));
  });

  it("takes an edit's source image into the hash: same bytes same colour, other bytes another", () => {
    const source = solidPng([9, 9, 9]);
    expect(imageColour(1, 'a cat', 0, source)).toEqual(imageColour(1, 'a cat', 0, Buffer.from(source)));
    expect(imageColour(1, 'a cat', 0, source)).not.toEqual(imageColour(1, 'a cat', 0));
    expect(imageColour(1, 'a cat', 0, source)).not.toEqual(imageColour(1, 'a cat', 0, solidPng([9, 9, 8])));
  });

  it('round-trips through its hex form, which nothing else parses as', () => {
    const rgb = imageColour(7, 'x', 3);
    expect(parseColourHex(colourHex(rgb))).toEqual(rgb);
    expect(colourHex([0, 1, 255])).toBe('0001ff');
    expect(parseColourHex('00ff')).toBeUndefined();
    expect(parseColourHex('zzzzzz')).toBeUndefined();
  });
});
