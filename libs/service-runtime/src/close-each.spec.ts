import { closeEach } from './close-each';

describe('closeEach', () => {
  it('runs every step in order when some fail, then throws the failure', async () => {
    const ran: string[] = [];
    const failure = new Error('alerting would not stop');
    await expect(
      closeEach('the gateway', [
        () => ran.push('ingress'),
        () => {
          ran.push('alerting');
          throw failure;
        },
        async () => void ran.push('billing'),
      ]),
    ).rejects.toBe(failure);
    expect(ran).toEqual(['ingress', 'alerting', 'billing']);
  });

  it('throws every failure together when several steps fail, and nothing when none does', async () => {
    const failed = closeEach('ingress', [() => Promise.reject(new Error('a')), () => Promise.reject(new Error('b'))]);
    await expect(failed).rejects.toThrow('2 parts of ingress failed to close');
    await expect(failed.catch((e: AggregateError) => e.errors.map((x: Error) => x.message))).resolves.toEqual(['a', 'b']);
    await expect(closeEach('ingress', [() => undefined])).resolves.toBeUndefined();
  });
});
