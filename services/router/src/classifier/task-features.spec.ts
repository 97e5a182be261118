import { MAX_CHARS, TASK_CUES, taskFeatures } from './task-features';

describe('task features', () => {
  it('reads at most MAX_CHARS of a system prompt, for its cues as for its words', () => {
    // The shape that made cue matching quadratic: a 300 KB one-line system prompt of "how many ".
    const system = `You are a careful assistant. ${'how many '.repeat(35_000)} Translate every answer into French.`;
    expect(system.length).toBeGreaterThan(300_000);
    expect(taskFeatures(system, 'hi')).toEqual(taskFeatures(system.slice(0, MAX_CHARS), 'hi'));
    expect(taskFeatures(system, 'hi')).not.toContain('#sys-cue:translation');
  });

  it('has no unbounded gap in a task cue, so a cue costs time linear in the text read', () => {
    const unbounded = /\.[*+]|\[\^[^\]]*\][*+]/;
    expect(TASK_CUES.filter(([, cue]) => unbounded.test(cue.source)).map(([task]) => task)).toEqual([]);
    expect(TASK_CUES.find(([task]) => task === 'reasoning')?.[1].test('how many legs does a spider have')).toBe(true);
  });
});
