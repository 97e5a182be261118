import type { BackgroundJob, BackgroundStore } from './background-store';
import { newTestResponseId } from './response-store.cases.testing';

/**
 * The cases every {@link BackgroundStore} passes, run against each: the memory one (a unit spec)
 * and Redis (an integration spec). `store()` gives a fresh, empty store for each case; `now` is the
 * clock it expires jobs by (Date.now when not given), so that the cases' expiries lie ahead of it.
 */
export interface BackgroundStoreHarness {
  store(): BackgroundStore;
  now?: () => number;
}

const DAY_MS = 86_400_000;
/** Room for every job a case creates. */
const ROOMY = 1_000;

/** A background response of `owner` to `prompt`, queued, as the gateway keeps it until it ends. */
export function backgroundJob(owner: string, prompt: string, changes: { id?: string; keyId?: string } = {}): BackgroundJob {
  const id = changes.id ?? newTestResponseId();
  const createdAt = Math.floor(Date.now() / 1000);
  const request = {
    model: 'gpt-4o-mini',
    input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: prompt }] }],
    instructions: 'Answer briefly.',
    metadata: { team: 'search', note: null },
    store: true,
  };
  return {
    record: {
      id,
      owner,
      createdAt,
      response: { id, object: 'response', created_at: createdAt, status: 'queued', background: true, model: 'gpt-4o-mini', store: true, output: [], usage: null, metadata: { team: 'search', note: null } },
      input: [{ id: `msg_in_${id}`, type: 'message', role: 'user', content: [{ type: 'input_text', text: prompt }] }],
      ancestors: [],
      conversationBytes: 120,
    },
    keyId: changes.keyId ?? 'search-1',
    request,
    headers: { 'x-openrouter-tags': 'team=search', 'x-openrouter-app': 'nightly-eval' },
  };
}

