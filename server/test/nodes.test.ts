/**
 * The Nodes contract (src/cluster/nodes.ts) in-process: RedisNodes on a real harness Redis, two
 * "nodes" in one test process, and SoloNode. What the admin API relies on: a request settles
 * within its limit however the other side behaves (answers, throws, hangs, is gone), and a node
 * that leaves is unlisted at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NodeFailed, NodeUnanswered, SoloNode, type SelfInfo } from '../src/cluster/nodes.js';
import { NODES_INDEX, RedisNodes } from '../src/cluster/redis-nodes.js';
import { parseRedisUrl } from '../src/log/redis.js';
import { notYet, pollUntil } from './helpers/poll.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

const self = (id: string, connections = 0): SelfInfo => ({
  id, version: 'test', startedAt: Date.now(), figures: () => ({ connections, subscriptions: 0 }),
});

describe('RedisNodes', () => {
  let redis: RedisServer;
  let a: RedisNodes;
  let b: RedisNodes;
  const open = (id: string, connections = 0) =>
    RedisNodes.open({ target: parseRedisUrl(redis.url), commandTimeoutMs: 1000, self: self(id, connections), askTimeoutMs: 300 });

  before(async () => {
    redis = await startRedis();
    [a, b] = await Promise.all([open('node-a', 1), open('node-b', 2)]);
    b.handle('echo', (p) => p);
    b.handle('boom', () => { throw new Error('it broke'); });
    b.handle('hang', () => new Promise(() => undefined));
    await Promise.all([a.announce('http://a.test'), b.announce('http://b.test')]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  it('lists both nodes, each with its figures; self on the asking one', async () => {
    const rows = await a.list();
    assert.deepEqual(rows.map((r) => [r.id, r.address, r.connections, r.self]), [['node-a', 'http://a.test', 1, true], ['node-b', 'http://b.test', 2, false]]);
    assert.equal(a.count, 2);
  });

  it('ask: the answer, a failure there, a hang and a node nobody listens for all settle in time', async () => {
    assert.deepEqual(await a.ask('node-b', 'echo', { x: [1, 'two'] }), { x: [1, 'two'] });
    await assert.rejects(a.ask('node-b', 'boom', {}), (e: unknown) => e instanceof NodeFailed && e.detail === 'it broke');
    await assert.rejects(a.ask('node-b', 'no-such-method', {}), NodeFailed);
    let t = Date.now();
    await assert.rejects(a.ask('node-b', 'hang', {}), (e: unknown) => e instanceof NodeUnanswered && e.reason === 'timeout');
    const hung = Date.now() - t;
    assert.ok(hung >= 290 && hung < 1000, `timed out after ${hung} ms`);
    t = Date.now();
    await assert.rejects(a.ask('node-gone', 'echo', {}), (e: unknown) => e instanceof NodeUnanswered && e.reason === 'unreachable');
    assert.ok(Date.now() - t < 250, 'PUBLISH reached nobody: no need to wait for the timeout');
  });

  it('gather: answers by node, the rest named as unanswered', async () => {
    a.handle('hang', () => 'a answers');
    const g = await a.gather<string>('hang', {});
    assert.deepEqual(g, { answers: [{ node: 'node-a', value: 'a answers' }], unanswered: ['node-b'] });
  });

  it('close() unlists the node at once', async () => {
    const c = await open('node-c');
    await c.announce('http://c.test');
    assert.deepEqual((await b.list()).map((r) => r.id), ['node-a', 'node-b', 'node-c']);
    await c.close();
    // Gone from Redis at once (not after the expiry); list() may reuse a read for up to 200 ms.
    assert.deepEqual(await redis.call('ZRANGE', NODES_INDEX, 0, -1), ['node-a', 'node-b']);
    assert.equal(await redis.call('EXISTS', 'sl:{#nodes}:node-c'), 0);
    await pollUntil('b to stop listing c', async () => {
      const ids = (await b.list()).map((r) => r.id);
      return ids.length === 2 ? ids : notYet(ids.join(' '));
    }, { timeoutMs: 1000 });
  });
});

describe('SoloNode', () => {
  it('is the only node: listed as self, asked in-process; any other id is unreachable', async () => {
    const solo = new SoloNode(self('solo', 3));
    solo.handle('echo', (p) => p);
    await solo.announce('http://solo.test');
    const [row] = await solo.list();
    assert.deepEqual([row!.id, row!.address, row!.connections, row!.self], ['solo', 'http://solo.test', 3, true]);
    assert.deepEqual(await solo.gather('echo', 7), { answers: [{ node: 'solo', value: 7 }], unanswered: [] });
    await assert.rejects(solo.ask('other', 'echo', 1), NodeUnanswered);
  });
});
