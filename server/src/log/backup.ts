/**
 * `sluice backup`: a consistent copy of the disk store while the gateway runs.
 *
 * LMDB copies its environment inside one read transaction (mdb_env_copy2, lmdb-js `backup`): the
 * copy is the store as of one commit, whatever is written meanwhile, and the gateway is not
 * paused (a second process opens the same file; LMDB's lock file coordinates the two). `compact`
 * also drops free pages (slower, smaller).
 *
 * The copy gets a NEW store epoch. A backup is older than the store it was taken from: restored,
 * its heads are behind offsets clients already saw, and offsets would be reused with other
 * contents under the same epoch — the one thing a resume point `{offset, epoch}` must never meet.
 * Under a new epoch every resuming client is told (`recovered: false`, a GAP) and starts at the
 * restored head + 1 instead. Idempotency keys, consumer groups and retention are copied as they were.
 */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { randomId } from '../util/id.js';
import { recordHead } from './disk-format.js';

/** The file the disk store keeps everything in, inside its data directory. */
export const STORE_FILE = 'sluice.mdb';

export interface BackupResult {
  /** The copy (a data directory a gateway can be started on with `--data`). */
  dir: string;
  bytes: number;
  topics: number;
  /** The copy's store epoch (new). */
  epoch: string;
  /** The store epoch of the directory copied. */
  from: string;
}

export class BackupError extends Error {
  override name = 'BackupError';
}

export async function backupDiskStore(dataDir: string, outDir: string, options: { compact?: boolean } = {}): Promise<BackupResult> {
  const source = join(dataDir, STORE_FILE);
  if (!existsSync(source)) throw new BackupError(`no disk store in ${dataDir} (no ${STORE_FILE}); --data names the gateway's data directory`);
  if (existsSync(outDir) && readdirSync(outDir).length > 0) throw new BackupError(`${outDir} is not empty; a backup goes into a new or empty directory`);
  mkdirSync(outDir, { recursive: true });
  const target = join(outDir, STORE_FILE);

  const live = open({ path: source, readOnly: true, maxDbs: 12 });
  let from: string;
  try {
    from = String(live.openDB<string, string>('sys', {}).get('epoch') ?? '');
    await live.backup(target, options.compact === true);
  } finally {
    await live.close();
  }

  // The copy: a new epoch for the store and for any topic that records its own.
  const copy = open({ path: target, maxDbs: 12 });
  const epoch = randomId(16);
  let topics = 0;
  try {
    const meta = copy.openDB<{ epoch?: string }, string>('meta', {});
    const sys = copy.openDB<string, string>('sys', {});
    await copy.transaction(() => {
      sys.put('epoch', epoch);
      for (const { key, value } of meta.getRange()) {
        if (value && typeof value === 'object' && value.epoch !== undefined) void meta.put(key, { ...value, epoch });
      }
    });
    topics = countTopics(copy);
  } finally {
    await copy.close();
  }
  return { dir: outDir, bytes: statSync(target).size, topics, epoch, from };
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
