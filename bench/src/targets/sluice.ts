/**
 * Sluice: the real gateway, started by its CLI (`sluice serve`) with the embedded disk store in a
 * temp directory and the default durability (acknowledged after the commit is synced).
 *
 * Two variants:
 * - "auth off" (dev mode), measured now;
 * - "auth on" (HOOK for the lead): the same gateway with SLUICE_AUTH_SECRET set and clients
 *   presenting an HS256 token (jwt.ts). While the gateway refuses to start with a secret, this
 *   variant reports "n/a (auth not built yet)". It runs in the fan-out and publish scenarios
 *   (AUTH_SCENARIOS in run.ts); `--targets` without `sluice-auth` leaves it out.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { removeDir, tempDir } from '../cleanup.js';
import { SluicePublisher } from '../clients/sluice-publisher.js';
import { benchToken } from '../jwt.js';
import { ExitedEarly, launch } from './server-process.js';
import { NotAvailable, type PublisherOptions, type RunningTarget, type StartOptions, type Target, type TargetId } from './target.js';

const require = createRequire(import.meta.url);
export const CLI = join(dirname(require.resolve('@sluice/server/package.json')), 'dist/src/cli.js');
export const TOPIC_PREFIX = 'bench.t';
const AUTH_SECRET = 'sluice-bench-secret-0123456789abcdef';

class SluiceTarget implements Target {
  constructor(readonly id: TargetId, readonly label: string, private readonly auth: boolean) {}

  unavailable(): string | undefined {
    return undefined;
  }

  async start(opts: StartOptions = {}): Promise<RunningTarget> {
    const dir = tempDir('sluice-bench-store-');
    const node = opts.profileDir
      ? ['--cpu-prof', '--cpu-prof-dir', opts.profileDir, ...(opts.profileName ? ['--cpu-prof-name', opts.profileName] : [])]
      : [];
    const args = [...node, CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--store', 'disk', '--data', dir, '--quiet'];
    let p;
    try {
      p = await launch(process.execPath, args, {
        readyPattern: /sluice listening on http:\/\/127\.0\.0\.1:(\d+)/,
        env: this.auth ? { SLUICE_AUTH_SECRET: AUTH_SECRET } : {},
      });
    } catch (err) {
      removeDir(dir);
      if (this.auth && err instanceof ExitedEarly) {
        const why = err.output.split('\n').find((l) => l.includes('sluice:') && !l.includes('WARNING')) ?? '';
        throw new NotAvailable(`auth not built yet${why ? ` — gateway said: ${why.trim()}` : ''}`);
      }
      throw err;
    }
    const port = p.ready;
    const url = `ws://127.0.0.1:${port}`;
    const token = this.auth ? benchToken(AUTH_SECRET) : undefined;
    return {
      id: this.id,
      pid: p.pid,
      httpUrl: `http://127.0.0.1:${port}`,
      ...(token ? { token } : {}),
      exited: p.exited,
      output: () => p.output(),
      subscriber: (o = {}) => ({ kind: 'sluice', url, prefix: TOPIC_PREFIX, credit: o.credit ?? 64, ...(token ? { token } : {}) }),
      publisher: (o: PublisherOptions = {}) => SluicePublisher.open({
        url,
        prefix: TOPIC_PREFIX,
        window: o.window ?? 1000,
        keys: o.keys === true,
        ...(token ? { token } : {}),
      }),
      stop: async () => {
        await p.stop(30_000);
        removeDir(dir);
      },
    };
  }
}

export const sluiceTarget = new SluiceTarget('sluice', 'Sluice', false);
export const sluiceAuthTarget = new SluiceTarget('sluice-auth', 'Sluice (auth on)', true);
