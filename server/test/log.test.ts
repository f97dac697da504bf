import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import { decodeEntry, encodeValue } from '@sluice/client/protocol';
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
