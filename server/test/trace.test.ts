/**
 * Message tracing: a traced message's journey as the admin API shows it — received, stored,
 * delivered to each subscriber (live and catch-up), leased to a group member, nacked, leased
 * again, acknowledged — in order; untraced messages leave nothing; a fan-out to many subscribers is
 * one event, and a node keeps a bounded number of events per message.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FrameType, type Admin } from '@sluice/client/protocol';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

let gw: RunningServer;
before(async () => {
  gw = await startGateway((c) => {
    c.groups.backoffMs = [0];
    c.trace.maxEvents = 20;
  });
});
after(() => gw.close());

const traceOf = async (topic: string, offset: number) => (await api<Admin.Trace>(gw.url, `/v1/admin/topics/${topic}/messages/${offset}/trace`)).body;

describe('message tracing', () => {
  it('a traced message delivered to 3 subscribers and a group member that nacks once shows every step in order', async () => {
    const topic = 'tr.journey';
    const live = [await RawClient.connect(gw.url), await RawClient.connect(gw.url)];
    for (const c of live) await c.subscribe(1, topic, { credit: 10 });
    const member = await RawClient.connect(gw.url);
    member.send({ type: FrameType.SUB, subId: 1, topic, group: 'w', credit: 1 });
    await member.next((f) => f.type === FrameType.SUBSCRIBED);

    const pub = await RawClient.connect(gw.url);
    pub.send({ type: FrameType.PUB, reqId: 1, topic, data: { order: 7 }, trace: true });
    const ack = await pub.next((f) => f.type === FrameType.ACK);
    assert.ok(ack.type === FrameType.ACK && ack.offset === 1);
    // An untraced one beside it.
    await pub.publish(2, topic, { order: 8 });

    for (const c of live) await c.waitDelivered(topic, 2);
    // The group member nacks its first lease, then acknowledges the redelivery.
    const lease = await member.next((f) => f.type === FrameType.LEASE && f.offset === 1);
    assert.ok(lease.type === FrameType.LEASE && lease.attempt === 1);
    member.send({ type: FrameType.GROUP_NACK, subId: 1, offset: 1, reason: 'not yet' });
    const again = await member.next((f) => f.type === FrameType.LEASE && f.offset === 1 && f.attempt === 2);
    assert.ok(again);
    member.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [1] });
    // A third subscriber catches up from offset 1 later.
    const late = await RawClient.connect(gw.url);
    await late.subscribe(1, topic, { from: 1, credit: 10 });
    await late.waitDelivered(topic, 2);

    let t!: Admin.Trace;
    await waitFor(async () => (t = await traceOf(topic, 1)).events.some((e) => e.kind === 'acked'), 'the ack in the trace');
    const steps = t.events.map((e) => `${e.kind}${e.path ? `:${e.path}` : ''}${e.attempt ? `#${e.attempt}` : ''}`);
    assert.deepEqual(steps, ['received', 'stored', 'delivered:live', 'leased#1', 'nacked#1', 'leased#2', 'acked#2', 'delivered:catch-up']);
    const received = t.events.find((e) => e.kind === 'received');
    const stored = t.events.find((e) => e.kind === 'stored');
    const fanout = t.events.find((e) => e.path === 'live');
    assert.deepEqual([received!.transport, received!.client], ['ws', 'anonymous']);
    assert.equal(typeof stored!.latencyMs, 'number');
    assert.equal(fanout!.subscribers, 2, 'one event for the live fan-out, with the count');
    assert.equal(fanout!.connections!.length, 2);
    assert.equal(t.events.find((e) => e.kind === 'nacked')!.reason, 'not yet');
    assert.ok(t.events.every((e) => e.node === gw.nodes.id));
    for (let i = 1; i < t.events.length; i++) assert.ok(t.events[i]!.at >= t.events[i - 1]!.at, 'in time order');
    // The untraced message left nothing.
    assert.deepEqual((await traceOf(topic, 2)).events, []);
    // Readers see that it is traced (the console links it).
    const pulled = await api(gw.url, `/v1/topics/${topic}/messages?from=1`);
    assert.deepEqual(pulled.body.messages.map((m: { traced?: boolean }) => m.traced), [true, undefined]);
    for (const c of [...live, member, pub, late]) c.close();
  });

  it('over HTTP (Sluice-Trace: 1, a batch entry\'s trace) and through an event stream', async () => {
    const topic = 'tr.http';
    const one = await api(gw.url, `/v1/topics/${topic}/messages`, { json: 1, headers: { 'sluice-trace': '1' } });
    assert.equal(one.status, 201);
    const batch = await api(gw.url, '/v1/publish', { json: { messages: [{ topic, data: 2, trace: true }, { topic, data: 3 }] } });
    assert.equal(batch.status, 200);
    const bad = await api(gw.url, `/v1/topics/${topic}/messages`, { json: 1, headers: { 'sluice-trace': 'yes' } });
    assert.deepEqual([bad.status, bad.body.error.code], [400, 'bad-request']);
    const ctl = new AbortController();
    const res = await fetch(`${gw.url}/v1/topics/${topic}/events?from=1`, { signal: ctl.signal });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('id: 3')) text += new TextDecoder().decode((await reader.read()).value);
    ctl.abort();
    const kinds = (t: Admin.Trace) => t.events.map((e) => `${e.kind}${e.transport ? `:${e.transport}` : ''}${e.path ? `:${e.path}` : ''}`);
    await waitFor(async () => (await traceOf(topic, 2)).events.length === 3, 'the stream delivery recorded');
    assert.deepEqual(kinds(await traceOf(topic, 1)), ['received:http', 'stored', 'delivered:sse']);
    assert.deepEqual(kinds(await traceOf(topic, 2)), ['received:batch', 'stored', 'delivered:sse']);
    assert.deepEqual((await traceOf(topic, 3)).events, []);
  });

  it('bounded: 60 subscribers catching up record at most maxEvents events, the rest counted', async () => {
    const topic = 'tr.many';
    const pub = await RawClient.connect(gw.url);
    pub.send({ type: FrameType.PUB, reqId: 1, topic, data: 'x', trace: true });
    await pub.next((f) => f.type === FrameType.ACK);
    const subs = await Promise.all(Array.from({ length: 60 }, () => RawClient.connect(gw.url)));
    for (const c of subs) await c.subscribe(1, topic, { from: 1, credit: 5 });
    for (const c of subs) await c.waitDelivered(topic, 1);
    const t = await traceOf(topic, 1);
    assert.equal(t.events.length, 20, 'maxEvents per node');
    assert.equal(t.dropped.delivered, 60 + 2 - 20, 'the rest counted by kind');
    for (const c of [pub, ...subs]) c.close();
  });
  it('bounded: a traced message delivered live to 1,000 subscribers is one delivery event of a few hundred bytes', async (ctx) => {
    const topic = 'tr.fanout';
    const subs: RawClient[] = [];
    // In rounds of 50: the gateway takes at most 64 connections from one address before HELLO.
    for (let i = 0; i < 1000; i += 50) {
      subs.push(...await Promise.all(Array.from({ length: 50 }, async () => {
        const c = await RawClient.connect(gw.url);
        await c.subscribe(1, topic, { credit: 5 });
        return c;
      })));
    }
    const pub = await RawClient.connect(gw.url);
    pub.send({ type: FrameType.PUB, reqId: 1, topic, data: 'x', trace: true });
    await pub.next((f) => f.type === FrameType.ACK);
    for (const c of subs) await c.waitDelivered(topic, 1);
    const t = await traceOf(topic, 1);
    const delivered = t.events.filter((e) => e.kind === 'delivered');
    assert.equal(delivered.length, 1, 'one event for the whole fan-out');
    assert.equal(delivered[0]!.subscribers, 1000);
    assert.ok(delivered[0]!.connections!.length <= 10, 'a sample of connections, not all of them');
    const bytes = JSON.stringify(t).length;
    assert.ok(bytes < 2048, `the whole trace is ${bytes} bytes`);
    ctx.diagnostic(`trace of a message delivered to 1,000 live subscribers: ${t.events.length} events, ${bytes} bytes of JSON`);
    for (const c of [pub, ...subs]) c.close();
  });
});
