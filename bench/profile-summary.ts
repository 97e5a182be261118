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

export interface ProfileEntry {
  frame: string;
  selfMs: number;
  selfShare: number;
}

function frameName(frame: { functionName: string; url: string; lineNumber: number }): string {
  const file = frame.url.startsWith('file://') ? relative(REPO_ROOT, frame.url.slice('file://'.length)) : frame.url;
  return `${frame.functionName || '(anonymous)'} ${file ? `${file}:${frame.lineNumber + 1}` : ''}`.trim();
}

/** Self time per function (and, with `byPackage`, per package or repository folder), highest first. */
export function summariseProfile(text: string, byPackage = false, lastMs?: number): { totalMs: number; entries: ProfileEntry[]; main: string } {
  const profile = profileSchema.parse(JSON.parse(text));
  // The program's entry point names the service (dist/services/<name>/src/main.js).
  const main = profile.nodes.map((n) => n.callFrame.url).find((url) => /\/src\/main\.js$/.test(url)) ?? '';
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  // With `lastMs`, only the samples of the profile's last `lastMs` (e.g. a load phase that ended
  // just before the process was stopped), leaving start-up out.
  const endUs = profile.timeDeltas.reduce((sum, d) => sum + d, 0);
  const fromUs = lastMs === undefined ? -Infinity : endUs - lastMs * 1000;
  let atUs = 0;
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const delta = profile.timeDeltas[i] ?? 0;
    atUs += delta;
    if (atUs < fromUs) return;
    totalUs += delta;
    if (!node) return;
    const name = byPackage ? packageOf(node.callFrame.url, node.callFrame.functionName) : frameName(node.callFrame);
    self.set(name, (self.get(name) ?? 0) + delta);
  });
  const entries = [...self]
    .map(([frame, us]) => ({ frame, selfMs: us / 1000, selfShare: totalUs > 0 ? us / totalUs : 0 }))
    .sort((a, b) => b.selfMs - a.selfMs);
  return { totalMs: totalUs / 1000, entries, main: main ? relative(REPO_ROOT, main.replace(/^file:\/\//, '')) : 'unknown' };
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

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' }, packages: { type: 'boolean' }, 'last-ms': { type: 'string' } } });
  const top = Number(values.top ?? 25);
  const lastMs = values['last-ms'] === undefined ? undefined : Number(values['last-ms']);
  // Each argument is a profile or a directory of them.
  const files = positionals.flatMap((p) => (statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(p, f)) : [p]));
  for (const path of files) {
    const { totalMs, entries, main } = summariseProfile(readFileSync(path, 'utf8'), values.packages === true, lastMs);
    console.log(`\n${main} (${basename(path)}): ${totalMs.toFixed(0)} ms sampled`);
    for (const e of entries.slice(0, top)) console.log(`${(e.selfShare * 100).toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(7)} ms  ${e.frame}`);
  }
}

if (require.main === module) main();
