import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { REPO_ROOT } from './targets/child-process';

/** The parts of a V8 `.cpuprofile` (written by `node --cpu-prof`) the summary reads. */
const profileSchema = z.object({
  nodes: z.array(
    z.object({
      id: z.number(),
      callFrame: z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() }),
      children: z.array(z.number()).optional(),
    }),
  ),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
type Profile = z.infer<typeof profileSchema>;
type ProfileNode = Profile['nodes'][number];

export interface ProfileEntry {
  frame: string;
  selfMs: number;
  selfShare: number;
}

/** Which samples to read: all, the profile's last `lastMs`, or its busiest `busiestMs`. */
export type SampleWindow = { lastMs: number } | { busiestMs: number } | undefined;

export interface SummaryOptions {
  /** Self time per package (or repository folder) instead of per function. */
  byPackage?: boolean;
  window?: SampleWindow;
}

export interface ProfileSummary {
  /** The service the profile is of (its `dist/services/<name>/src/main.js`). */
  main: string;
  /** Time the summary covers, idle included. */
  totalMs: number;
  /** Where the window starts, from the profile's first sample. */
  fromMs: number;
  /** Time not idle in the window. */
  busyMs: number;
  entries: ProfileEntry[];
}

/** One path by which a function was reached, with the time spent in it (its callees included) that way. */
export interface CallerEntry {
  /** The callers, nearest first. */
  path: string[];
  totalMs: number;
  /** Of the window's busy time. */
  share: number;
}

const IDLE = '(idle)';
const BUSIEST_STEP_US = 100_000;

function frameName(frame: ProfileNode['callFrame']): string {
  const file = frame.url.startsWith('file://') ? relative(REPO_ROOT, frame.url.slice('file://'.length)) : frame.url;
  return `${frame.functionName || '(anonymous)'} ${file ? `${file}:${frame.lineNumber + 1}` : ''}`.trim();
}

/** A parsed profile: every sample with its time and node, and the call tree's parent links. */
class SampledProfile {
  readonly byId: Map<number, ProfileNode>;
  readonly parentOf = new Map<number, number>();
  /** Each sample's end, in µs from the first. */
  readonly atUs: number[] = [];
  /** Time not idle before each sample (`busyBeforeUs[i]`), for any range's busy time at once. */
  private readonly busyBeforeUs: number[] = [0];
  readonly main: string;

