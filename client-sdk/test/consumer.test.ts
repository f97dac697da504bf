/**
 * Consumers (consumer-group members) against the scripted peer: what goes on the wire for each
 * lease — acks batched per turn, nacks on throw, nothing for a lease the connection no longer
 * holds — how credit follows the window across a reconnect, and every state change.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createClient } from '../src/client.js';
import type { ConsumerMessage, ConsumerStateChange, LostEvent } from '../src/consumer.js';
import type { SluiceError } from '../src/errors.js';
import type { LeaseFrame } from '../src/protocol/frames.js';
import { FakeClock, FakeServer, flush, type FakeConnection } from './helpers/fake-server.js';

function setup() {
  const server = new FakeServer();
  const clock = new FakeClock();
  const client = createClient({ url: 'http://gateway.test:9400', transport: server.factory, clock, backoff: () => 100 });
  return { server, clock, client };
}

/** Connects as a 1.2 gateway (one that speaks consumer groups) and answers the consumer's SUB. */
async function joined(env: ReturnType<typeof setup>, epoch = 'E1'): Promise<{ c: FakeConnection; sub: Extract<FakeConnection['received'][number], { type: 3 }> }> {
  await flush();
  const c = env.server.last;
  c.welcome({ protocol: '1.2' });
  await flush();
  const sub = c.take(3);
  c.reply({ type: 4, subId: sub.subId, epoch, head: 0, from: 1, recovered: true });
  await flush();
  return { c, sub };
}

function lease(offset: number, attempt = 1, data: unknown = offset, extra: Partial<LeaseFrame['message']> = {}): LeaseFrame {
  return { type: 18, topic: 'jobs', offset, attempt, message: { data, ts: 1000 + offset, ...extra } };
}

/** A handler whose calls finish when the test says so. */
function controlled() {
  const running = new Map<number, { msg: ConsumerMessage; resolve(): void; reject(err: Error): void }>();
  const handler = (msg: ConsumerMessage) => new Promise<void>((resolve, reject) => { running.set(msg.offset, { msg, resolve, reject }); });
  return { running, handler };
}

const acked = (c: FakeConnection) => c.all(16).map((f) => f.offsets);

