/**
 * Backups of the disk store: a consistent copy, taken by the gateway itself while it runs
 * (`POST /v1/admin/backup`, `sluice backup --url`), or of a stopped gateway's data directory
 * (`sluice backup --data`).
 *
 * LMDB copies its environment inside one read transaction (mdb_env_copy2, lmdb-js `backup`): the
 * copy is the store as of one commit, whatever is written meanwhile, and the gateway is not paused.
 * `compact` also drops free pages (slower, smaller).
 *
 * Why the running gateway copies its own store, never a second process: the LMDB of lmdb-js (3.5.6,
 * the latest) sets, on EVERY open of an environment, the lock file's "last committed transaction"
 * from the meta page it read a moment before (mdb_env_open2; upstream LMDB does that only for
 * MDB_PREVSNAPSHOT since ITS#9496, "if a process tries to open an env while another process is
 * committing a write txn, the committed txn can get lost/overwritten by the new opener"). When the
 * gateway commits between that read and that write, its next write transaction starts from the
 * stale id: the commit fails (MDB_PROBLEM "mdb_page_touch no parent", or "Commit failed"), the
 * process crashes, or acknowledged commits are lost — whatever options the second process opens
 * with (bench/src/repro/backup-race.ts). Inside the gateway the environment is already open: no open,
 * no race. So `--data` refuses a store a live process holds open (LMDB's lock on
 * `sluice.mdb-lock`, read from /proc/locks on Linux).
 *
 * The copy gets a NEW store epoch. A backup is older than the store it was taken from: restored,
 * its heads are behind offsets clients already saw, and offsets would be reused with other
 * contents under the same epoch — the one thing a resume point `{offset, epoch}` must never meet.
 * Under a new epoch every resuming client is told (`recovered: false`, a GAP) and starts at the
 * restored head + 1 instead. Idempotency keys, consumer groups and retention are copied as they were.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import type { Admin } from '@sluice/client/protocol';
import { randomId } from '../util/id.js';
import { readEpoch, recordHead, writeEpoch } from './disk-format.js';
import type { DiskLog } from './disk.js';

/** The file the disk store keeps everything in, inside its data directory. */
export const STORE_FILE = 'sluice.mdb';
/** LMDB's lock file beside it: every process with the store open holds a lock on it. */
export const LOCK_FILE = `${STORE_FILE}-lock`;

/** What a backup made (the wire shape of `POST /v1/admin/backup`'s answer). */
export type BackupResult = Admin.Backup;

export class BackupError extends Error {
  override name = 'BackupError';
}

/** A data directory whose store another live process holds open (a second gateway must not open it). */
export class StoreInUseError extends Error {
  override name = 'StoreInUseError';
}

/**
 * The processes (ids) other than this one holding LMDB's lock on the store's lock file, i.e. with
 * the store open; `undefined` when that cannot be known here (no /proc/locks: not Linux). Locks of
 * processes in another PID namespace (another container) are not listed there.
 */
export function storeHolders(dataDir: string, locks = '/proc/locks'): number[] | undefined {
  const lockFile = join(dataDir, LOCK_FILE);
  if (!existsSync(lockFile)) return [];
  let table: string;
  try {
    table = readFileSync(locks, 'utf8');
  } catch {
    return undefined;
  }
  const st = statSync(lockFile, { bigint: true });
  const major = Number(((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn));
  const minor = Number((st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn));
  const holders = new Set<number>();
  // "1: POSIX  ADVISORY  READ 30705 fe:00:2146487 0 0" (a blocked waiter's line starts with "->").
  for (const line of table.split('\n')) {
    const m = /^\d+:\s+(?:->\s+)?POSIX\s+\S+\s+\S+\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m || BigInt(m[4]!) !== st.ino || parseInt(m[2]!, 16) !== major || parseInt(m[3]!, 16) !== minor) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid) holders.add(pid);
  }
  return [...holders];
}

function checkTarget(outDir: string): void {
  if (existsSync(outDir) && readdirSync(outDir).length > 0) throw new BackupError(`${outDir} is not empty; a backup goes into a new or empty directory`);
}

/**
 * `sluice backup --data`: copies a STOPPED gateway's data directory. Refuses one a live process
 * holds open (see above: opening it could make that gateway's commits fail): that one is backed
 * up by the gateway itself, `sluice backup --url`.
 */
