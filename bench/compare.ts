import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { z } from 'zod';
import { benchReportSchema, percentile, type BenchReport } from './report';
import { REPO_ROOT } from './targets/child-process';

/**
 * Judges a change to the hot path on this machine: the working tree ("head", as built) against a
 * base revision, each run by its own `bench/run.ts` in alternation — base, head, head, base, … —
 * so a drift of the machine over time (neighbours, heat) falls on both alike. Reports every
 * figure's range and median per side and the change of the medians.
 *
 *   npm run bench:compare -- --base main~3 --pairs 3 -- --targets floor,embedded --scenarios chat --concurrency 16
 */

/** One figure of the comparison, per side: the value in each run. */
export interface Figure {
  subject: string;
  metric: string;
  /** Which way is better, for the reader. */
  better: 'higher' | 'lower';
  base: number[];
  head: number[];
}

export interface ComparedFigure extends Figure {
  baseMedian: number;
  headMedian: number;
  /** (head − base) / |base| of the medians; undefined when the base median is 0. */
  change: number | undefined;
}

type Extract = (report: BenchReport) => Array<{ subject: string; metric: string; better: 'higher' | 'lower'; value: number }>;

const ROW_METRICS: Array<{ key: 'requestsPerSecond' | 'throughputVsFloor' | 'cpuMsPerRequest' | 'cpuVsFloor' | 'p50Ms' | 'overheadP50Ms' | 'ttfbOverheadP50Ms' | 'peakRssMb'; metric: string; better: 'higher' | 'lower' }> = [
  { key: 'requestsPerSecond', metric: 'req/s', better: 'higher' },
  { key: 'throughputVsFloor', metric: 'req/s vs floor', better: 'higher' },
  { key: 'cpuMsPerRequest', metric: 'CPU ms/req', better: 'lower' },
  { key: 'cpuVsFloor', metric: 'CPU vs floor', better: 'lower' },
  { key: 'p50Ms', metric: 'p50 ms', better: 'lower' },
  { key: 'overheadP50Ms', metric: 'overhead p50 ms', better: 'lower' },
  { key: 'ttfbOverheadP50Ms', metric: 'TTFB overhead p50 ms', better: 'lower' },
  { key: 'peakRssMb', metric: 'peak RSS MB', better: 'lower' },
];

/** The services the gRPC floor stands for: ingress, router and adapter, not billing or alerting. */
const HOPS = ['ingress', 'router', 'adapter'];

/** Every figure a report holds that a change to the gateway can move. */
const figuresOf: Extract = (report) => {
  const out: ReturnType<Extract> = [];
  for (const row of report.rows) {
    const subject = `${row.scenario} c=${row.concurrency} ${row.target}`;
    for (const { key, metric, better } of ROW_METRICS) {
      const value = row[key];
      if (value !== undefined) out.push({ subject, metric, better, value });
    }
    const floor = report.grpcFloor?.find((f) => f.scenario === row.scenario && f.concurrency === row.concurrency);
    const byProcess = row.cpuMsPerRequestByProcess;
    if (row.target === 'distributed' && floor && floor.cpuMsPerRequest.total > 0 && byProcess) {
      const hops = HOPS.reduce((sum, name) => sum + (byProcess[name] ?? 0), 0);
      // The services' CPU as a multiple of the bare transport's in the same run: the steadiest figure of the distributed mode.
      out.push({ subject, metric: 'ingress+router+adapter CPU vs gRPC floor', better: 'lower', value: hops / floor.cpuMsPerRequest.total });
    }
  }
  for (const [target, memory] of Object.entries(report.memory)) {
    out.push({ subject: `${target} (whole run)`, metric: 'peak PSS MB', better: 'lower', value: memory.peakPssMb });
    // Steadier than the peak: what the processes keep once loaded and connected.
    if (memory.atRest) out.push({ subject: `${target} (at rest)`, metric: 'PSS MB', better: 'lower', value: memory.atRest.pssMb });
  }
  const pipeline = report.usagePipeline;
  if (pipeline) {
    out.push({ subject: 'usage pipeline', metric: 'consumer events/s', better: 'higher', value: pipeline.consumer.eventsPerSecond });
    out.push({ subject: 'usage pipeline', metric: 'consumer CPU ms/1k events', better: 'lower', value: pipeline.consumer.cpuMsPerThousandEvents });
    out.push({ subject: 'usage pipeline', metric: 'live events/s', better: 'higher', value: pipeline.eventsPerSecond });
  }
  if (report.chargeback) {
    out.push({ subject: 'chargeback', metric: 'raw query ms', better: 'lower', value: report.chargeback.rawQueryMs });
    out.push({ subject: 'chargeback', metric: 'rollup query ms', better: 'lower', value: report.chargeback.rollupQueryMs });
  }
  if (report.routeDecision) out.push({ subject: 'routing decision', metric: 'p50 µs', better: 'lower', value: report.routeDecision.p50Micros });
  return out;
};

