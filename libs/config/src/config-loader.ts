import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
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

const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string of a parsed document. A missing
 * variable without a default is a problem reported with the path, like any invalid value.
 */
export function interpolate(value: unknown, env: Env, path: string, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(PLACEHOLDER, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push(`${path || '(root)'}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, `${path}[${i}]`, problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, path ? `${path}.${k}` : k, problems)]));
  }
  return value;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), '');
}

/** Validates a parsed document, listing every problem at once with its path. */
export function parseConfig(document: unknown, env: Env, source = 'inline'): GatewayConfig {
  const problems: string[] = [];
  const interpolated = interpolate(document, env, '', problems);
  const result = configSchema.safeParse(interpolated);
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(`${formatPath(issue.path) || '(root)'}: ${issue.message}`);
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(source, problems);
  return result.data;
}

export function loadConfigFile(path: string, env: Env): GatewayConfig {
  const absolute = resolve(path);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    throw new ConfigError(absolute, [`cannot read the file: ${(error as Error).message}`]);
  }
  let document: unknown;
  try {
    // Merge keys (`<<: *defaults`) are not YAML 1.2, whose parser would keep `<<` as a plain key
    // that the schema then strips without a word: the merged settings would be silently missing.
    // Without pretty errors: those quote the offending line, and a line that breaks YAML is often
    // one holding a password (an unquoted `: ` or ` #` in it).
    document = parseYaml(text, { merge: true, prettyErrors: false });
  } catch (error) {
    throw new ConfigError(absolute, [`not valid YAML${yamlErrorPlace(text, error)}: ${(error as Error).message}`]);
  }
  return parseConfig(document, env, absolute);
}

/** ` at line L, column C` of a YAML parse error, from its offset in the text; empty without one. */
function yamlErrorPlace(text: string, error: unknown): string {
  const offset = error instanceof YAMLParseError ? error.pos[0] : undefined;
  if (offset === undefined) return '';
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return ` at line ${line}, column ${column}`;
}

export { z };