describe('consume', () => {
  it('joins the group with its window as credit; runs at most `concurrency` handlers; exposes every field', async () => {
    const env = setup();
    const { running, handler } = controlled();
    const consumer = env.client.consume('jobs', 'workers', handler, { concurrency: 2, from: 1 });
    const { c, sub } = await joined(env);
    assert.deepEqual(sub, { type: 3, subId: sub.subId, topic: 'jobs', credit: 4, group: 'workers', from: 1 }, 'window: 2 × concurrency');
    assert.equal(consumer.state, 'subscribed');
    assert.deepEqual(await consumer.ready, { epoch: 'E1', head: 0, from: 1, recovered: true });
    for (let o = 1; o <= 4; o++) c.reply(lease(o, o === 3 ? 2 : 1, { n: o }, o === 3 ? { headers: { trace: 't' }, orderingKey: 'k' } : {}));
    assert.deepEqual([...running.keys()], [1, 2], 'two at a time');
    assert.equal(consumer.held, 4);
    running.get(1)!.resolve();
    await flush();
    assert.deepEqual([...running.keys()], [1, 2, 3], 'the next one starts as one finishes');
    const m = running.get(3)!.msg;
    assert.deepEqual(
      { topic: m.topic, group: m.group, offset: m.offset, epoch: m.epoch, attempt: m.attempt, data: m.data, ts: m.ts, headers: m.headers, orderingKey: m.orderingKey },
      { topic: 'jobs', group: 'workers', offset: 3, epoch: 'E1', attempt: 2, data: { n: 3 }, ts: 1003, headers: { trace: 't' }, orderingKey: 'k' },
    );
    assert.equal(running.get(2)!.msg.orderingKey, undefined);
    assert.deepEqual(c.all(7), [], 'acks free credit on the gateway: no CREDIT frames');
    env.client.close();
  });

  it('acks when the handler resolves, batching the acks of one turn; nacks (the group backoff) when it throws', async () => {
    const env = setup();
    const { running, handler } = controlled();
    const errors: SluiceError[] = [];
    const consumer = env.client.consume('jobs', 'w', handler, { concurrency: 3 });
    consumer.on('error', (e) => errors.push(e));
    const { c } = await joined(env);
    for (let o = 1; o <= 3; o++) c.reply(lease(o));
    running.get(1)!.resolve();
    running.get(3)!.resolve();
    await flush();
    assert.deepEqual(acked(c), [[1, 3]], 'one GROUP_ACK for both');
    running.get(2)!.reject(new Error('db down'));
    await flush();
    assert.deepEqual(c.all(17), [{ type: 17, subId: consumer.id, offset: 2, reason: 'db down' }], 'no delay: the group decides');
    assert.deepEqual(errors.map((e) => [e.code, e.message]), [['handler', 'consumer handler threw: db down']]);
    assert.equal(consumer.held, 0);
    // A synchronous handler that throws is nacked too; one that returns is acked.
    env.client.close();
    const env2 = setup();
    const sync = env2.client.consume('jobs', 'w', (msg) => { if (msg.offset === 2) throw new Error('bad'); });
    const { c: c2 } = await joined(env2);
    c2.reply(lease(1));
    c2.reply(lease(2));
    await flush();
    assert.deepEqual(acked(c2), [[1]]);
    assert.deepEqual(c2.all(17).map((f) => f.offset), [2]);
    assert.equal(sync.held, 0);
    env2.client.close();
  });

  it('a handler may settle its message itself: nack with a delay, and the automatic ack is skipped', async () => {
    const env = setup();
    env.client.consume('jobs', 'w', (msg) => {
      assert.equal(msg.nack({ delay: 250, reason: 'later' }), true);
      assert.equal(msg.ack(), false, 'settled already');
    });
    const { c } = await joined(env);
    c.reply(lease(7));
    await flush();
    assert.deepEqual(c.all(17).map((f) => [f.offset, f.delay, f.reason]), [[7, 250, 'later']]);
    assert.deepEqual(acked(c), []);
    env.client.close();
  });

  it('not-leased is "handled elsewhere": a lost event, not an error, and the consumer goes on', async () => {
    const env = setup();
    const lost: LostEvent[] = [];
    const errors: SluiceError[] = [];
    const consumer = env.client.consume('jobs', 'w', () => undefined);
    consumer.on('lost', (e) => lost.push(e));
    consumer.on('error', (e) => errors.push(e));
    const { c } = await joined(env);
    c.reply(lease(1));
    await flush();
    assert.deepEqual(acked(c), [[1]]);
    // The lease had expired and gone to another member: the gateway refuses the ack.
    c.reply({ type: 11, id: consumer.id, code: 'not-leased', message: 'offsets 1 are not leased to this member', re: 16 });
    c.reply({ type: 11, id: consumer.id, code: 'not-leased', message: 'offset 1 is not leased to you', re: 17 });
    assert.deepEqual(lost.map((e) => e.reason === 'not-leased' && [e.op, e.error.code]), [['ack', 'not-leased'], ['nack', 'not-leased']]);
    assert.deepEqual(errors, []);
    assert.equal(consumer.state, 'subscribed');
    c.reply(lease(2));
    await flush();
    assert.deepEqual(acked(c), [[1], [2]]);
    env.client.close();
  });

  it('after a drop: rejoins, never acks what the old connection held, and gives its credit back as old handlers finish', async () => {
    const env = setup();
    const { running, handler } = controlled();
    const lost: LostEvent[] = [];
    const consumer = env.client.consume('jobs', 'w', handler, { concurrency: 2, window: 4 });
    consumer.on('lost', (e) => lost.push(e));
    const { c: c1 } = await joined(env);
    for (let o = 1; o <= 4; o++) c1.reply(lease(o));
    assert.deepEqual([...running.keys()], [1, 2]);
    c1.drop(1006);
    assert.equal(consumer.state, 'subscribing');
    assert.equal(consumer.held, 2, 'the queued leases (3, 4) are released: the group redelivers them');
    env.clock.advance(100);
    const { c: c2, sub } = await joined(env);
    assert.equal(sub.credit, 2, 'window 4 − 2 handlers still running from the old connection');
    // Offset 1's old handler finishes: its lease is gone, so nothing is acked; the credit comes back.
    running.get(1)!.resolve();
    await flush();
    assert.deepEqual([...acked(c1), ...acked(c2)], []);
    assert.deepEqual(lost, [{ reason: 'connection', op: 'ack', offset: 1, attempt: 1 }]);
    assert.deepEqual(c2.all(7).map((f) => f.n), [1]);
    // The group hands offset 3 to this member again later, as attempt 2: handled and acked here.
    c2.reply(lease(3, 2));
    await flush();
    assert.equal(running.get(3)!.msg.attempt, 2);
    running.get(3)!.resolve();
    await flush();
    assert.deepEqual(acked(c2), [[3]]);
    running.get(2)!.reject(new Error('late'));
    await flush();
    assert.deepEqual(c2.all(17), [], 'a nack for the old connection is not sent either');
    assert.deepEqual(lost.at(-1), { reason: 'connection', op: 'nack', offset: 2, attempt: 1 });
    assert.deepEqual(c2.all(7).map((f) => f.n), [1, 1]);
    env.client.close();
  });

  it('acks batched but not yet sent when the connection drops are reported lost', async () => {
    const env = setup();
    const lost: LostEvent[] = [];
    const consumer = env.client.consume('jobs', 'w', () => undefined);
    consumer.on('lost', (e) => lost.push(e));
    const { c } = await joined(env);
    c.reply(lease(1));
    c.drop(1006); // before the turn ends
    await flush();
    assert.deepEqual(acked(c), []);
    assert.deepEqual(lost, [{ reason: 'connection', op: 'ack', offset: 1, attempt: 1 }]);
    env.client.close();
  });

  it('a lease it still holds comes again (its ack wait ran out): done once, acknowledged once', async () => {
    const env = setup();
    const { running, handler } = controlled();
    env.client.consume('jobs', 'w', handler);
    const { c } = await joined(env);
    c.reply(lease(1, 1));
    c.reply(lease(1, 2));
    assert.deepEqual([...running.keys()], [1]);
    running.get(1)!.resolve();
    await flush();
    assert.deepEqual(acked(c), [[1]]);
    assert.equal(running.get(1)!.msg.attempt, 1, 'attempt 2 was not handled again');
    env.client.close();
  });

  it('iterator form: msg.ack() and msg.nack(); the window bounds what the gateway may lease', async () => {
    const env = setup();
    const consumer = env.client.consume<{ n: number }>('jobs', 'w', { window: 3 });
    const { c, sub } = await joined(env);
    assert.equal(sub.credit, 3);
    const it = consumer[Symbol.asyncIterator]();
    const first = it.next();
    c.reply(lease(1, 1, { n: 1 }));
    c.reply(lease(2, 1, { n: 2 }));
    const a = (await first).value as ConsumerMessage<{ n: number }>;
    assert.equal(a.data.n, 1);
    const b = (await it.next()).value as ConsumerMessage<{ n: number }>;
    assert.equal(consumer.held, 2);
    assert.equal(a.ack(), true);
    assert.equal(a.ack(), false);
    assert.equal(b.nack({ delay: 1000, reason: 'not yet' }), true);
    await flush();
    assert.deepEqual(acked(c), [[1]]);
    assert.deepEqual(c.all(17).map((f) => [f.offset, f.delay, f.reason]), [[2, 1000, 'not yet']]);
    assert.throws(() => a.nack({ delay: -1 }), /delay/);
    await it.return!();
    assert.equal(consumer.state, 'closed');
    assert.equal(c.all(5).length, 1, 'UNSUB');
    assert.throws(() => env.client.consume('jobs', 'w', () => undefined)[Symbol.asyncIterator](), /has a handler/);
    env.client.close();
  });

  it('unsubscribe() waits for running handlers and sends their acks before leaving; queued ones are released', async () => {
    const env = setup();
    const { running, handler } = controlled();
    const consumer = env.client.consume('jobs', 'w', handler);
    const { c } = await joined(env);
    c.reply(lease(1));
    c.reply(lease(2));
    const done = consumer.unsubscribe();
    assert.equal(consumer.state, 'closing');
    assert.equal(consumer.unsubscribe(), done, 'a second call waits for the same leave');
    c.reply(lease(3)); // arrives while closing: not handed out
    await flush();
    assert.equal(c.all(5).length, 0, 'still handling offset 1');
    running.get(1)!.resolve();
    await done;
    assert.deepEqual(acked(c), [[1]]);
    const frames = c.received.filter((f) => f.type === 16 || f.type === 5).map((f) => f.type);
    assert.deepEqual(frames, [16, 5], 'the ack before UNSUB');
    assert.deepEqual([...running.keys()], [1]);
    assert.equal(consumer.state, 'closed');
    env.client.close();
  });

  it('state changes: subscribing → subscribed → subscribing (drop) → subscribed → closing → closed', async () => {
    const env = setup();
    const states: ConsumerStateChange[] = [];
    const consumer = env.client.consume('jobs', 'w', () => undefined);
    consumer.on('state', (s) => states.push(s));
    const { c } = await joined(env);
    c.drop(1006);
    env.clock.advance(100);
    await joined(env);
    await consumer.unsubscribe();
    assert.deepEqual(states.map((s) => s.newState), ['subscribed', 'subscribing', 'subscribed', 'closing', 'closed']);
    env.client.close();
  });

  it('refusals: a gateway before 1.2 cannot take it; an invalid group rejects ready', async () => {
    const env = setup();
    const old = env.client.consume('jobs', 'w', () => undefined);
    await flush();
    env.server.last.welcome({ protocol: '1.1' });
    await assert.rejects(old.ready, { code: 'unsupported' });
    assert.equal(old.state, 'closed');
    assert.deepEqual(env.server.last.all(3), [], 'no SUB sent');
    env.client.close();
    const env2 = setup();
    const bad = env2.client.consume('jobs', 'no spaces', () => undefined);
    await flush();
    env2.server.last.welcome({ protocol: '1.2' });
    env2.server.last.reply({ type: 11, id: bad.id, code: 'invalid-group', message: 'a group name is …', re: 3 });
    await assert.rejects(bad.ready, { code: 'invalid-group' });
    assert.equal(bad.state, 'closed');
    env2.client.close();
  });

  it('on a connected client it joins at once; unsubscribing before SUBSCRIBED still leaves on the wire', async () => {
    const env = setup();
    void env.client.connect();
    await flush();
    env.server.last.welcome({ protocol: '1.2' });
    await flush();
    const consumer = env.client.consume('jobs', 'w', () => undefined, { window: 10 });
    const c = env.server.last;
    assert.deepEqual(c.take(3), { type: 3, subId: consumer.id, topic: 'jobs', credit: 10, group: 'w' });
    await consumer.unsubscribe();
    assert.deepEqual(c.take(5), { type: 5, subId: consumer.id });
    env.client.consume('jobs', 'w', () => undefined);
    env.client.close();
  });

  it('one subscription or consumer per topic per client', () => {
    const env = setup();
    env.client.subscribe('jobs');
    assert.throws(() => env.client.consume('jobs', 'w'), { code: 'already-subscribed' });
    env.client.consume('other', 'w');
    assert.throws(() => env.client.subscribe('other'), { code: 'already-subscribed' });
    assert.throws(() => env.client.consume('bad topic', 'w'), { code: 'invalid-topic' });
    env.client.close();
  });
});

