import { Coalesced } from './coalesced';

describe('Coalesced', () => {
  it('runs once at a time; calls during a run share the next one, which sees what changed meanwhile', async () => {
    let version = 0;
    let runs = 0;
    const answers: Array<() => void> = [];
    const load = new Coalesced(async () => {
      runs++;
      const seen = version;
      await new Promise<void>((answer) => answers.push(answer));
      return seen;
    });
    const first = load.run();
    version = 1;
    const later = Array.from({ length: 20 }, () => load.run());
    expect(runs).toBe(1);
    answers.shift()?.();
    expect(await first).toBe(0);
    await new Promise((done) => setImmediate(done));
    expect(runs).toBe(2);
    answers.shift()?.();
    expect(new Set(await Promise.all(later))).toEqual(new Set([1]));
    expect(runs).toBe(2);
    await load.idle();
  });

  it('runs the next one after a run that failed', async () => {
    let runs = 0;
    let release: () => void = () => undefined;
    const work = new Coalesced(async () => {
      runs++;
      if (runs === 1) {
        await new Promise<void>((resolve) => (release = resolve));
        throw new Error('down');
      }
      return runs;
    });
    const failing = work.run();
    const next = work.run();
    release();
    await expect(failing).rejects.toThrow('down');
    await expect(next).resolves.toBe(2);
    await work.idle();
  });
});
