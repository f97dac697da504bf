/**
 * Several subscriptions of one topic on one client (feed.ts): one SUB on the wire, every message
 * to each, credit paced by the slowest, the last unsubscribe sends UNSUB. Against FakeServer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createClient } from '../src/client.js';
import type { Message } from '../src/subscription.js';
import { FakeClock, FakeServer, flush } from './helpers/fake-server.js';

async function setup() {
  const server = new FakeServer();
  const client = createClient({ url: 'http://gateway.test:9400', transport: server.factory, clock: new FakeClock() });
  void client.connect();
  await flush();
  server.last.welcome();
  await flush();
  return { server, client, c: server.last };
}

const msgs = (first: number, n: number) => ({ type: 15 as const, topic: 't', first, messages: Array.from({ length: n }, (_, i) => ({ data: first + i, ts: 0 })) });

describe('several subscriptions of one topic', () => {
  it('share one SUB; each gets every message; unsubscribing one keeps the other; the last sends UNSUB', async () => {
    const { client, c } = await setup();
    const a: number[] = [];
    const b: number[] = [];
    const subA = client.subscribe('t', (m: Message<number>) => { a.push(m.data); }, { from: 1 });
    const subB = client.subscribe('t', (m: Message<number>) => { b.push(m.data); });
    await flush();
    assert.equal(c.all(3).length, 1, 'one SUB on the wire');
    c.reply({ type: 4, subId: c.take(3).subId, epoch: 'E', head: 0, from: 1, recovered: true });
    assert.equal((await subA.ready).from, 1);
    assert.equal((await subB.ready).from, 1);
    c.reply(msgs(1, 3));
    await flush();
    assert.deepEqual(a, [1, 2, 3]);
    assert.deepEqual(b, [1, 2, 3]);
    await subA.unsubscribe();
    assert.equal(subA.state, 'closed');
    assert.equal(subB.state, 'subscribed');
    assert.equal(c.all(5).length, 0, 'still one handler: no UNSUB');
    c.reply(msgs(4, 1));
    await flush();
    assert.deepEqual(a, [1, 2, 3]);
    assert.deepEqual(b, [1, 2, 3, 4]);
    await subB.unsubscribe();
    assert.equal(c.all(5).length, 1, 'the last one leaves: UNSUB');
    // A new subscription after that is a new wire subscription.
    client.subscribe('t');
    await flush();
    assert.equal(c.all(3).length, 2);
  });

  it('a subscription joining a running topic starts at the next message and is ready at once', async () => {
    const { client, c } = await setup();
    const first: number[] = [];
    client.subscribe('t', (m: Message<number>) => { first.push(m.data); }, { from: 1 });
    await flush();
    c.reply({ type: 4, subId: c.take(3).subId, epoch: 'E', head: 2, from: 1, recovered: true });
    c.reply(msgs(1, 2));
    await flush();
    const late = client.subscribe<number>('t', { from: 1 });
    assert.equal((await late.ready).epoch, 'E');
    assert.deepEqual(late.position, { offset: 2, epoch: 'E' });
    c.reply(msgs(3, 1));
    const got = await late[Symbol.asyncIterator]().next();
    assert.equal(got.value?.offset, 3);
    assert.deepEqual(first, [1, 2, 3]);
  });

  it('credit follows the slowest: a stalled iterator holds at most its window, others get what it allows', async () => {
    const { client, c } = await setup();
    const fast: number[] = [];
    client.subscribe('t', (m: Message<number>) => { fast.push(m.data); }, { window: 4, from: 1 });
    const slow = client.subscribe<number>('t', { window: 4 }); // iterator form, never pulled
    await flush();
    const sub = c.take(3);
    assert.equal(sub.credit, 4);
    c.reply({ type: 4, subId: sub.subId, epoch: 'E', head: 0, from: 1, recovered: true });
    c.reply(msgs(1, 4));
    await flush();
    assert.deepEqual(fast, [1, 2, 3, 4]);
    assert.equal(slow.held, 4);
    assert.equal(c.all(7).length, 0, 'no credit while the slowest holds its window');
    // The slow one consumes two (pull 3: the first two are returned by the pulls after them).
    const it = slow[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) await it.next();
    assert.equal(slow.held, 2);
    const credit = c.all(7);
    assert.equal(credit.length, 1);
    assert.equal(credit[0]!.n, 2, 'window 4 − held 2 by the slowest');
  });

  it('a refusal ends every subscription of the topic', async () => {
    const { client, c } = await setup();
    const a = client.subscribe('t');
    const b = client.subscribe('t');
    await flush();
    c.reply({ type: 11, id: c.take(3).subId, code: 'forbidden', message: 'no', re: 3 });
    await assert.rejects(a.ready, (e: Error & { code: string }) => e.code === 'forbidden');
    await assert.rejects(b.ready, (e: Error & { code: string }) => e.code === 'forbidden');
    assert.equal(a.state, 'closed');
    assert.equal(b.state, 'closed');
  });

  it('the saved position is where every subscription got to', async () => {
    const saved = new Map<string, { offset: number; epoch: string }>();
    const server = new FakeServer();
    const client = createClient({
      url: 'http://gateway.test:9400', transport: server.factory, clock: new FakeClock(),
      resume: { get: (t) => saved.get(t), set: (t, p) => { saved.set(t, p); }, delete: (t) => { saved.delete(t); } },
    });
    void client.connect();
    await flush();
    server.last.welcome();
    const c = server.last;
    client.subscribe('t', () => undefined, { from: 1 });
    const slow = client.subscribe<number>('t');
    await flush();
    c.reply({ type: 4, subId: c.take(3).subId, epoch: 'E', head: 0, from: 1, recovered: true });
    c.reply(msgs(1, 3));
    await flush();
    assert.equal(saved.get('t'), undefined, 'the iterator consumed nothing yet');
    const it = slow[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    assert.deepEqual(saved.get('t'), { offset: 1, epoch: 'E' });
    await slow.unsubscribe();
    assert.deepEqual(saved.get('t'), { offset: 3, epoch: 'E' }, 'the one left consumed 3');
  });
});
