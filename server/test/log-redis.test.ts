/**
 * The TopicLog contract on the Redis store, against real redis-server processes the harness starts:
 * a single instance, and a Redis Cluster of 3 masters. Each store of the suite gets its own prefix
 * of topics by a fresh database (single) or by flushing (cluster), so cases do not see each other.
 */
import { after, before } from 'node:test';
import type { StoreOptions, TopicLog } from '../src/log/log.js';
import { RedisLog } from '../src/log/redis.js';
import { topicLogContract } from './log.contract.js';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from './helpers/redis.js';

let single: RedisServer;
let cluster: RedisCluster;
const opened = new Set<TopicLog>();

before(async () => {
  [single, cluster] = await Promise.all([startRedis(), startRedisCluster({ masters: 3 })]);
});
after(async () => {
  await Promise.all([...opened].map((l) => l.close()));
  await Promise.all([single.stop(), cluster.stop()]);
});

async function open(url: string, options: StoreOptions, flush: () => Promise<unknown>): Promise<TopicLog> {
  await flush();
  const log = await RedisLog.open({ ...options, url });
  opened.add(log);
  return log;
}

topicLogContract('redis (single instance)', {
  make: (options) => open(single.url, options, () => single.call('FLUSHALL')),
  reopen: async (log, options) => {
    await log.close();
    opened.delete(log);
    const again = await RedisLog.open({ ...options, url: single.url });
    opened.add(again);
    return again;
  },
});

topicLogContract('redis (cluster, 3 masters)', {
  make: async (options) => open(
    `redis+cluster://${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`,
    options,
    async () => Promise.all((await cluster.masters()).map((m) => m.call('FLUSHALL'))),
  ),
});
