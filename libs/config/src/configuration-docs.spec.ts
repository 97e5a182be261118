import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { z } from 'zod';
import { routeSettingsSchema } from './catalog.schema';
import { configSchema } from './config.schema';
import { listenSchema } from './primitives';

/*
 * Every key an operator can set must be findable in the reference of docs/configuration.md.
 *
 * Schema paths: object keys joined with `.`; a list element is `[]` (`models[].deployments[].id`),
 * a map entry `<id>` (`providers.<id>.timeoutMs`). The options of a union are walked together. A
 * leaf is anything but an object or a list or map of objects. Checked: every top-level key and
 * every leaf.
 *
 * Documented keys: the `code` keys in the first cell of the rows of the tables under "## Reference"
 * whose first column is headed `key`.
 * - Keys are written from the top level (`usage.kafka.topic`), except in the sections named in
 *   RELATIVE_SECTIONS, whose tables describe one item (a provider, a model) and name its keys
 *   from there (`timeoutMs`, `deployments[].id`, `pricing.input`).
 * - Further keys in the same cell made of one segment are siblings of the first
 *   (`usage.kafka.clientId`, `topic`).
 * - Any `<…>` segment is a map entry, whatever it says (`pricing.deployments.<deployment id>`).
 * - A row covers its key and the keys below it that it names: a path under the row's key is
 *   documented when each of its own segments below that key appears as a word in `code` somewhere
 *   in the row (`billing.rollup` naming `reconcileIntervalMs`, `lookbackDays`, `settleMs`).
 *
 * Conversely, every documented key must be a path of the schema, so a misspelt or stale row fails.
 *
 * The shared types listen and route settings are documented once, in a section of their own: where
 * the walk meets one, the key itself is the leaf, and the type's keys are checked once, under the
 * section's name (`listen.port`).
 */

const SHARED_TYPES = new Map<z.core.$ZodType, string>([
  [listenSchema, 'listen'],
  [routeSettingsSchema, 'route settings'],
]);

/** Section heading (lower case) → the path its table's keys are relative to. */
const RELATIVE_SECTIONS: Record<string, string[]> = {
  listen: ['listen'],
  'route settings': ['route settings'],
  providers: ['providers', '<id>'],
  models: ['models', '[]'],
  pricing: ['models', '[]'],
};

const LIST = '[]';
const ENTRY = '<id>';

type Path = string[];

const show = (path: Path): string => path.map((s, i) => (s === LIST || i === 0 ? s : `.${s}`)).join('');

/** The schema under optional/default/prefault wrappers and transforms (operators write a pipe's input). */
function unwrap(schema: z.core.$ZodType): z.core.$ZodTypes {
  const s = schema as z.core.$ZodTypes;
  const def = s._zod.def;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return unwrap(def.innerType);
    case 'pipe':
      return unwrap(def.in);
    default:
      return s;
  }
}

function isLeaf(schema: z.core.$ZodType): boolean {
  const s = unwrap(schema);
  if (SHARED_TYPES.has(s)) return false;
  const def = s._zod.def;
  switch (def.type) {
    case 'object':
      return false;
    case 'array':
      return isLeaf(def.element);
    case 'record':
      return isLeaf(def.valueType);
    case 'union':
      return def.options.every(isLeaf);
    default:
      return true;
  }
}

/** The schema's leaf paths, plus the paths of the shared types' own keys. */
function schemaPaths(): Path[] {
  const found: Path[] = [];
  const walk = (schema: z.core.$ZodType, path: Path): void => {
    const s = unwrap(schema);
    const shared = SHARED_TYPES.get(s);
    if (shared !== undefined && path[0] !== shared) {
      found.push(path);
      return;
    }
    if (isLeaf(s)) {
      found.push(path);
      return;
    }
    const def = s._zod.def;
    if (def.type === 'object') for (const [key, value] of Object.entries(def.shape)) walk(value, [...path, key]);
    else if (def.type === 'array') walk(def.element, [...path, LIST]);
    else if (def.type === 'record') walk(def.valueType, [...path, ENTRY]);
    else if (def.type === 'union') {
      // `maxPrice` is a decimal or `{ prompt, completion }`: the key itself and the object's keys.
      if (def.options.some(isLeaf)) found.push(path);
      for (const option of def.options) if (!isLeaf(option)) walk(option, path);
    }
  };
  walk(configSchema, []);
  for (const [schema, name] of SHARED_TYPES) walk(schema, [name]);
  // The kinds of one union share keys (every alert rule has an `id`): each path once.
  return [...new Map(found.map((p) => [show(p), p])).values()];
}

interface Row {
  keys: Path[];
  /** Every word written in `code` in the row. */
  words: Set<string>;
  line: number;
}

const codeSpans = (text: string): string[] => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');

