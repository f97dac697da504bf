/**
 * Starts a server program as a child process, pinned to the server core when `taskset` exists,
 * and resolves once it printed its ready line. Every target's server goes through here, so every
 * server gets the same core and the same cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { stop, track } from '../cleanup.js';
import { machine } from '../machine.js';

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The first capture group of the ready pattern (the port, for most servers). */
  readonly ready: string;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** Resolves with the exit code when the process ends by itself. */
  readonly exited: Promise<number | null>;
}

export interface LaunchOptions {
  env?: Record<string, string>;
  /** Matched against stdout and stderr; its first group becomes `ready`. */
  readyPattern: RegExp;
  timeoutMs?: number;
  /** Working directory (default: the bench's). */
  cwd?: string;
}

export function launch(command: string, args: string[], opts: LaunchOptions): Promise<ServerProcess> {
  const pinned = machine().taskset;
  const [cmd, argv] = pinned ? ['taskset', ['-c', String(machine().serverCpu), command, ...args]] : [command, args];
  const child = track(spawn(cmd, argv, {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop(child);
      reject(new Error(`${command} did not become ready within ${opts.timeoutMs ?? 15000} ms:\n${out.slice(-2000)}`));
    }, opts.timeoutMs ?? 15_000);
    let done = false;
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.length > 100_000) out = out.slice(-50_000);
      if (done) return;
      const m = opts.readyPattern.exec(out);
      if (!m) return;
      done = true;
      clearTimeout(timer);
      resolve({
        child,
        pid: child.pid!,
        ready: m[1] ?? '',
        output: () => out,
        stop: (graceMs?: number) => stop(child, graceMs),
        exited,
      });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new ExitedEarly(`${command} exited (${code}) before it was ready:\n${out.slice(-2000)}`, out));
    });
  });
}

/** The server ended before printing its ready line (e.g. it refused its configuration). */
export class ExitedEarly extends Error {
  override name = 'ExitedEarly';
  constructor(message: string, readonly output: string) {
    super(message);
  }
}