/** Lines the runs of both sides up, figure by figure; a figure missing from a side is left out. */
export function compareReports(base: readonly BenchReport[], head: readonly BenchReport[]): ComparedFigure[] {
  const figures = new Map<string, Figure>();
  const collect = (reports: readonly BenchReport[], side: 'base' | 'head'): void => {
    for (const report of reports) {
      for (const { subject, metric, better, value } of figuresOf(report)) {
        const id = `${subject}\n${metric}`;
        let figure = figures.get(id);
        if (!figure) figures.set(id, (figure = { subject, metric, better, base: [], head: [] }));
        figure[side].push(value);
      }
    }
  };
  collect(base, 'base');
  collect(head, 'head');
  return [...figures.values()]
    .filter((f) => f.base.length > 0 && f.head.length > 0)
    .map((f) => {
      const baseMedian = median(f.base);
      const headMedian = median(f.head);
      return { ...f, baseMedian, headMedian, change: baseMedian === 0 ? undefined : (headMedian - baseMedian) / Math.abs(baseMedian) };
    });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

const show = (n: number): string => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : Number(n.toPrecision(3)).toString());
function range(values: readonly number[]): string {
  const [low, high] = [show(percentile(values, 0)), show(percentile(values, 1))];
  return low === high ? low : `${low}–${high}`;
}

/**
 * How likely the ranges of two sides that measured the same thing (`n` and `m` runs of identical
 * builds) are apart by chance alone: of the orderings of the n + m runs, the two with one side all
 * below the other, 2 / C(n + m, n). Two runs a side: 1 in 3; three: 1 in 10; four: 1 in 35.
 */
export function chanceApart(n: number, m: number): number {
  if (n < 1 || m < 1) return 1;
  let orderings = 1;
  for (let i = 1; i <= m; i++) orderings = (orderings * (n + i)) / i;
  return Math.min(1, 2 / orderings);
}

/** A change is marked only when its ranges being apart would happen by chance at most this often. */
export const MARK_AT_MOST_CHANCE = 0.1;

/**
 * The comparison as a markdown table. A change is marked only when the two sides' ranges do not
 * overlap and that is unlikely by chance alone (`chanceApart` at most `MARK_AT_MOST_CHANCE`: three
 * runs a side or more): anything else is within what this machine's noise did in these runs.
 */
export function comparisonMarkdown(figures: readonly ComparedFigure[], header: { base: string; head: string; pairs: number; args: readonly string[] }): string {
  const lines = [
    `# Bench comparison: ${header.head} against ${header.base}`,
    '',
    `${header.pairs} run(s) each, alternated (base, head, head, base, …), \`bench/run.ts ${header.args.join(' ')}\`.`,
    `Ranges are min–max over the runs; the change is of the medians; ✓ better and ✗ worse only where the ranges do not overlap and that is unlikely by chance: two identical builds run ${header.pairs} time(s) each have their ranges apart with probability ${percent(chanceApart(header.pairs, header.pairs))}, and a change is marked only at ${percent(MARK_AT_MOST_CHANCE)} or less (${MIN_MARKED_RUNS} runs a side or more).`,
    '',
    '| what | figure | base | head | change |',
    '|---|---|---:|---:|---:|',
  ];
  for (const f of figures) {
    // Ranges of few runs are apart by chance too often to say anything (two a side: 1 in 3).
    const telling = chanceApart(f.base.length, f.head.length) <= MARK_AT_MOST_CHANCE;
    const separated = telling && (Math.min(...f.head) > Math.max(...f.base) || Math.max(...f.head) < Math.min(...f.base));
    const improved = f.better === 'higher' ? f.headMedian > f.baseMedian : f.headMedian < f.baseMedian;
    const mark = separated ? (improved ? ' ✓' : ' ✗') : '';
    const change = f.change === undefined ? '–' : `${f.change >= 0 ? '+' : ''}${(f.change * 100).toFixed(1)} %${mark}`;
    lines.push(`| ${f.subject} | ${f.metric} | ${range(f.base)} (${show(f.baseMedian)}) | ${range(f.head)} (${show(f.headMedian)}) | ${change} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** The fewest runs a side whose ranges being apart is telling (see `MARK_AT_MOST_CHANCE`). */
const MIN_MARKED_RUNS = (() => {
  let n = 1;
  while (chanceApart(n, n) > MARK_AT_MOST_CHANCE) n++;
  return n;
})();

const percent = (p: number): string => `${Number((p * 100).toPrecision(2))} %`;

const optionsSchema = z.object({
  base: z.string().min(1, '--base REV is required: the revision to compare the working tree with'),
  pairs: z.coerce.number().int().positive().default(3),
  out: z.string().optional(),
});

const execFileAsync = promisify(execFile);

/** Runs a command to its end and returns its standard output; with `logFile`, writes both outputs there. */
async function run(command: string, args: readonly string[], cwd: string, logFile?: string): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync(command, [...args], { cwd, maxBuffer: 256 * 1024 * 1024 });
    if (logFile) writeFileSync(logFile, stdout + stderr);
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    if (logFile) writeFileSync(logFile, stdout + stderr);
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) failed:\n${(stdout + stderr).slice(-2_000)}`, { cause: error });
  }
}