  constructor(readonly profile: Profile) {
    this.byId = new Map(profile.nodes.map((n) => [n.id, n]));
    for (const node of profile.nodes) for (const child of node.children ?? []) this.parentOf.set(child, node.id);
    let at = 0;
    let busy = 0;
    profile.timeDeltas.forEach((delta, i) => {
      this.atUs.push((at += delta));
      if (this.byId.get(profile.samples[i] ?? -1)?.callFrame.functionName !== IDLE) busy += delta;
      this.busyBeforeUs.push(busy);
    });
    // The program's entry point names the service (dist/services/<name>/src/main.js).
    const main = profile.nodes.map((n) => n.callFrame.url).find((url) => /\/src\/main\.js$/.test(url));
    this.main = main ? relative(REPO_ROOT, main.replace(/^file:\/\//, '')) : 'unknown';
  }

  static parse(text: string): SampledProfile {
    return new SampledProfile(profileSchema.parse(JSON.parse(text)));
  }

  /** The samples `[from, to)` the window selects (those that end in it), and where it starts. */
  range(window: SampleWindow): { from: number; to: number; startUs: number } {
    const count = this.profile.samples.length;
    if (window === undefined) return { from: 0, to: count, startUs: 0 };
    const endUs = this.atUs[count - 1] ?? 0;
    if ('lastMs' in window) {
      const startUs = Math.max(0, endUs - window.lastMs * 1000);
      return { from: this.firstAt(startUs), to: count, startUs };
    }
    // The busiest window: slid in 100 ms steps, the most time not idle wins (the first on a tie).
    const spanUs = window.busiestMs * 1000;
    let best = { from: 0, to: this.firstAt(spanUs), startUs: 0, busyUs: -1 };
    for (let startUs = 0; startUs === 0 || startUs + spanUs <= endUs; startUs += BUSIEST_STEP_US) {
      const from = this.firstAt(startUs);
      const to = this.firstAt(startUs + spanUs);
      const busyUs = this.busyUs(from, to);
      if (busyUs > best.busyUs) best = { from, to, startUs, busyUs };
    }
    return best;
  }

  /** The index of the first sample that ends after `us`. */
  private firstAt(us: number): number {
    let low = 0;
    let high = this.atUs.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((this.atUs[mid] ?? 0) <= us) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  busyUs(from: number, to: number): number {
    return (this.busyBeforeUs[to] ?? 0) - (this.busyBeforeUs[from] ?? 0);
  }

}

/** Self time per function (or, with `byPackage`, per package or repository folder), highest first. */
export function summariseProfile(text: string, options: SummaryOptions = {}): ProfileSummary {
  const sampled = SampledProfile.parse(text);
  const { profile, byId } = sampled;
  const { from, to, startUs } = sampled.range(options.window);
  const self = new Map<string, number>();
  let totalUs = 0;
  for (let i = from; i < to; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    totalUs += delta;
    const node = byId.get(profile.samples[i] ?? -1);
    if (!node) continue;
    const name = options.byPackage ? packageOf(node.callFrame.url, node.callFrame.functionName) : frameName(node.callFrame);
    self.set(name, (self.get(name) ?? 0) + delta);
  }
  const entries = [...self]
    .map(([frame, us]) => ({ frame, selfMs: us / 1000, selfShare: totalUs > 0 ? us / totalUs : 0 }))
    .sort((a, b) => b.selfMs - a.selfMs);
  return { main: sampled.main, totalMs: totalUs / 1000, fromMs: startUs / 1000, busyMs: sampled.busyUs(from, to) / 1000, entries };
}

/**
 * Who a function's time comes from: the time spent in every function named `functionName`
 * (callees included), by its `depth` nearest callers, highest first. Recursion is counted once
 * per sample.
 */
export function callersOf(text: string, functionName: string, depth = 3, window?: SampleWindow): CallerEntry[] {
  const sampled = SampledProfile.parse(text);
  const { profile, byId, parentOf } = sampled;
  const { from, to } = sampled.range(window);
  const byPath = new Map<string, { path: string[]; us: number }>();
  for (let i = from; i < to; i++) {
    // The outermost frame of the function on this sample's stack, so recursion counts once.
    let found: number | undefined;
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parentOf.get(id)) {
      if (byId.get(id)?.callFrame.functionName === functionName) found = id;
    }
    if (found === undefined) continue;
    const path: string[] = [];
    for (let id = parentOf.get(found); id !== undefined && path.length < depth; id = parentOf.get(id)) {
      const frame = byId.get(id)?.callFrame;
      if (frame && frame.functionName !== '(root)') path.push(frameName(frame));
    }
    const key = path.join('\n');
    const entry = byPath.get(key) ?? { path, us: 0 };
    entry.us += profile.timeDeltas[i] ?? 0;
    byPath.set(key, entry);
  }
  const busyUs = sampled.busyUs(from, to);
  return [...byPath.values()].map((e) => ({ path: e.path, totalMs: e.us / 1000, share: busyUs > 0 ? e.us / busyUs : 0 })).sort((a, b) => b.totalMs - a.totalMs);
}

function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const path = url.startsWith('file://') ? url.slice('file://'.length) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? path);
  }
  if (path.startsWith('node:')) return path;
  const parts = relative(REPO_ROOT, path).split('/');
  return parts.slice(0, parts[0] === 'dist' ? 3 : 2).join('/');
}

const argsSchema = z
  .object({
    top: z.coerce.number().int().positive().default(25),
    packages: z.boolean().default(false),
    'last-ms': z.coerce.number().positive().optional(),
    'busiest-ms': z.coerce.number().positive().optional(),
    callers: z.string().min(1).optional(),
    depth: z.coerce.number().int().positive().default(3),
  })
  .refine((a) => a['last-ms'] === undefined || a['busiest-ms'] === undefined, { message: '--last-ms and --busiest-ms choose the window two ways: give one' });

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string' },
      packages: { type: 'boolean' },
      'last-ms': { type: 'string' },
      'busiest-ms': { type: 'string' },
      callers: { type: 'string' },
      depth: { type: 'string' },
    },
  });
  const parsed = argsSchema.safeParse(values);
  if (!parsed.success) {
    console.error(z.prettifyError(parsed.error));
    process.exitCode = 2;
    return;
  }
  const args = parsed.data;
  const window: SampleWindow =
    args['busiest-ms'] !== undefined ? { busiestMs: args['busiest-ms'] } : args['last-ms'] !== undefined ? { lastMs: args['last-ms'] } : undefined;
  // Each argument is a profile or a directory of them.
  const files = positionals.flatMap((p) => (statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(p, f)) : [p]));
  for (const path of files) {
    const text = readFileSync(path, 'utf8');
    const summary = summariseProfile(text, { byPackage: args.packages, window });
    const span = window === undefined ? '' : ` from ${(summary.fromMs / 1000).toFixed(1)} s`;
    console.log(`\n${summary.main} (${basename(path)}): ${summary.totalMs.toFixed(0)} ms sampled${span}, ${summary.busyMs.toFixed(0)} ms not idle`);
    if (args.callers !== undefined) {
      for (const c of callersOf(text, args.callers, args.depth, window).slice(0, args.top)) {
        console.log(`${(c.share * 100).toFixed(1).padStart(5)}%  ${c.totalMs.toFixed(0).padStart(7)} ms  ${c.path.join(' ← ') || '(top of the stack)'}`);
      }
      continue;
    }
    for (const e of summary.entries.slice(0, args.top)) console.log(`${(e.selfShare * 100).toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(7)} ms  ${e.frame}`);
  }
}

if (require.main === module) main();
