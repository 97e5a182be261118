import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { sampleGroupMemory } from './proc-stats';

/** Above the kernel's highest possible pid (2^22): no process has it. */
const NO_SUCH_PID = 4_194_305;
const MB = 1024 * 1024;

describe('sampleGroupMemory', () => {
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill();
      await once(child, 'exit');
    }
  });

  it("gives a live process's RSS and PSS, summed over the group, and 0 for a process that is gone", async () => {
    // 64 MB written to, so resident, before the child says it is ready.
    child = spawn(process.execPath, ['-e', "globalThis.kept = Buffer.alloc(64 * 1024 * 1024, 1); process.stdout.write('ready'); setInterval(() => undefined, 60_000)"], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [data] = (await once(child.stdout!, 'data')) as [Buffer];
    expect(data.toString()).toBe('ready');

    const memory = sampleGroupMemory([
      { name: 'child', pid: child.pid! },
      { name: 'gone', pid: NO_SUCH_PID },
    ]);
    const own = memory.byProcess['child'];
    expect(own?.rssBytes).toBeGreaterThan(64 * MB);
    // The Node binary's pages are shared with this process: the child's share is less than its RSS.
    expect(own?.pssBytes).toBeGreaterThan(64 * MB);
    expect(own?.pssBytes).toBeLessThan(own?.rssBytes ?? 0);
    expect(memory.byProcess['gone']).toEqual({ rssBytes: 0, pssBytes: 0 });
    expect(memory.rssBytes).toBe(own?.rssBytes);
    expect(memory.pssBytes).toBe(own?.pssBytes);
  });
});
