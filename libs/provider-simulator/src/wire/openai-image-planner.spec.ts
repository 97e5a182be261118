import { solidPng } from '../core/png-image';
import { countTokens } from '../core/token-counter';
import type { FormFields, UploadedFile } from '../http/multipart-form';
import {
  DALL_E_2_MAX_IMAGE_BYTES,
  GPT_IMAGE_MAX_IMAGE_BYTES,
  gptImageInputTokens,
  gptImageOutputTokens,
  imageModelFamily,
  MAX_MASK_BYTES,
  planImageEdit,
  planImageGeneration,
} from './openai-image-planner';

describe('imageModelFamily', () => {
  it.each([
    ['gpt-image-1', 'gpt-image'],
    ['gpt-image-1-mini', 'gpt-image'],
    ['gpt-image-2-2026-04-21', 'gpt-image'],
    ['chatgpt-image-latest', 'gpt-image'],
    ['dall-e-3', 'dall-e-3'],
    ['dall-e-2', 'dall-e-2'],
    ['my-azure-deployment', 'dall-e-2'],
  ])('reads %s as %s', (model, family) => {
    expect(imageModelFamily(model)).toBe(family);
  });
});

describe('gptImageOutputTokens', () => {
  it("follows OpenAI's published table and scales other sizes by their pixels", () => {
    expect(gptImageOutputTokens('low', '1024x1024')).toBe(272);
    expect(gptImageOutputTokens('medium', '1536x1024')).toBe(1568);
    expect(gptImageOutputTokens('high', '1024x1536')).toBe(6240);
    expect(gptImageOutputTokens('low', '512x512')).toBe(68);
  });
});

describe('planImageGeneration', () => {
  it('plans n GPT Image answers with usage for every image', () => {
    const result = planImageGeneration({ prompt: 'a cat', n: 3, quality: 'high' }, 'gpt-image-1');
    expect(result).toEqual({ ok: true, plan: { family: 'gpt-image', n: 3, format: 'b64_json', size: '1024x1024', quality: 'high', revisedPrompt: undefined, usage: { textTokens: countTokens('a cat'), imageTokens: 0, outputTokens: 3 * 4160 } } });
  });

  it('answers DALL·E in the format asked, URLs by default, at standard quality', () => {
    expect(planImageGeneration({ prompt: 'x' }, 'dall-e-2')).toMatchObject({ ok: true, plan: { format: 'url', quality: 'standard', size: '1024x1024', usage: undefined } });
    expect(planImageGeneration({ prompt: 'x', response_format: 'b64_json', size: '256x256' }, 'dall-e-2')).toMatchObject({ ok: true, plan: { format: 'b64_json', size: '256x256' } });
  });

  it.each([
    ['auto size on DALL·E', { prompt: 'x', size: 'auto' }, 'dall-e-2', 'size'],
    ['a DALL·E 3 prompt over 4000 characters', { prompt: 'a'.repeat(4001) }, 'dall-e-3', 'prompt'],
    ['a GPT Image prompt over 32000 characters', { prompt: 'a'.repeat(32_001) }, 'gpt-image-1', 'prompt'],
    ['a gpt-image-2 size not divisible by 16', { prompt: 'x', size: '1030x1024' }, 'gpt-image-2', 'size'],
    ['a gpt-image-2 size wider than 3:1', { prompt: 'x', size: '3840x1024' }, 'gpt-image-2', 'size'],
    ['a gpt-image-2 size over 3840x2160 pixels', { prompt: 'x', size: '3840x3840' }, 'gpt-image-2', 'size'],
  ])('refuses %s naming the param', (_name, request, model, param) => {
    const result = planImageGeneration(request, model);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem.param).toBe(param);
  });
});

describe('gptImageInputTokens', () => {
  it('costs 65 plus 129 a 512-pixel tile, after fitting 2048×2048 and a short side of 768', () => {
    expect(gptImageInputTokens({ width: 8, height: 8 })).toBe(65 + 129);
    expect(gptImageInputTokens({ width: 512, height: 513 })).toBe(65 + 2 * 129);
    expect(gptImageInputTokens({ width: 1024, height: 1024 })).toBe(65 + 4 * 129); // 768×768
    expect(gptImageInputTokens({ width: 1536, height: 1024 })).toBe(65 + 6 * 129); // 1152×768
    expect(gptImageInputTokens({ width: 4096, height: 1024 })).toBe(65 + 4 * 129); // 2048×512
    expect(gptImageInputTokens(undefined)).toBe(gptImageInputTokens({ width: 1024, height: 1024 }));
  });
});

