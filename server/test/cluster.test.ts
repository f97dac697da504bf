/**
 * Cluster mode, for real: gateway processes on one redis-server the harness starts, SDK clients,
 * and HAProxy in front where clients must be able to land on any node. Each case checks what a
 * user of several nodes is promised: a publish on any node reaches every subscriber on every node,
 * once and in order; a client resumes on any node with no gap and no duplicate; a Redis crash
 * loses no acknowledged message and keeps the epoch; a Redis that lost its data is announced.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { createClient } from '@sluice/client';
import type { GatewayProcess } from '../src/testing.js';
import { orderedOnce, Recorder, startNodes } from './helpers/cluster.js';
import { startHaproxy } from './helpers/haproxy.js';
import { api } from './helpers/http.js';
import { startRedis, startRedisCluster } from './helpers/redis.js';

const nodes: GatewayProcess[] = [];
after(async () => { await Promise.all(nodes.map((n) => n.kill('SIGKILL'))); });

const publisher = (url: string) => createClient({ url, WebSocket: WebSocket as never, backoff: () => 50 });

describe('cluster mode on one Redis', () => {
  it('a publish on any node reaches every subscriber on every node, in order, once, data intact', async () => {
    const redis = await startRedis();
    const three = await startNodes(3, redis.url);
    nodes.push(...three);
    const subs = three.flatMap((n) => [new Recorder(n.url, 'c.fan', { from: 1 }), new Recorder(n.url, 'c.fan', { from: 1 })]);
    await Promise.all(subs.map((s) => s.sub.ready));
    const pub = publisher(three[0]!.url);
    const sent: unknown[] = [];
    for (let i = 0; i < 300; i++) sent.push({ i, text: `m${i}`, bin: new Uint8Array([i & 255]) });
    await Promise.all(sent.slice(0, 200).map((d, i) => pub.publish('c.fan', d, { key: `ws-${i}` })));
    const batch = await api(three[1]!.url, '/v1/publish', {
      json: { messages: sent.slice(200).map((d, i) => ({ topic: 'c.fan', data: { ...(d as object), bin: Buffer.from((d as { bin: Uint8Array }).bin).toString('base64') }, key: `http-${i}` })) },
    });
    assert.equal(batch.status, 200);
    assert.ok(batch.body.results.every((r: { offset?: number }) => typeof r.offset === 'number'));
    for (const s of subs) {
      await s.waitFor(300);
      assert.equal(orderedOnce(s), undefined);
      assert.deepEqual(s.got.map((d) => d.offset), Array.from({ length: 300 }, (_, i) => i + 1));
      assert.deepEqual(s.got.slice(0, 200).map((d) => d.data), sent.slice(0, 200), 'WebSocket data intact');
      assert.deepEqual(s.got.slice(200).map((d) => (d.data as { text: string }).text), sent.slice(200).map((d) => (d as { text: string }).text));
      assert.deepEqual(s.gaps, []);
      s.close();
    }
    // Idempotency keys hold across nodes: a retry on another node is the same message; the key
    // with another message is refused there too.
    const retried = { ...(sent[205] as object), bin: Buffer.from((sent[205] as { bin: Uint8Array }).bin).toString('base64') };
    const again = await api(three[2]!.url, '/v1/topics/c.fan/messages', { json: retried, headers: { 'idempotency-key': 'http-5' } });
    assert.deepEqual([again.status, again.body.offset, again.body.duplicate], [200, 206, true]);
    const reused = await api(three[2]!.url, '/v1/topics/c.fan/messages', { json: { other: true }, headers: { 'idempotency-key': 'ws-5' } });
    assert.deepEqual([reused.status, reused.body.error?.code], [422, 'idempotency-key-reused']);
    pub.close();
    await Promise.all(three.map((n) => n.kill('SIGTERM')));
    await redis.stop();
  });

  it('a node dies under 50 subscribers and keyed publishers: they resume on the others through the load balancer, no gap, no duplicate', async () => {
    const redis = await startRedis();
    const [a, b, c] = await startNodes(3, redis.url);
    nodes.push(a!, b!, c!);
    const lb = await startHaproxy([a!, b!, c!], { waitForUp: 3 });
    // Every subscriber connects while only node a is up, so a holds all 50.
    b!.proc.kill('SIGSTOP');
    c!.proc.kill('SIGSTOP');
    await lb.waitForBackendsUp(1);
    const subs = Array.from({ length: 50 }, () => new Recorder(lb.url, 'c.death', { from: 1 }));
    await Promise.all(subs.map((s) => s.sub.ready));
    b!.proc.kill('SIGCONT');
    c!.proc.kill('SIGCONT');
    await lb.waitForBackendsUp(3);
    // Keyed publishers on b (direct) and through the balancer; the SDK retries with the same key.
    const direct = publisher(b!.url);
    const balanced = publisher(lb.url);
    const acked: Promise<{ offset: number }>[] = [];
    let killed = false;
    for (let i = 0; i < 300; i++) {
      acked.push(direct.publish('c.death', { from: 'b', i }, { key: `b-${i}` }));
      acked.push(balanced.publish('c.death', { from: 'lb', i }, { key: `lb-${i}` }));
      if (i === 100) {
        await Promise.all(acked.slice(-50));
        await a!.kill('SIGKILL');
        killed = true;
      }
      if (i % 20 === 0) await Promise.all(acked.slice(-20));
    }
    assert.ok(killed);
    const offsets = (await Promise.all(acked)).map((r) => r.offset);
    assert.equal(new Set(offsets).size, 600, 'every publish stored once');
    const head = Math.max(...offsets);
    assert.equal(head, 600, 'offsets dense: no publish was stored twice');
    for (const s of subs) {
      await s.waitFor(600);
      assert.equal(orderedOnce(s), undefined);
      assert.deepEqual(s.gaps, []);
      assert.equal(s.got.length, 600);
      s.close();
    }
    direct.close();
    balanced.close();
    await lb.stop();
    await Promise.all([b!, c!].map((n) => n.kill('SIGTERM')));
    await redis.stop();
  });

  it('Redis killed with kill -9 (AOF always) and restarted: nothing acknowledged lost, offsets dense, the epoch kept, everyone recovers', async () => {
    const redis = await startRedis({ aof: 'always' });
    const [a, b] = await startNodes(2, redis.url, ['--redis-timeout', '500ms']);
    nodes.push(a!, b!);
    const sub = new Recorder(b!.url, 'c.crash', { from: 1 });
    await sub.sub.ready;
    const pub = publisher(a!.url);
    const acked: Promise<{ offset: number }>[] = [];
    for (let i = 0; i < 100; i++) acked.push(pub.publish('c.crash', i, { key: `k-${i}` }));
    await Promise.all(acked);
    const epoch = sub.got[0]?.epoch ?? (await sub.waitFor(1), sub.got[0]!.epoch);
    await redis.kill('SIGKILL');
    // Publishing while Redis is down: refused with a retryable code, which the SDK retries.
    const refused = await api(a!.url, '/v1/topics/c.crash/messages', { json: 'down' });
    assert.deepEqual([refused.status, refused.body.error.code, refused.headers.get('retry-after')], [503, 'unavailable', '1']);
    assert.equal((await api(a!.url, '/readyz')).status, 503);
    for (let i = 100; i < 200; i++) acked.push(pub.publish('c.crash', i, { key: `k-${i}` }));
    await redis.restart();
    const offsets = (await Promise.all(acked)).map((r) => r.offset);
    assert.deepEqual([...offsets].sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i + 1), 'stored once each, dense');
    await sub.waitFor(200);
    assert.equal(orderedOnce(sub), undefined);
    assert.deepEqual(sub.gaps, []);
    assert.ok(sub.got.every((d) => d.epoch === epoch), 'the epoch is unchanged');
    assert.equal((await api(b!.url, '/readyz')).status, 200);
    sub.close();
    pub.close();
    await Promise.all([a!, b!].map((n) => n.kill('SIGTERM')));
    await redis.stop();
  });

  it('Redis restarted empty: every subscriber is told, none goes on silently', async () => {
    const redis = await startRedis();
    const [a, b] = await startNodes(2, redis.url);
    nodes.push(a!, b!);
    const subs = [new Recorder(a!.url, 'c.lost', { from: 1 }), new Recorder(b!.url, 'c.lost', { from: 1 })];
    await Promise.all(subs.map((s) => s.sub.ready));
    const pub = publisher(a!.url);
    for (let i = 0; i < 10; i++) await pub.publish('c.lost', `old-${i}`);
    for (const s of subs) await s.waitFor(10);
    await redis.kill('SIGKILL');
    await redis.restart(); // no persistence: empty
    for (let i = 0; i < 5; i++) await pub.publish('c.lost', `new-${i}`);
    for (const s of subs) {
      await s.waitFor(15);
      assert.equal(s.gaps.length, 1, 'one announcement');
      assert.equal(s.gaps[0]!.reason, 'epoch');
      const fresh = s.got.slice(10);
      assert.deepEqual(fresh.map((d) => [d.offset, d.data]), [[1, 'new-0'], [2, 'new-1'], [3, 'new-2'], [4, 'new-3'], [5, 'new-4']]);
      assert.notEqual(fresh[0]!.epoch, s.got[0]!.epoch, 'under a new epoch');
      s.close();
    }
    pub.close();
    await Promise.all([a!, b!].map((n) => n.kill('SIGTERM')));
    await redis.stop();
  });

  it('per-client rate limits count across nodes', async () => {
    const redis = await startRedis();
    const [a, b] = await startNodes(2, redis.url, ['--rate-limit-client', '4']);
    nodes.push(a!, b!);
    // The promise: 4/s for this client over both nodes, a bucket holding one second's worth — so
    // over T seconds at most 4 + 4·T pass, and 4 at least when it starts full. The 8 go at once,
    // 4 to each node: a bucket per node would pass all 8; the shared one, 4 and what refills while
    // they are answered (the bug: asserting exactly 4 after sending them one by one, when a slow
    // run refills a token every 250 ms).
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => api([a!, b!][i % 2]!.url, '/v1/topics/c.rl/messages', { json: i })));
    const elapsedMs = Date.now() - started;
    const statuses = answers.map((r) => r.status);
    const passed = statuses.filter((x) => x === 201).length;
    assert.ok(passed >= 4 && passed <= 4 + Math.floor((4 * elapsedMs) / 1000), `one bucket of 4/s for both nodes: ${statuses.join(',')} in ${elapsedMs} ms`);
    for (const r of answers.filter((x) => x.status !== 201)) {
      assert.deepEqual([r.status, r.body.error.code, Number(r.headers.get('retry-after')) >= 1], [429, 'rate-limited', true]);
    }
    const stored = await api(a!.url, '/v1/topics/c.rl/messages?from=1');
    assert.equal(stored.body.messages.length, passed, 'what was refused was not stored');
    await Promise.all([a!, b!].map((n) => n.kill('SIGTERM')));
    await redis.stop();
  });
});

describe('cluster mode on a Redis Cluster', () => {
  it('topics spread over the shards: publishes on one node reach subscribers on another through each shard', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const url = `redis+cluster://${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
    const [a, b] = await startNodes(2, url);
    nodes.push(a!, b!);
    // Enough topics that every shard holds some (the slot of sl:{topic}:… decides).
    const topics = Array.from({ length: 12 }, (_, i) => `rc.t${i}`);
    const subs = topics.map((t) => new Recorder(b!.url, t, { from: 1 }));
    await Promise.all(subs.map((s) => s.sub.ready));
    const pub = publisher(a!.url);
    await Promise.all(topics.flatMap((t) => Array.from({ length: 20 }, (_, i) => pub.publish(t, `${t}-${i}`, { key: `${t}-${i}` }))));
    for (const [i, s] of subs.entries()) {
      await s.waitFor(20);
      assert.equal(orderedOnce(s), undefined);
      assert.deepEqual(s.got.map((d) => d.data), Array.from({ length: 20 }, (_, j) => `${topics[i]}-${j}`));
      s.close();
    }
    const shards = new Set<number>();
    for (const m of await cluster.masters()) if (Number(await m.call('DBSIZE')) > 0) shards.add(m.port);
    assert.equal(shards.size, 3, 'every shard holds topics');
    pub.close();
    await Promise.all([a!, b!].map((n) => n.kill('SIGTERM')));
    await cluster.stop();
  });
});
