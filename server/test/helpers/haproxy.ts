/**
 * A real HAProxy in front of test backends (gateways, or tiny HTTP servers), started from the
 * config we ship to users: deploy/haproxy.cfg. Cluster-mode tests use it to check what a client
 * sees through a load balancer with no stickiness: requests spread over the nodes, a node that
 * dies or stops being ready (/readyz 503) stops getting traffic, and clients resume elsewhere.
 *
 * Why render the shipped file instead of writing a test config: the example is then tested. Only
 * what must differ is replaced (`renderConfig`): the frontend and stats `bind` addresses (free
 * ports on 127.0.0.1) and the backend's `server` lines. A change to deploy/haproxy.cfg that this
 * cannot map (a renamed section, a second bind) fails loudly rather than drifting.
 *
 * Invariants:
 * - Ready means: the frontend port accepts connections, every backend has had at least one
 *   health check (HAProxy starts servers optimistically UP, check status INI, until then), and at
 *   least `waitForUp` of them are UP.
 * - States come from the stats page's CSV (a second free port), never from timing.
 * - HAProxy runs in the foreground (-db), owned by processes.ts, and is stopped by its PID.
 *
 * To extend: a new knob belongs in deploy/haproxy.cfg first (with a comment for users); add a
 * replacement to `renderConfig` only for what cannot be the same in a test (addresses, paths).
 */
import { createConnection } from 'node:net';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { freePort, renderHaproxyConfig as renderConfig } from '../../src/testing.js';

export { renderConfig };
import { notYet, pollUntil } from './poll.js';
import { isRunning, ownedTempDir, removeOwnedDir, spawnOwned, stopProcess, tail } from './processes.js';

export const HAPROXY = '/usr/sbin/haproxy';
/** deploy/haproxy.cfg, from server/dist/test/helpers/ (compiled) or server/test/helpers/. */
export const DEPLOY_CONFIG = fileURLToPath(new URL('../../../../deploy/haproxy.cfg', import.meta.url));

const HOST = '127.0.0.1';

export interface HaproxyOptions {
  /** Backends that must be UP before `startHaproxy` resolves (default 1; 0 waits for the checks only). */
  waitForUp?: number;
  /** Bound on the start (default 10 s). */
  readyTimeoutMs?: number;
}

export interface BackendState {
  /** `node1`, `node2`, … in the order the backends were given. */
  name: string;
  /** HAProxy's status: 'UP', 'DOWN', 'UP 1/2' (going down), 'DOWN 1/2' (going up), 'MAINT', … */
  status: string;
  /** Last health check: 'L7OK', 'L7STS' (bad status), 'L4CON' (refused), 'INI' (none yet), … */
  check: string;
}

export interface Haproxy {
  readonly port: number;
  /** http://127.0.0.1:<port> — what clients use. */
  readonly url: string;
  /** The stats page; `${statsUrl}/;csv` is what `backends()` reads. */
  readonly statsUrl: string;
  readonly pid: number;
  readonly dir: string;
  /** The rendered config HAProxy runs with. */
  readonly configFile: string;
  backends(): Promise<BackendState[]>;
  /** Backends HAProxy routes new traffic to: UP (incl. going down) after at least one check. */
  backendsUp(): Promise<number>;
  /** Polls until exactly `n` backends are up, e.g. after killing one. */
  waitForBackendsUp(n: number, timeoutMs?: number): Promise<void>;
  logTail(lines?: number): string;
  /** SIGTERM (a hard stop for HAProxy), then the dir is removed. Idempotent. */
  stop(): Promise<void>;
}

/**
 * `template` with the frontend and stats bound to 127.0.0.1 on the given ports and the backend's
 * servers replaced by `backends` (named node1…); throws if the template does not have exactly
 * the `frontend sluice` and `listen stats` binds and the `backend gateways` this expects.
 */

