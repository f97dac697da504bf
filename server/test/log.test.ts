import { after } from 'node:test';
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
