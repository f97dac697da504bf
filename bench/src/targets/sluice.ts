/**
 * Sluice: the real gateway, started by its CLI (`sluice serve`) with the embedded disk store in a
 * temp directory and the default durability (acknowledged after the commit is synced).
 *
 * Variants:
 * - "auth off" (dev mode);
 * - "auth on": the same gateway with SLUICE_AUTH_SECRET set and clients presenting an HS256 token
 *   (jwt.ts). It runs in the fan-out and publish scenarios (AUTH_SCENARIOS in run.ts); `--targets`
 *   without `sluice-auth` leaves it out. If the gateway refuses to start with a secret, the
 *   variant reports "n/a" with what the gateway said;
 * - "old build" (`sluice-old`): another build of the gateway, for an A/B of a change in one run —
 *   the CLI named by BENCH_SLUICE_OLD_CLI (e.g. a worktree of an earlier commit, built there). It
 *   is the same target in every other respect (same flags, same clients, same sizes), so only the
 *   server build differs. Without the variable it is n/a and left out of the default targets;
 * - store variants: `sluice-commit` (disk, `--durability commit`), `sluice-memory` (`--store
 *   memory`) and `sluice-old-memory` (the old build, memory store), run by the open-loop scenario.
 *
 * `launchGateway` is shared with the cluster targets (targets/cluster.ts), which start several
 * gateways on one Redis.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { removeDir, tempDir } from '../cleanup.js';
import { SluicePublisher } from '../clients/sluice-publisher.js';
import { benchToken } from '../jwt.js';
import { ExitedEarly, launch, type ServerProcess } from './server-process.js';
import { NotAvailable, type PublisherOptions, type RunningTarget, type StartOptions, type Target, type TargetId } from './target.js';

const require = createRequire(import.meta.url);
/** This checkout's gateway build. */
export const CLI = join(dirname(require.resolve('@sluice/server/package.json')), 'dist/src/cli.js');
/** Environment variable naming the CLI of the build `sluice-old` runs. */
export const OLD_CLI_ENV = 'BENCH_SLUICE_OLD_CLI';
export const TOPIC_PREFIX = 'bench.t';
const AUTH_SECRET = 'sluice-bench-secret-0123456789abcdef';

/** The CLI of the old build, or why there is none. */
function oldCli(): { cli: string } | { missing: string } {
  const cli = process.env[OLD_CLI_ENV];
  if (!cli) return { missing: `${OLD_CLI_ENV} not set (the CLI of the build to compare with)` };
  if (!existsSync(cli)) return { missing: `${OLD_CLI_ENV}=${cli}: no such file (build it first)` };
  return { cli };
}

/**
 * Diagnostic knob: BENCH_SLUICE_DURABILITY=commit starts every disk-store gateway (both builds of
 * an A/B alike) with `--durability commit` (ACK once the commit is written, without waiting for the
 * device sync), to take the VM's fsync latency out of a comparison. Unset: the default, `flush`.
 */
export const DURABILITY_ENV = 'BENCH_SLUICE_DURABILITY';

function durabilityArgs(): string[] {
  const d = process.env[DURABILITY_ENV];
  return d ? ['--durability', d] : [];
}

/** True when `sluice-old` can run: it joins the default targets only then. */
export function oldBuildConfigured(): boolean {
  return 'cli' in oldCli();
}

export interface GatewayLaunch {
  cli: string;
  /** Store flags: `--store disk --data DIR`, `--store redis --redis-url URL`, ... */
  storeArgs: string[];
  env?: Record<string, string>;
  profileDir?: string;
  profileName?: string;
  /** More Node flags (`--trace-gc`, `--import FILE`), before the CLI. */
  nodeArgs?: string[];
}

/**
 * Every bench client connects from 127.0.0.1, and the load workers open up to 64 connections
 * each at once: more than the gateway's default cap on connections from one address still waiting
 * for HELLO (64; beyond it an upgrade gets 429). Set through the environment, which builds without
 * the cap ignore (a flag would stop them).
 */
const BENCH_LIMITS_ENV = { SLUICE_MAX_PENDING_PER_ADDRESS: '100000' };

