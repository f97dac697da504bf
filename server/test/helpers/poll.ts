/**
 * `pollUntil`: wait for a condition on an external process (a port answers, a cluster converged, a
 * sentinel switched master) by asking it again and again until a deadline — never a fixed sleep.
 *
 * Why not `waitFor` from http.ts: these conditions are asked over the network and can fail in
 * many ways before they hold (connection refused, LOADING, a half-formed cluster), and when the
 * deadline passes the useful thing to report is the last such answer, plus the process's log.
 *
 * The contract of a probe: return a value when the condition holds; throw (usually `notYet`)
 * when it does not, with a message saying what was seen. A probe that hangs is cut off at the
 * deadline. To extend: write new probes next to the helper that needs them, not here.
 */

export interface PollOptions {
  timeoutMs: number;
  /** Pause between probes (default 20 ms): short, because most conditions hold within ms. */
  intervalMs?: number;
  /** Checked before each probe: a reason to give up at once (e.g. "the process exited"). */
  abort?: () => string | undefined;
  /** Appended to the timeout error, e.g. the tail of a log file. */
  context?: () => string;
}

/** Thrown by a probe whose condition does not hold yet; its message says what it saw instead. */
export class NotYet extends Error {
  override name = 'NotYet';
}

export function notYet(what: string): never {
  throw new NotYet(what);
}

export async function pollUntil<T>(what: string, probe: () => Promise<T>, opts: PollOptions): Promise<T> {
  const started = Date.now();
  const deadline = started + opts.timeoutMs;
  let last = 'no answer yet';
  const fail = (why: string): Error => {
    const ctx = opts.context?.();
    return new Error(`${what}: ${why} (after ${Date.now() - started} ms); last: ${last}${ctx ? `\n--- log tail ---\n${ctx}` : ''}`);
  };
  for (;;) {
    const aborted = opts.abort?.();
    if (aborted) throw fail(aborted);
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw fail(`timed out after ${opts.timeoutMs} ms`);
    let timer: NodeJS.Timeout | undefined;
    const cutOff = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NotYet('probe still running at the deadline')), remaining);
    });
    try {
      return await Promise.race([probe(), cutOff]);
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    } finally {
      clearTimeout(timer);
    }
    await new Promise((r) => setTimeout(r, Math.min(opts.intervalMs ?? 20, Math.max(0, deadline - Date.now()))));
  }
}
