/**
 * The admin API sees the whole cluster: three real gateway processes (`sluice serve --store redis`)
 * on one real Redis started by the harness. Any node answers for all of them — the node list, a
 * topic's subscribers, the connections, closing a connection held by another node — and a node
 * that is hung or dead is reported, never waited for. Every wait polls a real condition with a
 * deadline; the only timing asserted is an upper bound.
 *
 * The tests share the processes and run in order: the last ones stop and kill a node.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Admin } from '@sluice/client/protocol';
import { spawnGateway, type GatewayProcess } from '../src/testing.js';
import { api, type ApiResponse } from './helpers/http.js';
import { notYet, pollUntil } from './helpers/poll.js';
import { RawClient } from './helpers/raw-client.js';
import { startRedis, startRedisCluster, type RedisServer } from './helpers/redis.js';

let redis: RedisServer;
let gws: GatewayProcess[] = [];
/** Each gateway's node id, as it reports itself. */
let ids: string[] = [];
const clients: RawClient[] = [];

async function nodesSeenBy(gw: GatewayProcess): Promise<Admin.NodeRow[]> {
  const r = await api<Admin.NodeRow[]>(gw.url, '/v1/admin/nodes');
  assert.equal(r.status, 200);
  return r.body;
}

/** Waits until `gw` lists exactly `n` nodes; returns them and how long that took. */
async function untilListed(gw: GatewayProcess, n: number, timeoutMs: number): Promise<{ nodes: Admin.NodeRow[]; ms: number }> {
  const started = Date.now();
  const nodes = await pollUntil(`${gw.url} to list ${n} nodes`, async () => {
    const seen = await nodesSeenBy(gw);
    return seen.length === n ? seen : notYet(`${seen.length}: ${seen.map((x) => x.address).join(' ')}`);
  }, { timeoutMs, intervalMs: 50 });
  return { nodes, ms: Date.now() - started };
}