describe('planImageEdit', () => {
  const png = (width = 8, height = width, name = 'photo.png', type = 'image/png'): UploadedFile => ({ name, type, bytes: solidPng([10, 20, 30], width, height) });
  const file = (bytes: Uint8Array, name: string, type: string): UploadedFile => ({ name, type, bytes });
  const jpeg = file(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 2]), 'photo.jpg', 'image/jpeg');
  const gpt = (fields: FormFields): FormFields => ({ model: 'gpt-image-1', prompt: 'add a hat', image: png(), ...fields });
  const problemOf = (fields: FormFields) => {
    const result = planImageEdit(fields);
    if (result.ok) throw new Error('expected a refusal');
    return result.problem;
  };

  it('plans a GPT Image edit as a generation, its usage counting every input image, the first image as the source', () => {
    const first = png(8);
    const result = planImageEdit({ model: 'gpt-image-1', prompt: 'add a hat', 'image[]': [first, png(1024, 1024), jpeg], n: '2', quality: 'low', background: 'transparent' });
    if (!result.ok) throw new Error(result.problem.message);
    expect(result.plan).toEqual({
      family: 'gpt-image',
      n: 2,
      format: 'b64_json',
      size: '1024x1024',
      quality: 'low',
      revisedPrompt: undefined,
      usage: { textTokens: countTokens('add a hat'), imageTokens: 194 + 581 + 581, outputTokens: 2 * 272 },
      source: first.bytes,
      inputImages: 3,
    });
    expect(result.request).toMatchObject({ prompt: 'add a hat', model: 'gpt-image-1', n: 2, background: 'transparent' });
  });

  it('plans DALL·E 2 (the default model) from one square PNG, URLs by default, without usage', () => {
    const result = planImageEdit({ prompt: 'add a hat', image: png(16), mask: png(16, 16, 'mask.png'), size: '256x256' });
    expect(result).toMatchObject({ ok: true, plan: { family: 'dall-e-2', n: 1, format: 'url', size: '256x256', usage: undefined, inputImages: 1 } });
    expect(planImageEdit({ prompt: 'x', image: png(), response_format: 'b64_json' })).toMatchObject({ ok: true, plan: { format: 'b64_json' } });
  });

  it('takes an image by its bytes whatever its Content-Type, or by its Content-Type whatever its bytes', () => {
    expect(planImageEdit(gpt({ image: { ...png(), type: 'application/octet-stream' } })).ok).toBe(true);
    expect(planImageEdit(gpt({ image: file(Buffer.from('not decoded'), 'a.webp', 'image/webp') })).ok).toBe(true);
    expect(planImageEdit({ prompt: 'x', image: file(Buffer.from('not decoded'), 'a.png', 'image/png') }).ok).toBe(true);
  });

  it('takes 16 images from GPT Image, image and image[] together', () => {
    expect(planImageEdit(gpt({ image: png(), 'image[]': Array.from({ length: 15 }, () => png()) })).ok).toBe(true);
  });

  it.each<[string, FormFields, string, string]>([
    ['no image', { model: 'gpt-image-1', prompt: 'x' }, 'image', 'missing_required_parameter'],
    ['a text field for the image', gpt({ image: 'photo.png' }), 'image', 'invalid_type'],
    ['an empty image', gpt({ image: file(new Uint8Array(), 'a.png', 'image/png') }), 'image', 'empty_file'],
    ['a text file', gpt({ image: file(Buffer.from('hello'), 'a.txt', 'text/plain') }), 'image', 'invalid_image_format'],
    ['a GIF', gpt({ 'image[]': [png(), file(Buffer.from('GIF89a....'), 'a.gif', 'image/gif')] }), 'image', 'invalid_image_format'],
    ['17 images for GPT Image', gpt({ image: png(), 'image[]': Array.from({ length: 16 }, () => png()) }), 'image', 'array_above_max_length'],
    ['two images for DALL·E 2', { prompt: 'x', 'image[]': [png(), png()] }, 'image', 'invalid_value'],
    ['a JPEG for DALL·E 2', { prompt: 'x', image: jpeg }, 'image', 'invalid_image_format'],
    ['a webp by its type for DALL·E 2', { prompt: 'x', image: file(Buffer.from('x'), 'a.webp', 'image/webp') }, 'image', 'invalid_image_format'],
    ['a PNG that is not square for DALL·E 2', { model: 'dall-e-2', prompt: 'x', image: png(16, 8) }, 'image', 'invalid_image'],
    ['a mask that is a JPEG', gpt({ mask: jpeg }), 'mask', 'invalid_image_format'],
    ['a mask sent as text', gpt({ mask: 'mask.png' }), 'mask', 'invalid_type'],
    ['an empty mask', gpt({ mask: file(new Uint8Array(), 'mask.png', 'image/png') }), 'mask', 'empty_file'],
    ['a mask of another size', gpt({ mask: png(16) }), 'mask', 'invalid_value'],
    ['no prompt', { model: 'gpt-image-1', image: png() }, 'prompt', 'missing_required_parameter'],
    ['an empty prompt', gpt({ prompt: '' }), 'prompt', 'invalid_value'],
    ['a file for the prompt', gpt({ prompt: png() }), 'prompt', 'invalid_type'],
    ['a GPT Image prompt over 32000 characters', gpt({ prompt: 'a'.repeat(32_001) }), 'prompt', 'string_above_max_length'],
    ['a DALL·E 2 prompt over 1000 characters', { prompt: 'a'.repeat(1001), image: png() }, 'prompt', 'string_above_max_length'],
    ['DALL·E 3', { model: 'dall-e-3', prompt: 'x', image: png() }, 'model', 'invalid_value'],
    ['n of 0', gpt({ n: '0' }), 'n', 'integer_below_min_value'],
    ['n of 11', gpt({ n: '11' }), 'n', 'integer_above_max_value'],
    ['n that is not a number', gpt({ n: 'two' }), 'n', 'invalid_type'],
    ['a DALL·E 3 size for GPT Image', gpt({ size: '1792x1024' }), 'size', 'invalid_value'],
    ['a GPT Image size for DALL·E 2', { prompt: 'x', image: png(), size: '1536x1024' }, 'size', 'invalid_value'],
    ['auto size for DALL·E 2', { prompt: 'x', image: png(), size: 'auto' }, 'size', 'invalid_value'],
    ['a DALL·E quality for GPT Image', gpt({ quality: 'hd' }), 'quality', 'invalid_value'],
    ['response_format for GPT Image', gpt({ response_format: 'b64_json' }), 'response_format', 'unknown_parameter'],
    ['an unknown response_format for DALL·E 2', { prompt: 'x', image: png(), response_format: 'gif' }, 'response_format', 'invalid_value'],
    ['an unknown background', gpt({ background: 'green' }), 'background', 'invalid_value'],
    ['an unknown output_format', gpt({ output_format: 'gif' }), 'output_format', 'invalid_value'],
    ['output_compression over 100', gpt({ output_compression: '101' }), 'output_compression', 'integer_above_max_value'],
    ['partial_images over 3', gpt({ partial_images: '4' }), 'partial_images', 'integer_above_max_value'],
    ['an unknown input_fidelity', gpt({ input_fidelity: 'medium' }), 'input_fidelity', 'invalid_value'],
    ['stream=true', gpt({ stream: 'true' }), 'stream', 'unsupported_parameter'],
    ['a stream that is not a boolean', gpt({ stream: 'yes' }), 'stream', 'invalid_type'],
    ['a size sent twice', gpt({ size: ['1024x1024', '1024x1536'] }), 'size', 'invalid_type'],
  ])('refuses %s naming the param', (_name, fields, param, code) => {
    expect(problemOf(fields)).toMatchObject({ param, code });
  });

  it('words a bad file as OpenAI does, naming its mimetype and, in a list, its place', () => {
    expect(problemOf(gpt({ image: file(Buffer.from('hello'), 'a.txt', 'text/plain') })).message).toBe(
      "Invalid file 'image': unsupported mimetype ('text/plain'). Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
    );
    expect(problemOf({ model: 'gpt-image-1', prompt: 'x', 'image[]': [png(), file(Buffer.from('x'), 'blob', '')] }).message).toBe(
      "Invalid file 'image[1]': unsupported mimetype ('application/octet-stream'). Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
    );
    expect(problemOf({ prompt: 'x', image: jpeg }).message).toBe("Invalid file 'image': unsupported mimetype ('image/jpeg'). Supported file formats are 'image/png'.");
    expect(problemOf(gpt({ image: 'photo.png' })).message).toBe("Invalid type for 'image': expected one of an array of files or file, but got a string instead.");
  });

  it('refuses images over their size limits, and a mask over 4 MB', () => {
    const padded = (size: number, name = 'big.png'): UploadedFile => {
      const bytes = new Uint8Array(size);
      bytes.set(solidPng([0, 0, 0]));
      return file(bytes, name, 'image/png');
    };
    expect(problemOf({ prompt: 'x', image: padded(DALL_E_2_MAX_IMAGE_BYTES) })).toMatchObject({ param: 'image', code: 'file_too_large', message: 'Uploaded image must be a PNG and less than 4 MB.' });
    expect(planImageEdit(gpt({ image: padded(DALL_E_2_MAX_IMAGE_BYTES) })).ok).toBe(true);
    expect(problemOf(gpt({ image: padded(GPT_IMAGE_MAX_IMAGE_BYTES) }))).toMatchObject({ param: 'image', code: 'file_too_large' });
    expect(problemOf(gpt({ mask: padded(MAX_MASK_BYTES, 'mask.png') }))).toMatchObject({ param: 'mask', code: 'file_too_large' });
  });
});
