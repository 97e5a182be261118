/** A file part of a multipart form. */
export interface UploadedFile {
  readonly name: string;
  readonly type: string;
  readonly bytes: Uint8Array;
}

export type FormValue = string | UploadedFile;

/**
 * A form's fields by name: a field sent once is its value, a field sent again (or named `…[]`, as
 * the OpenAI SDKs name list fields) the list of its values in order.
 */
export type FormFields = Record<string, FormValue | FormValue[]>;

export type FormParseResult = { ok: true; fields: FormFields } | { ok: false; message: string };

export function isUploadedFile(value: unknown): value is UploadedFile {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && (value as Partial<UploadedFile>).bytes instanceof Uint8Array;
}

/**
 * Parses a `multipart/form-data` body with the platform's own (WHATWG) form parser. Any other
 * content type, or a body that is not the form its boundary says, is refused with OpenAI's wording.
 */
export async function parseMultipartForm(body: Buffer, contentType: string | undefined): Promise<FormParseResult> {
  if (!/^multipart\/form-data\s*(;|$)/i.test(contentType ?? '')) {
    return {
      ok: false,
      message: `Invalid Content-Type header (${contentType ?? 'none'}), expected multipart/form-data. (HINT: If you're using curl, you can pass -H 'Content-Type: multipart/form-data')`,
    };
  }
  let form: FormData;
  try {
    form = await new Response(body, { headers: { 'content-type': contentType ?? '' } }).formData();
  } catch {
    return { ok: false, message: 'Could not parse multipart form.' };
  }
  const fields: FormFields = {};
  for (const [name, entry] of form.entries()) {
    const value: FormValue = typeof entry === 'string' ? entry : { name: entry.name, type: entry.type, bytes: new Uint8Array(await entry.arrayBuffer()) };
    const existing = fields[name];
    if (existing === undefined) fields[name] = name.endsWith('[]') ? [value] : value;
    else if (Array.isArray(existing)) existing.push(value);
    else fields[name] = [existing, value];
  }
  return { ok: true, fields };
}

/** The form as the request log keeps it: text fields as sent, a file as its name, type and size (never its bytes). */
export function describeForm(fields: FormFields): Record<string, unknown> {
  const describe = (value: FormValue): unknown => (typeof value === 'string' ? value : { name: value.name, type: value.type, size: value.bytes.length });
  return Object.fromEntries(Object.entries(fields).map(([name, value]) => [name, Array.isArray(value) ? value.map(describe) : describe(value)]));
}
