/**
 * Delayed messages (protocol 1.4), as users meet them: the SDK over WebSocket, HTTP single and batch
 * publishes, cancel, the listing the console shows, bad input with stable codes; and a real gateway
 * process on the disk store killed with SIGKILL while 1,000 messages are due, then restarted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { createClient, createPublisher, type Client, type SluiceError } from '@sluice/client';
import { spawnGateway as spawnProcess, freePort } from '../src/testing.js';
import type { RunningServer } from '../src/server.js';
import { removeDir, startGateway, tempDir } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';
import { startNodes } from './helpers/cluster.js';
import { startRedis, startRedisCluster } from './helpers/redis.js';
import { RedisLog } from '../src/log/redis.js';
import { DEFAULT_DEDUP_WINDOW_MS, DEFAULT_RETENTION } from '../src/log/log.js';
import type { HeldRecord } from '../src/log/held.js';

const clients: Client[] = [];
function client(url: string): Client {
  const c = createClient({ url, WebSocket: WebSocket as never, backoff: () => 20 });
  clients.push(c);
  return c;
}

/** The messages of a topic as a pull returns them: offset, ts, data. */
async function history(url: string, topic: string): Promise<{ offset: number; ts: number; data: any }[]> {
  const r = await api(url, `/v1/topics/${encodeURIComponent(topic)}/messages?from=1&limit=1000`);
  assert.equal(r.status, 200, r.text);
  return r.body.messages;
}

