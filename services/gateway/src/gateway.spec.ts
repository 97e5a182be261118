import { closingInReverse } from './gateway';

describe('closingInReverse', () => {
  /** Handles that note the order they are closed in. */
  function handles(names: string[], closed: string[]): Array<{ close(): Promise<void> }> {
    return names.map((name) => ({
      close: async () => {
        closed.push(name);
      },
    }));
  }

  it('closes the last started first, and only once however often it is called', async () => {
    const closed: string[] = [];
    const started = handles(['adapter', 'router', 'billing', 'ingress'], closed);
    const close = closingInReverse(started);
    const first = close();
    const second = close();
    expect(second).toBe(first);
    await Promise.all([first, second]);
    await close();
    expect(closed).toEqual(['ingress', 'billing', 'router', 'adapter']);
  });

  it('closes what was started by the time it is called, leaving the list as it was', async () => {
    const closed: string[] = [];
    const started = handles(['adapter', 'router'], closed);
    const inStartOrder = [...started];
    await closingInReverse(started)();
    expect(closed).toEqual(['router', 'adapter']);
    expect(started).toEqual(inStartOrder);
    expect(started[0]).toBe(inStartOrder[0]);
  });

  it('still closes the rest when one close fails, then reports the failure', async () => {
    const closed: string[] = [];
    const [bus, billing] = handles(['bus', 'billing'], closed);
    const failure = new Error('alerting could not close');
    const alerting = {
      close: async () => {
        closed.push('alerting');
        throw failure;
      },
    };
    // The usage bus closes after a failing alerting: what it holds still reaches billing or its outbox.
    await expect(closingInReverse([billing!, bus!, alerting])()).rejects.toBe(failure);
    expect(closed).toEqual(['alerting', 'bus', 'billing']);
  });
});