function parseKey(key: string): Path {
  return key
    .replace(/<[^>]*>/g, ENTRY)
    .split('.')
    .flatMap((segment) => (segment.endsWith(LIST) ? [segment.slice(0, -LIST.length), LIST] : [segment]));
}

/** The rows of the reference's key tables, their keys resolved to full paths. */
function documentedRows(markdown: string): Row[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === '## Reference');
  const rows: Row[] = [];
  let base: Path = [];
  let keyTable = false;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.startsWith('## ')) break;
    const heading = /^###\s+(.*)$/.exec(line);
    if (heading) {
      base = RELATIVE_SECTIONS[(heading[1] ?? '').trim().toLowerCase()] ?? [];
      keyTable = false;
      continue;
    }
    if (!line.startsWith('|')) {
      keyTable = false;
      continue;
    }
    const cells = line.split(/(?<!\\)\|/).slice(1, -1);
    const first = (cells[0] ?? '').trim();
    if (first === 'key') {
      keyTable = true;
      continue;
    }
    if (!keyTable || /^-+$/.test(first)) continue;
    const [lead, ...rest] = codeSpans(first).map(parseKey);
    if (!lead) continue;
    const siblings = rest.map((k) => (k.length === 1 ? [...lead.slice(0, -1), ...k] : k));
    const words = new Set(cells.flatMap(codeSpans).flatMap((c) => c.split(/[^A-Za-z0-9_]+/)).filter((w) => w !== ''));
    rows.push({ keys: [lead, ...siblings].map((k) => [...base, ...k]), words, line: i + 1 });
  }
  return rows;
}

const startsWith = (path: Path, prefix: Path): boolean => prefix.length <= path.length && prefix.every((s, i) => s === path[i]);

function covers(row: Row, path: Path): boolean {
  return row.keys.some((key) => startsWith(path, key) && path.slice(key.length).every((s) => s === LIST || s === ENTRY || row.words.has(s)));
}

describe('docs/configuration.md', () => {
  const markdown = readFileSync(join(__dirname, '../../../docs/configuration.md'), 'utf8');
  const rows = documentedRows(markdown);
  const paths = schemaPaths();

  it('finds the schema and the reference (guards the two parsers)', () => {
    expect(paths.map(show)).toEqual(expect.arrayContaining(['version', 'ingress.http', 'listen.port', 'providers.<id>.timeoutMs', 'models[].deployments[].id', 'routing.defaults']));
    expect(rows.length).toBeGreaterThan(50);
  });

  it('documents every top-level key and every key an operator can set', () => {
    const required = [...Object.keys(configShape()).map((k) => [k]), ...paths];
    const missing = required.filter((path) => !rows.some((row) => covers(row, path))).map(show);
    expect(missing).toEqual([]);
  });

  it('names only keys that exist', () => {
    const all = paths.flatMap((p) => p.map((_, i) => show(p.slice(0, i + 1))));
    const unknown = rows.flatMap((row) => row.keys.map(show).filter((k) => !all.includes(k)).map((k) => `${k} (line ${row.line})`));
    expect(unknown).toEqual([]);
  });
});

/** The variables a shipped configuration file reads: the `${NAME}` placeholders of its string values. */
function fileVariables(file: string): string[] {
  const found = new Set<string>();
  const walk = (value: unknown): void => {
    if (typeof value === 'string') for (const m of value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)) found.add(m[1] ?? '');
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(parse(readFileSync(join(__dirname, '../../../deploy/config', file), 'utf8')));
  return [...found].sort();
}

/** Per shipped file, the variables the table under "## Environment variables" says it reads. */
function documentedVariables(markdown: string): Record<string, string[]> {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === '## Environment variables');
  const byFile: Record<string, Set<string>> = { 'embedded.yaml': new Set(), 'distributed.yaml': new Set() };
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('## ')) break;
    if (!line.startsWith('|')) continue;
    const [names = '', readBy = ''] = line.split('|').slice(1, -1);
    const files = /both files/.test(readBy) ? Object.keys(byFile) : Object.keys(byFile).filter((f) => readBy.includes(`\`${f}\``));
    for (const name of codeSpans(names)) for (const file of files) byFile[file]?.add(name);
  }
  return Object.fromEntries(Object.entries(byFile).map(([file, names]) => [file, [...names].sort()]));
}

describe('docs/configuration.md, environment variables', () => {
  const documented = documentedVariables(readFileSync(join(__dirname, '../../../docs/configuration.md'), 'utf8'));

  it.each(['embedded.yaml', 'distributed.yaml'])('lists exactly the variables deploy/config/%s reads, as read by it', (file) => {
    expect(fileVariables(file).length).toBeGreaterThan(5);
    expect(documented[file]).toEqual(fileVariables(file));
  });
});

function configShape(): Record<string, unknown> {
  const def = (configSchema as z.core.$ZodTypes)._zod.def;
  if (def.type !== 'object') throw new Error(`the configuration schema is a ${def.type}, not an object`);
  return def.shape;
}
