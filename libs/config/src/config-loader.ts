import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDocument, visit, type YAMLError } from 'yaml';
import { z } from 'zod';
import { configSchema, type GatewayConfig } from './config.schema';

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration (${source}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** `${`, or the escape `$${` of a literal one. */
const OPENING = /\$?\$\{/g;
/** What follows `${`: a name, an optional `:-default` (up to the first `}`), and the closing `}`. */
const PLACEHOLDER_BODY = /([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/y;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string of a parsed document; `$${` is a
 * literal `${`. A missing variable without a default, a placeholder written otherwise (`${NAME-x}`,
 * `${ NAME }`, an unclosed one) and a default holding another placeholder (`${A:-${B}}`, which
 * would be read as the text `${B`) are problems reported with the path, like any invalid value,
 * never with the text, which may hold a secret.
 */
export function interpolate(value: unknown, env: Env, path: string, problems: string[]): unknown {
  if (typeof value === 'string') return interpolateText(value, env, path || '(root)', problems);
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, `${path}[${i}]`, problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, path ? `${path}.${k}` : k, problems)]));
  }
  return value;
}

function interpolateText(text: string, env: Env, path: string, problems: string[]): string {
  let result = '';
  let from = 0;
  for (const opening of text.matchAll(OPENING)) {
    const at = opening.index;
    if (at < from) continue;
    result += text.slice(from, at);
    from = at + opening[0].length;
    if (opening[0] === '$${') {
      result += '${';
      continue;
    }
    PLACEHOLDER_BODY.lastIndex = from;
    const body = PLACEHOLDER_BODY.exec(text);
    if (body === null) {
      problems.push(`${path}: "\${" starts no placeholder: write \${NAME} or \${NAME:-default}, or $\${ for a literal "\${"`);
      result += '${';
      continue;
    }
    from = PLACEHOLDER_BODY.lastIndex;
    const [, name = '', fallback] = body;
    if (fallback?.includes('${')) {
      problems.push(`${path}: placeholders do not nest: the default of \${${name}:-…} holds a "\${" (a default cannot hold a literal "\${"; outside placeholders write $\${)`);
      continue;
    }
    // Own variables only: the environment is a plain object, whose inherited members
    // (`${constructor}`, `${toString}`) are no variables.
    const found = Object.hasOwn(env, name) ? env[name] : undefined;
    if (found !== undefined && found !== '') result += found;
    else if (fallback !== undefined) result += fallback;
    else problems.push(`${path}: environment variable ${name} is not set`);
  }
  return result + text.slice(from);
}

/**
 * Top-level keys starting with `x-` (the compose convention) hold what the file shares through
 * YAML anchors (`x-defaults: &defaults`); aliases have copied it where it is used, so they are
 * left out before interpolation and validation. Any other unknown key is refused.
 */
function withoutExtensionKeys(document: unknown): unknown {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) return document;
  return Object.fromEntries(Object.entries(document).filter(([key]) => !key.startsWith('x-')));
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), '');
}

