/**
 * The real-process harness (helpers/redis.ts) does what cluster-mode tests will rely on: a
 * crash-safe single Redis, a converged Redis Cluster that fails over, and a Sentinel failover
 * that keeps replicated data.
 * Each suite's tests run concurrently: they wait on the servers' own clocks (gossip, down-after,
 * health-check intervals), not on the CPU, so the file takes as long as its slowest test.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startRedis, startRedisCluster, startSentinelSetup, waitForReplicas } from './helpers/redis.js';

/** True while a process with this PID exists (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('redis harness', { concurrency: true }, () => {
  it('single server with appendfsync always: an acknowledged write survives kill -9 and restart', { timeout: 15_000 }, async () => {
    const redis = await startRedis({ aof: 'always' });
    try {
      assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(await redis.call('SET', 'greeting', 'hello'), 'OK');
      const before = redis.pid;
      await redis.kill();
      assert.equal(alive(before), false, 'the killed process is gone');
      await redis.restart();
      assert.notEqual(redis.pid, before);
      assert.equal(await redis.cli('GET', 'greeting'), 'hello');
    } finally {
      await redis.stop();
    }
    assert.equal(existsSync(redis.dir), false, 'stop() removes the dir');
    assert.equal(alive(redis.pid), false);
  });

  it('a server that cannot start fails fast with its log tail', { timeout: 15_000 }, async () => {
    await assert.rejects(startRedis({ args: ['--no-such-directive', 'x'] }), /redis-server exited[\s\S]*no-such-directive/);
  });

  it('cluster of 3 masters + replicas: keys land on every master and survive a master\'s kill -9', { timeout: 30_000 }, async () => {
    const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
    try {
      const masters = await cluster.masters();
      assert.equal(masters.length, 3);
      // One key per master: a key whose slot that master serves, written through redirects.
      const ranges = (await masters[0]!.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
      const keys = new Map<number, string>(); // master port → its key
      for (let i = 0; keys.size < 3; i++) {
        const key = `key:${i}`;
        const slot = Number(await masters[0]!.call('CLUSTER', 'KEYSLOT', key));
        const owner = ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
        if (keys.has(owner)) continue;
        assert.equal(await cluster.cli('SET', key, `on ${owner}`), 'OK');
        keys.set(owner, key);
      }
      for (const m of masters) {
        assert.equal(await m.call('GET', keys.get(m.port)!), `on ${m.port}`, `master :${m.port} holds its key itself`);
        assert.equal(await m.call('WAIT', 1, 2000), 1, `master :${m.port}'s replica has the key`);
      }

      const victim = masters[0]!;
      await victim.kill();
      const promoted = await cluster.failover(victim.port);
      assert.notEqual(promoted.port, victim.port);
      assert.equal(await promoted.call('GET', keys.get(victim.port)!), `on ${victim.port}`);
      assert.equal(await cluster.cli('GET', keys.get(victim.port)!), `on ${victim.port}`);
      assert.deepEqual((await cluster.masters()).map((m) => m.port).sort(), [promoted.port, masters[1]!.port, masters[2]!.port].sort());
    } finally {
      await cluster.stop();
    }
  });

  it('sentinel: SENTINEL FAILOVER swaps master and replica', { timeout: 30_000 }, async () => {
    const setup = await startSentinelSetup({ replicas: 1 });
    try {
      const fresh = await setup.failover({ how: 'command' });
      assert.equal(fresh.port, setup.replicas[0]!.port);
      assert.equal(setup.master.isRunning(), true, 'the old master is not killed');
    } finally {
      await setup.stop();
    }
  });

  it('sentinel: kill -9 of the master promotes the replica, which has the data', { timeout: 30_000 }, async () => {
    const setup = await startSentinelSetup({ replicas: 1, sentinels: 3, masterName: 'sluice' });
    try {
      const old = await setup.currentMaster();
      assert.equal(old.port, setup.master.port);
      await setup.master.call('SET', 'before', 'failover');
      await waitForReplicas(setup.master, setup.replicas);

      const fresh = await setup.failover();
      assert.notEqual(fresh.port, old.port);
      assert.deepEqual(await setup.currentMaster(), fresh);
      const server = setup.serverAt(fresh)!;
      assert.equal(await server.call('GET', 'before'), 'failover');
      assert.equal(await server.call('SET', 'after', 'writable'), 'OK');
    } finally {
      await setup.stop();
    }
  });
});
