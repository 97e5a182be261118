import { redactHeaders, RequestLog } from './request-log';

describe('request log', () => {
  it('never keeps credential values', () => {
    expect(redactHeaders({ Authorization: 'Bearer sk-secret', 'X-Api-Key': 'k', 'content-type': 'application/json', 'x-multi': ['a', 'b'] })).toEqual({
      authorization: 'present',
      'x-api-key': 'present',
      'content-type': 'application/json',
      'x-multi': 'a, b',
    });
    expect(redactHeaders({}).authorization).toBe('absent');
  });

  it('records a request through its lifecycle and settles only once', () => {
    const log = new RequestLog();
    const entry = log.open('/v1/chat/completions', {});
    log.update(entry, { model: 'gpt-4o', stream: true, body: { a: 1 } });
    log.settle(entry, 'aborted');
    log.settle(entry, 'completed');
    const [observed] = log.list();
    expect(observed).toMatchObject({ id: 1, path: '/v1/chat/completions', model: 'gpt-4o', stream: true, outcome: 'aborted' });
    expect(observed?.endedAt).toBeGreaterThanOrEqual(observed?.receivedAt ?? Infinity);
  });

  it('hands out snapshots, not live entries', () => {
    const log = new RequestLog();
    log.open('/v1/models', {});
    const [snapshot] = log.list();
    if (snapshot) snapshot.outcome = 'dropped';
    expect(log.list()[0]?.outcome).toBe('pending');
  });

  it('resolves waiters from existing entries and from later state changes', async () => {
    const log = new RequestLog();
    const first = log.open('/a', {});
    await expect(log.waitFor((r) => r.path === '/a', 100)).resolves.toMatchObject({ id: first.id });

    const waiting = log.waitFor((r) => r.outcome === 'completed', 1000);
    const second = log.open('/b', {});
    log.settle(second, 'completed');
    await expect(waiting).resolves.toMatchObject({ path: '/b', outcome: 'completed' });
  });

  it('rejects a waiter on timeout or when its predicate throws', async () => {
    jest.useFakeTimers();
    try {
      const log = new RequestLog();
      const waiting = log.waitFor(() => false, 50);
      jest.advanceTimersByTime(50);
      await expect(waiting).rejects.toThrow(/within 50 ms/);
    } finally {
      jest.useRealTimers();
    }
    const log = new RequestLog();
    log.open('/x', {});
    await expect(
      log.waitFor(() => {
        throw new Error('boom');
      }, 100),
    ).rejects.toThrow('boom');
  });

  it('keeps only the newest entries beyond its limit and clears on demand', () => {
    const log = new RequestLog(2);
    for (const path of ['/1', '/2', '/3']) log.open(path, {});
    expect(log.list().map((r) => r.path)).toEqual(['/2', '/3']);
    log.clear();
    expect(log.list()).toEqual([]);
    expect(log.open('/4', {}).id).toBe(4);
  });
});