/** Starts one gateway process (pinned like every server) and resolves with it and its port. */
export async function launchGateway(o: GatewayLaunch): Promise<{ p: ServerProcess; port: string }> {
  const node = o.profileDir
    ? ['--cpu-prof', '--cpu-prof-dir', o.profileDir, ...(o.profileName ? ['--cpu-prof-name', o.profileName] : [])]
    : [];
  const args = [...node, ...(o.nodeArgs ?? []), o.cli, 'serve', '--host', '127.0.0.1', '--port', '0', ...o.storeArgs, '--quiet'];
  const p = await launch(process.execPath, args, {
    readyPattern: /sluice listening on http:\/\/127\.0\.0\.1:(\d+)/,
    env: { ...BENCH_LIMITS_ENV, ...o.env },
  });
  return { p, port: p.ready };
}

/** The RunningTarget of a started gateway; `cleanup` runs after it stopped. */
export function gatewayTarget(id: TargetId, p: ServerProcess, port: string, token: string | undefined, cleanup: () => void): RunningTarget {
  const url = `ws://127.0.0.1:${port}`;
  return {
    id,
    pid: p.pid,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: url,
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
      cleanup();
    },
  };
}

/** The store a Sluice target runs: the disk store (default durability, or `commit`), or memory. */
export type SluiceStore = 'disk' | 'commit' | 'memory';

function storeArgs(store: SluiceStore, dir: string): string[] {
  if (store === 'memory') return ['--store', 'memory'];
  return ['--store', 'disk', '--data', dir, ...(store === 'commit' ? ['--durability', 'commit'] : durabilityArgs())];
}

class SluiceTarget implements Target {
  constructor(
    readonly id: TargetId,
    readonly label: string,
    private readonly auth: boolean,
    private readonly build: () => { cli: string } | { missing: string },
    private readonly store: SluiceStore = 'disk',
  ) {}

  unavailable(): string | undefined {
    const b = this.build();
    return 'missing' in b ? b.missing : undefined;
  }

  async start(opts: StartOptions = {}): Promise<RunningTarget> {
    const b = this.build();
    if ('missing' in b) throw new NotAvailable(b.missing);
    const dir = tempDir('sluice-bench-store-');
    let started;
    try {
      started = await launchGateway({
        cli: b.cli,
        storeArgs: [...storeArgs(this.store, dir), ...(opts.gatewayArgs ?? [])],
        ...(this.auth ? { env: { SLUICE_AUTH_SECRET: AUTH_SECRET } } : {}),
        ...(opts.profileDir ? { profileDir: opts.profileDir } : {}),
        ...(opts.profileName ? { profileName: opts.profileName } : {}),
      });
    } catch (err) {
      removeDir(dir);
      if (this.auth && err instanceof ExitedEarly) {
        const why = err.output.split('\n').find((l) => l.includes('sluice:') && !l.includes('WARNING')) ?? '';
        throw new NotAvailable(`auth not built yet${why ? ` — gateway said: ${why.trim()}` : ''}`);
      }
      throw err;
    }
    const token = this.auth ? benchToken(AUTH_SECRET) : undefined;
    return gatewayTarget(this.id, started.p, started.port, token, () => removeDir(dir));
  }
}

const thisBuild = () => ({ cli: CLI });
export const sluiceTarget = new SluiceTarget('sluice', 'Sluice', false, thisBuild);
export const sluiceAuthTarget = new SluiceTarget('sluice-auth', 'Sluice (auth on)', true, thisBuild);
export const sluiceOldTarget = new SluiceTarget('sluice-old', 'Sluice (old build)', false, oldCli);
/** Store and durability variants (the open-loop scenario runs them; run.ts `targetsFor`). */
export const sluiceCommitTarget = new SluiceTarget('sluice-commit', 'Sluice (disk, commit)', false, thisBuild, 'commit');
export const sluiceMemoryTarget = new SluiceTarget('sluice-memory', 'Sluice (memory)', false, thisBuild, 'memory');
export const sluiceOldMemoryTarget = new SluiceTarget('sluice-old-memory', 'Sluice (old build, memory)', false, oldCli, 'memory');
