/**
 * Consumer groups through the WebSocket, on an in-process gateway: members share a topic's
 * messages as leases, acknowledge or give them back, and the group redelivers, backs off,
 * dead-letters and keeps ordering keys in order. Raw frames, so every lease and error is seen.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FrameType, type ServerFrame } from '@sluice/client/protocol';
import { mintToken } from '@sluice/client/token';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

let gw: RunningServer;
before(async () => {
  gw = await startGateway((c) => {
    c.groups.ackWaitMs = 5000;
    c.groups.maxDeliveries = 3;
    c.groups.backoffMs = [50, 100];
  });
});
after(() => gw.close());

type Lease = Extract<ServerFrame, { type: 18 }>;
const leases = (c: RawClient, topic: string): Lease[] => c.frames.filter((f): f is Lease => f.type === FrameType.LEASE && f.topic === topic);

async function member(topic: string, group: string, credit = 10, from?: number): Promise<RawClient> {
  const c = await RawClient.connect(gw.url);
  c.send({ type: FrameType.SUB, subId: 1, topic, group, credit, ...(from === undefined ? {} : { from }) });
  const f = await c.next((x) => x.type === FrameType.SUBSCRIBED || x.type === FrameType.ERROR);
  if (f.type === FrameType.ERROR) throw new Error(`${f.code}: ${f.message}`);
  return c;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('consumer groups (WebSocket)', () => {
  it('shares the messages: each to one member, all acknowledged', async () => {
    const [a, b] = [await member('g.share', 'workers'), await member('g.share', 'workers')];
    const pub = await RawClient.connect(gw.url);
    for (let i = 1; i <= 40; i++) await pub.publish(i, 'g.share', i);
    // Each member acknowledges what it is leased, as it comes (credit 10 each: 20 at most in flight).
    const acked = new Map<RawClient, number>([[a, 0], [b, 0]]);
    await until(() => {
      for (const c of [a, b]) {
        const got = leases(c, 'g.share');
        const fresh = got.slice(acked.get(c)!).map((l) => l.offset);
        if (fresh.length > 0) c.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: fresh });
        acked.set(c, got.length);
      }
      return acked.get(a)! + acked.get(b)! >= 40;
    }, '40 leases acknowledged');
    const all = [...leases(a, 'g.share'), ...leases(b, 'g.share')].map((l) => l.offset).sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: 40 }, (_, i) => i + 1), 'each message once');
    assert.ok(leases(a, 'g.share').length > 0 && leases(b, 'g.share').length > 0, 'both worked');
    await a.barrier();
    await b.barrier();
    assert.deepEqual([...a.frames, ...b.frames].filter((f) => f.type === FrameType.ERROR), []);
    const g = gw.groups.loaded('g.share')[0]!.group;
    await until(() => g.floor === 41, 'the floor passes all 40');
    for (const c of [a, b, pub]) c.close();
  });

  it('a member that dies holding leases: they go to the others after the ack wait, as attempt 2', async () => {
    // The dying member must die before its leases expire, or they come back to it (attempt 2, to
    // it) and reach the others as attempt 3: the ack wait is what the test waits for, and must
    // outlast a stalled event loop between the leases and the close (the bug: 200 ms did not).
    const ackWaitMs = 1000;
    await gw.groups.configure('g.die', 'w', { ackWaitMs });
    const pub = await RawClient.connect(gw.url);
    for (let i = 1; i <= 50; i++) await pub.publish(i, 'g.die', i);
    // The others are members already, without credit: the dying one alone can be leased to.
    const others = [await member('g.die', 'w', 0), await member('g.die', 'w', 0)];
    const leasedAfter = Date.now(); // no lease of the dying member is older than this
    const dying = await member('g.die', 'w', 50);
    await until(() => leases(dying, 'g.die').length === 50, '50 leases to the first member');
    assert.ok(leases(dying, 'g.die').every((l) => l.attempt === 1));
    dying.close();
    await dying.closed;
    for (const c of others) c.send({ type: FrameType.CREDIT, subId: 1, n: 50 });
    // Each offset's first lease to the others; they do not acknowledge, so later ones (attempt 3,
    // after another ack wait) may follow and are not counted.
    const firstLease = new Map<number, Lease>();
    let redeliveredAt = 0;
    await until(() => {
      for (const l of others.flatMap((c) => leases(c, 'g.die'))) if (!firstLease.has(l.offset)) firstLease.set(l.offset, l);
      if (redeliveredAt === 0 && firstLease.size > 0) redeliveredAt = Date.now();
      return firstLease.size === 50;
    }, 'the 50 redelivered', 10_000);
    assert.deepEqual([...firstLease.keys()].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.deepEqual([...firstLease.values()].filter((l) => l.attempt !== 2), [], 'attempt 2');
    assert.ok(redeliveredAt - leasedAfter >= ackWaitMs, `not before the ack wait (after ${redeliveredAt - leasedAfter} ms)`);
    for (const c of [...others, pub]) c.close();
  });

  it('a poison message is retried on the backoff schedule, dead-lettered with its origin, while the others flow', async () => {
    await gw.groups.configure('g.poison', 'w', { ackWaitMs: 5000, maxDeliveries: 3, backoffMs: [100, 200] });
    const m = await member('g.poison', 'w', 5);
    const dlq = await RawClient.connect(gw.url);
    await dlq.subscribe(1, 'g.poison.dlq', { credit: 10 });
    const pub = await RawClient.connect(gw.url);
    pub.send({ type: FrameType.PUB, reqId: 1, topic: 'g.poison', data: 'poison', headers: { trace: 't1' } });
    await pub.next((f) => f.type === FrameType.ACK);
    for (let i = 2; i <= 21; i++) await pub.publish(i, 'g.poison', `ok-${i}`);
    const times: number[] = [];
    const acked = new Set<number>();
    await until(() => {
      for (const l of leases(m, 'g.poison')) {
        if (l.offset === 1) {
          if (times.length < l.attempt) {
            times.push(Date.now());
            m.send({ type: FrameType.GROUP_NACK, subId: 1, offset: 1, reason: `boom ${l.attempt}` });
          }
        } else if (!acked.has(l.offset)) {
          acked.add(l.offset);
          m.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [l.offset] });
        }
      }
      return times.length === 3 && acked.size === 20 && dlq.delivered('g.poison.dlq').length === 1;
    }, 'three attempts, 20 others acknowledged, one dead letter');
    assert.ok(times[1]! - times[0]! >= 90, `2nd attempt after the first backoff (${times[1]! - times[0]!} ms)`);
    assert.ok(times[2]! - times[1]! >= 190, `3rd after the second (${times[2]! - times[1]!} ms)`);
    const dead = dlq.frames.find((f) => f.type === FrameType.MSG) as Extract<ServerFrame, { type: 10 }>;
    assert.equal(dead.data, 'poison');
    assert.deepEqual({ ...dead.headers }, {
      trace: 't1', 'sluice-origin-topic': 'g.poison', 'sluice-origin-offset': '1', 'sluice-group': 'w', 'sluice-attempts': '3', 'sluice-reason': 'boom 3',
    });
    const g = gw.groups.loaded('g.poison')[0]!.group;
    await until(() => g.floor === 22, 'everything done, the dead letter included');
    for (const c of [m, dlq, pub]) c.close();
  });

  it('ordering keys: one at a time per key, in offset order, keys in parallel over the members', async () => {
    const members = await Promise.all(Array.from({ length: 4 }, () => member('g.keys', 'w', 8)));
    const pub = await RawClient.connect(gw.url);
    const keys = 10;
    const perKey = 20;
    let req = 0;
    const keyOf = new Map<number, number>();
    for (let i = 0; i < perKey; i++) {
      for (let k = 0; k < keys; k++) {
        pub.send({ type: FrameType.PUB, reqId: ++req, topic: 'g.keys', data: { k, i }, orderingKey: `order-${k}` });
      }
    }
    const acks = await Promise.all(Array.from({ length: req }, (_, j) => pub.next((f) => f.type === FrameType.ACK && f.reqId === j + 1)));
    acks.forEach((f, j) => keyOf.set((f as { offset: number }).offset, j % keys));
    // Members hold their leases a random few ms; a key must never be held by two at once.
    const holding = new Map<number, number>(); // key → offset leased now
    const order = new Map<number, number[]>(); // key → offsets acknowledged, in order
    let maxParallel = 0;
    const seen = new Map<RawClient, number>(members.map((c) => [c, 0]));
    const pending: { c: RawClient; offset: number; at: number }[] = [];
    let done = 0;
    await until(() => {
      for (const c of members) {
        const got = leases(c, 'g.keys');
        for (const l of got.slice(seen.get(c)!)) {
          const k = keyOf.get(l.offset)!;
          assert.equal(holding.get(k), undefined, `key ${k} leased twice at once`);
          holding.set(k, l.offset);
          pending.push({ c, offset: l.offset, at: Date.now() + Math.random() * 4 });
        }
        seen.set(c, got.length);
      }
      maxParallel = Math.max(maxParallel, holding.size);
      for (let i = pending.length - 1; i >= 0; i--) {
        const p = pending[i]!;
        if (p.at > Date.now()) continue;
        pending.splice(i, 1);
        const k = keyOf.get(p.offset)!;
        holding.delete(k);
        (order.get(k) ?? order.set(k, []).get(k)!).push(p.offset);
        p.c.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [p.offset] });
        done++;
      }
      return done === keys * perKey;
    }, 'every message handled', 20_000);
    for (const [k, offsets] of order) {
      assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y), `key ${k} in offset order`);
      assert.equal(offsets.length, perKey);
    }
    assert.ok(maxParallel > 1, `keys ran in parallel (at most ${maxParallel} at once)`);
    for (const c of [...members, pub]) c.close();
  });

  it('bad input gets a stable code and changes nothing', async () => {
    const m = await member('g.bad', 'w', 5);
    const other = await member('g.bad', 'w', 5);
    const pub = await RawClient.connect(gw.url);
    await pub.publish(1, 'g.bad', 'x');
    await until(() => leases(m, 'g.bad').length + leases(other, 'g.bad').length === 1, 'one lease');
    const [holder, notHolder] = leases(m, 'g.bad').length === 1 ? [m, other] : [other, m];
    const errorOf = async (c: RawClient, re: number) => {
      const f = await c.next((x) => x.type === FrameType.ERROR && x.re === re);
      return f.type === FrameType.ERROR ? f.code : '';
    };
    notHolder.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [1] });
    assert.equal(await errorOf(notHolder, FrameType.GROUP_ACK), 'not-leased', 'an offset leased to another member');
    holder.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [99] });
    assert.equal(await errorOf(holder, FrameType.GROUP_ACK), 'not-leased', 'an offset never leased');
    holder.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [1] });
    await holder.barrier();
    holder.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [1] });
    assert.equal(await errorOf(holder, FrameType.GROUP_ACK), 'not-leased', 'a double ack');
    holder.send({ type: FrameType.GROUP_NACK, subId: 1, offset: 1 });
    assert.equal(await errorOf(holder, FrameType.GROUP_NACK), 'not-leased', 'a nack after the ack');
    const bad = await RawClient.connect(gw.url);
    bad.send({ type: FrameType.SUB, subId: 1, topic: 'g.bad', group: 'no spaces' });
    assert.equal(await errorOf(bad, FrameType.SUB), 'invalid-group');
    await until(() => gw.groups.loaded('g.bad')[0]!.group.floor === 2, 'offset 1 done once');
    for (const c of [m, other, pub, bad]) c.close();
  });

  it('a member with no credit receives nothing, and its leases expire as usual', async () => {
    await gw.groups.configure('g.zero', 'w', { ackWaitMs: 150 });
    const idle = await member('g.zero', 'w', 0);
    const pub = await RawClient.connect(gw.url);
    await pub.publish(1, 'g.zero', 'a');
    await idle.barrier();
    assert.equal(leases(idle, 'g.zero').length, 0);
    const credited = Date.now(); // the lease is made after this
    idle.send({ type: FrameType.CREDIT, subId: 1, n: 1 });
    await until(() => leases(idle, 'g.zero').length >= 1, 'one lease after credit');
    assert.equal(leases(idle, 'g.zero')[0]!.attempt, 1);
    // A slow test may next see attempt 3 as well (maxDeliveries 3): attempt 2 is the one checked.
    await until(() => leases(idle, 'g.zero').length >= 2, 'the same message again after the ack wait');
    const again = Date.now();
    assert.deepEqual([leases(idle, 'g.zero')[1]!.offset, leases(idle, 'g.zero')[1]!.attempt], [1, 2]);
    assert.ok(again - credited >= 150, `not before the ack wait (after ${again - credited} ms)`);
    idle.close();
    pub.close();
  });

  it('consuming needs the consume capability', async () => {
    const secured = await startGateway((c) => { c.auth.secret = 'groups-test-secret-of-enough-length!'; });
    try {
      const key = 'groups-test-secret-of-enough-length!';
      const subOnly = await mintToken({ key, sub: 'reader', caps: { 'g.>': ['sub'] } });
      const consumer = await mintToken({ key, sub: 'worker', caps: { 'g.>': ['consume'] } });
      const a = await RawClient.connect(secured.url, { token: subOnly });
      a.send({ type: FrameType.SUB, subId: 1, topic: 'g.cap', group: 'w' });
      const refused = await a.next((f) => f.type === FrameType.ERROR);
      assert.equal(refused.type === FrameType.ERROR && refused.code, 'forbidden');
      const b = await RawClient.connect(secured.url, { token: consumer });
      b.send({ type: FrameType.SUB, subId: 1, topic: 'g.cap', group: 'w' });
      assert.equal((await b.next((f) => f.type === FrameType.SUBSCRIBED || f.type === FrameType.ERROR)).type, FrameType.SUBSCRIBED);
      a.close();
      b.close();
    } finally {
      await secured.close();
    }
  });

  it('over HTTP: an edge consumer leases with a long-poll, acknowledges, and a WebSocket member shares the group', async () => {
    const ws = await member('g.http', 'w', 1);
    const waiting = api(gw.url, '/v1/topics/g.http/groups/w/lease?max=5&wait=5&consumer=edge-1', { method: 'POST' });
    await until(() => gw.http.consumers.waiting === 1, 'the lease request waits');
    const pub = await RawClient.connect(gw.url);
    for (let i = 1; i <= 6; i++) await pub.publish(i, 'g.http', { n: i });
    const got = await waiting;
    assert.equal(got.status, 200);
    assert.ok(got.body.messages.length >= 1 && got.body.messages.length <= 5);
    assert.equal(got.body.messages[0].attempt, 1);
    assert.equal(typeof got.body.ackWaitMs, 'number');
    const httpOffsets = got.body.messages.map((m: { offset: number }) => m.offset);
    // The rest goes to the WebSocket member (credit 1) and later leases.
    const ack = await api(gw.url, '/v1/topics/g.http/groups/w/ack', { json: { offsets: [...httpOffsets, 999], consumer: 'edge-1' } });
    assert.deepEqual(ack.body.results.map((r: { ok?: boolean; error?: { code: string } }) => r.ok ?? r.error!.code), [...httpOffsets.map(() => true), 'not-leased']);
    const other = await api(gw.url, '/v1/topics/g.http/groups/w/ack', { json: { offsets: httpOffsets, consumer: 'edge-2' } });
    assert.ok(other.body.results.every((r: { error?: { code: string } }) => r.error?.code === 'not-leased'), 'another consumer cannot acknowledge them');
    assert.equal((await api(gw.url, '/v1/topics/g.http/groups/not a group/lease', { method: 'POST' })).status, 400);
    ws.close();
    pub.close();
  });

  it('over HTTP: a lease request replaced by another of the same consumer gets 409, and its wait no longer runs', async () => {
    const first = api(gw.url, '/v1/topics/g.replaced/groups/w/lease?wait=0.3&consumer=edge-9', { method: 'POST' });
    await until(() => gw.http.consumers.waiting === 1, 'the first lease request waits');
    const started = Date.now();
    const second = api(gw.url, '/v1/topics/g.replaced/groups/w/lease?wait=1.5&consumer=edge-9', { method: 'POST' });
    const replaced = await first;
    assert.deepEqual([replaced.status, replaced.body.error.code], [409, 'bad-request']);
    // The first request's 0.3 s must not answer the second: it waits its own 1.5 s (the bug: 0.3 s).
    const got = await second;
    assert.deepEqual([got.status, got.body.messages], [200, []]);
    assert.ok(Date.now() - started >= 1400, `answered after ${Date.now() - started} ms, not after its own wait`);
  });

  it('priority: a backlog of 1,000 priority-0 messages, then 10 of priority 9 — the 10 are handed out first', async () => {
    const topic = 'g.priority';
    const low = await api(gw.url, '/v1/publish', { json: { messages: Array.from({ length: 1000 }, (_, i) => ({ topic, data: `low ${i}` })) } });
    assert.equal(low.status, 200);
    const pub = await RawClient.connect(gw.url);
    for (let i = 0; i < 10; i++) {
      pub.send({ type: FrameType.PUB, reqId: i + 1, topic, data: `high ${i}`, priority: 9 });
      await pub.next((f) => f.type === FrameType.ACK && f.reqId === i + 1);
    }
    const m = await member(topic, 'w', 10, 1);
    await until(() => leases(m, topic).length === 10, '10 leases');
    assert.deepEqual(leases(m, topic).map((l) => l.offset), Array.from({ length: 10 }, (_, i) => 1001 + i), 'the priority-9 messages, in offset order');
    assert.deepEqual(leases(m, topic).map((l) => l.message.priority), Array(10).fill(9));
    // Then offset order again among the rest.
    m.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: leases(m, topic).map((l) => l.offset) });
    await until(() => leases(m, topic).length === 20, '10 more');
    assert.deepEqual(leases(m, topic).slice(10).map((l) => l.offset), Array.from({ length: 10 }, (_, i) => i + 1));
    m.close();
    pub.close();
  });

  it('priority outside 0-9 is refused with a stable code, over the WebSocket and HTTP, and nothing is stored', async () => {
    const topic = 'g.priority.bad';
    const pub = await RawClient.connect(gw.url);
    pub.send({ type: FrameType.PUB, reqId: 1, topic, data: 'x', priority: 10 });
    const e = await pub.next((f) => f.type === FrameType.ERROR);
    assert.deepEqual(e.type === FrameType.ERROR && [e.code, e.id], ['bad-frame', 1]);
    const batch = await api(gw.url, '/v1/publish', { json: { messages: [{ topic, data: 'x', priority: 10 }, { topic, data: 'y', priority: 1.5 }] } });
    assert.deepEqual(batch.body.results.map((r: { error: { code: string } }) => r.error.code), ['bad-request', 'bad-request']);
    const one = await api(gw.url, `/v1/topics/${topic}/messages`, { json: 'x', headers: { 'sluice-priority': '10' } });
    assert.deepEqual([one.status, one.body.error.code], [400, 'bad-request']);
    const ok = await api(gw.url, `/v1/topics/${topic}/messages`, { json: 'z', headers: { 'sluice-priority': '7', 'sluice-ordering-key': 'o-1' } });
    assert.deepEqual([ok.status, ok.body.offset], [201, 1], 'only the valid one was stored');
    const pulled = await api(gw.url, `/v1/topics/${topic}/messages?from=1`);
    assert.deepEqual([pulled.body.messages[0].priority, pulled.body.messages[0].orderingKey], [7, 'o-1']);
    pub.close();
  });
});
