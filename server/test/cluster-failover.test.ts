/**
 * A Redis failover under cluster mode, with Sentinel (started by the harness) promoting a replica.
 * With --redis-min-replicas 1 an ACK waits for a replica, and Sentinel promotes the most advanced
 * one, so it has everything acknowledged: nothing is lost, and nobody is told of a loss. (With no
 * replica left to confirm, publishes are refused as unavailable until one is back.) With 0 the newest writes can be
 * missing on the promoted replica: here it is made so (the replica is paused while 30 messages are
 * acknowledged and delivered), and the loss must be announced by an epoch change — no offset may
 * ever be served with two contents under one epoch.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { createClient } from '@sluice/client';
import type { GatewayProcess } from '../src/testing.js';
import { orderedOnce, Recorder, startNodes } from './helpers/cluster.js';
import { api } from './helpers/http.js';
import { notYet, pollUntil } from './helpers/poll.js';
import { RawClient } from './helpers/raw-client.js';
import { startRedis, startSentinelSetup, waitForReplicas, type RedisServer, type SentinelSetup } from './helpers/redis.js';

const nodes: GatewayProcess[] = [];
after(async () => { await Promise.all(nodes.map((n) => n.kill('SIGKILL'))); });

const urlOf = (s: SentinelSetup) => `redis+sentinel://${s.sentinelAddrs.map((a) => `${a.host}:${a.port}`).join(',')}/${s.masterName}`;
const publisher = (url: string) => createClient({ url, WebSocket: WebSocket as never, backoff: () => 50 });

/** Every (epoch, offset) any recorder was handed, with its data: one content each. */
function oneContentPerOffset(...recorders: Recorder[]): void {
  const contents = new Map<string, string>();
  for (const r of recorders) {
    for (const d of r.got) {
      const k = `${d.epoch}:${d.offset}`;
      const v = JSON.stringify(d.data);
      assert.equal(contents.get(k) ?? v, v, `offset ${d.offset} served with two contents in epoch ${d.epoch}`);
      contents.set(k, v);
    }
  }
}

