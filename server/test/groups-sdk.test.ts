/**
 * Consumer groups through the SDK (`client.consume`) on an in-process gateway: the SDK's acks,
 * nacks, credit and reconnects against the real group engine. The raw-frame behaviour is
 * groups.test.ts; here the question is whether an application using the SDK handles every
 * message exactly once (healthy members) or at least once without ever acking a lease it lost.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { createClient, type Client, type Consumer, type LostEvent, type SluiceError } from '@sluice/client';
import { createConsumer } from '@sluice/client/consumer';
import { decodeClientFrame, decodeServerFrame, FrameType } from '@sluice/client/protocol';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';

let gw: RunningServer;
const clients: Client[] = [];
before(async () => {
  gw = await startGateway();
});
after(async () => {
  for (const c of clients) c.close();
  await gw.close();
});

function client(name: string): Client {
  const c = createClient({ url: gw.url, WebSocket: WebSocket as never, client: name, backoff: () => 20 });
  clients.push(c);
  return c;
}

/** Publishes `values` with at most `inFlight` unacknowledged; returns the offsets. */
async function publishAll(c: Client, topic: string, values: unknown[], orderingKey?: (v: unknown) => string): Promise<number[]> {
  const offsets: number[] = [];
  const window: Promise<unknown>[] = [];
  for (const v of values) {
    if (window.length >= 500) await window.shift();
    window.push(c.publish(topic, v, orderingKey ? { orderingKey: orderingKey(v) } : {}).then((r) => offsets.push(r.offset)));
  }
  await Promise.all(window);
  return offsets.sort((a, b) => a - b);
}

/** What one WebSocket of a client carried: offsets leased to it, offsets it acked or nacked. */
interface SocketLog { leased: Set<number>; settled: number[] }

/** A `ws` WebSocket class that logs, per socket, the LEASE frames it receives and the GROUP_ACK / GROUP_NACK it sends. */
function recording(logs: SocketLog[]): never {
  class RecordingWebSocket extends WebSocket {
    private readonly log: SocketLog = { leased: new Set(), settled: [] };
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      logs.push(this.log);
      this.on('message', (data: Buffer) => {
        const f = decodeServerFrame(new Uint8Array(data));
        if (f.type === FrameType.LEASE) this.log.leased.add(f.offset);
      });
    }
    override send(data: Uint8Array): void {
      const f = decodeClientFrame(data);
      if (f.type === FrameType.GROUP_ACK) this.log.settled.push(...f.offsets);
      if (f.type === FrameType.GROUP_NACK) this.log.settled.push(f.offset);
      super.send(data);
    }
  }
  return RecordingWebSocket as never;
}

const floorOf = (topic: string) => gw.groups.loaded(topic)[0]?.group.floor ?? 0;
const tick = () => new Promise<void>((r) => setImmediate(r));

/** Watches a consumer's events: every `error` and `lost` must be accounted for by the test. */
function watch(c: Consumer<any>): { errors: SluiceError[]; lost: LostEvent[] } {
  const seen = { errors: [] as SluiceError[], lost: [] as LostEvent[] };
  c.on('error', (e) => seen.errors.push(e));
  c.on('lost', (e) => seen.lost.push(e));
  return seen;
}

