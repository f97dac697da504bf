import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import { decodeEntry, encodeEntry, encodeValue } from '@sluice/client/protocol';
import { DEFAULT_DEDUP_WINDOW_MS, DEFAULT_RETENTION } from '../src/log/log.js';
import { DiskLog } from '../src/log/disk.js';
import { MemoryLog } from '../src/log/memory.js';
import type { TopicLog } from '../src/log/log.js';
import { removeDir, tempDir } from './helpers/gateway.js';
import { waitFor } from './helpers/http.js';
import { topicLogContract } from './log.contract.js';

topicLogContract('memory', {
  make: async (options) => new MemoryLog(options),
});

const dirs = new Map<TopicLog, string>();
after(() => { for (const dir of dirs.values()) removeDir(dir); });

topicLogContract('disk (lmdb)', {
  make: async (options) => {
    const dir = tempDir('sluice-log-');
    const log = DiskLog.open({ ...options, dir });
    dirs.set(log, dir);
    return log;
  },
  reopen: async (log, options) => {
    const dir = dirs.get(log)!;
    await log.close();
    const again = DiskLog.open({ ...options, dir });
    dirs.set(again, dir);
    return again;
  },
});

describe('disk store recovery', () => {
  it('a persisted head behind the stored messages (crash between commits) is corrected on load', async () => {
    const dir = tempDir('sluice-log-');
    const options = { retention: { ...DEFAULT_RETENTION }, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS };
    try {
      const log = DiskLog.open({ ...options, dir });
      await log.append('crash', [1, 2, 3, 4, 5].map((n) => ({ data: encodeValue(n) })));
      await log.close();
      // Make the meta say what it said before the last commit: head 3.
      const root = open({ path: join(dir, 'sluice.mdb'), maxDbs: 8 });
      const meta = root.openDB<{ head: number; count: number }, string>('meta', {});
      await meta.put('crash', { ...meta.get('crash')!, head: 3, count: 3 });
      await root.close();

      const again = DiskLog.open({ ...options, dir });
      const info = await again.info('crash');
      assert.deepEqual([info.head, info.count], [5, 5]);
      const [r] = await again.append('crash', [{ data: encodeValue(6) }]);
      assert.equal(r!.offset, 6, 'offsets are not reused');
      await again.close();
    } finally {
      removeDir(dir);
    }
  });

  // A group's commit can be durable after another write failed (a meta's, a later group's): it is
  // stored, so it MUST be acknowledged — a refusal says nothing was stored.
  it('appends whose commit is durable are acknowledged even if the store failed meanwhile', async () => {
    const dir = tempDir('sluice-log-');
    const options = { retention: { ...DEFAULT_RETENTION }, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS };
    const values = async (log: DiskLog, topic: string) => (await log.read(topic, 1, { limit: 1000 })).entries.map((e) => decodeEntry(e).data);
    try {
      const log = DiskLog.open({ ...options, dir });
      try {
        const inner = log as unknown as { commit: () => { written: Promise<unknown>; durable: Promise<unknown> }; markFailed: (e: Error) => void };
        const commit = inner.commit.bind(log);
        let release!: () => void;
        const gate = new Promise<void>((r) => { release = r; });
        let written: Promise<unknown> | undefined;
        inner.commit = () => {
          const c = commit();
          written ??= c.written;
          return { written: c.written, durable: Promise.all([c.durable, gate]) };
        };
        const appended = log.append('late.a', [{ data: encodeValue('stored'), key: 'k1' }]);
        await waitFor(() => written !== undefined, 'the group written');
        await written;
        inner.markFailed(Object.assign(new Error('another write failed (injected)'), { code: 'EIO' }));
        release();
        const [r] = await appended;
        assert.equal(r!.offset, 1);
        await assert.rejects(log.append('late.a', [{ data: encodeValue('refused') }]), /cannot write/);
        await waitFor(() => log.health().writable, 'the store writable again', 5000);
        const [dup] = await log.append('late.a', [{ data: encodeValue('stored'), key: 'k1' }]);
        assert.deepEqual([dup!.offset, dup!.duplicate], [1, true]);
        assert.deepEqual(await values(log, 'late.a'), ['stored']);
      } finally {
        await log.close();
      }
    } finally {
      removeDir(dir);
    }
  });
});