describe('Redis failover (Sentinel)', () => {
  it('with --redis-min-replicas 1: no acknowledged message is lost, and nobody is told of a loss', async () => {
    // Two replicas: after the failover one is left to confirm writes (WAIT 1).
    const sentinel = await startSentinelSetup({ replicas: 2 });
    const [a, b] = await startNodes(2, urlOf(sentinel), ['--redis-min-replicas', '1', '--redis-timeout', '1s']);
    nodes.push(a!, b!);
    const sub = new Recorder(b!.url, 'f.safe', { from: 1 });
    await sub.sub.ready;
    const pub = publisher(a!.url);
    const acked: Promise<{ offset: number }>[] = [];
    let failover: Promise<unknown> | undefined;
    for (let i = 0; i < 300; i++) {
      acked.push(pub.publish('f.safe', { i }, { key: `k-${i}` }));
      if (i === 100) failover = (async () => { await Promise.all(acked.slice(-20)); return sentinel.failover({ how: 'kill' }); })();
      if (i % 25 === 0) await Promise.all(acked.slice(-25));
    }
    await failover;
    const offsets = (await Promise.all(acked)).map((r) => r.offset);
    assert.equal(new Set(offsets).size, 300, 'each publish stored once');
    await sub.waitFor(300);
    assert.equal(orderedOnce(sub), undefined);
    assert.deepEqual(sub.gaps, [], 'nothing lost: nothing to announce');
    assert.deepEqual(sub.got.map((d) => (d.data as { i: number }).i).sort((x, y) => x - y), Array.from({ length: 300 }, (_, i) => i));
    // What the new primary holds: every acknowledged offset, with the acknowledged content.
    const all = await api(b!.url, `/v1/topics/f.safe/messages?from=1&limit=1000`);
    const byOffset = new Map(all.body.messages.map((m: { offset: number; data: { i: number } }) => [m.offset, m.data.i]));
    const acks = await Promise.all(acked);
    acks.forEach((r, i) => assert.equal(byOffset.get(r.offset), i, `acked offset ${r.offset}`));
    sub.close();
    pub.close();
    await Promise.all([a!, b!].map((n) => n.kill('SIGTERM')));
    await sentinel.stop();
  });

  it('with 0: the replica missing the newest writes is promoted, the loss is announced by a new epoch, and no offset shows two contents', async () => {
    const sentinel = await startSentinelSetup({ replicas: 1 });
    const [a, b] = await startNodes(2, urlOf(sentinel), ['--redis-timeout', '1s']);
    nodes.push(a!, b!);
    const live = new Recorder(b!.url, 'f.lost', { from: 1 });
    await live.sub.ready;
    const pub = publisher(a!.url);
    for (let i = 0; i < 50; i++) await pub.publish('f.lost', `first-${i}`);
    const master = sentinel.master;
    const replica = sentinel.replicas[0]!;
    await waitForReplicas(master, [replica]);
    // The replica stops, and the master drops its link: the next 30 are acknowledged
    // (min-replicas 0) and delivered, but only the master has them.
    replica.pause();
    await master.call('CLIENT', 'KILL', 'TYPE', 'replica');
    for (let i = 50; i < 80; i++) await pub.publish('f.lost', `unreplicated-${i}`);
    await live.waitFor(80);
    const before = live.got[0]!.epoch;
    await master.kill('SIGKILL');
    replica.resume();
    await pollUntil('the sentinels to promote the replica', async () => {
      const m = await sentinel.currentMaster();
      if (m.port !== replica.port) notYet(`master still ${m.port}`);
    }, { timeoutMs: 20_000, intervalMs: 50 });
    // New publishes land on the promoted replica, which lacks offsets 51..80.
    for (let i = 0; i < 10; i++) await pub.publish('f.lost', `after-${i}`);
    await live.waitFor(90);
    assert.equal(live.gaps.length, 1, 'the loss is announced once');
    assert.equal(live.gaps[0]!.reason, 'epoch');
    const after = live.got.slice(80);
    assert.deepEqual(after.map((d) => [d.offset, d.data]), Array.from({ length: 10 }, (_, i) => [51 + i, `after-${i}`]));
    assert.ok(after.every((d) => d.epoch !== before), 'the new contents come under a new epoch');
    // A resume from before the loss continues seamlessly; one from inside the lost range is told.
    const safe = await RawClient.connect(b!.url);
    const s1 = await safe.subscribe(1, 'f.lost', { from: 41, epoch: before, credit: 100 });
    assert.deepEqual([s1.from, s1.recovered], [41, true]);
    const got = await safe.waitDelivered('f.lost', 20);
    assert.deepEqual(got.map((d) => d.data), [...Array.from({ length: 10 }, (_, i) => `first-${40 + i}`), ...Array.from({ length: 10 }, (_, i) => `after-${i}`)]);
    const lost = await RawClient.connect(a!.url);
    const s2 = await lost.subscribe(1, 'f.lost', { from: 81, epoch: before, credit: 0 });
    assert.equal(s2.recovered, false, 'a client that saw the lost offsets is told');
    // And a fresh reader, from the start, next to the one that lived through it.
    const fresh = new Recorder(a!.url, 'f.lost', { from: 1 });
    await fresh.waitFor(60);
    oneContentPerOffset(live, fresh);
    for (const c of [safe, lost]) c.close();
    for (const r of [live, fresh]) r.close();
    pub.close();
    await Promise.all([a!, b!].map((n) => n.kill('SIGTERM')));
    await sentinel.stop();
  });
});

/**
 * What readers are shown with --redis-min-replicas 1: only what a replica holds. A message whose
 * WAIT has not returned is on the primary only (a failover could take it back), so no node may
 * show it — not a live subscriber, not a catch-up, not an HTTP read. One master and one replica
 * (no Sentinel: nothing fails over here); pausing the replica holds WAIT.
 */