/** Validates a parsed document, listing every problem at once with its path. */
export function parseConfig(document: unknown, env: Env, source = 'inline'): GatewayConfig {
  const problems: string[] = [];
  const interpolated = interpolate(withoutExtensionKeys(document), env, '', problems);
  const result = configSchema.safeParse(interpolated);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${formatPath(issue.path) || '(root)'}: ${issue.message}${inexactNumberHint(issue, interpolated)}`);
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(source, problems);
  return result.data;
}

/**
 * Why a setting that takes only a number got text, when the text is a number the file held with
 * more digits than a binary float does (see {@link parseYamlKeepingExactNumbers}); else empty.
 */
function inexactNumberHint(issue: z.core.$ZodIssue, document: unknown): string {
  if (issue.code !== 'invalid_type' || issue.expected !== 'number') return '';
  const value = issue.path.reduce<unknown>((at, key) => (at !== null && typeof at === 'object' ? (at as Record<PropertyKey, unknown>)[key] : undefined), document);
  if (typeof value !== 'string' || sameNumber(value, String(Number(value)))) return '';
  return ' (a number with more significant digits than a binary float holds is read as its text: write at most 15)';
}

export function loadConfigFile(path: string, env: Env): GatewayConfig {
  const absolute = resolve(path);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    throw new ConfigError(absolute, [`cannot read the file: ${(error as Error).message}`]);
  }
  const document = parseYamlKeepingExactNumbers(text);
  if (!document.ok) throw new ConfigError(absolute, document.problems);
  return parseConfig(document.value, env, absolute);
}

/**
 * The document of `text`, as the `yaml` package's `parse` reads it, except that a number a binary
 * float cannot hold as written (`0.12345678901234567891` would be 0.12345678901234568) is kept as
 * its text: a price or budget is a decimal and must keep every digit, and a numeric setting reads
 * plain decimal text as the same number YAML would have made of it.
 *
 * Or the problems of the text, every one placed by line and column: the errors, the warnings (a
 * tag YAML does not know makes the value empty, or the text after it) and the aliases naming no
 * anchor. Each is described in words of its own, never quoting the text: the text at fault is
 * often a password written unquoted (`!`, `*`, `|` or `>` at its start).
 */
function parseYamlKeepingExactNumbers(text: string): { ok: true; value: unknown } | { ok: false; problems: string[] } {
  // Merge keys (`<<: *defaults`) are not YAML 1.2, whose parser would keep `<<` as a plain key
  // (refused as unknown) instead of merging the anchored settings.
  // Without pretty errors: those quote the offending line, and a line that breaks YAML is often
  // one holding a password (an unquoted `: ` or ` #` in it).
  const document = parseDocument(text, { merge: true, prettyErrors: false });
  const found: Array<{ offset: number; problem: string }> = [...document.errors, ...document.warnings].map((error) => ({ offset: error.pos[0], problem: yamlProblem(error) }));
  visit(document, {
    Alias(_key, node) {
      if (node.resolve(document) === undefined) found.push({ offset: node.range?.[0] ?? 0, problem: 'an alias names no anchor set before it (a plain value starting with "*" is an alias in YAML: quote the value)' });
    },
  });
  if (found.length > 0) return { ok: false, problems: found.sort((a, b) => a.offset - b.offset).map(({ offset, problem }) => `not valid YAML${yamlPlace(text, offset)}: ${problem}`) };
  visit(document, {
    Scalar(_key, node) {
      if (typeof node.value === 'number' && node.source !== undefined && !sameNumber(node.source, String(node.value))) node.value = node.source;
    },
  });
  try {
    return { ok: true, value: document.toJS() };
  } catch (error) {
    // Past yaml's bound on aliases (an exponential expansion); its message quotes nothing of the file.
    return { ok: false, problems: [`not valid YAML: ${(error as Error).message}`] };
  }
}

/**
 * A YAML error or warning in words that quote nothing of the file: the `yaml` package's messages
 * for these codes quote the text at fault. Its other messages quote no more than an indicator.
 */
function yamlProblem(error: YAMLError): string {
  switch (error.code) {
    case 'TAG_RESOLVE_FAILED':
    case 'BAD_COLLECTION_TYPE':
      return 'an unknown tag, or one that does not fit its value (a plain value starting with "!" is a tag in YAML: quote the value)';
    case 'UNEXPECTED_TOKEN':
      return 'unexpected text (a plain value cannot start with "|" or ">" followed by text, nor with "]" or "}", and nothing may follow a quoted value: quote the value)';
    case 'BAD_DQ_ESCAPE':
      return 'an invalid escape sequence in a double-quoted value (write a backslash as \\\\, or quote the value with single quotes)';
    case 'BAD_DIRECTIVE':
      return 'an unknown or malformed directive (a line starting with "%")';
    default:
      return error.message;
  }
}

/** Base-10 number text: sign, digits with an optional fraction, an optional exponent. */
const BASE10_NUMBER = /^([-+]?)(\d*)(?:\.(\d*))?(?:e([-+]?\d+))?$/i;

/** Whether two base-10 number texts (`1.50`, `0.15e1`, `1.5`) name the same number exactly. */
function sameNumber(a: string, b: string): boolean {
  const normal = (text: string): string | undefined => {
    const match = BASE10_NUMBER.exec(text);
    if (!match) return undefined;
    const [, sign = '', whole = '', fraction = '', exponent = '0'] = match;
    const digits = whole + fraction;
    const first = digits.search(/[1-9]/);
    if (first === -1) return '0';
    // Significant digits and the power of ten of the first: 1.50 and 0.15e1 are both 15e1.
    return `${sign === '-' ? '-' : ''}${digits.slice(first).replace(/0+$/, '')}e${Number(exponent) + whole.length - first}`;
  };
  const normalA = normal(a);
  // Text that is not base-10 (0x1F, .inf) is left to YAML, as before.
  return normalA === undefined || normalA === normal(b);
}

/** ` at line L, column C` of an offset in the text. */
function yamlPlace(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return ` at line ${line}, column ${column}`;
}

export { z };