const git = async (args: readonly string[]): Promise<string> => (await run('git', args, REPO_ROOT)).trim();

/**
 * A worktree of `sha` outside the repository (where jest, eslint and tsc would find its sources),
 * sharing node_modules when the lock file is the same; kept for the next comparison.
 */
async function prepareBase(sha: string, log: (line: string) => void): Promise<string> {
  const dir = join(tmpdir(), 'open-router-bench', `base-${sha.slice(0, 12)}`);
  mkdirSync(join(tmpdir(), 'open-router-bench'), { recursive: true });
  if (!existsSync(dir)) await git(['worktree', 'add', '--detach', dir, sha]);
  // The Kafka jars the harness starts the broker from.
  if (existsSync(join(REPO_ROOT, '.cache')) && !existsSync(join(dir, '.cache'))) symlinkSync(join(REPO_ROOT, '.cache'), join(dir, '.cache'));
  if (!existsSync(join(dir, 'node_modules'))) {
    const sameLock = readFileSync(join(dir, 'package-lock.json'), 'utf8') === readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8');
    if (sameLock) symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
    else {
      log('the base has other dependencies: npm install in its worktree');
      await run('npm', ['install', '--no-audit', '--no-fund'], dir);
    }
  }
  return dir;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const split = argv.indexOf('--');
  const benchArgs = split === -1 ? [] : argv.slice(split + 1);
  const { values } = parseArgs({ args: split === -1 ? argv : argv.slice(0, split), strict: true, options: { base: { type: 'string' }, pairs: { type: 'string' }, out: { type: 'string' } } });
  const options = optionsSchema.parse(values);
  const log = (line: string): void => void process.stdout.write(`[compare ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  if (benchArgs.some((a) => a === '--out' || a.startsWith('--out='))) throw new Error('--out goes before `--`: each run writes into the comparison folder');

  const sha = await git(['rev-parse', '--verify', `${options.base}^{commit}`]);
  const headName = `${(await git(['rev-parse', '--short=12', 'HEAD'])) || 'HEAD'}${(await git(['status', '--porcelain'])) ? ' + working tree' : ''}`;
  const out = resolve(options.out ?? join(REPO_ROOT, 'bench/results', `compare-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  mkdirSync(out, { recursive: true });
  const baseDir = await prepareBase(sha, log);
  log(`building head (${REPO_ROOT}) and base ${sha.slice(0, 12)} (${baseDir})`);
  await run('npm', ['run', '--silent', 'build'], REPO_ROOT);
  await run('npm', ['run', '--silent', 'build'], baseDir);

  const reports: Record<'base' | 'head', BenchReport[]> = { base: [], head: [] };
  for (let pair = 1; pair <= options.pairs; pair++) {
    const order: Array<'base' | 'head'> = pair % 2 === 1 ? ['base', 'head'] : ['head', 'base'];
    for (const side of order) {
      const dir = join(out, `${side}-${pair}`);
      log(`pair ${pair}/${options.pairs}: ${side}`);
      await run(process.execPath, ['-r', './bench/register.js', 'bench/run.ts', ...benchArgs, '--out', dir], side === 'base' ? baseDir : REPO_ROOT, join(out, `${side}-${pair}.log`));
      reports[side].push(benchReportSchema.parse(JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8'))));
    }
  }

  const figures = compareReports(reports.base, reports.head);
  const markdown = comparisonMarkdown(figures, { base: sha.slice(0, 12), head: headName, pairs: options.pairs, args: benchArgs });
  writeFileSync(join(out, 'comparison.json'), `${JSON.stringify({ schema: 'open-router-bench-comparison/v1', base: sha, head: headName, pairs: options.pairs, benchArgs, figures }, null, 2)}\n`);
  writeFileSync(join(out, 'comparison.md'), markdown);
  process.stdout.write(`\n${markdown}\nwritten: ${join(out, 'comparison.md')} and comparison.json; the base worktree stays in ${baseDir} (git worktree remove ${baseDir})\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench comparison failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
