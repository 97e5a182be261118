import { EventLogConflict, streamProgress, type ResponseEventLog } from './response-event-log';
import { newTestResponseId } from './response-store.cases.testing';

/**
 * The cases every {@link ResponseEventLog} passes, run against each: the memory one (a unit spec)
 * and Redis (an integration spec). `log()` gives a fresh, empty log for each case.
 */
export interface ResponseEventLogHarness {
  log(): ResponseEventLog;
}

const TOMORROW_MS = Date.now() + 86_400_000;

/** A delta event of a streamed response, numbered as its run numbered it (the log renumbers it). */
export const delta = (text: string, sequence = 99): Record<string, unknown> => ({ type: 'response.output_text.delta', sequence_number: sequence, item_id: 'msg_1', output_index: 0, content_index: 0, delta: text, logprobs: [] });

/** Until `check` holds, re-checked whenever `changed` is called (a watcher's listener), at most 5 s. */
export function whenCalled(check: () => boolean): { changed: () => void; done: Promise<void> } {
  let changed = (): void => undefined;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the listener was not called in 5 s')), 5_000);
    changed = () => {
      if (!check()) return;
      clearTimeout(timer);
      resolve();
    };
  });
  return { changed: () => changed(), done };
}

export function describeResponseEventLog(name: string, harness: ResponseEventLogHarness): void {
  describe(name, () => {
    let log: ResponseEventLog;
    beforeEach(() => {
      log = harness.log();
    });
    afterEach(async () => log.close());

    it('numbers the events it appends from 0, whatever numbers they came with, and reads them back in order, all, after a number, or a page', async () => {
      const id = newTestResponseId();
      expect(await log.length(id)).toBe(0);
      expect(await log.read(id, -1, 10)).toEqual([]);
      expect(await log.append(id, 0, [{ type: 'response.created', sequence_number: 7, response: { id, status: 'queued' } }, { type: 'response.queued', response: { id, status: 'queued' } }], TOMORROW_MS)).toBe(2);
      expect(await log.append(id, 2, [delta('Hel', 0), delta('lo', 1), delta('!', 2)], TOMORROW_MS)).toBe(5);
      expect(await log.length(id)).toBe(5);

      const all = await log.read(id, -1, 100);
      expect(all.map((event) => [event.sequence_number, event.type])).toEqual([
        [0, 'response.created'],
        [1, 'response.queued'],
        [2, 'response.output_text.delta'],
        [3, 'response.output_text.delta'],
        [4, 'response.output_text.delta'],
      ]);
      expect(all[0]).toEqual({ type: 'response.created', sequence_number: 0, response: { id, status: 'queued' } });
      expect(all.slice(2).map((event) => event['delta'])).toEqual(['Hel', 'lo', '!']);
      expect((await log.read(id, 2, 100)).map((event) => event.sequence_number)).toEqual([3, 4]);
      expect((await log.read(id, 0, 2)).map((event) => event.sequence_number)).toEqual([1, 2]);
      expect(await log.read(id, 4, 100)).toEqual([]);
      expect(await log.read(id, 40, 100)).toEqual([]);
    });

    it('refuses an append that does not start where the log ends (another writer came first): nothing of it is added', async () => {
      const id = newTestResponseId();
      await log.append(id, 0, [delta('a'), delta('b')], TOMORROW_MS);
      await expect(log.append(id, 1, [delta('late')], TOMORROW_MS)).rejects.toBeInstanceOf(EventLogConflict);
      await expect(log.append(id, 3, [delta('ahead')], TOMORROW_MS)).rejects.toBeInstanceOf(EventLogConflict);
      await expect(log.append(newTestResponseId(), 1, [delta('none yet')], TOMORROW_MS)).rejects.toBeInstanceOf(EventLogConflict);
      expect((await log.read(id, -1, 10)).map((event) => event['delta'])).toEqual(['a', 'b']);
      expect(await log.append(id, 2, [delta('c')], TOMORROW_MS)).toBe(3);
    });

    it('tells how far a stream has gone: none, its length, and whether its last event ends it', async () => {
      const id = newTestResponseId();
      expect(await streamProgress(log, id)).toBeUndefined();
      await log.append(id, 0, [{ type: 'response.created', response: { id } }, delta('Hi')], TOMORROW_MS);
      expect(await streamProgress(log, id)).toEqual({ length: 2, ended: false });
      await log.append(id, 2, [{ type: 'response.incomplete', response: { id } }], TOMORROW_MS);
      expect(await streamProgress(log, id)).toEqual({ length: 3, ended: true });
    });

    it('keeps each response apart, and deletes one whole', async () => {
      const [a, b] = [newTestResponseId(), newTestResponseId()];
      await log.append(a, 0, [delta('for a')], TOMORROW_MS);
      await log.append(b, 0, [delta('for b'), delta('again')], TOMORROW_MS);
      expect((await log.read(a, -1, 10)).map((event) => event['delta'])).toEqual(['for a']);
      await log.delete(b);
      expect(await log.length(b)).toBe(0);
      expect(await log.read(b, -1, 10)).toEqual([]);
      expect(await log.length(a)).toBe(1);
      // A deleted log starts again from 0.
      expect(await log.append(b, 0, [delta('anew')], TOMORROW_MS)).toBe(1);
    });

    it('tells a watcher of the events appended to its response, until it stops watching', async () => {
      const id = newTestResponseId();
      // Told when the event is there to read (at once, or by the next look).
      let length = 0;
      const told = whenCalled(() => length === 1);
      const stop = log.watch(id, () => {
        void log.length(id).then((n) => {
          length = n;
          told.changed();
        });
      });
      await log.append(id, 0, [delta('x')], TOMORROW_MS);
      await told.done;
      stop();
      // Stopped: later appends go on without it.
      expect(await log.append(id, 1, [delta('y')], TOMORROW_MS)).toBe(2);
    });
  });
}