describe('delayed messages (in process)', () => {
  let gw: RunningServer;
  before(async () => {
    gw = await startGateway((c) => { c.held.maxDelayMs = 60_000; });
  });
  after(async () => {
    for (const c of clients.splice(0)) c.close();
    await gw.close();
  });

  it('SDK: held until due, then appended and delivered like any message; never early', async () => {
    const c = client(gw.url);
    const got: { offset: number; at: number; data: any }[] = [];
    c.subscribe('d.sdk', (m) => { got.push({ offset: m.offset, at: Date.now(), data: m.data }); });
    const sent = Date.now();
    const r = await c.publish('d.sdk', { n: 1 }, { delay: 300 });
    assert.ok(r.scheduleId, 'a schedule id');
    assert.equal(r.offset, 0, 'no offset before it is appended');
    assert.ok(r.due! >= sent + 300 && r.due! <= Date.now() + 300);
    const plain = await c.publish('d.sdk', { n: 0 });
    assert.equal(plain.offset, 1, 'the held message takes no offset');
    await waitFor(() => got.length === 2, 'both delivered', 5000);
    assert.deepEqual(got.map((g) => [g.offset, g.data.n]), [[1, 0], [2, 1]]);
    assert.ok(got[1]!.at >= r.due!, `delivered ${r.due! - got[1]!.at} ms early`);
  });

  it('cancel before due: never appended; cancel again is the same answer; after it is appended: already-appended', async () => {
    const c = client(gw.url);
    const r = await c.publish('d.cancel', 'x', { delay: 400 });
    await c.cancel(r.scheduleId!);
    await c.cancel(r.scheduleId!); // idempotent
    const kept = await c.publish('d.cancel', 'y', { delay: 50 });
    await waitFor(async () => (await history(gw.url, 'd.cancel')).length === 1, 'the other appended', 5000);
    // What is asserted: the cancelled one stays absent past its due time. The scheduler appends a
    // topic's messages in due order, so once one due after it is appended, it would have been too.
    await c.publish('d.cancel', 'z', { at: r.due! + 1 });
    await waitFor(async () => (await history(gw.url, 'd.cancel')).length >= 2, 'one due after the cancelled one appended', 5000);
    assert.deepEqual((await history(gw.url, 'd.cancel')).map((m) => m.data), ['y', 'z']);
    await assert.rejects(c.cancel(kept.scheduleId!), (e: SluiceError) => e.code === 'already-appended');
    await assert.rejects(c.cancel('no-such-id'), (e: SluiceError) => e.code === 'unknown-schedule');
  });

  it('over the maximum delay: delay-too-long; at in the past: schedule-in-past; nothing is held', async () => {
    const c = client(gw.url);
    await assert.rejects(c.publish('d.bad', 1, { delay: 60_001 }), (e: SluiceError) => e.code === 'delay-too-long');
    await assert.rejects(c.publish('d.bad', 1, { at: Date.now() - 60_000 }), (e: SluiceError) => e.code === 'schedule-in-past');
    const h = await api(gw.url, '/v1/topics/d.bad/messages', { raw: '1', headers: { 'content-type': 'application/json', 'sluice-delay': '999999999' } });
    assert.equal(h.status, 400);
    assert.equal(h.body.error.code, 'delay-too-long');
    const p = await api(gw.url, '/v1/topics/d.bad/messages', { raw: '1', headers: { 'content-type': 'application/json', 'sluice-at': '1000' } });
    assert.equal(p.body.error.code, 'schedule-in-past');
    const both = await api(gw.url, '/v1/topics/d.bad/messages', { raw: '1', headers: { 'content-type': 'application/json', 'sluice-at': String(Date.now() + 1000), 'sluice-delay': '5' } });
    assert.equal(both.body.error.code, 'bad-request');
    const list = await api(gw.url, '/v1/topics/d.bad/scheduled');
    assert.equal(list.body.count, 0);
    assert.equal((await gw.store.info('d.bad')).head, 0);
  });

  it('HTTP: Sluice-Delay → 202 with an id; the same Idempotency-Key → the same id; listed with count and next due; DELETE cancels', async () => {
    const headers = { 'content-type': 'application/json', 'sluice-delay': '30000', 'idempotency-key': 'order-7' };
    const a = await api(gw.url, '/v1/topics/d.http/messages', { raw: '{"a":1}', headers });
    assert.equal(a.status, 202, a.text);
    const again = await api(gw.url, '/v1/topics/d.http/messages', { raw: '{"a":1}', headers });
    assert.deepEqual([again.body.id, again.body.duplicate], [a.body.id, true]);
    // The key names one message: another message with it is refused and nothing is held (count below).
    const reused = await api(gw.url, '/v1/topics/d.http/messages', { raw: '{"a":2}', headers });
    assert.equal(reused.status, 422, reused.text);
    assert.equal(reused.body.error.code, 'idempotency-key-reused');
    const prepared = await api(gw.url, '/v1/topics/d.http/transactions', { raw: '{"a":1}', headers: { 'content-type': 'application/json', 'idempotency-key': 'tx-7' } });
    assert.equal(prepared.status, 201, prepared.text);
    const preparedOther = await api(gw.url, '/v1/topics/d.http/transactions', { raw: '{"a":3}', headers: { 'content-type': 'application/json', 'idempotency-key': 'tx-7' } });
    assert.deepEqual([preparedOther.status, preparedOther.body.error?.code], [422, 'idempotency-key-reused']);
    const b = await api(gw.url, '/v1/topics/d.http/messages', { raw: '2', headers: { 'content-type': 'application/json', 'sluice-delay': '20000' } });
    const list = await api(gw.url, '/v1/topics/d.http/scheduled?limit=1');
    assert.equal(list.body.count, 2);
    assert.equal(list.body.nextDue, b.body.due);
    assert.deepEqual(list.body.items.map((i: { id: string }) => i.id), [b.body.id]);
    const next = await api(gw.url, `/v1/topics/d.http/scheduled?limit=1&after=${encodeURIComponent(list.body.cursor)}`);
    assert.deepEqual(next.body.items.map((i: { id: string; key?: string }) => [i.id, i.key]), [[a.body.id, 'order-7']]);
    assert.equal(next.body.cursor, undefined);
    const del = await api(gw.url, `/v1/topics/d.http/scheduled/${a.body.id}`, { method: 'DELETE' });
    assert.deepEqual(del.body, { id: a.body.id, state: 'cancelled' });
    const wrongTopic = await api(gw.url, `/v1/topics/d.other/scheduled/${b.body.id}`, { method: 'DELETE' });
    assert.equal(wrongTopic.status, 404);
    assert.equal(wrongTopic.body.error.code, 'unknown-schedule');
    assert.equal((await api(gw.url, '/v1/topics/d.http/scheduled')).body.count, 1);
  });

  it('HTTP batch: entries with delay / at are held, the others appended; createPublisher too', async () => {
    const r = await api(gw.url, '/v1/publish', { json: { messages: [
      { topic: 'd.batch', data: 'now' },
      { topic: 'd.batch', data: 'later', delay: 100 },
      { topic: 'd.batch', data: 'past', at: 5 },
    ] } });
    assert.equal(r.status, 200);
    const [now, later, past] = r.body.results;
    assert.equal(now.offset, 1);
    assert.ok(typeof later.id === 'string' && later.due > 0);
    assert.equal(past.error.code, 'schedule-in-past');
    const pub = createPublisher({ url: gw.url });
    const s = await pub.publish('d.batch', 'sdk', { delay: 150 });
    assert.ok(s.id);
    await waitFor(async () => (await history(gw.url, 'd.batch')).length === 3, 'the held ones appended', 5000);
    assert.deepEqual((await history(gw.url, 'd.batch')).map((m) => m.data), ['now', 'later', 'sdk']);
    const t = await pub.publish('d.batch', 'cancelled', { delay: 20_000 });
    await pub.cancel('d.batch', t.id);
    assert.equal((await api(gw.url, '/v1/topics/d.batch/scheduled')).body.count, 0);
  });
});

