import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import { encodeValue } from '@sluice/client/protocol';
import { DEFAULT_DEDUP_WINDOW_MS, DEFAULT_RETENTION } from '../src/log/log.js';
import { DiskLog } from '../src/log/disk.js';
import { MemoryLog } from '../src/log/memory.js';
import type { TopicLog } from '../src/log/log.js';
import { removeDir, tempDir } from './helpers/gateway.js';
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
});