export async function backupDiskStore(dataDir: string, outDir: string, options: { compact?: boolean; locks?: string } = {}): Promise<BackupResult & { checked: boolean }> {
  const started = Date.now();
  const source = join(dataDir, STORE_FILE);
  if (!existsSync(source)) throw new BackupError(`no disk store in ${dataDir} (no ${STORE_FILE}); --data names the gateway's data directory`);
  checkTarget(outDir);
  const holders = storeHolders(dataDir, options.locks);
  if (holders && holders.length > 0) {
    throw new BackupError(`a running process (pid ${holders.join(', ')}) has the store in ${dataDir} open: opening it from here could make its commits fail. ` +
      'Back up a running gateway with sluice backup --url <its URL> (it copies its own store into its --backup-dir), or stop it first');
  }
  mkdirSync(outDir, { recursive: true });
  const target = join(outDir, STORE_FILE);
  const live = open({ path: source, readOnly: true, maxDbs: 12 });
  try {
    await live.backup(target, options.compact === true);
  } finally {
    await live.close();
  }
  return { ...(await renew(outDir, started)), checked: holders !== undefined };
}

/**
 * The backups a running gateway takes of its own store (`POST /v1/admin/backup`): each into a new
 * directory under `dir`, named by the time and a random suffix — never a path a client chose. One
 * at a time.
 */
export class BackupService {
  readonly dir: string;
  private running: Promise<unknown> | undefined;
  private closed = false;

  constructor(private readonly store: DiskLog, dir: string) {
    this.dir = resolve(dir);
    mkdirSync(this.dir, { recursive: true });
  }

  /** Whether a backup is being taken now (a second one is refused meanwhile), or none can be (closed). */
  get busy(): boolean {
    return this.running !== undefined || this.closed;
  }

  take(options: { compact?: boolean } = {}): Promise<BackupResult> {
    if (this.busy) return Promise.reject(new BackupError(this.closed ? 'the gateway is shutting down' : 'a backup is being taken; one at a time'));
    const p = this.copy(options.compact === true);
    this.running = p;
    const done = () => { this.running = undefined; };
    p.then(done, done);
    return p;
  }

  /** Takes no more backups; resolves once the one in progress (if any) ended: the store may close then. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running?.catch(() => undefined);
  }

  private async copy(compact: boolean): Promise<BackupResult> {
    const started = Date.now();
    const name = `sluice-${new Date(started).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomId(6)}`;
    const outDir = join(this.dir, name);
    try {
      mkdirSync(outDir, { recursive: true });
      await this.store.copyTo(join(outDir, STORE_FILE), compact);
      return await renew(outDir, started);
    } catch (err) {
      rmSync(outDir, { recursive: true, force: true }); // no half copy left to be restored
      throw err;
    }
  }
}

/** The copy gets a new epoch, for the store and for any topic that records its own; counts its topics. */
async function renew(outDir: string, started: number): Promise<BackupResult> {
  const target = join(outDir, STORE_FILE);
  const copy = open({ path: target, maxDbs: 8 });
  const epoch = randomId(16);
  let from: string;
  let topics = 0;
  try {
    const meta = copy.openDB<{ epoch?: string }, string>('meta', {});
    const sys = copy.openDB<string, string>('sys', {});
    from = readEpoch(sys) ?? '';
    await copy.transaction(() => {
      writeEpoch(sys, epoch);
      for (const { key, value } of meta.getRange()) {
        if (value && typeof value === 'object' && value.epoch !== undefined) void meta.put(key, { ...value, epoch });
      }
    });
    topics = countTopics(copy);
  } finally {
    await copy.close();
  }
  return { dir: outDir, bytes: statSync(target).size, topics, epoch, from, ms: Date.now() - started };
}

/**
 * The topics with stored messages, counted from the messages, the store's truth (a topic's meta may
 * be a commit behind them): one key lookup per topic in `index`, skipping past each topic's runs,
 * and the records `index` does not cover yet (after `sys.indexed`). A format 1 copy (never opened
 * by this version) keeps them in `msgs` [topic, offset].
 */
function countTopics(root: RootDatabase): number {
  const sys = root.openDB<string | number, string>('sys', {});
  const format = sys.get('format');
  const keyed = root.openDB<Uint8Array, [string, number]>(format === undefined ? 'msgs' : 'index', { encoding: 'binary' });
  const names = new Set<string>();
  let start: [string, number] | undefined;
  for (;;) {
    let next: string | undefined;
    for (const key of keyed.getKeys(start ? { start, limit: 1 } : { limit: 1 })) next = key[0];
    if (next === undefined) break;
    names.add(next);
    start = [next, Number.MAX_SAFE_INTEGER];
  }
  if (format !== undefined) {
    const log = root.openDB<Buffer, number>('log', { encoding: 'binary' });
    for (const { value } of log.getRange({ start: Number(sys.get('indexed') ?? 0) + 1 })) names.add(recordHead(value).topic);
  }
  return names.size;
}
