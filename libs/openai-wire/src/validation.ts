import { z } from 'zod';
import { GatewayError } from '@openrouter/errors';

function paramOf(path: ReadonlyArray<PropertyKey>): string | undefined {
  if (path.length === 0) return undefined;
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '');
}

/** Validates a client body; the first problem becomes a 400 naming its param. */
export function validate<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new GatewayError('bad_request', 'The request body must be a JSON object.', { code: 'invalid_request' });
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = paramOf(issue?.path ?? []);
  const missing = issue?.code === 'invalid_type' && issue.input === undefined;
  throw new GatewayError(
    'bad_request',
    missing ? `Missing required parameter: '${param}'.` : `Invalid value for '${param}': ${issue?.message ?? 'invalid'}.`,
    { param, code: missing ? 'missing_required_parameter' : issue?.code === 'invalid_type' ? 'invalid_type' : 'invalid_value' },
  );
}

/** JSON object text of the keys of `source` not listed in `known`; '' when there are none. */
export function extraJson(source: Record<string, unknown>, known: ReadonlySet<string>): string {
  let extra: Record<string, unknown> | undefined;
  for (const key of Object.keys(source)) {
    if (known.has(key) || source[key] === undefined) continue;
    (extra ??= {})[key] = source[key];
  }
  return extra ? JSON.stringify(extra) : '';
}

export function mergeExtra(target: Record<string, unknown>, json: string): Record<string, unknown> {
  if (!json) return target;
  const extra = JSON.parse(json) as Record<string, unknown>;
  for (const key of Object.keys(extra)) if (!(key in target)) target[key] = extra[key];
  return target;
}
