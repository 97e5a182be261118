/** A service's `/ready` answer: the status and its checks (with their details, where a check gives them). */
export interface ReadyAnswer {
  status: number;
  body: { status?: string; checks: Record<string, string>; details?: Record<string, Record<string, unknown>> };
}

/** GET `/ready` on a service's HTTP port of loopback; undefined while nothing answers there. */
export async function readyAnswer(port: number): Promise<ReadyAnswer | undefined> {
  const response = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
  return response ? { status: response.status, body: (await response.json()) as ReadyAnswer['body'] } : undefined;
}

/** A service's `/ready` status and checks, without their details; undefined while nothing answers. */
export async function readyChecks(port: number): Promise<{ status: number; checks: Record<string, string> } | undefined> {
  const answer = await readyAnswer(port);
  return answer && { status: answer.status, checks: answer.body.checks };
}
