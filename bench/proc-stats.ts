import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux build Node supports. */
const CLOCK_TICKS = 100;

export interface ProcessSample {
  /** utime + stime, in milliseconds. */
  cpuMs: number;
  /** Resident set now and its high-water mark, in bytes. */
  rssBytes: number;
  hwmBytes: number;
}

/** One process's CPU and memory from /proc, or undefined when it is gone. */
export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { cpuMs: ((utime + stime) * 1000) / CLOCK_TICKS, rssBytes: statusKb(status, 'VmRSS') * 1024, hwmBytes: statusKb(status, 'VmHWM') * 1024 };
  } catch {
    return undefined;
  }
}

function statusKb(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) : 0;
}

export interface GroupUsage {
  cpuMs: number;
  /** The same CPU per named process. */
  cpuMsByProcess: Record<string, number>;
  /** Highest summed RSS seen while sampling (a sum of per-process peaks would overstate it). */
  peakRssBytes: number;
  /** Summed VmHWM at the end: each process's own peak since it started. */
  hwmBytes: number;
}

/**
 * Measures a set of processes over a load run: CPU as the delta of utime+stime, summed; memory
 * as the peak of the summed RSS, sampled every `intervalMs` while the run lasts.
 */
export class ProcessGroupMeter {
  private readonly start = new Map<number, number>();
  private peakRss = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly processes: ReadonlyArray<{ name: string; pid: number }>,
    private readonly intervalMs = 100,
  ) {}

  begin(): void {
    for (const { pid } of this.processes) this.start.set(pid, sampleProcess(pid)?.cpuMs ?? 0);
    this.peakRss = 0;
    this.sampleRss();
    this.timer = setInterval(() => this.sampleRss(), this.intervalMs);
    this.timer.unref();
  }

  end(): GroupUsage {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sampleRss();
    let cpuMs = 0;
    let hwmBytes = 0;
    const cpuMsByProcess: Record<string, number> = {};
    for (const { name, pid } of this.processes) {
      const sample = sampleProcess(pid);
      if (!sample) continue;
      const used = sample.cpuMs - (this.start.get(pid) ?? 0);
      cpuMs += used;
      cpuMsByProcess[name] = (cpuMsByProcess[name] ?? 0) + used;
      hwmBytes += sample.hwmBytes;
    }
    return { cpuMs, cpuMsByProcess, peakRssBytes: this.peakRss, hwmBytes };
  }

  private sampleRss(): void {
    let sum = 0;
    for (const { pid } of this.processes) sum += sampleProcess(pid)?.rssBytes ?? 0;
    if (sum > this.peakRss) this.peakRss = sum;
  }
}