describe('delayed messages across kill -9 (real process, disk store)', () => {
  it('1,000 messages due in 0-3 s, the gateway killed and restarted meanwhile: each appended once, none early, lateness p99 < 1 s', async () => {
    // Lateness is counted from max(due, the restart): a message that fell due while no gateway ran
    // cannot be appended before one runs again; the contract for it is "appended at startup, in
    // due order", and from then on the scheduler's own lateness is what is measured.
    const dir = tempDir('sluice-delayed-');
    const port = await freePort();
    let gw = await spawnProcess({ dataDir: dir, port });
    try {
      const c = client(gw.url);
      const N = 1000;
      const due = new Map<number, number>();
      const window: Promise<unknown>[] = [];
      for (let i = 0; i < N; i++) {
        if (window.length >= 200) await Promise.all(window.splice(0));
        const delay = Math.floor(Math.random() * 3000);
        window.push(c.publish('d.restart', { i }, { delay, key: `k${i}` }).then((r) => due.set(i, r.due!)));
      }
      await Promise.all(window);
      c.close();
      // Some appended before the crash (the rest fall due while it is down, or after the restart).
      await waitFor(async () => (await history(gw.url, 'd.restart')).length >= 100, 'some appended before the crash', 10_000);
      await gw.kill('SIGKILL');
      const down = Date.now();
      gw = await spawnProcess({ dataDir: dir, port });
      const up = Date.now();
      await waitFor(async () => (await history(gw.url, 'd.restart')).length >= N, 'all appended', 20_000);
      const msgs = await history(gw.url, 'd.restart');
      assert.equal(msgs.length, N, 'each appended once');
      const seen = new Set(msgs.map((m) => m.data.i));
      assert.equal(seen.size, N);
      const early = msgs.filter((m) => m.ts < due.get(m.data.i)!);
      assert.equal(early.length, 0, `${early.length} appended early`);
      const lateness = msgs.map((m) => m.ts - Math.max(due.get(m.data.i)!, up)).sort((a, b) => a - b);
      const p99 = lateness[Math.floor(N * 0.99)]!;
      // Those due while down came first after the restart, in due order.
      const whileDown = msgs.filter((m) => due.get(m.data.i)! < up && due.get(m.data.i)! >= down);
      const dues = whileDown.map((m) => due.get(m.data.i)!);
      assert.deepEqual(dues, [...dues].sort((a, b) => a - b), 'appended in due order');
      console.log(`delayed across kill -9: down ${up - down} ms (${whileDown.length} fell due meanwhile); lateness after max(due, restart): p50 ${lateness[N >> 1]} ms, p99 ${p99} ms, max ${lateness[N - 1]} ms`);
      assert.ok(p99 < 1000, `lateness p99 ${p99} ms`);
      assert.equal((await api(gw.url, '/v1/topics/d.restart/scheduled')).body.count, 0);
    } finally {
      await gw.kill('SIGKILL');
      removeDir(dir);
    }
  });
});

describe('delayed messages in cluster mode (two gateway processes on one Redis)', () => {
  it('200 messages scheduled on both nodes: each appended exactly once, none early, cancel on the other node', async () => {
    const redis = await startRedis();
    const nodes = await startNodes(2, redis.url);
    try {
      const [a, b] = nodes.map((n) => client(n.url));
      const due = new Map<number, number>();
      await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a! : b!).publish('d.cluster', { i }, { delay: 200 + (i % 20) * 50 }).then((r) => due.set(i, r.due!))));
      const doomed = await a!.publish('d.cluster', { i: -1 }, { delay: 3000 });
      await b!.cancel(doomed.scheduleId!);
      await waitFor(async () => (await history(nodes[1]!.url, 'd.cluster')).length >= 200, 'all appended', 15_000);
      // Past every due time and a claim round on both nodes: nothing more may come.
      await waitFor(async () => (await api(nodes[0]!.url, '/v1/topics/d.cluster/scheduled')).body.count === 0, 'none held', 5000);
      const msgs = await history(nodes[0]!.url, 'd.cluster');
      assert.equal(msgs.length, 200);
      assert.equal(new Set(msgs.map((m) => m.data.i)).size, 200, 'each once');
      assert.ok(msgs.every((m) => m.ts >= due.get(m.data.i)!), 'none early');
    } finally {
      for (const c of clients.splice(0)) c.close();
      await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
      await redis.stop();
    }
  });
});

