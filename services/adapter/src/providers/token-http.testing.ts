import type { TokenHttp, TokenHttpRequest } from './access-token';

/** A token endpoint written by hand: records each request and answers with the next scripted reply. */
export class FakeTokenHttp implements TokenHttp {
  readonly requests: TokenHttpRequest[] = [];
  private readonly replies: Array<() => Promise<{ status: number; body: string }>> = [];

  reply(status: number, body: unknown): this {
    this.replies.push(() => Promise.resolve({ status, body: typeof body === 'string' ? body : JSON.stringify(body) }));
    return this;
  }

  /** The next reply waits until the returned function is called. */
  held(status: number, body: unknown): () => void {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    this.replies.push(async () => {
      await gate;
      return { status, body: JSON.stringify(body) };
    });
    return release;
  }

  unreachable(): this {
    this.replies.push(() => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:9')));
    return this;
  }

  request(request: TokenHttpRequest): Promise<{ status: number; body: string }> {
    this.requests.push(request);
    const next = this.replies.shift();
    if (next === undefined) throw new Error('no reply scripted');
    return next();
  }
}