describe('consumer groups through the SDK', () => {
  it('three members, 3,000 messages: every one handled exactly once, all acknowledged, all three worked', async () => {
    const topic = 'sdk.share';
    const N = 3_000;
    const handledBy = new Map<number, number>(); // offset → member
    const perMember = [0, 0, 0];
    let duplicates = 0;
    const members = [0, 1, 2].map((i) => {
      const c = client(`member-${i}`).consume<number>(topic, 'workers', async (msg) => {
        if (handledBy.has(msg.offset)) duplicates++;
        handledBy.set(msg.offset, i);
        perMember[i]!++;
        assert.equal(msg.data, msg.offset, 'the data published at that offset');
        await tick(); // a little asynchronous work, so handlers overlap
      }, { concurrency: 8, from: 1 });
      return { c, seen: watch(c) };
    });
    await Promise.all(members.map((m) => m.c.ready));
    const started = Date.now();
    const offsets = await publishAll(client('publisher'), topic, Array.from({ length: N }, (_, i) => i + 1));
    assert.deepEqual(offsets, Array.from({ length: N }, (_, i) => i + 1));
    await waitFor(() => floorOf(topic) === N + 1, 'the group acknowledged all 3,000', 20_000);
    const ms = Date.now() - started;
    console.log(`3,000 through 3 SDK members in ${ms} ms: ${perMember.join(' / ')}`);
    assert.equal(duplicates, 0, 'no message handled twice');
    assert.equal(handledBy.size, N, 'every message handled');
    for (const [i, n] of perMember.entries()) assert.ok(n > N / 10, `member ${i} did its share (${n})`);
    for (const m of members) {
      assert.deepEqual(m.seen.errors, []);
      assert.deepEqual(m.seen.lost, []);
      assert.equal(m.c.held, 0);
    }
    const g = gw.groups.loaded(topic)[0]!.group;
    assert.equal(g.counts.redelivered, 0);
    assert.equal(g.leases.size, 0);
    await Promise.all(members.map((m) => m.c.unsubscribe()));
  });

  it('ordering keys: one message per key at a time, in offset order, over three members', async () => {
    const topic = 'sdk.keys';
    const keys = 8;
    const active = new Set<string>();
    const order = new Map<string, number[]>();
    let overlap = 0;
    const members = [0, 1, 2].map((i) => client(`keyed-${i}`).consume<{ k: string }>(topic, 'w', async (msg) => {
      const k = msg.orderingKey!;
      assert.equal(k, msg.data.k);
      if (active.has(k)) overlap++;
      active.add(k);
      await new Promise((r) => setTimeout(r, Math.random() * 2));
      active.delete(k);
      (order.get(k) ?? order.set(k, []).get(k)!).push(msg.offset);
    }, { concurrency: 4, from: 1 }));
    await Promise.all(members.map((c) => c.ready));
    const values = Array.from({ length: 400 }, (_, i) => ({ k: `key-${i % keys}` }));
    await publishAll(client('keyed-publisher'), topic, values, (v) => (v as { k: string }).k);
    await waitFor(() => floorOf(topic) === values.length + 1, 'all acknowledged', 20_000);
    assert.equal(overlap, 0, 'never two of one key at once');
    for (const [k, offs] of order) assert.deepEqual(offs, [...offs].sort((a, b) => a - b), `${k} in offset order`);
    assert.equal([...order.values()].reduce((n, o) => n + o.length, 0), values.length);
    await Promise.all(members.map((c) => c.unsubscribe()));
  });

  it('a handler that throws: its message comes back as attempt 2 (the group backoff) and is then acknowledged', async () => {
    const topic = 'sdk.retry';
    await gw.groups.configure(topic, 'w', { backoffMs: [50] });
    const attempts: number[] = [];
    const c = client('retrier').consume(topic, 'w', (msg) => {
      attempts.push(msg.attempt);
      if (msg.attempt === 1) throw new Error('first try fails');
    }, { from: 1 });
    const seen = watch(c);
    await c.ready;
    await publishAll(client('retry-publisher'), topic, ['once']);
    await waitFor(() => floorOf(topic) === 2, 'acknowledged on the second attempt');
    assert.deepEqual(attempts, [1, 2]);
    assert.deepEqual(seen.errors.map((e) => e.code), ['handler']);
    await c.unsubscribe();
  });

  it('HTTP (createConsumer): acks between lease requests open no room that no request receives; a WebSocket member shares the group', async () => {
    const topic = 'sdk.http';
    const http = createConsumer<number>({ url: gw.url, topic, group: 'mixed', consumer: 'edge-1' });
    assert.deepEqual(await http.lease(), [], 'creates the group at the head');
    await publishAll(client('http-publisher'), topic, Array.from({ length: 20 }, (_, i) => i + 1));
    const first = await http.lease({ max: 10 });
    assert.deepEqual(first.map((m) => [m.offset, m.attempt, m.data]), Array.from({ length: 10 }, (_, i) => [i + 1, 1, i + 1]));
    assert.deepEqual((await http.ack(first.map((m) => m.offset))).filter((r) => !('ok' in r)), []);
    // No request waits now: the acks must not let the group lease the next ten to nobody.
    const second = await http.lease({ max: 10 });
    assert.deepEqual(second.map((m) => [m.offset, m.attempt]), Array.from({ length: 10 }, (_, i) => [i + 11, 1]));
    assert.equal(await second[0]!.nack({ delay: 0 }), true);
    for (const m of second.slice(1)) assert.equal(await m.ack(), true);
    // Offset 11, given back, goes to whoever asks next: here a WebSocket member.
    const got: [number, number][] = [];
    const ws = client('http-ws-member').consume(topic, 'mixed', (msg) => { got.push([msg.offset, msg.attempt]); });
    await waitFor(() => got.length === 1, 'the nacked message on the WebSocket');
    assert.deepEqual(got, [[11, 2]]);
    await waitFor(() => floorOf(topic) === 21, 'all done');
    const late = await http.ack([11]);
    assert.deepEqual(late.map((r) => ('error' in r ? r.error.code : 'ok')), ['not-leased'], 'it was no longer edge-1\'s');
    await ws.unsubscribe();
  });

  it('a member kicked mid-stream rejoins; its old leases come back after the ack wait; nothing is acked on a socket that was not leased it', async () => {
    const topic = 'sdk.kick';
    await gw.groups.configure(topic, 'w', { ackWaitMs: 500, backoffMs: [50] });
    const N = 2000;
    const handled = new Map<number, number>();
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => { release = r; });
    const sockets: SocketLog[] = [];
    const victim = createClient({ url: gw.url, WebSocket: recording(sockets), client: 'victim', backoff: () => 20 });
    const steady = createClient({ url: gw.url, WebSocket: recording(sockets), client: 'steady', backoff: () => 20 });
    clients.push(victim, steady);
    const members = [victim, steady].map((cl, i) => {
      const c = cl.consume<number>(topic, 'w', async (msg) => {
        handled.set(msg.offset, (handled.get(msg.offset) ?? 0) + 1);
        // The victim's handlers hang until it has been kicked: they finish on a dead connection.
        if (i === 0) await gate;
        else await tick();
      }, { concurrency: 4, from: 1 });
      return { c, seen: watch(c) };
    });
    await Promise.all(members.map((m) => m.c.ready));
    const published = publishAll(client('kick-publisher'), topic, Array.from({ length: N }, (_, i) => i + 1));
    await waitFor(() => members[0]!.c.held > 0, 'the victim holds leases');
    const reconnected = new Promise<void>((resolve) => {
      victim.on('state', (s) => { if (s.newState === 'connected') resolve(); });
    });
    const kicked = await api(gw.url, `/v1/admin/connections/${victim.serverInfo!.session}`, { method: 'DELETE' });
    assert.equal(kicked.status, 200);
    await reconnected;
    release!();
    await published;
    await waitFor(() => floorOf(topic) === N + 1, 'everything acknowledged', 20_000);
    assert.equal(handled.size, N, 'every message handled');
    const [v, s] = members;
    const lostOnDrop = v!.seen.lost.filter((e) => e.reason === 'connection');
    assert.ok(lostOnDrop.length > 0, 'the hung handlers settled after the kick: lost, not acked');
    for (const e of lostOnDrop) assert.ok(e.reason === 'connection' && handled.get(e.offset)! >= 2, `offset ${e.reason === 'connection' && e.offset} was handled again`);
    // The property itself, per socket: every offset acked or nacked on it was leased on it. (A
    // not-leased answer may still come when the machine is so slow that a lease outlives the
    // 500 ms ack wait: that lease was the socket's, and it is reported as lost, not an error.)
    assert.equal(sockets.length, 3, 'victim, its reconnection, steady');
    for (const [i, log] of sockets.entries()) {
      const foreign = log.settled.filter((o) => !log.leased.has(o));
      assert.deepEqual(foreign, [], `socket ${i} settled only offsets leased on it`);
    }
    for (const m of [v!, s!]) assert.deepEqual(m.seen.errors, []);
    assert.equal(v!.c.state, 'subscribed', 'the victim rejoined');
    await Promise.all(members.map((m) => m.c.unsubscribe()));
  });
});
