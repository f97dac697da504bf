/**
 * Real Redis processes for tests — a single server, a Redis Cluster, a Sentinel deployment — so
 * that the gateway's Redis store and cluster mode are tested against the real thing, including
 * kill -9, restart from AOF and failover. Import everything from here.
 *
 *   const redis = await startRedis({ aof: 'always' });          // redis.url, redis.cli('GET', 'k')
 *   await redis.kill(); await redis.restart();                     // crash, then recover from the AOF
 *   const cluster = await startRedisCluster({ replicasPerMaster: 1 });  // cluster.startupNodes
 *   await cluster.failover((await cluster.masters())[0]!.port);
 *   const sentinel = await startSentinelSetup({ replicas: 1 });   // sentinel.sentinelAddrs
 *   const newMaster = await sentinel.failover();                   // kill -9 + wait for the switch
 *
 * Rules every helper here follows (keep them when extending):
 * - Hermetic: /usr/bin/redis-server on a free 127.0.0.1 port, in a fresh temp dir holding its
 *   data, config and log. Never the shared Redis on 6379, never a fixed port.
 * - No sleeps: readiness and every state change (a failover, a converged cluster, a caught-up
 *   replica) is a real condition polled with a deadline (poll.ts); a timeout names what was last
 *   seen and quotes the log tail.
 * - Owned: every process and dir is registered (processes.ts) and reaped when the test file ends,
 *   even if the test never calls stop(). Call stop() anyway to free the cores early.
 *
 * To extend:
 * - Another server flag: pass it in `args` (it comes last and wins over the defaults).
 * - Another kind of Redis process: build its argv and call `launchRedis` (redis-server.ts), as
 *   the cluster and Sentinel helpers do; it gets ports, dir, log, readiness, restart for free.
 * - Another condition to wait for: a probe for `pollUntil` that throws `notYet(<what it saw>)`.
 * - Talk to a server with `call(...)` (structured replies, errors reject) or `cli(...)`
 *   (redis-cli's text, incl. `-c` for cluster redirects).
 */
export { startRedis, waitForReplicas, type AofMode, type RedisOptions, type RedisServer } from './redis-server.js';
export { startRedisCluster, CLUSTER_SLOTS, type ClusterOptions, type FailoverMode, type RedisCluster } from './redis-cluster.js';
export { startSentinelSetup, type SentinelFailover, type SentinelOptions, type SentinelSetup } from './redis-sentinel.js';
export { RedisReplyError, type RedisAddress, type Reply } from './resp.js';