describe('cluster admin: three gateways on one Redis', () => {
  before(async () => {
    redis = await startRedis();
    gws = await Promise.all([0, 1, 2].map(() => spawnGateway({ store: 'redis', redisUrl: redis.url })));
    ids = await Promise.all(gws.map(async (gw) => (await nodesSeenBy(gw)).find((n) => n.self)!.id));
  });

  after(async () => {
    for (const c of clients) c.close();
    for (const gw of gws) gw.proc.kill('SIGCONT');
    await Promise.all(gws.map((gw) => gw.kill('SIGKILL')));
    await redis?.stop();
  });

  it('GET /v1/admin/nodes on any node lists all three, with their ids, addresses and figures', async () => {
    assert.equal(new Set(ids).size, 3, 'three distinct node ids');
    for (const [i, gw] of gws.entries()) {
      const { nodes } = await untilListed(gw, 3, 5000);
      assert.deepEqual(nodes.map((n) => n.id).sort(), [...ids].sort());
      assert.deepEqual(nodes.map((n) => n.address).sort(), gws.map((g) => g.url).sort());
      assert.deepEqual(nodes.filter((n) => n.self).map((n) => [n.id, n.address]), [[ids[i], gw.url]], 'the answering node is self');
      for (const n of nodes) {
        assert.deepEqual(Object.keys(n).sort(), ['address', 'connections', 'id', 'lastSeen', 'self', 'startedAt', 'subscriptions', 'uptimeMs', 'version']);
        assert.ok(n.startedAt > 0 && n.uptimeMs >= 0 && n.lastSeen >= n.startedAt && typeof n.version === 'string');
      }
      const stats = await api<Admin.Stats>(gw.url, '/v1/admin/stats');
      assert.equal(stats.body.nodes, 3);
    }
  });

  it('the figures a node publishes follow its connections', async () => {
    const c = await RawClient.connect(gws[1]!.url);
    clients.push(c);
    await c.subscribe(1, 'cl.figures', {});
    await pollUntil('node 1 to show a connection and a subscription, seen from node 0', async () => {
      const n = (await nodesSeenBy(gws[0]!)).find((x) => x.id === ids[1]);
      return n && n.connections >= 1 && n.subscriptions >= 1 ? n : notYet(JSON.stringify(n));
    }, { timeoutMs: 5000, intervalMs: 100 });
  });

  it('a topic\'s subscribers on two nodes, with credit, cursor and lag, seen from the third', async () => {
    const T = 'cl.room';
    const live = await RawClient.connect(gws[0]!.url, { headers: { 'user-agent': 'on-node-0' } });
    const paused = await RawClient.connect(gws[1]!.url, { headers: { 'user-agent': 'on-node-1' } });
    clients.push(live, paused);
    await live.subscribe(1, T, { credit: 10 });
    await paused.subscribe(2, T, { credit: 0 });
    for (let i = 1; i <= 4; i++) assert.equal((await api(gws[2]!.url, `/v1/topics/${T}/messages`, { json: { i } })).status, 201);
    await live.waitDelivered(T, 4);

    const detail = await pollUntil('both subscribers, with the live one caught up', async () => {
      const r = await api<Admin.TopicDetail>(gws[2]!.url, `/v1/admin/topics/${T}`);
      const d = r.body;
      return r.status === 200 && d.subscribers.length === 2 && d.subscribers.some((s) => s.cursor === 4) ? d : notYet(r.text);
    }, { timeoutMs: 5000, intervalMs: 50 });
    assert.deepEqual([detail.head, detail.live, detail.paused, detail.unanswered], [4, 1, 1, []]);
    const byAgent = (ua: string) => detail.subscribers.find((s) => s.userAgent === ua)!;
    const l = byAgent('on-node-0');
    const p = byAgent('on-node-1');
    assert.deepEqual([l.node, l.transport, l.subId, l.state, l.credit, l.cursor, l.lag, l.delivered], [ids[0], 'ws', 1, 'live', 6, 4, 0, 4]);
    assert.deepEqual([p.node, p.transport, p.subId, p.state, p.credit, p.cursor, p.lag, p.delivered], [ids[1], 'ws', 2, 'paused', 0, 0, 4, 0]);
  });

  it('GET /v1/admin/topics pages over the cluster: subscribers summed over nodes, topics only subscribed elsewhere listed', async () => {
    // cl.room: stored, a subscriber on node 0 and one on node 1. clp.only: subscribed on node 1, never written.
    const elsewhere = await RawClient.connect(gws[1]!.url);
    clients.push(elsewhere);
    await elsewhere.subscribe(1, 'clp.only', {});
    for (let i = 0; i < 7; i++) assert.equal((await api(gws[2]!.url, `/v1/topics/clp.${i}/messages`, { json: i })).status, 201);
    // Page by three through node 2, which holds no subscriber at all.
    const rows: Admin.TopicRow[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const r: ApiResponse<Admin.TopicRow[]> = await api<Admin.TopicRow[]>(gws[2]!.url, `/v1/admin/topics?q=cl&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('sluice-unanswered-nodes'), null);
      rows.push(...r.body);
      cursor = r.headers.get('sluice-next-cursor');
      if (!cursor) break;
    }
    const names = rows.map((t) => t.topic);
    assert.deepEqual(names, [...new Set(names)].sort(), 'each once, by name');
    assert.ok(['cl.figures', 'cl.room', 'clp.0', 'clp.6', 'clp.only'].every((t) => names.includes(t)), names.join());
    const room = rows.find((t) => t.topic === 'cl.room')!;
    assert.deepEqual([room.head, room.subscribers, room.live, room.paused], [4, 2, 1, 1]);
    assert.deepEqual(rows.find((t) => t.topic === 'clp.only')!.subscribers, 1);
    // Sorted by subscribers, across nodes: cl.room (2) first.
    const bySubs = await api<Admin.TopicRow[]>(gws[0]!.url, '/v1/admin/topics?q=cl&sort=-subscribers&limit=1');
    assert.deepEqual(bySubs.body.map((t) => [t.topic, t.subscribers]), [['cl.room', 2]]);
  });

  it('GET /v1/admin/connections lists every node\'s connections, each with its node', async () => {
    const r = await api<Admin.ConnectionRow[]>(gws[2]!.url, '/v1/admin/connections');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('sluice-unanswered-nodes'), null);
    const agents = new Map(r.body.map((c) => [c.userAgent, c.node]));
    assert.equal(agents.get('on-node-0'), ids[0]);
    assert.equal(agents.get('on-node-1'), ids[1]);
    assert.ok(r.body.every((c) => ids.includes(c.node)));
  });

  it('DELETE /v1/admin/connections/{id} on node 0 closes a connection held by node 1 (close 4202)', async () => {
    const victims = await Promise.all([0, 1].map(() => RawClient.connect(gws[1]!.url, { headers: { 'user-agent': 'victim' } })));
    clients.push(...victims);
    const rows = (await api<Admin.ConnectionRow[]>(gws[0]!.url, '/v1/admin/connections')).body.filter((c) => c.userAgent === 'victim');
    assert.deepEqual(rows.map((c) => c.node), [ids[1], ids[1]]);

    // Routed by asking every node…
    const byAsking = await api(gws[0]!.url, `/v1/admin/connections/${rows[0]!.id}`, { method: 'DELETE' });
    assert.deepEqual([byAsking.status, byAsking.body], [200, { id: rows[0]!.id, closed: true, node: ids[1] }]);
    // …or straight to the node the row names.
    const direct = await api(gws[0]!.url, `/v1/admin/connections/${rows[1]!.id}?node=${ids[1]}`, { method: 'DELETE' });
    assert.deepEqual([direct.status, direct.body], [200, { id: rows[1]!.id, closed: true, node: ids[1] }]);
    const closes = await Promise.all(victims.map((v) => v.closed));
    assert.deepEqual(closes.map((c) => c.code), [4202, 4202]);

    const missing = await api(gws[0]!.url, '/v1/admin/connections/no-such-connection', { method: 'DELETE' });
    assert.deepEqual([missing.status, missing.body.error.code], [404, 'not-found']);
  });

  it('a hung node is reported as unanswered within the time limit, and the page still answers', async () => {
    const hung = gws[2]!;
    const hungId = ids[2]!;
    await untilListed(gws[0]!, 3, 5000);
    hung.proc.kill('SIGSTOP');
    try {
      let started = Date.now();
      const conns = await api<Admin.ConnectionRow[]>(gws[0]!.url, '/v1/admin/connections');
      const connsMs = Date.now() - started;
      assert.equal(conns.status, 200);
      assert.equal(conns.headers.get('sluice-unanswered-nodes'), hungId);
      assert.ok(conns.body.some((c) => c.node === ids[1]), 'the others\' rows are there');
      assert.ok(connsMs < 1500, `answered in ${connsMs} ms`);

      started = Date.now();
      const topic = await api<Admin.TopicDetail>(gws[0]!.url, '/v1/admin/topics/cl.room');
      const topicMs = Date.now() - started;
      assert.deepEqual([topic.status, topic.body.unanswered, topic.body.subscribers.length], [200, [hungId], 2]);
      assert.ok(topicMs < 1500, `answered in ${topicMs} ms`);

      const kick = await api(gws[0]!.url, '/v1/admin/connections/no-such-connection', { method: 'DELETE' });
      assert.deepEqual([kick.status, kick.body.error.code], [503, 'unavailable'], 'the hung node might have it');
      assert.match(kick.body.error.message, new RegExp(hungId));
      const direct = await api(gws[0]!.url, `/v1/admin/connections/no-such-connection?node=${hungId}`, { method: 'DELETE' });
      assert.deepEqual([direct.status, direct.body.error.code], [503, 'unavailable']);
    } finally {
      hung.proc.kill('SIGCONT');
    }
  });

  it('a node killed with SIGKILL disappears from the list within a few seconds', async () => {
    await untilListed(gws[0]!, 3, 8000); // the stopped node is back
    await gws[2]!.kill('SIGKILL');
    const { nodes, ms } = await untilListed(gws[0]!, 2, 10_000);
    assert.deepEqual(nodes.map((n) => n.id).sort(), [ids[0], ids[1]].sort());
    assert.ok(ms <= 6000, `gone after ${ms} ms`);
    // Each node reads the registry on its own (a listing serves for 200 ms): once node 1 no longer
    // lists it either, requests across nodes ask only the two live ones. (The bug: asking node 1
    // as soon as node 0 had dropped it, when node 1 could still list it, rightly, as unanswered.)
    await untilListed(gws[1]!, 2, 2000);
    const conns = await api(gws[1]!.url, '/v1/admin/connections');
    assert.equal(conns.status, 200);
    assert.equal(conns.headers.get('sluice-unanswered-nodes'), null);
    await pollUntil('node 1 to count 2 nodes in its stats (refreshed each second)', async () => {
      const n = (await api<Admin.Stats>(gws[1]!.url, '/v1/admin/stats')).body.nodes;
      return n === 2 ? n : notYet(String(n));
    }, { timeoutMs: 3000, intervalMs: 50 });
  });
});

describe('cluster admin: two gateways on a Redis Cluster (classic pub/sub across shards)', () => {
  it('each lists both, and a connection on one is listed and closed through the other', { timeout: 60_000 }, async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const pair: GatewayProcess[] = [];
    const url = `redis+cluster://${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
    const victims: RawClient[] = [];
    try {
      pair.push(...(await Promise.all([0, 1].map(() => spawnGateway({ store: 'redis', redisUrl: url })))));
      const [a, b] = [pair[0]!, pair[1]!];
      const { nodes } = await untilListed(a, 2, 5000);
      await untilListed(b, 2, 5000);
      const idOfB = nodes.find((n) => !n.self)!.id;
      assert.equal(nodes.find((n) => !n.self)!.address, b.url);

      const victim = await RawClient.connect(b.url, { headers: { 'user-agent': 'on-b' } });
      victims.push(victim);
      await victim.subscribe(1, 'clc.room', {});
      const detail = await api<Admin.TopicDetail>(a.url, '/v1/admin/topics/clc.room');
      assert.deepEqual([detail.status, detail.body.unanswered, detail.body.subscribers.map((s) => [s.node, s.userAgent])], [200, [], [[idOfB, 'on-b']]]);
      const row = (await api<Admin.ConnectionRow[]>(a.url, '/v1/admin/connections')).body.find((c) => c.userAgent === 'on-b')!;
      assert.equal(row.node, idOfB);
      const kicked = await api(a.url, `/v1/admin/connections/${row.id}`, { method: 'DELETE' });
      assert.deepEqual([kicked.status, kicked.body], [200, { id: row.id, closed: true, node: idOfB }]);
      assert.equal((await victim.closed).code, 4202);
    } finally {
      for (const v of victims) v.close();
      await Promise.all(pair.map((gw) => gw.kill('SIGKILL')));
      await cluster.stop();
    }
  });
});