describe('disk store format 2 (append-ordered log, index off the commit path)', () => {
  const options = { retention: { ...DEFAULT_RETENTION }, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS };
  const values = async (log: DiskLog, topic: string) =>
    (await log.read(topic, 1, { limit: 1000 })).entries.map((e) => decodeEntry(e).data);

  // A kill -9 between a commit and the checkpoint that indexes it leaves records after
  // `sys.indexed` and possibly part of them indexed (a pass cut short): both must be found once.
  it('records the index does not cover are found at open, each once, from the log', async () => {
    const dir = tempDir('sluice-log-');
    try {
      const log = DiskLog.open({ ...options, dir });
      for (let i = 1; i <= 30; i++) void log.append(`crash.${i % 3}`, [{ data: encodeValue(i) }]);
      await log.append('crash.0', [{ data: encodeValue(31) }, { data: encodeValue(32) }]);
      await log.close();
      // As if the process died after a pass indexed crash.0 and before it ended: crash.1 and
      // crash.2 unindexed, the marker at its start.
      const root = open({ path: join(dir, 'sluice.mdb'), maxDbs: 12 });
      const index = root.openDB<Uint8Array, [string, number]>('index', { encoding: 'binary' });
      await root.transaction(() => {
        for (const key of index.getKeys({})) if (key[0] !== 'crash.0') void index.remove(key);
        void root.openDB<number, string>('sys', {}).put('indexed', 0);
      });
      await root.close();

      const again = DiskLog.open({ ...options, dir });
      try {
        assert.deepEqual(await values(again, 'crash.0'), [3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31, 32]);
        assert.deepEqual(await values(again, 'crash.1'), [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]);
        assert.deepEqual((await again.info('crash.2')).head, 10);
        const [r] = await again.append('crash.2', [{ data: encodeValue(33) }]);
        assert.equal(r!.offset, 11, 'offsets continue');
        assert.deepEqual((await again.read('crash.2', 10, { limit: 10 })).entries.map((e) => decodeEntry(e).data), [29, 33]);
      } finally {
        await again.close();
      }
    } finally {
      removeDir(dir);
    }
  });

  // Reads MUST find every message while checkpoint passes move runs from memory into the index,
  // and a store reopened without its closing checkpoint (as after kill -9) finds them from the log.
  it('reads stay whole while checkpoints index runs in the background', async () => {
    const dir = tempDir('sluice-log-');
    try {
      const log = DiskLog.open({ ...options, dir, checkpointRecords: 50 });
      const topics = ['cp.a', 'cp.b', 'cp.c'];
      let sent = 0;
      const deadline = Date.now() + 10_000;
      // Until two passes have ended (each needs 20 ticks of 50 ms), interleaved appends and full reads.
      while ((log as unknown as { indexed: number }).indexed < 300 && Date.now() < deadline) {
        let last: Promise<unknown> = Promise.resolve();
        for (let i = 0; i < 9; i++) last = log.append(topics[i % 3]!, [{ data: encodeValue(++sent) }]);
        await last;
        for (const [k, t] of topics.entries()) {
          const got = await values(log, t);
          const want = Array.from({ length: sent / 3 }, (_, i) => 3 * i + k + 1);
          assert.deepEqual(got, want, `${t} after ${sent}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const indexed = (log as unknown as { indexed: number }).indexed;
      assert.ok(indexed >= 300, `checkpoints indexed ${indexed} records`);
      // Reopened without the closing checkpoint: the marker stays where the last pass left it.
      (log as unknown as { checkpointTick: () => void }).checkpointTick = () => undefined;
      await log.close();
      const again = DiskLog.open({ ...options, dir });
      try {
        for (const [k, t] of topics.entries()) {
          assert.deepEqual(await values(again, t), Array.from({ length: sent / 3 }, (_, i) => 3 * i + k + 1));
        }
      } finally {
        await again.close();
      }
    } finally {
      removeDir(dir);
    }
  });

  it('a format 1 data directory ([topic, offset] keys) is migrated at open, epoch and offsets kept', async () => {
    const dir = tempDir('sluice-log-');
    try {
      const root = open({ path: join(dir, 'sluice.mdb'), maxDbs: 12 });
      const msgs = root.openDB<Uint8Array, [string, number]>('msgs', { encoding: 'binary' });
      const meta = root.openDB<object, string>('meta', {});
      await root.transaction(() => {
        void root.openDB<string, string>('sys', {}).put('epoch', 'old-epoch');
        // Topic a: offsets 3..5 retained (1 and 2 trimmed), topic b: 1..2 with a meta behind them.
        for (const o of [3, 4, 5]) void msgs.put(['a', o], encodeEntry(encodeValue(`a${o}`), 1000 + o));
        for (const o of [1, 2]) void msgs.put(['b', o], encodeEntry(encodeValue(`b${o}`), 2000 + o));
        void meta.put('a', { head: 5, first: 3, count: 3, bytes: 0, lastTs: 1005 });
      });
      await root.close();

      const log = DiskLog.open({ ...options, dir });
      try {
        assert.deepEqual(await values(log, 'a'), ['a3', 'a4', 'a5']);
        assert.deepEqual(await values(log, 'b'), ['b1', 'b2']);
        const b = await log.info('b');
        assert.deepEqual([b.epoch, b.head, b.first, b.count], ['old-epoch', 2, 1, 2]);
        const [r] = await log.append('a', [{ data: encodeValue('a6') }]);
        assert.deepEqual([r!.offset, r!.epoch], [6, 'old-epoch']);
      } finally {
        await log.close();
      }
      const check = open({ path: join(dir, 'sluice.mdb'), maxDbs: 12 });
      assert.equal(check.openDB('msgs', { encoding: 'binary' }).getKeysCount(), 0, 'msgs emptied');
      assert.equal(check.openDB<number, string>('sys', {}).get('format'), 2);
      await check.close();
    } finally {
      removeDir(dir);
    }
  });

  // A big format 1 store MUST NOT hold the event loop for its whole migration: open moves what it
  // can in migrateOpenMs, then the store serves reads read-only (publishes refused, retryable)
  // while the rest moves a chunk per transaction, and takes writes once it is done.
  it('a format 1 migration that outlasts open goes on while reads are served, publishes refused until it ends', async () => {
    const dir = tempDir('sluice-log-');
    try {
      const root = open({ path: join(dir, 'sluice.mdb'), maxDbs: 12 });
      const msgs = root.openDB<Uint8Array, [string, number]>('msgs', { encoding: 'binary' });
      const topics = ['m.a', 'm.b', 'm.c'];
      const PER = 200;
      await root.transaction(() => {
        void root.openDB<string, string>('sys', {}).put('epoch', 'old-epoch');
        for (let o = 1; o <= PER; o++) for (const t of topics) void msgs.put([t, o], encodeEntry(encodeValue(`${t}${o}`), 1000 + o));
      });
      await root.close();
      const want = (t: string) => Array.from({ length: PER }, (_, i) => `${t}${i + 1}`);

      const log = DiskLog.open({ ...options, dir, migrateOpenMs: 0, migrateChunk: 7 });
      try {
        const h = log.health();
        assert.deepEqual([h.writable, h.code], [false, 'unavailable']);
        assert.match(h.reason ?? '', /migrating .* store format 2/);
        const inner = log as unknown as { log: { getKeysCount(): number } };
        assert.ok(inner.log.getKeysCount() < topics.length * PER, 'not all moved at open');
        for (const t of topics) assert.deepEqual(await values(log, t), want(t), `${t} read mid-migration`);
        await assert.rejects(log.append('m.a', [{ data: encodeValue('early') }]), (err: Error & { code?: string }) => err.code === 'unavailable');
        for (let i = 0; i < 500 && !log.health().writable; i++) await new Promise((r) => setTimeout(r, 20));
        assert.equal(log.health().writable, true, 'migrated and writable within 10 s');
        assert.equal(inner.log.getKeysCount(), topics.length * PER);
        for (const t of topics) assert.deepEqual(await values(log, t), want(t), `${t} after the migration`);
        const [r] = await log.append('m.b', [{ data: encodeValue('m.b201') }]);
        assert.deepEqual([r!.offset, r!.epoch], [PER + 1, 'old-epoch']);
      } finally {
        await log.close();
      }
      const again = DiskLog.open({ ...options, dir });
      try {
        assert.equal(again.health().writable, true);
        assert.deepEqual(await values(again, 'm.b'), [...want('m.b'), 'm.b201']);
      } finally {
        await again.close();
      }
    } finally {
      removeDir(dir);
    }
  });

  // Retention may empty the log's tail (age retention trims everything of a quiet store): the
  // sequences after it MUST NOT be given again at the next open, at or below `sys.indexed`, where
  // neither a checkpoint (nothing "behind") nor the open's scan (after the marker) finds them.
  it('records written after retention emptied the log are indexed and found again at open', async () => {
    const dir = tempDir('sluice-log-');
    try {
      const first = DiskLog.open({ ...options, dir });
      await first.append('old', [{ data: encodeValue(1) }, { data: encodeValue(2) }, { data: encodeValue(3) }]);
      await first.close();
      const second = DiskLog.open({ ...options, dir });
      second.sweep(Date.now() + 2 * options.retention.maxAgeMs);
      assert.equal((await second.info('old')).count, 0, 'retention trimmed every record');
      await second.close();
      const third = DiskLog.open({ ...options, dir });
      await third.append('new', [{ data: encodeValue('n1') }, { data: encodeValue('n2') }]);
      await third.close();
      const again = DiskLog.open({ ...options, dir });
      try {
        assert.deepEqual(await values(again, 'new'), ['n1', 'n2']);
        const [r] = await again.append('new', [{ data: encodeValue('n3') }]);
        assert.equal(r!.offset, 3, 'offsets continue');
      } finally {
        await again.close();
      }
    } finally {
      removeDir(dir);
    }
  });

  // A pass writes its runs over many ticks, each in its own commit: the marker MUST NOT move
  // (durably) unless every one of them committed — a commit that fails after the marker's tick
  // would leave records neither in `index` nor after `sys.indexed`, lost at the next load.
  it('the marker does not move past runs whose checkpoint commit failed', async () => {
    const dir = tempDir('sluice-log-');
    try {
      const log = DiskLog.open({ ...options, dir, checkpointRecords: 1 });
      try {
        await log.append('fail.a', [{ data: encodeValue('a1') }, { data: encodeValue('a2') }]);
        await log.append('fail.b', [{ data: encodeValue('b1') }]);
        const inner = log as unknown as { index: { put: (k: [string, number], v: Buffer) => Promise<boolean> }; indexed: number };
        const put = inner.index.put.bind(inner.index);
        let injected = false;
        // fail.a's index write fails, but only after the pass's last tick (a slow commit).
        inner.index.put = (k, v) => {
          if (injected || k[0] !== 'fail.a') return put(k, v);
          injected = true;
          return new Promise<boolean>((_, reject) => setTimeout(() => reject(new Error('Commit failed (injected)')), 400));
        };
        await waitFor(() => !log.health().writable, 'the injected failure', 5000);
        await waitFor(() => log.health().writable, 'the store writable again', 5000);
        assert.ok(injected);
        assert.deepEqual(await values(log, 'fail.a'), ['a1', 'a2']);
        assert.deepEqual(await values(log, 'fail.b'), ['b1']);
      } finally {
        await log.close();
      }
      const again = DiskLog.open({ ...options, dir });
      try {
        assert.deepEqual(await values(again, 'fail.a'), ['a1', 'a2']);
        assert.deepEqual(await values(again, 'fail.b'), ['b1']);
      } finally {
        await again.close();
      }
    } finally {
      removeDir(dir);
    }
  });

  // A group's commit can be durable after another write failed (a checkpoint's, a later group's):
  // it is stored, so it MUST be acknowledged — a refusal says nothing was stored.
  it('appends whose commit is durable are acknowledged even if the store failed meanwhile', async () => {
    const dir = tempDir('sluice-log-');
    try {
      const log = DiskLog.open({ ...options, dir });
      try {
        const inner = log as unknown as { commit: () => { written: Promise<unknown>; durable: Promise<unknown> }; markFailed: (e: Error) => void };
        const commit = inner.commit.bind(log);
        let release!: () => void;
        const gate = new Promise<void>((r) => { release = r; });
        let written: Promise<unknown> | undefined;
        inner.commit = () => {
          const c = commit();
          written ??= c.written;
          return { written: c.written, durable: Promise.all([c.durable, gate]) };
        };
        const appended = log.append('late.a', [{ data: encodeValue('stored'), key: 'k1' }]);
        await waitFor(() => written !== undefined, 'the group written');
        await written;
        inner.markFailed(Object.assign(new Error('another write failed (injected)'), { code: 'EIO' }));
        release();
        const [r] = await appended;
        assert.equal(r!.offset, 1);
        await assert.rejects(log.append('late.a', [{ data: encodeValue('refused') }]), /cannot write/);
        await waitFor(() => log.health().writable, 'the store writable again', 5000);
        const [dup] = await log.append('late.a', [{ data: encodeValue('stored'), key: 'k1' }]);
        assert.deepEqual([dup!.offset, dup!.duplicate], [1, true]);
        assert.deepEqual(await values(log, 'late.a'), ['stored']);
      } finally {
        await log.close();
      }
    } finally {
      removeDir(dir);
    }
  });

  // A build older than format 2 reads `sys.epoch` first thing at open (as main's did): in a format 2
  // store that read MUST throw, naming the format, or the old build serves reads of nothing and
  // stores publishes where format 2 never looks (an acknowledged message lost).
  it('a format 2 store is refused by a build that reads format 1 only, and keeps its epoch', async () => {
    const dir = tempDir('sluice-log-');
    try {
      const log = DiskLog.open({ ...options, dir });
      const { epoch } = await log.info('t');
      await log.append('t', [{ data: encodeValue(1) }]);
      await log.close();
      const root = open({ path: join(dir, 'sluice.mdb'), compression: false, maxDbs: 12 });
      assert.throws(() => root.openDB<string, string>('sys', {}).get('epoch'), /Sluice store format 2: this build reads format 1 only/);
      await root.close();
      const again = DiskLog.open({ ...options, dir });
      assert.equal((await again.info('t')).epoch, epoch);
      await again.close();
    } finally {
      removeDir(dir);
    }
  });

  it('a data directory of a newer format is refused with a clear error', async () => {
    const dir = tempDir('sluice-log-');
    try {
      await DiskLog.open({ ...options, dir }).close();
      const root = open({ path: join(dir, 'sluice.mdb'), maxDbs: 12 });
      await root.openDB<number, string>('sys', {}).put('format', 3);
      await root.close();
      assert.throws(() => DiskLog.open({ ...options, dir }), /store format 3/);
    } finally {
      removeDir(dir);
    }
  });
});

describe('periodic store work, in slices', () => {
  // The sweeper visits a twentieth of the topics per tick (issue 16: a whole pass over 10,000
  // topics blocked the event loop every second); every topic must still be visited each interval.
  it('messages past the retention age are trimmed in every topic, and the disk meta of every topic is written', async () => {
    const dir = tempDir('sluice-log-');
    const options = { retention: { ...DEFAULT_RETENTION, maxAgeMs: 300 }, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS };
    const topics = Array.from({ length: 500 }, (_, i) => `aged.${i}`);
    const log = DiskLog.open({ ...options, dir });
    try {
      for (const t of topics) void log.append(t, [{ data: encodeValue(1) }, { data: encodeValue(2) }]);
      await log.append('aged.last', [{ data: encodeValue(0) }]);
      const deadline = Date.now() + 5000;
      let left = topics.length;
      while (left > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        left = (await Promise.all(topics.map((t) => log.info(t)))).filter((i) => i.count > 0).length;
      }
      assert.equal(left, 0, 'every topic trimmed within 5 s (retention age 300 ms)');
      const infos = await Promise.all(topics.map((t) => log.info(t)));
      assert.ok(infos.every((i) => i.head === 2 && i.first === 3), 'offsets stay: head 2, first 3');
    } finally {
      await log.close();
    }
    // The meta written by the slices (and on close) is what a reopened store starts from.
    const again = DiskLog.open({ ...options, retention: { ...DEFAULT_RETENTION }, dir });
    try {
      const infos = await Promise.all(topics.map((t) => again.info(t)));
      assert.ok(infos.every((i) => i.head === 2 && i.first === 3 && i.count === 0), 'reopened: head 2, first 3, empty');
    } finally {
      await again.close();
      removeDir(dir);
    }
  });
});
