/**
 * The real-process harness (helpers/redis.ts, helpers/haproxy.ts) does what cluster-mode tests
 * will rely on: a crash-safe single Redis, a converged Redis Cluster that fails over, a Sentinel
 * failover that keeps replicated data, and an HAProxy that balances and drops unready backends.
 * Each suite's tests run concurrently: they wait on the servers' own clocks (gossip, down-after,
 * health-check intervals), not on the CPU, so the file takes as long as its slowest test.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { describe, it } from 'node:test';
import { spawnGateway } from './helpers/gateway.js';
import { startHaproxy } from './helpers/haproxy.js';
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
        // WAIT counts only this connection's writes (the SET above came through redis-cli): write
        // the same value again here, so the replica's acknowledgement covers the key.
        assert.equal(await m.call('SET', keys.get(m.port)!, `on ${m.port}`), 'OK');
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

/** A stand-in gateway: /readyz answers 200 or 503 as told, every other path answers its name. */
interface FakeNode {
  name: string;
  port: number;
  ready: boolean;
  close(): Promise<void>;
}

async function fakeNode(name: string): Promise<FakeNode> {
  const node = { name, port: 0, ready: true } as FakeNode;
  const server: Server = createServer((req, res) => {
    if (req.url === '/readyz') res.writeHead(node.ready ? 200 : 503).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  node.port = (server.address() as { port: number }).port;
  node.close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections(); // HAProxy's idle keep-alive connections too: closed means gone
  });
  return node;
}

/** Which node answered each of `n` sequential requests through the balancer. */
async function hits(url: string, n: number): Promise<Map<string, number>> {
  const count = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/who`);
    assert.equal(res.status, 200);
    const name = await res.text();
    count.set(name, (count.get(name) ?? 0) + 1);
  }
  return count;
}

describe('haproxy harness (deploy/haproxy.cfg)', { concurrency: true }, () => {
  it('balances without stickiness and stops routing to a node that is not ready or is gone', { timeout: 20_000 }, async () => {
    const nodes = await Promise.all(['a', 'b', 'c'].map(fakeNode));
    const lb = await startHaproxy(nodes, { waitForUp: 3 });
    try {
      assert.equal(await lb.backendsUp(), 3);
      assert.deepEqual([...(await hits(lb.url, 9)).keys()].sort(), ['a', 'b', 'c'], 'every node gets requests');

      nodes[1]!.ready = false; // b: /readyz 503, as while draining
      await lb.waitForBackendsUp(2);
      assert.deepEqual([...(await hits(lb.url, 6)).keys()].sort(), ['a', 'c']);

      await nodes[2]!.close(); // c: gone, connections refused
      await lb.waitForBackendsUp(1);
      assert.deepEqual([...(await hits(lb.url, 4)).keys()], ['a']);
    } finally {
      await lb.stop();
      await Promise.all([nodes[0]!.close(), nodes[1]!.close()]);
    }
  });

  it('real gateways pass its /readyz check, and one that drains (SIGTERM) leaves the pool', { timeout: 20_000 }, async () => {
    const gateways = await Promise.all([spawnGateway(['--store', 'memory']), spawnGateway(['--store', 'memory'])]);
    const lb = await startHaproxy(gateways, { waitForUp: 2 });
    try {
      const res = await fetch(`${lb.url}/readyz`);
      assert.deepEqual([res.status, await res.json()], [200, { status: 'ready' }]);
      await gateways[0]!.kill('SIGTERM');
      await lb.waitForBackendsUp(1);
      assert.equal((await fetch(`${lb.url}/healthz`)).status, 200, 'the other gateway serves');
    } finally {
      await lb.stop();
      await Promise.all(gateways.map((g) => g.kill()));
    }
  });
});
