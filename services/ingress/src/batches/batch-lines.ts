import { isUtf8 } from 'node:buffer';
import { setImmediate } from 'node:timers/promises';
import { z } from 'zod';
import { hasForbiddenJsonKey, jsonTooDeep } from '@openrouter/service-runtime';
import type { BatchEndpoint, BatchInputError } from './batch-record';

/** One request of a batch's input file. */
export interface BatchLine {
  /** 0-based among the file's requests (blank lines are not requests): where its result is kept. */
  index: number;
  customId: string;
  body: Record<string, unknown>;
}

/** A batch that fails validation lists at most this many problems. */
const MAX_ERRORS = 100;

const lineSchema = z.object({
  custom_id: z.string().min(1).max(512),
  method: z.literal('POST'),
  url: z.string(),
  body: z.record(z.string(), z.unknown()),
});

/**
 * How long the parse runs before it lets the event loop turn: a 100 MiB file takes seconds to
 * read, and the replica's other requests (and its claims' renewals) must not wait for it.
 */
const SLICE_MS = 10;

/** How the parse gives the event loop its turns: `sliceMs` of work at most between two (0: after every line). */
export interface ParseOptions {
  sliceMs?: number | undefined;
}

/**
 * The requests of a batch's input file (JSONL: one `{custom_id, method, url, body}` a line), or
 * every problem found (at most 100): not UTF-8, a line that is not such an object, a `url` other
 * than the batch's endpoint, a `custom_id` used twice, a streamed or background request (a
 * batch's answers are whole, and in its output file), no request at all, more than `maxLines`, or
 * a line nested deeper than `jsonDepth` (`ingress.limits.jsonDepth`, as a request body: a deeper
 * one would overflow the stack of the walks its request takes). A file with any problem runs no
 * line, as at OpenAI.
 *
 * Read a line at a time (never the whole file as one string), and asynchronously: every `sliceMs`
 * it yields to the event loop, so that a large file does not hold up the replica's other work.
 */
export async function parseBatchInput(content: Uint8Array, endpoint: BatchEndpoint, maxLines: number, jsonDepth?: number, options: ParseOptions = {}): Promise<{ lines: BatchLine[]; errors: BatchInputError[] }> {
  const lines: BatchLine[] = [];
  const { errors } = await readBatchInput(content, endpoint, maxLines, jsonDepth, options, (line) => lines.push(line));
  return errors.length > 0 ? { lines: [], errors } : { lines, errors };
}

/**
 * `parseBatchInput` keeping none of the requests, only how many there are: for a batch's creation,
 * which checks its input and leaves its requests to its runner. Kept, a 100 MiB file's requests
 * took some 100 MB more of the heap until the batch was stored.
 */
export async function checkBatchInput(content: Uint8Array, endpoint: BatchEndpoint, maxLines: number, jsonDepth?: number, options: ParseOptions = {}): Promise<{ count: number; errors: BatchInputError[] }> {
  let count = 0;
  const { errors } = await readBatchInput(content, endpoint, maxLines, jsonDepth, options, () => count++);
  return { count: errors.length > 0 ? 0 : count, errors };
}

/** Reads the input as `parseBatchInput` describes, handing each request to `keep`; the problems found. */
async function readBatchInput(content: Uint8Array, endpoint: BatchEndpoint, maxLines: number, jsonDepth: number | undefined, options: ParseOptions, keep: (line: BatchLine) => void): Promise<{ errors: BatchInputError[] }> {
  const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  // Checked whole first (natively, fast), so a file that is not UTF-8 is that one problem wherever its bad bytes are.
  if (!isUtf8(bytes)) return { errors: [{ code: 'invalid_encoding', message: 'The input file is not UTF-8 text.', param: null, line: null }] };
  const sliceMs = options.sliceMs ?? SLICE_MS;
  let sliceStart = performance.now();
  let requests = 0;
  const errors: BatchInputError[] = [];
  const seen = new Set<string>();
  // Lines end at '\n', a byte that is never part of a multi-byte character: each line decodes on
  // its own. trim() drops the '\r' of CRLF files and a BOM, as it would of the whole file's text.
  for (let start = 0, i = 0; start <= bytes.length && errors.length < MAX_ERRORS; i++) {
    if (performance.now() - sliceStart >= sliceMs) {
      await setImmediate();
      sliceStart = performance.now();
    }
    const newline = bytes.indexOf(0x0a, start);
    const end = newline === -1 ? bytes.length : newline;
    const row = bytes.toString('utf8', start, end).trim();
    start = end + 1;
    if (row === '') continue;
    const line = i + 1;
    if (requests + errors.length >= maxLines) {
      return { errors: [{ code: 'too_many_requests', message: `The input file holds more than ${maxLines} requests, the most one batch may hold (batches.maxLines).`, param: null, line }] };
    }
    if (jsonDepth !== undefined && jsonTooDeep(row, jsonDepth)) {
      errors.push({ code: 'invalid_request', message: `This line is nested too deeply: at most ${jsonDepth} levels of arrays and objects are accepted, as in a request body.`, param: null, line });
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(row);
    } catch {
      errors.push({ code: 'invalid_json_line', message: 'This line is not valid JSON.', param: null, line });
      continue;
    }
    if (hasForbiddenJsonKey(value)) {
      errors.push({ code: 'forbidden_json_key', message: 'This line holds a `__proto__` key, or a `constructor` key holding `prototype`; these keys are refused anywhere in a request, as in a request body.', param: null, line });
      continue;
    }
    const parsed = lineSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const param = issue?.path[0] === undefined ? null : String(issue.path[0]);
      errors.push({ code: 'invalid_request', message: `This line is not a batch request: ${param ?? 'the line'} ${param === 'method' ? 'must be POST' : param === 'body' ? 'must be a JSON object' : 'is missing or malformed'}.`, param, line });
      continue;
    }
    const { custom_id: customId, url, body } = parsed.data;
    if (url !== endpoint) {
      errors.push({ code: 'invalid_url', message: `The url '${url.slice(0, 100)}' of this line is not the batch's endpoint, ${endpoint}.`, param: 'url', line });
      continue;
    }
    if (body['stream'] === true) {
      errors.push({ code: 'invalid_request', message: 'A batch request cannot be streamed: leave out stream or set it to false.', param: 'body.stream', line });
      continue;
    }
    if (body['background'] === true) {
      errors.push({ code: 'invalid_request', message: 'A batch request cannot run in the background (it is answered within the batch): leave out background or set it to false.', param: 'body.background', line });
      continue;
    }
    if (seen.has(customId)) {
      errors.push({ code: 'duplicate_custom_id', message: `The custom_id '${customId.slice(0, 100)}' is used by an earlier line; each request needs its own.`, param: 'custom_id', line });
      continue;
    }
    seen.add(customId);
    keep({ index: requests++, customId, body });
  }
  if (errors.length === 0 && requests === 0) errors.push({ code: 'empty_file', message: 'The input file holds no request.', param: null, line: null });
  return { errors };
}