describe('the held-messages gauge on Redis (sluice_held_messages)', () => {
  it('the scripts keep counts by state: 1,200 records; a store without them (older, or flushed) has them built', async () => {
    const redis = await startRedis();
    const log = await RedisLog.open({ retention: DEFAULT_RETENTION, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS, url: redis.url, minReplicas: 0 });
    try {
      assert.deepEqual(log.held.counts(), {}, 'nothing counted before the first pass');
      const now = Date.now();
      const expected: Record<string, number> = {};
      for (let i = 0; i < 1200; i++) {
        const rec: HeldRecord = { id: `c${i}`, topic: 'd.count', kind: i % 3 === 0 ? 'prepared' : 'scheduled', state: i % 3 === 0 ? 'prepared' : 'scheduled', at: now + 60_000, next: now + 60_000, attempts: 0, message: { data: new Uint8Array([1]) } };
        await log.held.hold(rec);
        const cancel = i % 10 === 1 && rec.state === 'scheduled';
        if (cancel) await log.held.update({ ...rec, state: 'cancelled' }, ['scheduled']);
        const state = cancel ? 'cancelled' : rec.state;
        expected[state] = (expected[state] ?? 0) + 1;
      }
      await log.held.refreshCounts!();
      assert.deepEqual(log.held.counts(), expected);
      assert.deepEqual(expected, { prepared: 400, scheduled: 720, cancelled: 80 });
      // Claimed (scheduled → appending) and removed ones move and leave the counts.
      const claimed = await log.held.claim(now + 60_000, 10, 5000);
      assert.equal(claimed.length, 10);
      await log.held.remove(claimed[0]!.id);
      await log.held.refreshCounts!();
      const left: Record<string, number> = { ...expected };
      for (const r of claimed) {
        if (r.state !== 'appending') continue;
        left.scheduled! -= 1;
        left.appending = (left.appending ?? 0) + 1;
      }
      left[claimed[0]!.state]! -= 1;
      assert.ok((left.appending ?? 0) > 0, 'some were scheduled and are appending now');
      assert.deepEqual(log.held.counts(), Object.fromEntries(Object.entries(left).filter(([, n]) => n !== 0)));
      // Without the counts hash (a store written before it, or flushed), the next script builds it from the states.
      await redis.cli('DEL', 'sl:{sl-held}:n');
      await log.held.refreshCounts!();
      assert.deepEqual(log.held.counts(), Object.fromEntries(Object.entries(left).filter(([, n]) => n !== 0)));
    } finally {
      await log.close();
      await redis.stop();
    }
  });

  it('a gateway on Redis reports it at /metrics, refreshed by the scheduler within seconds', async () => {
    const redis = await startRedis();
    const gw = await startGateway((c) => { c.store = 'redis'; c.redis.url = redis.url; });
    const gauge = async () => {
      const text = (await api(gw.url, '/metrics')).text as string;
      return Object.fromEntries([...text.matchAll(/^sluice_held_messages\{state="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
    };
    try {
      const pub = createPublisher({ url: gw.url });
      await pub.publish('d.gauge', 1, { delay: 600_000 });
      await pub.publish('d.gauge', 2, { delay: 600_000 });
      const tx = await pub.prepare('d.gauge', 3);
      await waitFor(async () => { const g = await gauge(); return g.scheduled === 2 && g.prepared === 1; }, 'the gauge shows 2 scheduled, 1 prepared', 15_000);
      await tx.abort();
      await waitFor(async () => { const g = await gauge(); return g.scheduled === 2 && g.aborted === 1 && g.prepared === undefined; }, 'the gauge shows the abort', 15_000);
    } finally {
      await gw.close();
      await redis.stop();
    }
  });
});

describe('held messages wait for replicas like messages (Redis Cluster, --redis-min-replicas 1)', () => {
  it('hold and update resolve once a replica of the held slot has them', async () => {
    const rc = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
    const url = `redis+cluster://${rc.startupNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
    const log = await RedisLog.open({ retention: DEFAULT_RETENTION, dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS, url, minReplicas: 1 });
    try {
      const now = Date.now();
      const rec: HeldRecord = { id: 'r1', topic: 'd.replicated', kind: 'scheduled', state: 'scheduled', at: now + 60_000, next: now + 60_000, attempts: 0, message: { data: new Uint8Array([1]) } };
      const held = await log.held.hold(rec);
      assert.equal(held.duplicate, false);
      const u = await log.held.update({ ...rec, state: 'cancelled' }, ['scheduled']);
      assert.equal(u.ok, true);
      assert.equal((await log.held.get('r1'))?.state, 'cancelled');
    } finally {
      await log.close();
      await rc.stop();
    }
  });
});
