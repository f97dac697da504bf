/**
 * The SDK as a user meets it, against real gateways (in-process uWS, real sockets, `ws` as the
 * WebSocket): failures are visible (the cause on every state change, suspended by the deadline,
 * failed on a refused upgrade or a refused-token loop), publish timeout and abort, history, several
 * subscriptions of one topic, the HTTP publisher given a ws:// URL with headers, and the Svelte
 * store. The state machine's every branch is in client-sdk/test (fake peer, fake clock); here the
 * question is whether real runtimes and a real gateway produce what those tests assume.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import {
  createClient,
  createPublisher,
  type Client,
  type ClientOptions,
  type ConnectionError,
  type Message,
  type SluiceError,
  type StateChange,
} from '@sluice/client';
import { mintToken } from '@sluice/client/token';
import { subscriptionStore, type SubscriptionStoreValue } from '@sluice/client/svelte';
import type { RunningServer } from '../src/server.js';
import { freePort } from '../src/testing.js';
import { startGateway } from './helpers/gateway.js';
import { waitFor } from './helpers/http.js';

const SECRET = 'sdk-visible-secret-0123456789-abcdefgh';
let open: RunningServer;
let secured: RunningServer;
const clients: Client[] = [];

before(async () => {
  open = await startGateway();
  secured = await startGateway((c) => { c.auth.secret = SECRET; });
});
after(async () => {
  for (const c of clients) c.close();
  await open.close();
  await secured.close();
});

function client(url: string, options: Partial<ClientOptions> = {}): { c: Client; states: StateChange[] } {
  const c = createClient({ url, WebSocket: WebSocket as never, backoff: () => 50, ...options });
  clients.push(c);
  const states: StateChange[] = [];
  c.on('state', (s) => states.push(s));
  return { c, states };
}

/** Resolves with the first state change to `state` (rejects after `ms`). */
function reach(c: Client, state: StateChange['newState'], ms = 5000): Promise<StateChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${state} within ${ms} ms (now ${c.state})`)); }, ms);
    const off = c.on('state', (s) => {
      if (s.newState === state) { clearTimeout(timer); off(); resolve(s); }
    });
  });
}

describe('failures are visible', () => {
  it('a closed port: state events carry ECONNREFUSED; suspended by the deadline; the waiting publish rejects', async () => {
    const port = await freePort(); // nothing listens there
    const { c, states } = client(`http://127.0.0.1:${port}`, { suspendAfterMs: 600, suspendedRetryMs: 60_000 });
    const started = Date.now();
    const pub = c.publish('t', 1, { key: 'visible-1' });
    const suspended = await reach(c, 'suspended');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 600 && elapsed < 3000, `suspended after ${elapsed} ms (deadline 600 ms)`);
    const first = states.find((s) => s.newState === 'reconnecting')!;
    assert.equal(first.error?.code, 'network');
    assert.equal((first.error?.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    assert.match(first.error!.message, /ECONNREFUSED/);
    assert.equal(suspended.error?.code, 'network');
    await assert.rejects(pub, (e: SluiceError & { key: string }) => e.name === 'SuspendedError' && e.code === 'suspended' && e.key === 'visible-1');
    await assert.rejects(c.publish('t', 2), (e: SluiceError) => e.code === 'suspended', 'rejects at once while suspended');
    c.close();
  });

  it('a wrong path: the cause says 404 (not-found)', async () => {
    const { c } = client(`ws://127.0.0.1:${open.port}/v1/wrong`);
    void c.connect().catch(() => undefined);
    const s = await reach(c, 'reconnecting');
    const err = s.error as ConnectionError;
    assert.equal(err.code, 'not-found');
    assert.equal(err.status, 404);
    assert.match(err.message, /HTTP 404/);
    c.close();
  });

  it('an upgrade refused with 403 (an origin the gateway does not allow): failed, forbidden, at once', async () => {
    // A browser on another site sends its Origin; the gateway with auth on allows only its own.
    class ForeignPage extends WebSocket {
      constructor(url: string) { super(url, { origin: 'https://elsewhere.example' }); }
    }
    const { c } = client(secured.url, { WebSocket: ForeignPage as never });
    const pub = c.publish('t', 1);
    const s = await reach(c, 'failed');
    assert.equal(s.error?.code, 'forbidden');
    assert.equal((s.error?.cause as ConnectionError).status, 403);
    await assert.rejects(pub, (e: SluiceError) => e.code === 'forbidden');
  });

  it('getToken keeps returning a token the gateway refuses: the loop stops with unauthorized', async () => {
    let calls = 0;
    const bad = await mintToken({ key: 'another-secret-0123456789-abcdefghijkl', sub: 'x', caps: { '>': ['pub'] } });
    const { c, states } = client(secured.url, { getToken: () => { calls++; return bad; }, maxTokenRefusals: 3 });
    const pub = c.publish('t', 1);
    const s = await reach(c, 'failed');
    assert.equal(s.error?.code, 'unauthorized');
    assert.equal(calls, 3);
    assert.equal(states.filter((x) => x.newState === 'reconnecting' && x.code === 4101).length, 2);
    await assert.rejects(pub, (e: SluiceError) => e.code === 'unauthorized');
    assert.equal(calls, 3, 'no more attempts');
  });

  it('publish timeout and abort reject (with the key) while the gateway cannot be reached', async () => {
    const port = await freePort();
    const { c } = client(`http://127.0.0.1:${port}`);
    await assert.rejects(c.publish('t', 1, { timeout: 150, key: 'k-timeout' }), (e: SluiceError & { key: string }) => e.code === 'timeout' && e.key === 'k-timeout');
    const ac = new AbortController();
    const p = c.publish('t', 2, { signal: ac.signal });
    ac.abort(new Error('navigated away'));
    await assert.rejects(p, /navigated away/);
    assert.equal(c.queuedPublishes, 0);
    assert.equal(c.state === 'reconnecting' || c.state === 'connecting', true);
    c.close();
  });

  it('publish timeout on a live gateway: acknowledged in time, it resolves as usual', async () => {
    const { c } = client(open.url);
    assert.equal((await c.publish('timeout.ok', 1, { timeout: 5000, signal: new AbortController().signal })).offset, 1);
  });
});

