/**
 * Gateways for tests: in-process (`startGateway`) when a test needs the server's internals or
 * speed, and a real child process (`spawnGateway`) when it must be killed or restarted.
 * Both listen on 127.0.0.1 with a free port. To extend: pass more CLI flags / config fields.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultConfig, type Config } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';

export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export function tempDir(prefix = 'sluice-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startGateway(edit: (c: Config) => void = () => {}): Promise<RunningServer> {
  const c = defaultConfig();
  c.port = 0;
  c.store = 'memory';
  c.quiet = true;
  edit(c);
  return startServer(c);
}

export interface SpawnedGateway {
  url: string;
  port: number;
  proc: ChildProcess;
  /** stderr so far, for diagnostics. */
  stderr(): string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `sluice serve` as a child process and resolves once it printed its listening line. */
export function spawnGateway(args: string[], env: Record<string, string> = {}): Promise<SpawnedGateway> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--quiet', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /sluice listening on (http:\/\/[^\s]+):(\d+)/.exec(out);
      if (m) {
        proc.stdout!.off('data', onData);
        const port = Number(m[2]);
        resolve({
          url: `${m[1]}:${port}`,
          port,
          proc,
          stderr: () => err,
          kill: (signal = 'SIGKILL') => { proc.kill(signal); return exited; },
        });
      }
    };
    proc.stdout!.on('data', onData);
    void exited.then((code) => reject(new Error(`gateway exited (${code}) before listening: ${err}`)));
  });
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