export function describeBackgroundStore(name: string, harness: BackgroundStoreHarness): void {
  describe(name, () => {
    let store: BackgroundStore;
    /** A day ahead of the store's clock: no case sees it pass. */
    let tomorrow: number;
    beforeEach(() => {
      store = harness.store();
      tomorrow = (harness.now ?? Date.now)() + DAY_MS;
    });
    afterEach(async () => {
      await store.close();
    });

    it('keeps a job as it was created, queued (text beyond ASCII, nulls, nesting), and hands out copies', async () => {
      const job = backgroundJob('acme/search', 'Où est la gare ? 🚉');
      const expected = structuredClone(job);
      expect(await store.create(job, tomorrow, ROOMY)).toBe(true);
      expect(await store.get('acme/search', job.record.id)).toEqual({ job: expected, state: 'queued' });
      // Changing the job given or one read back changes nothing kept.
      job.request['model'] = 'changed';
      job.headers['x-openrouter-app'] = 'changed';
      const read = await store.byId(job.record.id);
      if (read) read.job.record.response['status'] = 'failed';
      expect(await store.byId(job.record.id)).toEqual({ job: expected, state: 'queued' });
    });

    it('finds nothing under an id it never created: no job, no state, nothing to start, cancel or claim', async () => {
      expect(await store.get('acme/search', 'resp_unknown')).toBeUndefined();
      expect(await store.byId('resp_unknown')).toBeUndefined();
      expect(await store.state('resp_unknown')).toBeUndefined();
      expect(await store.start('resp_unknown')).toBeUndefined();
      expect(await store.cancel('resp_unknown')).toBeUndefined();
      expect(await store.claim('resp_unknown', 'replica-a', 60_000)).toBe(false);
      expect(await store.active(10)).toEqual([]);
      expect(await store.count()).toBe(0);
      // Finishing what is not there is no failure.
      await store.finish('resp_unknown');
    });

    it('says when the oldest pending job was queued: none, then the first, then the next once the first is finished', async () => {
      expect(await store.oldest()).toBeUndefined();
      const clock = harness.now ?? Date.now;
      const before = clock();
      const [a, b] = [backgroundJob('acme/search', 'a'), backgroundJob('acme/search', 'b')];
      await store.create(a, tomorrow, ROOMY);
      const between = clock();
      await store.create(b, tomorrow, ROOMY);
      const first = await store.oldest();
      expect(first).toBeGreaterThanOrEqual(before);
      expect(first).toBeLessThanOrEqual(between);
      await store.finish(a.record.id);
      expect(await store.oldest()).toBeGreaterThanOrEqual(between);
      await store.finish(b.record.id);
      expect(await store.oldest()).toBeUndefined();
    });

    it("shows a job to its owner only, while its runner (byId) reads it whoever owns it", async () => {
      const job = backgroundJob('acme/search', 'mine');
      await store.create(job, tomorrow, ROOMY);
      expect(await store.get('acme/ads', job.record.id)).toBeUndefined();
      expect(await store.byId(job.record.id)).toEqual({ job, state: 'queued' });
      expect(await store.get('acme/search', job.record.id)).toEqual({ job, state: 'queued' });
    });

    it('refuses a job, storing nothing of it, while maxPending are pending; one finished frees its place', async () => {
      const [a, b, c] = [backgroundJob('acme/search', 'a'), backgroundJob('acme/search', 'b'), backgroundJob('acme/ads', 'c')];
      expect(await store.create(a, tomorrow, 2)).toBe(true);
      expect(await store.create(b, tomorrow, 2)).toBe(true);
      // Whoever asks: the limit is the gateway's.
      expect(await store.create(c, tomorrow, 2)).toBe(false);
      expect(await store.byId(c.record.id)).toBeUndefined();
      expect(await store.state(c.record.id)).toBeUndefined();
      expect(await store.claim(c.record.id, 'replica-a', 60_000)).toBe(false);
      expect(await store.active(10)).toEqual([a.record.id, b.record.id]);
      expect(await store.count()).toBe(2);
      // A running or cancelling job still takes its place.
      await store.start(a.record.id);
      await store.cancel(b.record.id);
      expect(await store.create(c, tomorrow, 2)).toBe(false);
      await store.finish(a.record.id);
      expect(await store.create(c, tomorrow, 2)).toBe(true);
      expect(await store.active(10)).toEqual([b.record.id, c.record.id]);
      expect(await store.byId(c.record.id)).toEqual({ job: c, state: 'queued' });
      // No room at all: none is taken.
      expect(await store.create(backgroundJob('acme/search', 'none'), tomorrow, 0)).toBe(false);
    });

    it('lists the pending ids oldest first, at most as many as asked, and counts them', async () => {
      const jobs = Array.from({ length: 5 }, (_, i) => backgroundJob(i % 2 === 0 ? 'acme/search' : 'acme/ads', `job ${i}`));
      // Created one right after another, most within the same millisecond: still in their order.
      for (const job of jobs) await store.create(job, tomorrow, ROOMY);
      const ids = jobs.map((j) => j.record.id);
      expect(await store.active(10)).toEqual(ids);
      expect(await store.active(5)).toEqual(ids);
      expect(await store.active(2)).toEqual(ids.slice(0, 2));
      expect(await store.active(1)).toEqual(ids.slice(0, 1));
      expect(await store.active(0)).toEqual([]);
      expect(await store.count()).toBe(5);
      await store.finish(ids[1] ?? '');
      expect(await store.active(10)).toEqual([ids[0], ...ids.slice(2)]);
      expect(await store.count()).toBe(4);
    });

    it('lets one holder at a time claim a job: only the holder renews or releases it, and another claims it once released', async () => {
      const job = backgroundJob('acme/search', 'claimed');
      const id = job.record.id;
      await store.create(job, tomorrow, ROOMY);
      expect(await store.claim(id, 'replica-a', 60_000)).toBe(true);
      expect(await store.claim(id, 'replica-b', 60_000)).toBe(false);
      // The holder's own claim again: still its own.
      expect(await store.claim(id, 'replica-a', 60_000)).toBe(true);
      expect(await store.renew(id, 'replica-b', 60_000)).toBe(false);
      expect(await store.renew(id, 'replica-a', 60_000)).toBe(true);
      // Released by another holder: still replica-a's.
      await store.release(id, 'replica-b');
      expect(await store.claim(id, 'replica-b', 60_000)).toBe(false);
      await store.release(id, 'replica-a');
      expect(await store.renew(id, 'replica-a', 60_000)).toBe(false);
      expect(await store.claim(id, 'replica-b', 60_000)).toBe(true);
      expect(await store.claim(id, 'replica-a', 60_000)).toBe(false);
      // Claiming changes neither the job, nor its state, nor whether it is pending.
      expect(await store.byId(id)).toEqual({ job, state: 'queued' });
      expect(await store.active(10)).toEqual([id]);
    });

    it('starts a queued job once: in_progress, and starting it again leaves it in_progress', async () => {
      const job = backgroundJob('acme/search', 'started');
      const other = backgroundJob('acme/search', 'other');
      await store.create(job, tomorrow, ROOMY);
      await store.create(other, tomorrow, ROOMY);
      expect(await store.state(job.record.id)).toBe('queued');
      expect(await store.start(job.record.id)).toBe('in_progress');
      expect(await store.start(job.record.id)).toBe('in_progress');
      expect(await store.state(job.record.id)).toBe('in_progress');
      expect(await store.get('acme/search', job.record.id)).toEqual({ job, state: 'in_progress' });
      // The other job is untouched.
      expect(await store.state(other.record.id)).toBe('queued');
    });

    it('cancels a queued job and a running one: cancelling, which neither starting nor cancelling again changes', async () => {
      const queued = backgroundJob('acme/search', 'queued');
      const running = backgroundJob('acme/search', 'running');
      await store.create(queued, tomorrow, ROOMY);
      await store.create(running, tomorrow, ROOMY);
      await store.start(running.record.id);
      expect(await store.cancel(queued.record.id)).toBe('cancelling');
      expect(await store.cancel(running.record.id)).toBe('cancelling');
      expect(await store.start(queued.record.id)).toBe('cancelling');
      expect(await store.cancel(running.record.id)).toBe('cancelling');
      expect(await store.state(queued.record.id)).toBe('cancelling');
      expect(await store.byId(running.record.id)).toEqual({ job: running, state: 'cancelling' });
      // Still pending until its runner finishes it.
      expect(await store.active(10)).toEqual([queued.record.id, running.record.id]);
    });

    it('finishes a job: gone from get, byId, state and the pending ids, its claim with it; the others kept', async () => {
      const job = backgroundJob('acme/search', 'finished');
      const other = backgroundJob('acme/search', 'other');
      const id = job.record.id;
      await store.create(job, tomorrow, ROOMY);
      await store.create(other, tomorrow, ROOMY);
      await store.start(id);
      expect(await store.claim(id, 'replica-a', 60_000)).toBe(true);
      await store.finish(id);
      expect(await store.get('acme/search', id)).toBeUndefined();
      expect(await store.byId(id)).toBeUndefined();
      expect(await store.state(id)).toBeUndefined();
      expect(await store.active(10)).toEqual([other.record.id]);
      expect(await store.count()).toBe(1);
      // Its claim went with it: the holder cannot renew it, and no one claims it again.
      expect(await store.renew(id, 'replica-a', 60_000)).toBe(false);
      expect(await store.claim(id, 'replica-b', 60_000)).toBe(false);
      expect(await store.cancel(id)).toBeUndefined();
      expect(await store.start(id)).toBeUndefined();
      // Finishing it again is no failure.
      await store.finish(id);
      expect(await store.byId(other.record.id)).toEqual({ job: other, state: 'queued' });
    });

    it('never takes a pending id twice, whoever asks: the first job stays as it was', async () => {
      const job = backgroundJob('acme/search', 'one');
      await store.create(job, tomorrow, ROOMY);
      await store.start(job.record.id);
      await expect(store.create(backgroundJob('initech/ops', 'two', { id: job.record.id }), tomorrow, ROOMY)).rejects.toThrow(/exists already/);
      await expect(store.create(job, tomorrow, ROOMY)).rejects.toThrow(/exists already/);
      expect(await store.get('acme/search', job.record.id)).toEqual({ job, state: 'in_progress' });
      expect(await store.get('initech/ops', job.record.id)).toBeUndefined();
      expect(await store.active(10)).toEqual([job.record.id]);
      expect(await store.count()).toBe(1);
    });
  });
}
