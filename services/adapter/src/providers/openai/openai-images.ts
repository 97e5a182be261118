import { FormData } from 'undici';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { isGptImageModel } from '../image-generation-response';

/** The two endpoints of OpenAI's Images API the gateway serves, as a server's URL layout names them. */
export type ImagesEndpoint = 'generations' | 'edits';

/**
 * GPT Image always answers `b64_json` and refuses `response_format` as an unknown parameter, so it
 * is never sent; a client that asked for URLs is told before any call that this model has none.
 * Returns the format to send: the asked one, or undefined for GPT Image.
 */
export function providerImageFormat(asked: string | undefined, upstreamModel: string): string | undefined {
  if (!isGptImageModel(upstreamModel)) return asked;
  if (asked === 'url') {
    throw new GatewayError('bad_request', `The model "${upstreamModel}" returns images only as b64_json; 'response_format' url is not available for it.`, {
      param: 'response_format',
      code: 'invalid_value',
    });
  }
  return undefined;
}

/** The form fields the adapter itself sets: a client's extra field of one of these names is not sent again. */
const EDIT_FIELDS: ReadonlySet<string> = new Set(['model', 'prompt', 'image', 'image[]', 'mask', 'n', 'response_format', 'user']);

/** One part of a form: a text, or a file with its name. */
type FormPart = readonly [name: string, value: string] | readonly [name: string, value: Blob, filename: string];

/**
 * An image edit as the multipart form an OpenAI-compatible server takes, built as a function so a
 * send with fresh credentials posts the whole form again (the files are read into Blobs once).
 * The parts: the upstream model, the prompt, the images (one as `image`, several each as
 * `image[]`, as OpenAI's SDKs send them) with the names and media types the client gave, the mask
 * when there is one, `n`, `response_format` (never to GPT Image: see providerImageFormat) and
 * `user`, then the client's other fields (`extra_json`) in the order it sent them: a list as the
 * field repeated, a number or boolean as its text. The provider's `dropParams` (a repeated field by
 * its name with or without `[]`) are left out; `model`, `prompt` and the images are the request itself.
 * A GPT Image edit asking for URLs is refused here, before any call.
 */
export function toOpenAIImageEditForm(request: chatv1.ImageGenerationRequest, upstreamModel: string, options: { dropParams?: readonly string[] } = {}): () => FormData {
  const dropped = new Set(options.dropParams ?? []);
  const sends = (name: string): boolean => !dropped.has(name) && !dropped.has(name.replace(/\[\]$/, ''));
  const parts: FormPart[] = [
    ['model', upstreamModel],
    ['prompt', request.prompt],
  ];
  const imageField = request.images.length === 1 ? 'image' : 'image[]';
  for (const image of request.images) parts.push([imageField, fileBlob(image), image.filename || 'image']);
  if (request.mask !== undefined && sends('mask')) parts.push(['mask', fileBlob(request.mask), request.mask.filename || 'mask']);
  const optional: ReadonlyArray<readonly [string, string | undefined]> = [
    ['n', request.n === undefined ? undefined : String(request.n)],
    ['response_format', providerImageFormat(request.responseFormat, upstreamModel)],
    ['user', request.user],
  ];
  for (const [name, value] of optional) if (value !== undefined && sends(name)) parts.push([name, value]);
  for (const [name, value] of extraFields(request.extraJson)) if (!EDIT_FIELDS.has(name) && sends(name)) parts.push([name, value]);
  return () => {
    const form = new FormData();
    for (const part of parts) {
      if (part.length === 3) form.append(part[0], part[1], part[2]);
      else form.append(part[0], part[1]);
    }
    return form;
  };
}

function fileBlob(file: chatv1.UploadedFile): Blob {
  return new Blob([file.data], { type: file.contentType || 'application/octet-stream' });
}

/**
 * The client's other form fields, carried as a JSON object of their texts (a field sent several
 * times as a list), as form parts in order: a list as one part per item, a number or boolean as
 * its text, an object as its JSON; null is not sent.
 */
function extraFields(extraJson: string): Array<[string, string]> {
  if (extraJson === '') return [];
  const extra: unknown = JSON.parse(extraJson);
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) return [];
  const out: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(extra)) {
    for (const item of Array.isArray(value) ? (value as unknown[]) : [value]) {
      const text = fieldText(item);
      if (text !== undefined) out.push([name, text]);
    }
  }
  return out;
}

function fieldText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}