describe('history, several subscriptions, publisher, svelte store', () => {
  it('history: a page of stored messages, over HTTP, from a ws:// URL', async () => {
    const { c } = client(`ws://127.0.0.1:${open.port}/v1/ws`);
    for (let i = 1; i <= 5; i++) await c.publish('hist.a', { n: i }, i === 3 ? { headers: { h: 'v' } } : {});
    await c.publish('hist.a', new Uint8Array([1, 2, 3]));
    const page = await c.history<{ n: number }>('hist.a', { from: 2, limit: 2 });
    assert.deepEqual(page.messages.map((m) => [m.offset, m.data.n]), [[2, 2], [3, 3]]);
    assert.deepEqual(page.messages[1]!.headers, { h: 'v' });
    assert.equal(page.messages[0]!.topic, 'hist.a');
    assert.equal(page.messages[0]!.epoch, page.epoch);
    assert.equal(page.next, 4);
    assert.equal(page.head, 6);
    const rest = await c.history('hist.a', { from: page.next });
    assert.deepEqual(rest.messages.map((m) => m.offset), [4, 5, 6]);
    assert.deepEqual(rest.messages[2]!.data, new Uint8Array([1, 2, 3]));
    await assert.rejects(c.history('bad topic'), (e: SluiceError) => e.code === 'invalid-topic');
  });

  it('history needs the history capability: refused with forbidden', async () => {
    const token = await mintToken({ key: SECRET, sub: 'h', caps: { 'hist.>': ['pub', 'sub'] } });
    const { c } = client(secured.url, { token });
    await assert.rejects(c.history('hist.b'), (e: SluiceError) => e.code === 'forbidden');
  });

  it('two handlers on one topic both receive every message; unsubscribing one keeps the other', async () => {
    const { c } = client(open.url);
    const a: number[] = [];
    const b: number[] = [];
    const subA = c.subscribe('multi.t', (m: Message<number>) => { a.push(m.data); }, { from: 1 });
    const subB = c.subscribe('multi.t', (m: Message<number>) => { b.push(m.data); });
    await Promise.all([subA.ready, subB.ready]);
    const pub = client(open.url).c;
    for (let i = 1; i <= 20; i++) await pub.publish('multi.t', i);
    await waitFor(() => a.length === 20 && b.length === 20, 'both handlers got all 20');
    assert.deepEqual(a, b);
    await subA.unsubscribe();
    for (let i = 21; i <= 30; i++) await pub.publish('multi.t', i);
    await waitFor(() => b.length === 30, 'the other handler goes on');
    assert.equal(a.length, 20);
    assert.deepEqual(b, Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('createPublisher with a ws:// URL, sending headers', async () => {
    const { c } = client(open.url);
    const got: Message[] = [];
    const sub = c.subscribe('pubhdr.t', (m) => { got.push(m); }, { from: 1 });
    await sub.ready;
    const publisher = createPublisher({ url: `ws://127.0.0.1:${open.port}/v1/ws` });
    const r = await publisher.publish('pubhdr.t', { x: 1 }, { headers: { 'trace-id': 'abc' }, key: 'hdr-1' });
    assert.deepEqual({ offset: r.offset, duplicate: r.duplicate }, { offset: 1, duplicate: false });
    await waitFor(() => got.length === 1, 'the subscriber got it');
    assert.deepEqual(got[0]!.headers, { 'trace-id': 'abc' });
    assert.deepEqual(got[0]!.data, { x: 1 });
  });

  it('the svelte store: messages and state of a real subscription', async () => {
    const { c } = client(open.url);
    const store = subscriptionStore<number>(c, 'store.t', { from: 1, keep: 3 });
    let value: SubscriptionStoreValue<number> | undefined;
    const stop = store.subscribe((v) => { value = v; });
    for (let i = 1; i <= 5; i++) await c.publish('store.t', i);
    await waitFor(() => value?.last?.data === 5, 'the store saw offset 5');
    assert.deepEqual(value!.messages.map((m) => m.data), [3, 4, 5]);
    assert.equal(value!.state, 'subscribed');
    assert.equal(value!.connection, 'connected');
    stop();
    assert.equal(value!.state, 'subscribed', 'no update after the last subscriber left');
  });
});
