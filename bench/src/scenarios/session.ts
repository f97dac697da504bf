/**
 * What every scenario shares: the run context, and `withTarget`, which starts a target's server,
 * runs a measurement against it, and always stops it, turning "not available" into an `na` cell
 * and a server that dies mid-run into an `error` cell with its last output (a crash of the Sluice
 * gateway is a bug to report, never a figure).
 */
import type { Profile } from '../options.js';
import type { Cell, Results } from '../report/results.js';
import { NotAvailable, type RunningTarget, type StartOptions, type Target } from '../targets/target.js';
import { StalledError } from './measure.js';

export interface Context {
  profile: Profile;
  targets: Target[];
  results: Results;
  /** Directory for the gateway's CPU profiles (`--profile`), if asked for. */
  profileDir: string | undefined;
  log(line: string): void;
}

export class ServerDied extends Error {
  override name = 'ServerDied';
}

/**
 * Runs `measure` on a fresh server of `target`. A measurement whose delivery stalled is recorded
 * as a note and retried on another fresh server (a stalled subscription never recovers on its
 * server), up to RETRIES times; a stall on the last attempt becomes the cell's error.
 */
export async function withTarget<T>(
  ctx: Context,
  target: Target,
  opts: StartOptions,
  measure: (t: RunningTarget) => Promise<T>,
  what = '',
): Promise<Cell<T>> {
  if (ctx.profileDir) {
    const name = `${target.id}-${(what || 'run').replace(/[^A-Za-z0-9]+/g, '-')}.cpuprofile`;
    opts = { ...opts, profileDir: ctx.profileDir, profileName: name };
  }
  for (let attempt = 0; ; attempt++) {
    const cell = await once(ctx, target, opts, measure);
    if (!isStalled(cell)) return cell;
    const retry = attempt < RETRIES;
    ctx.results.notes.push(`${target.label}${what ? ` (${what})` : ''}: ${cell.stalled}${retry ? '; retried on a fresh server' : ''}`);
    if (!retry) return { error: cell.stalled };
    ctx.log(`  ${target.label}: ${cell.stalled} — retrying on a fresh server`);
  }
}

/** How often a stalled measurement is retried on a fresh server. */
const RETRIES = 2;

function isStalled<T>(c: Cell<T> | { stalled: string }): c is { stalled: string } {
  return typeof c === 'object' && c !== null && 'stalled' in c;
}

async function once<T>(
  ctx: Context,
  target: Target,
  opts: StartOptions,
  measure: (t: RunningTarget) => Promise<T>,
): Promise<Cell<T> | { stalled: string }> {
  const why = target.unavailable();
  if (why) return { na: why };
  let running: RunningTarget;
  try {
    running = await target.start(opts);
  } catch (err) {
    if (err instanceof NotAvailable) return { na: err.message };
    ctx.log(`  ${target.label}: failed to start: ${(err as Error).message}`);
    return { error: `failed to start: ${(err as Error).message.split('\n')[0]}` };
  }
  let died: ((code: number | null) => void) | undefined;
  const death = new Promise<never>((_, reject) => {
    died = (code) => reject(new ServerDied(`${target.label} server exited (${code}) during the run; last output:\n${running.output().slice(-1500)}`));
  });
  death.catch(() => undefined);
  void running.exited.then((code) => died?.(code));
  try {
    return await Promise.race([measure(running), death]);
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof StalledError) return { stalled: message };
    ctx.log(`  ${target.label}: ${message}`);
    return { error: message.split('\n')[0]! };
  } finally {
    died = undefined;
    await running.stop();
    // Debug knob: BENCH_SERVER_OUTPUT=1 prints each server's output when it stops.
    if (process.env.BENCH_SERVER_OUTPUT) ctx.log(`  --- ${target.label} server output ---\n${running.output().slice(-4000)}`);
  }
}
