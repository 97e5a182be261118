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

/**
 * Proportional set size: resident pages, each shared one divided by the number of processes
 * mapping it (the Node binary, shared libraries), so a sum over processes counts it once.
 */
export function sampleProportionalBytes(pid: number): number | undefined {
  try {
    return statusKb(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss') * 1024;
  } catch {
    return undefined;
  }
}

/** Summed RSS and PSS of a set of processes at one moment, and each one's. */
export interface GroupMemory {
  rssBytes: number;
  pssBytes: number;
  byProcess: Record<string, { rssBytes: number; pssBytes: number }>;
}

/** The processes' memory now, PSS included; a process that is gone counts 0. */
export function sampleGroupMemory(processes: ReadonlyArray<{ name: string; pid: number }>): GroupMemory {
  const memory: GroupMemory = { rssBytes: 0, pssBytes: 0, byProcess: {} };
  for (const { name, pid } of processes) {
    const rssBytes = sampleProcess(pid)?.rssBytes ?? 0;
    const pssBytes = sampleProportionalBytes(pid) ?? 0;
    memory.rssBytes += rssBytes;
    memory.pssBytes += pssBytes;
    memory.byProcess[name] = { rssBytes, pssBytes };
  }
  return memory;
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
  /** Highest summed proportional set size (shared pages counted once), sampled every `pssIntervalMs`. */
  peakPssBytes: number;
  /** Each named process's own highest RSS and PSS during the run. */
  memoryByProcess: Record<string, { peakRssBytes: number; peakPssBytes: number }>;
}

/** The memory part of a run's usage. */
export type MemoryPeaks = Pick<GroupUsage, 'peakRssBytes' | 'peakPssBytes' | 'memoryByProcess'>;

/**
 * Measures a set of processes over a load run: CPU as the delta of utime+stime, summed; memory
 * as the peak of the summed RSS, sampled every `intervalMs` while the run lasts.
 */
export class ProcessGroupMeter {
  private readonly start = new Map<number, number>();
  private peakRss = 0;
  private peakPss = 0;
  private readonly peakRssByPid = new Map<number, number>();
  private readonly peakPssByPid = new Map<number, number>();
  private lastPssAt = 0;
  private timer: NodeJS.Timeout | undefined;

  /**
   * `pssIntervalMs` is longer than `intervalMs`: the kernel walks a process's page tables to
   * answer smaps_rollup, which would otherwise cost the measured processes time.
   */
  constructor(
    private readonly processes: ReadonlyArray<{ name: string; pid: number }>,
    private readonly intervalMs = 100,
    private readonly pssIntervalMs = 1_000,
  ) {}

  begin(): void {
    for (const { pid } of this.processes) this.start.set(pid, sampleProcess(pid)?.cpuMs ?? 0);
    this.peakRss = 0;
    this.peakPss = 0;
    this.peakRssByPid.clear();
    this.peakPssByPid.clear();
    this.lastPssAt = 0;
    this.sampleMemory();
    this.timer = setInterval(() => this.sampleMemory(), this.intervalMs);
    this.timer.unref();
  }

  end(): GroupUsage {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.lastPssAt = 0;
    this.sampleMemory();
    let cpuMs = 0;
    let hwmBytes = 0;
    const cpuMsByProcess: Record<string, number> = {};
    const memoryByProcess: GroupUsage['memoryByProcess'] = {};
    for (const { name, pid } of this.processes) {
      memoryByProcess[name] = { peakRssBytes: this.peakRssByPid.get(pid) ?? 0, peakPssBytes: this.peakPssByPid.get(pid) ?? 0 };
      const sample = sampleProcess(pid);
      if (!sample) continue;
      const used = sample.cpuMs - (this.start.get(pid) ?? 0);
      cpuMs += used;
      cpuMsByProcess[name] = (cpuMsByProcess[name] ?? 0) + used;
      hwmBytes += sample.hwmBytes;
    }
    return { cpuMs, cpuMsByProcess, peakRssBytes: this.peakRss, hwmBytes, peakPssBytes: this.peakPss, memoryByProcess };
  }

  /** Summed RSS now (every call), PSS at most every `pssIntervalMs`; each kept as a peak. */
  private sampleMemory(): void {
    let sum = 0;
    for (const { pid } of this.processes) {
      const rss = sampleProcess(pid)?.rssBytes ?? 0;
      sum += rss;
      if (rss > (this.peakRssByPid.get(pid) ?? 0)) this.peakRssByPid.set(pid, rss);
    }
    if (sum > this.peakRss) this.peakRss = sum;
    const now = Date.now();
    if (now - this.lastPssAt < this.pssIntervalMs) return;
    this.lastPssAt = now;
    let pssSum = 0;
    for (const { pid } of this.processes) {
      const pss = sampleProportionalBytes(pid) ?? 0;
      pssSum += pss;
      if (pss > (this.peakPssByPid.get(pid) ?? 0)) this.peakPssByPid.set(pid, pss);
    }
    if (pssSum > this.peakPss) this.peakPss = pssSum;
  }
}