describe('reads under --redis-min-replicas 1', () => {
  const meta = (topic: string) => `sl:{${topic}}:m`;
  async function primaryWithReplica(): Promise<{ master: RedisServer; replica: RedisServer }> {
    const master = await startRedis();
    const replica = await startRedis({ replicaOf: master });
    await waitForReplicas(master, [replica]);
    return { master, replica };
  }
  /** Until the primary has stored offset `head` of `topic` (the script ran; its WAIT may not have returned). */
  const storedOn = (master: RedisServer, topic: string, head: number) => pollUntil(`${topic} stored up to ${head}`, async () => {
    const h = Number(await master.call('HGET', meta(topic), 'head'));
    if (h < head) notYet(`head ${h}`);
  }, { timeoutMs: 10_000, intervalMs: 10 });
  const pulled = async (url: string, topic: string) =>
    ((await api(url, `/v1/topics/${topic}/messages?from=1`)).body.messages as { offset: number; data: unknown }[]).map((m) => m.data);

  it('a message no replica holds yet is shown on no node; it appears once the replica confirms it', async () => {
    const { master, replica } = await primaryWithReplica();
    const [a, b] = await startNodes(2, master.url, ['--redis-min-replicas', '1', '--redis-timeout', '20s']);
    nodes.push(a!, b!);
    const reader = await RawClient.connect(b!.url);
    await reader.subscribe(1, 'r.dirty', { from: 1, credit: 100 });
    const writer = await RawClient.connect(a!.url);
    await writer.publish(1, 'r.dirty', 'replicated');
    await reader.waitDelivered('r.dirty', 1);

    replica.pause();
    const acked = writer.publish(2, 'r.dirty', 'unreplicated');
    await storedOn(master, 'r.dirty', 2);
    // The primary holds offset 2; WAIT holds its ACK. Node B reads the topic now:
    assert.deepEqual(await pulled(b!.url, 'r.dirty'), ['replicated'], 'an HTTP read on another node shows only what a replica holds');
    const late = await RawClient.connect(b!.url);
    const s = await late.subscribe(2, 'r.dirty', { from: 1, credit: 100 });
    assert.equal(s.head, 1, 'a new subscriber is told the replicated head');
    await late.waitDelivered('r.dirty', 1);
    // Node B's tail check looked at the quiet topic (it tried to confirm offset 2 itself, and
    // could not while the replica is paused); a read after that still shows only offset 1.
    await pollUntil('node B to look at the topic', async () => {
      if (Number(await master.call('HGET', meta('r.dirty'), 'probe')) < 1) notYet('no probe yet');
    }, { timeoutMs: 10_000, intervalMs: 20 });
    assert.deepEqual(await pulled(b!.url, 'r.dirty'), ['replicated']);
    assert.deepEqual([reader, late].map((c) => c.delivered('r.dirty').map((d) => d.data)), [['replicated'], ['replicated']]);

    replica.resume();
    assert.equal((await acked).offset, 2);
    for (const c of [reader, late]) assert.deepEqual((await c.waitDelivered('r.dirty', 2)).map((d) => [d.offset, d.data]), [[1, 'replicated'], [2, 'unreplicated']]);
    assert.deepEqual(await pulled(b!.url, 'r.dirty'), ['replicated', 'unreplicated']);
    for (const c of [reader, late, writer]) c.close();
    await Promise.all([a!, b!].map((n) => n.kill('SIGTERM')));
    await Promise.all([master.stop(), replica.stop()]);
  });

  it('the appending node dies while WAIT holds: another node confirms the message, and its subscriber gets it without another publish', async () => {
    const { master, replica } = await primaryWithReplica();
    const [a, b] = await startNodes(2, master.url, ['--redis-min-replicas', '1', '--redis-timeout', '20s']);
    nodes.push(a!, b!);
    const reader = new Recorder(b!.url, 'r.orphan', { from: 1 });
    await reader.sub.ready;
    const writer = await RawClient.connect(a!.url);
    await writer.publish(1, 'r.orphan', 'first');
    await reader.waitFor(1);

    replica.pause();
    writer.publish(2, 'r.orphan', 'orphan').catch(() => undefined); // its node dies before the ACK
    await storedOn(master, 'r.orphan', 2);
    await a!.kill('SIGKILL');
    replica.resume();
    await reader.waitFor(2, 10_000);
    assert.deepEqual(reader.got.map((d) => [d.offset, d.data]), [[1, 'first'], [2, 'orphan']]);
    assert.deepEqual(reader.gaps, []);
    assert.equal(await master.call('HGET', meta('r.orphan'), 'acked'), '2', 'node B raised the watermark');
    reader.close();
    writer.close();
    await b!.kill('SIGTERM');
    await Promise.all([master.stop(), replica.stop()]);
  });
});
