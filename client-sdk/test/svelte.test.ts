/**
 * `@sluice/client/svelte`: the store against Svelte's own store functions (`get`, `derived`, from
 * the console's svelte), and its lifetime, pause and connection state against FakeServer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { derived, get } from 'svelte/store';
import { createClient } from '../src/client.js';
import { subscriptionStore, type SubscriptionStoreValue } from '../src/svelte.js';
import { FakeClock, FakeServer, flush } from './helpers/fake-server.js';

async function setup() {
  const server = new FakeServer();
  const clock = new FakeClock();
  const client = createClient({ url: 'http://gateway.test:9400', transport: server.factory, clock, backoff: () => 100 });
  void client.connect();
  await flush();
  server.last.welcome();
  await flush();
  return { server, client, clock, c: server.last };
}

const msgs = (first: number, n: number) => ({ type: 15 as const, topic: 't', first, messages: Array.from({ length: n }, (_, i) => ({ data: first + i, ts: 0 })) });

describe('svelte store', () => {
  it('follows the store contract: lazy start, value at once, derived and get work, the last unsubscribe ends the subscription', async () => {
    const { client, c } = await setup();
    const store = subscriptionStore<number>(client, 't', { keep: 3, from: 1 });
    await flush();
    assert.equal(c.all(3).length, 0, 'no subscriber, no subscription');
    const seen: SubscriptionStoreValue<number>[] = [];
    const stop = store.subscribe((v) => seen.push(v));
    assert.equal(seen.length, 1, 'run is called at once');
    await flush();
    const sub = c.take(3);
    assert.equal(sub.from, 1);
    c.reply({ type: 4, subId: sub.subId, epoch: 'E', head: 0, from: 1, recovered: true });
    c.reply(msgs(1, 5));
    await flush();
    const v = get(store);
    assert.deepEqual(v.messages.map((m) => m.data), [3, 4, 5], 'keeps the last 3, oldest first');
    assert.equal(v.last?.offset, 5);
    assert.equal(v.state, 'subscribed');
    assert.equal(v.connection, 'connected');
    const lastData = derived(store, ($s) => $s.last?.data);
    assert.equal(get(lastData), 5);
    assert.equal(c.all(5).length, 0, 'get() subscribed and left, but a subscriber remains');
    stop();
    assert.equal(c.all(5).length, 1, 'the last subscriber left: UNSUB');
    assert.equal(seen.at(-1)?.state, 'subscribed', 'nothing is sent to a subscriber that left');
  });

  it('pause withholds credit; resume goes on', async () => {
    const { client, c } = await setup();
    const store = subscriptionStore<number>(client, 't', { window: 4, from: 1 });
    const stop = store.subscribe(() => undefined);
    await flush();
    const sub = c.take(3);
    c.reply({ type: 4, subId: sub.subId, epoch: 'E', head: 0, from: 1, recovered: true });
    store.pause();
    assert.equal(get(store).paused, true);
    c.reply(msgs(1, 4));
    await flush();
    assert.equal(get(store).messages.length, 0, 'paused: nothing consumed');
    assert.equal(c.all(7).length, 0, 'no credit while paused');
    store.resume();
    await flush();
    assert.deepEqual(get(store).messages.map((m) => m.data), [1, 2, 3, 4]);
    assert.equal(c.all(7).reduce((n, f) => n + f.n, 0), 4, 'credit back once consumed');
    stop();
  });

  it('carries the connection state and its cause; a WELCOME clears the error', async () => {
    const { client, c, clock, server } = await setup();
    const store = subscriptionStore(client, 't');
    const stop = store.subscribe(() => undefined);
    await flush();
    c.drop(1006, 'connect ECONNREFUSED', new Error('connect ECONNREFUSED 127.0.0.1:9400'));
    assert.equal(get(store).connection, 'reconnecting');
    assert.equal(get(store).error?.code, 'network');
    assert.equal(get(store).state, 'subscribing');
    clock.advance(100);
    await flush();
    server.last.welcome();
    assert.equal(get(store).connection, 'connected');
    assert.equal(get(store).error, undefined);
    stop();
  });

  it('two stores on one topic share the wire subscription', async () => {
    const { client, c } = await setup();
    const a = subscriptionStore<number>(client, 't', { from: 1 });
    const b = subscriptionStore<number>(client, 't');
    const stopA = a.subscribe(() => undefined);
    const stopB = b.subscribe(() => undefined);
    await flush();
    assert.equal(c.all(3).length, 1);
    const sub = c.take(3);
    c.reply({ type: 4, subId: sub.subId, epoch: 'E', head: 0, from: 1, recovered: true });
    c.reply(msgs(1, 2));
    await flush();
    assert.deepEqual(get(a).messages.map((m) => m.data), [1, 2]);
    assert.deepEqual(get(b).messages.map((m) => m.data), [1, 2]);
    stopA();
    c.reply(msgs(3, 1));
    await flush();
    assert.equal(get(b).last?.data, 3);
    stopB();
  });
});
