/**
 * Ownership of the external processes (redis-server, HAProxy, …) and temp dirs that test helpers
 * start, so that none outlives the test file that started it.
 *
 * Why: a leaked redis-server keeps its port and eats one of the two cores every engineer shares,
 * and a test that dies half-way never reaches its own `stop()`. So every process a helper starts
 * goes through `spawnOwned` and every temp dir through `ownedTempDir`; both are registered here and
 * reaped (SIGKILL, then rm -rf) by a root-level `after()` hook, on normal exit, and on
 * SIGINT/SIGTERM/SIGHUP. `node --test` runs each test file in its own process, so "the registry"
 * is per test file.
 *
 * Exit hooks do not always run: node:test's own uncaught-exception handler rethrows, which ends
 * the process without an 'exit' event, and a SIGKILL runs nothing. So each child is also started
 * through `setpriv --pdeathsig KILL` (util-linux, always present on Debian): the kernel SIGKILLs it
 * when the test process dies, however it dies. Without setpriv, the hooks are all there is.
 *
 * Invariants:
 * - A process leaves the registry when it exits, whoever killed it; a dir when it is removed.
 * - Every wait here is bounded: `stopProcess` escalates to SIGKILL after its grace period and
 *   gives up (throws) if even that is not followed by an exit.
 * - Output never goes through a pipe to this process (a full pipe would stall the child): it is
 *   appended to a log file the caller names, which is also what error messages quote.
 *
 * Set SLUICE_KEEP_TMP=1 to keep temp dirs (logs, configs, data) for a post-mortem.
 *
 * To extend: start any new kind of process with `spawnOwned` and create its dir with
 * `ownedTempDir`; nothing else is needed for cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** `setpriv --pdeathsig KILL -- <command>` execs the command with a parent-death signal set. */
const SETPRIV = '/usr/bin/setpriv';
const lifeline = existsSync(SETPRIV) ? ['--pdeathsig', 'KILL', '--'] : undefined;

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
const keepDirs = process.env.SLUICE_KEEP_TMP === '1';

/** A fresh directory under the OS temp dir, removed by `removeOwnedDir` or when the file's tests end. */
export function ownedTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export function removeOwnedDir(dir: string): void {
  dirs.delete(dir);
  if (!keepDirs) rmSync(dir, { recursive: true, force: true });
}

/** Starts `command args`, appending its stdout and stderr to `logFile`, and registers it. */
export function spawnOwned(command: string, args: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    // setpriv execs the command in place: the PID is the command's own.
    const proc = lifeline
      ? spawn(SETPRIV, [...lifeline, command, ...args], { stdio: ['ignore', fd, fd] })
      : spawn(command, args, { stdio: ['ignore', fd, fd] });
    // spawn reports a missing binary asynchronously, as an 'error' event (and no 'exit').
    proc.once('error', () => live.delete(proc));
    if (proc.pid !== undefined) {
      live.add(proc);
      proc.once('exit', () => live.delete(proc));
    }
    return proc;
  } finally {
    closeSync(fd); // the child holds its own copy
  }
}

export function isRunning(proc: ChildProcess): boolean {
  return proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null;
}

/** Resolves when `proc` has exited (at once if it already has); rejects after `timeoutMs`. */
export function exitOf(proc: ChildProcess, timeoutMs: number): Promise<void> {
  if (!isRunning(proc)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.off('exit', onExit);
      reject(new Error(`pid ${proc.pid} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve();
    };
    proc.once('exit', onExit);
  });
}

/**
 * Sends `signal` and waits for the exit. A process still alive after `graceMs` gets SIGKILL; one
 * that survives even that for 5 s is an error (it cannot happen to a process we own, short of a
 * kernel hang, and pretending it stopped would leak it).
 */
export async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
  if (!isRunning(proc)) return;
  proc.kill(signal);
  if (signal === 'SIGKILL') return exitOf(proc, 5_000);
  try {
    await exitOf(proc, graceMs);
  } catch {
    proc.kill('SIGKILL');
    await exitOf(proc, 5_000);
  }
}

/** The last `lines` lines of a log file ('' if it does not exist), for error messages. */
export function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** Kills every process still registered and removes every registered dir. */
export async function reapAll(): Promise<void> {
  await Promise.all([...live].map((p) => stopProcess(p, 'SIGKILL').catch(() => undefined)));
  for (const dir of [...dirs]) removeOwnedDir(dir);
}

/** The synchronous form, for `exit` and signal handlers (no awaiting there). */
function reapNow(): void {
  for (const p of live) if (isRunning(p)) p.kill('SIGKILL');
  live.clear();
  for (const dir of [...dirs]) removeOwnedDir(dir);
}

// A root-level hook: this module is imported at load time of a test file, so `after` attaches to
// the file's root and runs once all of its tests have finished.
after(reapAll);
process.once('exit', reapNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    reapNow();
    process.kill(process.pid, signal); // the default action, now that our listener is gone
  });
}
