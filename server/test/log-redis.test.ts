/**
 * The TopicLog contract on the Redis store, against real redis-server processes the harness starts:
 * a single instance, a primary with one replica under min-replicas 1 (appends wait for WAIT, reads
 * stop at the replicated watermark), and a Redis Cluster of 3 masters with a replica each, under
min-replicas 0 and 1. Each store of the suite
 * starts from a flushed database, so cases do not see each other.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_DEDUP_WINDOW_MS, DEFAULT_RETENTION, type StoreOptions, type TopicLog } from '../src/log/log.js';
import { RedisLog } from '../src/log/redis.js';
import { RAISE } from '../src/log/redis-scripts.js';
import { topicLogContract } from './log.contract.js';
import { notYet, pollUntil } from './helpers/poll.js';
import { startRedis, startRedisCluster, waitForReplicas, type RedisCluster, type RedisServer } from './helpers/redis.js';

let single: RedisServer;
let primary: RedisServer;
let replica: RedisServer;
let cluster: RedisCluster;
const opened = new Set<TopicLog>();

before(async () => {
  [single, primary, cluster] = await Promise.all([startRedis(), startRedis(), startRedisCluster({ masters: 3, replicasPerMaster: 1 })]);
  replica = await startRedis({ replicaOf: primary });
  await waitForReplicas(primary, [replica]);
});
after(async () => {
  await Promise.all([...opened].map((l) => l.close()));
  await Promise.all([single.stop(), replica.stop(), primary.stop(), cluster.stop()]);
});

async function open(url: string, options: StoreOptions, flush: () => Promise<unknown>, minReplicas = 0): Promise<TopicLog> {
  await flush();
  const log = await RedisLog.open({ ...options, url, minReplicas });
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

topicLogContract('redis (primary + 1 replica, min-replicas 1)', {
  make: (options) => open(primary.url, options, () => primary.call('FLUSHALL'), 1),
  reopen: async (log, options) => {
    await log.close();
    opened.delete(log);
    const again = await RedisLog.open({ ...options, url: primary.url, minReplicas: 1 });
    opened.add(again);
    return again;
  },
});

for (const minReplicas of [0, 1]) {
  topicLogContract(`redis (cluster, 3 masters + replicas, min-replicas ${minReplicas})`, {
    make: async (options) => open(
      `redis+cluster://${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`,
      options,
      async () => Promise.all((await cluster.masters()).map((m) => m.call('FLUSHALL'))),
      minReplicas,
    ),
  });
}

describe('the replicated watermark (primary + 1 replica)', () => {
  const options: StoreOptions = { retention: DEFAULT_RETENTION, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS };
  const data = (s: string) => ({ data: new TextEncoder().encode(s) });
  const acked = () => primary.call('HGET', 'sl:{w}:m', 'acked');

  it('min-replicas 1 raises acked after WAIT; min-replicas 0 writes none and drops it; a topic without it reads to its head', async () => {
    const one = await open(primary.url, options, () => primary.call('FLUSHALL'), 1);
    const zero = await RedisLog.open({ ...options, url: primary.url });
    opened.add(zero);
    await zero.append('w', [data('a')]);
    assert.equal(await acked(), null, 'min-replicas 0 writes no watermark');
    assert.equal((await one.read('w', 1, { limit: 10 })).entries.length, 1, 'a topic without one reads to its head');
    await one.append('w', [data('b'), data('c')]);
    // The raise left before the ACK, on the connection this info goes by.
    assert.equal((await one.info('w')).head, 3);
    assert.equal(await acked(), '3');
    await zero.append('w', [data('d')]);
    assert.equal(await acked(), null, 'a min-replicas 0 append drops it: it promises nothing of replicas');
    assert.deepEqual([(await one.info('w')).head, (await one.read('w', 1, { limit: 10 })).entries.length], [4, 4]);
  });

  it('reads stop at acked, and a raise counts only in its own epoch', async () => {
    const one = await open(primary.url, options, () => primary.call('FLUSHALL'), 1);
    await one.append('w', [data('a'), data('b')]);
    const epoch = String(await primary.call('HGET', 'sl:{w}:m', 'epoch'));
    await primary.call('HSET', 'sl:{w}:m', 'acked', 1); // as if offset 2 waited for its WAIT
    const r = await one.read('w', 1, { limit: 10 });
    assert.deepEqual([r.head, r.entries.length, (await one.info('w')).head], [1, 1, 1]);
    assert.deepEqual([(await one.read('w', 2, { limit: 10 })).entries.length, (await one.topics())[0]!.head], [0, 1]);
    assert.equal(await primary.call('EVAL', RAISE, 1, 'sl:{w}:m', 'another-epoch', 2), 0);
    assert.equal(await primary.call('EVAL', RAISE, 1, 'sl:{w}:m', epoch, 2), 1);
    assert.equal(await primary.call('EVAL', RAISE, 1, 'sl:{w}:m', epoch, 1), 0, 'it only rises');
    assert.equal((await one.read('w', 1, { limit: 10 })).entries.length, 2);
  });
});

describe('the replicated watermark on Redis Cluster (min-replicas 1)', () => {
  it('a node woken by a notification reads what it announces: the raise goes first, on the same connection', async () => {
    await Promise.all((await cluster.masters()).map((m) => m.call('FLUSHALL')));
    const url = `redis+cluster://${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
    const options: StoreOptions = { retention: DEFAULT_RETENTION, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS };
    const [writer, reader] = await Promise.all([RedisLog.open({ ...options, url, minReplicas: 1 }), RedisLog.open({ ...options, url, minReplicas: 1 })]);
    opened.add(writer).add(reader);
    const following = reader.follow('c.woken');
    await following.ready;
    const seen: Promise<[number, number]>[] = [];
    reader.watch((topic, first, entries) => {
      if (topic === 'c.woken') seen.push(reader.read(topic, first, { limit: 100 }).then((r) => [entries.length, r.entries.length]));
    });
    for (let i = 0; i < 50; i++) await writer.append('c.woken', [{ data: new Uint8Array([i]) }]);
    await pollUntil('50 notifications', async () => { if (seen.length < 50) notYet(`${seen.length}`); }, { timeoutMs: 10_000, intervalMs: 10 });
    for (const [announced, read] of await Promise.all(seen)) assert.ok(read >= announced, `read ${read} of ${announced} announced`);
    following.drop();
  });

  it('a quiet topic left above its watermark (the raise lost) is confirmed by a node that follows it: probe and WAIT on the slot\'s primary, then the raise', async () => {
    await Promise.all((await cluster.masters()).map((m) => m.call('FLUSHALL')));
    const url = `redis+cluster://${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
    const options: StoreOptions = { retention: DEFAULT_RETENTION, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS };
    const [writer, reader] = await Promise.all([RedisLog.open({ ...options, url, minReplicas: 1 }), RedisLog.open({ ...options, url, minReplicas: 1 })]);
    opened.add(writer).add(reader);
    await writer.append('c.lost', [{ data: new Uint8Array([1]) }, { data: new Uint8Array([2]) }]);
    assert.equal((await writer.info('c.lost')).head, 2);
    // As if the raise for offset 2 never arrived (its node died after WAIT).
    await (await cluster.masters())[0]!.cli('-c', 'HSET', 'sl:{c.lost}:m', 'acked', '1');
    assert.equal((await reader.info('c.lost')).head, 1);
    const got: [number, number][] = [];
    reader.watch((topic, first, entries) => { if (topic === 'c.lost') got.push([first, entries.length]); });
    const following = reader.follow('c.lost');
    await following.ready;
    await pollUntil('offset 2 handed over', async () => { if (got.length === 0) notYet('nothing yet'); }, { timeoutMs: 10_000, intervalMs: 20 });
    assert.deepEqual(got, [[2, 1]]);
    assert.equal((await reader.info('c.lost')).head, 2);
    following.drop();
  });
});