describe('publish with an ordering key', () => {
  it('carries it in PUB; an empty or over-long one is refused before sending', async () => {
    const env = setup();
    const p = env.client.publish('jobs', { n: 1 }, { orderingKey: 'customer-7', key: 'k1' });
    await flush();
    const c = env.server.last;
    c.welcome({ protocol: '1.2' });
    await flush();
    assert.deepEqual(c.take(8), { type: 8, reqId: 1, topic: 'jobs', data: { n: 1 }, key: 'k1', orderingKey: 'customer-7' });
    c.reply({ type: 9, reqId: 1, offset: 1, duplicate: false });
    assert.deepEqual(await p, { offset: 1, duplicate: false });
    await assert.rejects(env.client.publish('jobs', 1, { orderingKey: '' }), { code: 'bad-frame' });
    await assert.rejects(env.client.publish('jobs', 1, { orderingKey: 'k'.repeat(129) }), { code: 'bad-frame' });
    env.client.close();
  });

  it('a subscriber sees it on the message', async () => {
    const env = setup();
    const got: (string | undefined)[] = [];
    env.client.subscribe('jobs', (m) => { got.push(m.orderingKey); });
    await flush();
    const c = env.server.last;
    c.welcome();
    await flush();
    c.reply({ type: 4, subId: c.take(3).subId, epoch: 'E', head: 0, from: 1, recovered: false });
    c.reply({ type: 15, topic: 'jobs', first: 1, messages: [{ data: 1, ts: 1, orderingKey: 'a' }, { data: 2, ts: 2 }] });
    await flush();
    assert.deepEqual(got, ['a', undefined]);
    env.client.close();
  });
});