export async function startHaproxy(backends: { port: number }[], opts: HaproxyOptions = {}): Promise<Haproxy> {
  if (backends.length === 0) throw new Error('startHaproxy needs at least one backend');
  const template = readFileSync(DEPLOY_CONFIG, 'utf8');
  const dir = ownedTempDir('sluice-haproxy-');
  const configFile = join(dir, 'haproxy.cfg');
  const logFile = join(dir, 'haproxy.log');
  const timeoutMs = opts.readyTimeoutMs ?? 10_000;
  const waitForUp = Math.min(opts.waitForUp ?? 1, backends.length);
  try {
    // Free ports are free only until someone binds them: a lost race is retried on new ones.
    for (let attempt = 1; ; attempt++) {
      const ports = { port: await freePort(), statsPort: await freePort() };
      writeFileSync(configFile, renderConfig(template, ports, backends));
      const logFrom = existsSync(logFile) ? statSync(logFile).size : 0;
      const proc = spawnOwned(HAPROXY, ['-f', configFile, '-db'], logFile);
      const lb = new Lb(proc, ports.port, ports.statsPort, dir, configFile, logFile);
      try {
        await lb.waitReady(waitForUp, timeoutMs);
        return lb;
      } catch (err) {
        await stopProcess(proc, 'SIGKILL');
        const clash = readFileSync(logFile, 'utf8').slice(logFrom).includes('Address already in use');
        if (!clash || attempt === 3) throw err;
      }
    }
  } catch (err) {
    removeOwnedDir(dir);
    throw err;
  }
}

class Lb implements Haproxy {
  readonly url: string;
  readonly statsUrl: string;

  constructor(
    private readonly proc: ChildProcess,
    readonly port: number,
    statsPort: number,
    readonly dir: string,
    readonly configFile: string,
    private readonly logFile: string,
  ) {
    this.url = `http://${HOST}:${port}`;
    this.statsUrl = `http://${HOST}:${statsPort}`;
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  async backends(): Promise<BackendState[]> {
    const res = await fetch(`${this.statsUrl}/;csv`, { signal: AbortSignal.timeout(2_000) });
    if (res.status !== 200) throw new Error(`stats page answered ${res.status}`);
    const [header = '', ...rows] = (await res.text()).trim().split('\n');
    const cols = header.replace(/^# /, '').split(',');
    const at = (name: string) => cols.indexOf(name);
    return rows
      .map((r) => r.split(','))
      .filter((r) => r[at('pxname')] === 'gateways' && r[at('svname')] !== 'BACKEND')
      .map((r) => ({ name: r[at('svname')] ?? '', status: r[at('status')] ?? '', check: (r[at('check_status')] ?? '').replace(/^\* /, '') }));
  }

  async backendsUp(): Promise<number> {
    return (await this.backends()).filter(routable).length;
  }

  async waitForBackendsUp(n: number, timeoutMs = 10_000): Promise<void> {
    await pollUntil(`${n} backend(s) UP behind ${this.url}`, async () => {
      const states = await this.backends();
      if (states.filter(routable).length !== n) notYet(states.map((b) => `${b.name} ${b.status} ${b.check}`).join(', '));
    }, { timeoutMs, intervalMs: 50, context: () => this.logTail() });
  }

  async waitReady(waitForUp: number, timeoutMs: number): Promise<void> {
    await pollUntil(`haproxy on ${this.url} accepting, checks done, ${waitForUp} backend(s) UP`, async () => {
      await accepts(this.port);
      const states = await this.backends();
      if (states.some((b) => b.check === 'INI') || states.filter(routable).length < waitForUp) notYet(states.map((b) => `${b.name} ${b.status} ${b.check}`).join(', '));
    }, {
      timeoutMs,
      intervalMs: 20,
      abort: () => (isRunning(this.proc) ? undefined : `haproxy exited (${this.proc.exitCode ?? this.proc.signalCode})`),
      context: () => this.logTail(),
    });
  }

  logTail(lines = 30): string {
    return tail(this.logFile, lines);
  }

  async stop(): Promise<void> {
    await stopProcess(this.proc, 'SIGTERM');
    removeOwnedDir(this.dir);
  }
}

/** UP or going down (both still get new traffic), and known from a check, not assumed. */
function routable(b: BackendState): boolean {
  return /^UP\b/.test(b.status) && b.check !== 'INI';
}

/** Resolves once a TCP connection to the port succeeds (and closes it). */
function accepts(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(port, HOST);
    sock.setTimeout(1_000, () => sock.destroy(new Error(`connect to :${port} timed out`)));
    sock.once('connect', () => {
      sock.destroy();
      resolve();
    });
    sock.once('error', (err) => reject(new Error(`connect to :${port}: ${err.message}`)));
  });
}
