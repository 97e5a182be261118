import { sendIdempotent } from './idempotent-write';

describe('sendIdempotent', () => {
  it('sends again after each delay while the write fails, and answers what the first taken try answered', async () => {
    let tries = 0;
    const taken = await sendIdempotent(async () => {
      tries++;
      if (tries < 3) throw new Error(`timeout ${tries}`);
      return `taken at try ${tries}`;
    }, [1, 1, 1]);
    expect(taken).toBe('taken at try 3');
    expect(tries).toBe(3);
  });

  it('gives up after the last delay with the last failure: one try, then one a delay', async () => {
    let tries = 0;
    const send = async (): Promise<never> => {
      tries++;
      throw new Error(`down ${tries}`);
    };
    await expect(sendIdempotent(send, [1, 2])).rejects.toThrow('down 3');
    expect(tries).toBe(3);
  });

  it('tries once with no delays', async () => {
    let tries = 0;
    await expect(
      sendIdempotent(async () => {
        tries++;
        throw new Error('down');
      }, []),
    ).rejects.toThrow('down');
    expect(tries).toBe(1);
  });

  it('waits the delays given, in order, between tries', async () => {
    jest.useFakeTimers();
    try {
      const at: number[] = [];
      const start = Date.now();
      const sent = sendIdempotent(async () => {
        at.push(Date.now() - start);
        if (at.length < 4) throw new Error('down');
      }, [250, 1_000, 4_000]);
      await jest.advanceTimersByTimeAsync(5_250);
      await sent;
      expect(at).toEqual([0, 250, 1_250, 5_250]);
    } finally {
      jest.useRealTimers();
    }
  });
});
