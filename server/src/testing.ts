/**
 * @sluice/server/testing — run a real gateway process from tests (yours and ours).
 *
 *   const gw = await spawnGateway({ store: 'disk', dataDir });
 *   ... gw.url ...
 *   await gw.kill('SIGKILL'); const again = await spawnGateway({ dataDir });
 *
 * It starts `sluice serve` on 127.0.0.1 with a free port, resolves once the gateway printed its
 * listening line, and reports how it exited. No sleeps: readiness is the listening line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Path of the `sluice` CLI script. */
export const CLI_PATH = fileURLToPath(new URL('./cli.js', import.meta.url));

export interface SpawnOptions {
  store?: 'disk' | 'memory' | 'redis';
  dataDir?: string;
  /** `--redis-url` (cluster mode, with `store: 'redis'`). */
  redisUrl?: string;
  /** Fixed port (default: a free one). Use the previous port to restart "the same" gateway. */
  port?: number;
  /** Extra `sluice serve` flags. */
  args?: string[];
  env?: Record<string, string>;
}

export interface GatewayProcess {
  url: string;
  port: number;
  proc: ChildProcess;
  /** Everything the gateway wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * A port that is free now. The gateway then binds it explicitly: on Linux, a port first bound as
 * port 0 cannot be bound again while connections to the killed process linger in TIME_WAIT,
 * whereas an explicitly bound one can (SO_REUSEADDR) — and tests restart gateways on their port.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a gateway and resolves once it listens. Without `options.port` it takes a free port, and
 * tries another (up to 3 in all) when one was taken between `freePort` and the gateway's bind.
 */
export async function spawnGateway(options: SpawnOptions = {}): Promise<GatewayProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGateway(options.port ?? (await freePort()), options);
    } catch (err) {
      if (options.port !== undefined || attempt === 3 || !/cannot listen on/.test((err as Error).message)) throw err;
    }
  }
}

async function startGateway(port: number, options: SpawnOptions): Promise<GatewayProcess> {
  const args = [CLI_PATH, 'serve', '--host', '127.0.0.1', '--port', String(port), '--quiet'];
  if (options.store) args.push('--store', options.store);
  if (options.dataDir) args.push('--data', options.dataDir);
  if (options.redisUrl) args.push('--redis-url', options.redisUrl);
  args.push(...(options.args ?? []));
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /sluice listening on (https?:\/\/[^\s"]+):(\d+)/.exec(out);
      if (!m) return;
      proc.stdout!.off('data', onData);
      proc.stdout!.resume();
      const port = Number(m[2]);
      resolve({
        url: `${m[1]}:${port}`,
        port,
        proc,
        stderr: () => err,
        exited,
        kill: (signal = 'SIGKILL') => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
          return exited;
        },
      });
    };
    proc.stdout!.on('data', onData);
    void exited.then((code) => reject(new Error(`gateway exited (${code}) before listening: ${err}`)));
  });
}

/**
 * The shipped load-balancer config (deploy/haproxy.cfg) for a test: its frontend bound to `port`,
 * its stats page to `statsPort`, and its servers replaced by `backends` — everything else exactly as
 * users get it, so tests run the config they ship.
 */
export function renderHaproxyConfig(template: string, ports: { port: number; statsPort: number }, backends: { port: number }[]): string {
  const out: string[] = [];
  const done = { frontend: 0, stats: 0, servers: 0 };
  let section = '';
  for (const line of template.split('\n')) {
    if (/^\S/.test(line) && !line.startsWith('#')) section = line.trim().split(/\s+/).slice(0, 2).join(' ');
    const keyword = line.trim().split(/\s+/)[0];
    if (section === 'frontend sluice' && keyword === 'bind') {
      out.push(`    bind 127.0.0.1:${ports.port}`);
      done.frontend++;
    } else if (section === 'listen stats' && keyword === 'bind') {
      out.push(`    bind 127.0.0.1:${ports.statsPort}`);
      done.stats++;
    } else if (section === 'backend gateways' && keyword === 'server') {
      if (done.servers++ === 0) backends.forEach((b, i) => out.push(`    server node${i + 1} 127.0.0.1:${b.port}`));
    } else {
      out.push(line);
    }
  }
  if (done.frontend !== 1 || done.stats !== 1 || done.servers === 0) {
    throw new Error(`haproxy template: expected one bind in 'frontend sluice', one in 'listen stats' and server lines in 'backend gateways'; found ${JSON.stringify(done)}`);
  }
  return out.join('\n');
}

/**
 * The shipped reverse-proxy config (deploy/nginx.conf) for a test: its TLS server listening on
 * 127.0.0.1:`tlsPort` with the test's certificate, its plain server on 127.0.0.1:`httpPort`, its
 * upstream pointing at `backend` — every other line exactly as users get it. The result goes inside
 * `http { }`, as the file does in /etc/nginx/conf.d/.
 */
export function renderNginxConfig(template: string, ports: { tlsPort: number; httpPort: number }, tls: { cert: string; key: string }, backend: { port: number }): string {
  const out: string[] = [];
  const done = { listen: 0, cert: 0, key: 0, upstream: 0 };
  let block = '';
  let servers = 0;
  let listened = false;
  for (const line of template.split('\n')) {
    const t = line.trim();
    if (/^(server|upstream \S+|map .*)\s*\{$/.test(t)) {
      block = t.split(/\s+/)[0]!;
      if (block === 'server') { servers++; listened = false; }
    }
    const keyword = t.split(/\s+/)[0];
    if (block === 'server' && keyword === 'listen') {
      if (!listened) out.push(servers === 1 ? `    listen 127.0.0.1:${ports.tlsPort} ssl;` : `    listen 127.0.0.1:${ports.httpPort};`);
      listened = true;
      done.listen++;
    } else if (block === 'server' && keyword === 'ssl_certificate') {
      out.push(`    ssl_certificate     ${tls.cert};`);
      done.cert++;
    } else if (block === 'server' && keyword === 'ssl_certificate_key') {
      out.push(`    ssl_certificate_key ${tls.key};`);
      done.key++;
    } else if (block === 'upstream' && keyword === 'server') {
      out.push(`    server 127.0.0.1:${backend.port};`);
      done.upstream++;
    } else {
      out.push(line);
    }
  }
  if (servers !== 2 || done.cert !== 1 || done.key !== 1 || done.upstream !== 1 || done.listen === 0) {
    throw new Error(`nginx template: expected two server blocks (TLS first), one certificate, one key and one upstream server; found ${JSON.stringify({ servers, ...done })}`);
  }
  return out.join('\n');
}
