/**
 * The client's state machine and bookkeeping against a scripted in-process peer (FakeServer)
 * and manual time (FakeClock): every transition, retry and credit decision is deterministic.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pack } from 'msgpackr';
import { createClient, type ClientOptions, type StateChange } from '../src/client.js';
import { CloseCode } from '../src/protocol/codes.js';
import { PROTOCOL_VERSION } from '../src/protocol/frames.js';
import { ClosedError, QueueFullError, SluiceError } from '../src/errors.js';
import { webStorageResume, type StorageLike } from '../src/resume.js';
import type { GapEvent, Message } from '../src/subscription.js';
import { FakeClock, FakeServer, flush, type FakeConnection } from './helpers/fake-server.js';

function setup(options: Partial<ClientOptions> = {}) {
  const server = new FakeServer();
  const clock = new FakeClock();
  const states: StateChange[] = [];
  const client = createClient({
    url: 'http://gateway.test:9400',
    transport: server.factory,
    clock,
    backoff: (attempt) => 100 * (attempt + 1),
    ...options,
  });
  client.on('state', (s) => states.push(s));
  return { server, clock, client, states };
}

async function connected(env: ReturnType<typeof setup>, welcome: Parameters<FakeConnection['welcome']>[0] = {}) {
  await flush();
  env.server.last.welcome(welcome);
  await flush();
  assert.equal(env.client.state, 'connected');
  return env.server.last;
}

describe('client state machine', () => {
  it('idle until first use, then connecting → connected', async () => {
    const env = setup();
    assert.equal(env.client.state, 'idle');
    assert.equal(env.server.connections.length, 0);
    const p = env.client.connect();
    assert.equal(env.client.state, 'connecting');
    await flush();
    assert.equal(env.server.last.url, 'ws://gateway.test:9400/v1/ws');
    env.server.last.welcome();
    await p;
    assert.deepEqual(env.states.map((s) => s.newState), ['connecting', 'connected']);
  });

  it('reconnects with backoff after a drop and reports the reason', async () => {
    const env = setup();
    void env.client.connect();
    const c1 = await connected(env);
    c1.drop(1006, 'network gone');
    assert.equal(env.client.state, 'reconnecting');
    const { error, ...last } = env.client.lastDisconnect!;
    assert.deepEqual(last, { code: 1006, reason: 'network gone' });
    assert.equal(error?.code, 'network');
    const { error: cause, ...change } = env.states.at(-1)!;
    assert.deepEqual(change, { oldState: 'connected', newState: 'reconnecting', code: 1006, reason: 'network gone' });
    assert.equal(cause, error, 'the state event carries the cause');
    env.clock.advance(99);
    assert.equal(env.server.connections.length, 1, 'waits for the backoff');
    env.clock.advance(1);
    await flush();
    assert.equal(env.server.connections.length, 2);
    await connected(env);
    // A second drop right after: the backoff restarted from attempt 0 at WELCOME.
    env.server.last.drop(1001, 'going away');
    env.clock.advance(100);
    await flush();
    assert.equal(env.server.connections.length, 3);
  });

  it('backs off further on each failed attempt', async () => {
    const env = setup();
    void env.client.connect();
    await flush();
    env.server.last.drop(1006);
    env.clock.advance(100);
    await flush();
    env.server.last.drop(1006);
    env.clock.advance(199);
    assert.equal(env.server.connections.length, 2);
    env.clock.advance(1);
    await flush();
    assert.equal(env.server.connections.length, 3);
  });

  it('a terminal close code fails the client and rejects pending publishes', async () => {
    const env = setup();
    const p = env.client.publish('t', 1);
    const sub = env.client.subscribe('s');
    const it = sub[Symbol.asyncIterator]().next();
    await connected(env);
    env.server.last.drop(4003, 'forbidden');
    assert.equal(env.client.state, 'failed');
    assert.equal(env.states.at(-1)?.error?.code, 'forbidden');
    await assert.rejects(p, (err: SluiceError) => err.code === 'forbidden');
    await assert.rejects(it, (err: SluiceError) => err.code === 'forbidden', 'an iterator of a failed client throws the cause');
    await assert.rejects(env.client.publish('t', 2), (err: SluiceError) => err.code === 'forbidden');
    assert.equal(env.clock.pending, 0, 'no timers left behind');
  });

  it('4101 refreshes the token through getToken on the next connection', async () => {
    let n = 0;
    const env = setup({ getToken: async () => `token-${++n}` });
    void env.client.connect();
    await flush();
    assert.equal(env.server.last.welcome().token, 'token-1');
    env.server.last.drop(4101, 'token expired');
    assert.equal(env.client.state, 'reconnecting');
    env.clock.advance(100);
    await flush();
    assert.equal(env.server.last.welcome().token, 'token-2');
  });

  it('4101 without getToken is final: a static token cannot be refreshed', async () => {
    const env = setup({ token: 'static' });
    void env.client.connect().catch(() => undefined);
    await connected(env);
    env.server.last.drop(4101, 'token expired');
    assert.equal(env.client.state, 'failed');
    assert.equal(env.states.at(-1)?.error?.code, 'unauthorized');
  });

  it('pings after a silent heartbeat and reconnects when nothing answers', async () => {
    const env = setup();
    void env.client.connect();
    const c1 = await connected(env, { heartbeat: 10_000 });
    env.clock.advance(10_000);
    const ping = c1.take(12);
    env.clock.advance(4_999);
    assert.equal(env.client.state, 'connected');
    env.clock.advance(1);
    assert.equal(env.client.state, 'reconnecting');
    assert.equal(env.client.lastDisconnect?.reason, 'heartbeat timeout');
    assert.ok(ping.n > 0);
  });

  it('any frame counts as a heartbeat answer', async () => {
    const env = setup();
    void env.client.connect();
    const c1 = await connected(env, { heartbeat: 10_000 });
    env.clock.advance(10_000);
    c1.reply({ type: 13, n: c1.take(12).n });
    env.clock.advance(9_000);
    assert.equal(env.client.state, 'connected');
  });

  it('a connection that never says WELCOME times out and retries', async () => {
    const env = setup({ connectTimeoutMs: 5000 });
    void env.client.connect();
    await flush();
    env.clock.advance(5000);
    assert.equal(env.client.state, 'reconnecting');
    assert.equal(env.client.lastDisconnect?.reason, 'connect timeout');
  });

  it('close() ends everything', async () => {
    const env = setup();
    const sub = env.client.subscribe('t');
    const p = env.client.publish('t', 1);
    await connected(env);
    env.client.close();
    assert.equal(env.client.state, 'closed');
    await assert.rejects(p, ClosedError);
    assert.equal(sub.state, 'closed');
    await assert.rejects(env.client.publish('t', 2), ClosedError);
    assert.equal(env.clock.pending, 0, 'no timers left behind');
  });
});

describe('protocol version', () => {
  it('HELLO announces the protocol; serverInfo tells the gateway\'s protocol from its software version', async () => {
    const env = setup();
    void env.client.connect();
    assert.equal(env.client.serverInfo, undefined);
    await flush();
    assert.equal(env.server.last.welcome({ protocol: '1.1', version: '0.2.0', maxSubscriptions: 5 }).protocol, PROTOCOL_VERSION, 'HELLO says what the client speaks');
    await flush();
    assert.deepEqual(env.client.serverInfo, {
      protocol: '1.1', version: '0.2.0', session: 's', maxFrame: 1 << 20, maxCredit: 4096, heartbeat: 20_000, maxSubscriptions: 5,
    });
    env.server.last.drop();
    assert.equal(env.client.serverInfo, undefined);
  });

  it('a gateway that does not announce one speaks 1.0', async () => {
    const env = setup();
    void env.client.connect();
    await connected(env);
    assert.equal(env.client.serverInfo?.protocol, '1.0');
  });

  it('a WELCOME for another major is a protocol error', async () => {
    const env = setup();
    const errors: SluiceError[] = [];
    env.client.on('error', (e) => errors.push(e));
    void env.client.connect();
    await flush();
    env.server.last.welcome({ protocol: '2.0' });
    assert.equal(env.client.state, 'reconnecting');
    assert.equal(env.server.last.closed?.code, CloseCode.PROTOCOL_ERROR);
    assert.match(errors[0]!.message, /gateway speaks protocol 2.0/);
  });
});

describe('malformed frames from the gateway', () => {
  function watch(env: ReturnType<typeof setup>) {
    const errors: SluiceError[] = [];
    env.client.on('error', (e) => errors.push(e));
    return errors;
  }

  it('a WELCOME without its limits is a protocol error: reported, closed with 4292, then a reconnect', async () => {
    const env = setup();
    const errors = watch(env);
    const published = env.client.publish('t', 1);
    await flush();
    const c1 = env.server.last;
    c1.take(1);
    c1.replyRaw(pack([2, { session: 's', version: 'v', heartbeat: 20_000 }]));
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, 'protocol-error');
    assert.match(errors[0]!.message, /WELCOME maxFrame must be/);
    assert.equal(c1.closed?.code, CloseCode.PROTOCOL_ERROR);
    assert.equal(env.client.state, 'reconnecting');
    const welcome = () => env.client.welcome;
    assert.equal(welcome(), undefined, 'nothing of the frame is kept');
    const change = env.states.at(-1)!;
    assert.equal(change.code, 4292);
    assert.match(change.reason ?? '', /malformed frame from the gateway: WELCOME maxFrame/);
    assert.equal(env.client.lastDisconnect?.code, 4292);
    // The next connection is healthy: the queued publish goes out there.
    env.clock.advance(100);
    const c2 = await connected(env);
    c2.reply({ type: 9, reqId: c2.take(8).reqId, offset: 1, duplicate: false });
    assert.deepEqual(await published, { offset: 1, duplicate: false });
    assert.equal(welcome()?.maxFrame, 1 << 20);
  });

  it('a SUBSCRIBED without an epoch never becomes a resume epoch', async () => {
    const env = setup();
    const errors = watch(env);
    const sub = env.client.subscribe('t', { from: 1 });
    const c1 = await connected(env);
    const s1 = c1.take(3);
    c1.replyRaw(pack([4, s1.subId, { head: 3, from: 1, recovered: true }]));
    assert.match(errors[0]!.message, /SUBSCRIBED epoch must be a string/);
    assert.equal(c1.closed?.code, CloseCode.PROTOCOL_ERROR);
    assert.equal(sub.state, 'subscribing');
    assert.equal(sub.position, undefined);
    env.clock.advance(100);
    const c2 = await connected(env);
    assert.deepEqual(c2.take(3), { type: 3, subId: s1.subId, topic: 't', from: 1, credit: 64 });
  });

  it('refuses every kind of malformed frame the same way', async () => {
    const cases: [string, Uint8Array][] = [
      ['not MessagePack', new Uint8Array([0xc1])],
      ['not an array', pack({ type: 9 })],
      ['trailing bytes', new Uint8Array([0x92, 13, 1, 0])],
      ['unknown type', pack([99, 1])],
      ['a client-only type', pack([8, 1, 't', 1])],
      ['ACK without duplicate', pack([9, 1, 1])],
      ['ACK with a string offset', pack([9, 1, '1', false])],
      ['ACK with an offset beyond 2^53 - 1', new Uint8Array([0x94, 9, 1, 0xcf, 0, 0x20, 0, 0, 0, 0, 0, 0, 0xc2])],
      ['MSG with a negative offset', pack([10, 't', -1, 'x', 0])],
      ['MSG with numeric headers', pack([10, 't', 1, 'x', 0, { h: 1 }])],
      ['MSGS with an item that is not an array', pack([15, 't', 1, ['x']])],
      ['GAP without to', pack([14, 't', 1])],
      ['ERROR without a message', pack([11, 1, 'forbidden'])],
      ['WELCOME with maxCredit NaN', pack([2, { session: 's', version: 'v', maxFrame: 10, maxCredit: NaN, heartbeat: 1 }])],
      ['PING without n', pack([12])],
    ];
    for (const [what, bytes] of cases) {
      const env = setup();
      const errors = watch(env);
      void env.client.connect();
      const c = await connected(env);
      c.replyRaw(bytes);
      assert.deepEqual(errors.map((e) => e.code), ['protocol-error'], what);
      assert.equal(c.closed?.code, CloseCode.PROTOCOL_ERROR, what);
      assert.equal(env.client.state, 'reconnecting', what);
    }
  });
});

describe('publish', () => {
  it('queues while disconnected and sends in order once connected, each with a key', async () => {
    const env = setup();
    const a = env.client.publish('t', 'a');
    const b = env.client.publish('t', 'b', { key: 'mine' });
    const c = await connected(env);
    const [pa, pb] = c.all(8);
    assert.deepEqual([pa!.data, pb!.data], ['a', 'b']);
    assert.equal(pb!.key, 'mine');
    assert.match(pa!.key!, /^[A-Za-z0-9_-]{21}$/);
    c.reply({ type: 9, reqId: pa!.reqId, offset: 1, duplicate: false });
    c.reply({ type: 9, reqId: pb!.reqId, offset: 2, duplicate: false });
    assert.deepEqual(await a, { offset: 1, duplicate: false });
    assert.deepEqual(await b, { offset: 2, duplicate: false });
  });

  it('resends an unacknowledged publish after a reconnect with the same key', async () => {
    const env = setup();
    const p = env.client.publish('t', 'x');
    const c1 = await connected(env);
    const first = c1.take(8);
    c1.drop(1006); // the ACK never came
    env.clock.advance(100);
    const c2 = await connected(env);
    const again = c2.take(8);
    assert.equal(again.key, first.key);
    assert.equal(again.reqId, first.reqId);
    c2.reply({ type: 9, reqId: again.reqId, offset: 7, duplicate: true });
    assert.deepEqual(await p, { offset: 7, duplicate: true });
  });

  it('rejects with QueueFullError instead of growing past the bound', async () => {
    const env = setup({ maxQueuedPublishes: 3 });
    const ok = [1, 2, 3].map((i) => env.client.publish('t', i));
    await assert.rejects(env.client.publish('t', 4), (err: QueueFullError) => err instanceof QueueFullError && err.code === 'queue-full');
    const c = await connected(env);
    for (const f of c.all(8)) c.reply({ type: 9, reqId: f.reqId, offset: f.reqId, duplicate: false });
    await Promise.all(ok);
    const fifth = env.client.publish('t', 5); // room again once acknowledged
    assert.equal(env.client.queuedPublishes, 1);
    c.reply({ type: 9, reqId: c.all(8).at(-1)!.reqId, offset: 4, duplicate: false });
    assert.equal((await fifth).offset, 4);
  });

  it('rejects refused publishes with a typed error; retries retryable ones', async () => {
    const env = setup();
    const refused = env.client.publish('t', 1);
    const retried = env.client.publish('t', 2);
    const c = await connected(env);
    const [f1, f2] = c.all(8);
    c.reply({ type: 11, id: f1!.reqId, code: 'forbidden', message: 'not allowed' });
    await assert.rejects(refused, (err: SluiceError) => err.name === 'ServerError' && err.code === 'forbidden' && !err.retryable);
    c.reply({ type: 11, id: f2!.reqId, code: 'internal', message: 'oops' });
    env.clock.advance(200);
    const again = c.all(8).at(-1)!;
    assert.equal(again.reqId, f2!.reqId);
    c.reply({ type: 9, reqId: f2!.reqId, offset: 1, duplicate: false });
    assert.deepEqual(await retried, { offset: 1, duplicate: false });
  });

  it('a publish waiting to retry holds no timer after close() or a drop', async () => {
    const env = setup();
    const p = env.client.publish('t', 1);
    const c1 = await connected(env);
    const timersConnected = env.clock.pending; // the heartbeat
    c1.reply({ type: 11, id: c1.take(8).reqId, code: 'internal', message: 'oops' });
    assert.equal(env.clock.pending, timersConnected + 1, 'the retry waits on a timer');
    c1.drop(1006);
    assert.equal(env.clock.pending, 1, 'a drop leaves only the reconnect timer: WELCOME resends the publish');
    env.clock.advance(100);
    const c2 = await connected(env);
    assert.equal(c2.all(8).length, 1, 'resent once, by WELCOME');
    c2.reply({ type: 11, id: c2.take(8).reqId, code: 'rate-limited', message: 'slow down' });
    assert.equal(env.clock.pending, timersConnected + 1);
    env.client.close();
    await assert.rejects(p, ClosedError);
    assert.equal(env.clock.pending, 0, 'no timers left behind');
  });

  it('close() with a retry pending on the real clock leaves no Timeout handle (the process can exit)', async () => {
    const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timeouts();
    const server = new FakeServer();
    const client = createClient({ url: 'http://gateway.test:9400', transport: server.factory, backoff: () => 10_000 });
    const p = client.publish('t', 1);
    await flush();
    server.last.welcome();
    server.last.reply({ type: 11, id: server.last.take(8).reqId, code: 'internal', message: 'oops' });
    assert.equal(timeouts(), before + 2, 'heartbeat and a 10 s retry');
    client.close();
    await assert.rejects(p, ClosedError);
    assert.equal(timeouts(), before, 'close() cleared both');
  });

  it('routes an ERROR by re: a reqId and a subId with the same number are never confused', async () => {
    const env = setup();
    const errors: SluiceError[] = [];
    env.client.on('error', (e) => errors.push(e));
    const sub = env.client.subscribe('t');
    const published = env.client.publish('t', 1);
    const c = await connected(env);
    const subId = c.take(3).subId;
    const reqId = c.take(8).reqId;
    // An answer to a PUB with the subscription's number, and one to a SUB with the publish's.
    c.reply({ type: 11, id: subId, code: 'forbidden', message: 'pub', re: 8 });
    c.reply({ type: 11, id: reqId, code: 'forbidden', message: 'sub', re: 3 });
    await flush();
    assert.deepEqual(errors.map((e) => e.message), ['pub', 'sub'], 'unmatched: connection-level errors');
    assert.equal(sub.state, 'subscribing');
    assert.equal(env.client.queuedPublishes, 1);
    c.reply({ type: 11, id: reqId, code: 'forbidden', message: 'no pub', re: 8 });
    await assert.rejects(published, (e: SluiceError) => e.code === 'forbidden' && e.message === 'no pub');
    c.reply({ type: 11, id: subId, code: 'forbidden', message: 'no sub', re: 3 });
    await assert.rejects(sub.ready, (e: SluiceError) => e.message === 'no sub');
  });

  it('without re (a 1.0 gateway) an ERROR goes to the publish or subscription with its id', async () => {
    const env = setup();
    const sub = env.client.subscribe('t');
    const published = env.client.publish('t', 1);
    const c = await connected(env);
    const subId = c.take(3).subId;
    const reqId = c.take(8).reqId;
    c.replyRaw(pack([11, reqId, 'forbidden', 'no pub']));
    await assert.rejects(published, (e: SluiceError) => e.message === 'no pub');
    c.replyRaw(pack([11, subId, 'forbidden', 'no sub']));
    await assert.rejects(sub.ready, (e: SluiceError) => e.message === 'no sub');
  });

  it('validates topics and keys before sending', async () => {
    const env = setup();
    await assert.rejects(env.client.publish('bad topic', 1), (e: SluiceError) => e.code === 'invalid-topic');
    await assert.rejects(env.client.publish('t', 1, { key: 'k'.repeat(129) }), (e: SluiceError) => e.code === 'too-large');
    await assert.rejects(env.client.publish('t', 1, { key: '' }), (e: SluiceError) => e.code === 'bad-frame' && /1-128 bytes/.test(e.message));
    await assert.rejects(env.client.publish('t', { at: new Date() }), (e: SluiceError) => e.code === 'bad-request' && /Date/.test(e.message));
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    await assert.rejects(env.client.publish('t', cycle), (e: SluiceError) => e.code === 'bad-request');
    assert.equal(env.client.queuedPublishes, 0);
  });
});

describe('subscribe', () => {
  it('subscribes with its window as credit and grants only as handlers complete', async () => {
    const env = setup();
    const done: (() => void)[] = [];
    const got: number[] = [];
    env.client.subscribe('t', (m: Message) => {
      got.push(m.offset);
      return new Promise<void>((resolve) => done.push(() => resolve()));
    }, { window: 4 });
    const c = await connected(env);
    assert.deepEqual(c.take(3), { type: 3, subId: 1, topic: 't', credit: 4 });
    c.reply({ type: 4, subId: 1, epoch: 'e1', head: 0, from: 1, recovered: false });
    c.reply({ type: 15, topic: 't', first: 1, messages: [1, 2, 3, 4].map((i) => ({ data: i, ts: i })) });
    await flush();
    assert.deepEqual(got, [1], 'one at a time');
    assert.equal(c.all(7).length, 0, 'no credit before a handler completes');
    done.shift()!();
    await flush();
    assert.equal(c.all(7).length, 0, 'grants come in chunks of at least half the window');
    done.shift()!();
    await flush();
    assert.deepEqual(c.all(7), [{ type: 7, subId: 1, n: 2 }]);
    assert.deepEqual(got, [1, 2, 3]);
  });

  it('never holds more than the window, whatever the gateway sends', async () => {
    const env = setup();
    const sub = env.client.subscribe('t', { window: 8 });
    const c = await connected(env);
    c.take(3);
    c.reply({ type: 4, subId: 1, epoch: 'e', head: 0, from: 1, recovered: false });
    c.reply({ type: 15, topic: 't', first: 1, messages: Array.from({ length: 8 }, (_, i) => ({ data: i, ts: 0 })) });
    assert.equal(sub.held, 8);
    const it = sub[Symbol.asyncIterator]();
    for (let i = 1; i <= 4; i++) assert.equal((await it.next()).value!.offset, i);
    // four pulled (the fourth is still being processed): three consumed, not yet half the window
    assert.equal(c.all(7).length, 0);
    await it.next();
    assert.deepEqual(c.all(7), [{ type: 7, subId: 1, n: 4 }]);
  });

  it('resubscribes after a reconnect from the next offset with its epoch and what remains of the window', async () => {
    const env = setup();
    const sub = env.client.subscribe('t', { window: 10 });
    const c1 = await connected(env);
    c1.take(3);
    c1.reply({ type: 4, subId: 1, epoch: 'ep', head: 5, from: 6, recovered: false });
    c1.reply({ type: 15, topic: 't', first: 6, messages: [1, 2, 3].map((d) => ({ data: d, ts: 0 })) });
    c1.drop(1006);
    env.clock.advance(100);
    const c2 = await connected(env);
    assert.deepEqual(c2.take(3), { type: 3, subId: 1, topic: 't', from: 9, epoch: 'ep', credit: 7 });
    c2.reply({ type: 4, subId: 1, epoch: 'ep', head: 9, from: 9, recovered: true });
    c2.reply({ type: 10, topic: 't', offset: 8, data: 'dup', ts: 0 }); // a duplicate is dropped
    c2.reply({ type: 10, topic: 't', offset: 9, data: 4, ts: 0 });
    const it = sub[Symbol.asyncIterator]();
    const offsets = [];
    for (let i = 0; i < 4; i++) offsets.push((await it.next()).value!.offset);
    assert.deepEqual(offsets, [6, 7, 8, 9]);
  });

  it('emits every subscription state change, through a reconnect to unsubscribe', async () => {
    const env = setup();
    const sub = env.client.subscribe('t');
    const changes: string[] = [];
    sub.on('state', ({ oldState, newState }) => changes.push(`${oldState}→${newState}`));
    const c1 = await connected(env);
    c1.reply({ type: 4, subId: c1.take(3).subId, epoch: 'e', head: 0, from: 1, recovered: false });
    c1.drop(1006);
    assert.equal(sub.state, 'subscribing', 'a lost connection takes it back to subscribing');
    env.clock.advance(100);
    const c2 = await connected(env);
    c2.reply({ type: 4, subId: c2.take(3).subId, epoch: 'e', head: 0, from: 1, recovered: true });
    await sub.unsubscribe();
    assert.deepEqual(changes, ['resolving→subscribing', 'subscribing→subscribed', 'subscribed→subscribing', 'subscribing→subscribed', 'subscribed→closed']);
  });

  it('emits gap when resume was not possible: trimmed range or new epoch', async () => {
    const env = setup();
    const sub = env.client.subscribe('t', { from: 3 });
    const gaps: GapEvent[] = [];
    sub.on('gap', (g) => gaps.push(g));
    const c1 = await connected(env);
    assert.equal(c1.take(3).from, 3);
    c1.reply({ type: 4, subId: 1, epoch: 'e1', head: 20, from: 11, recovered: false });
    assert.deepEqual(gaps, [{ topic: 't', reason: 'trimmed', from: 3, to: 10 }]);
    c1.reply({ type: 14, topic: 't', from: 11, to: 15 });
    assert.deepEqual(gaps[1], { topic: 't', reason: 'trimmed', from: 11, to: 15 });
    c1.drop(1006);
    env.clock.advance(100);
    const c2 = await connected(env);
    assert.deepEqual(c2.take(3), { type: 3, subId: 1, topic: 't', from: 16, epoch: 'e1', credit: 64 });
    c2.reply({ type: 4, subId: 1, epoch: 'e2', head: 3, from: 4, recovered: false });
    assert.deepEqual(gaps[2], { topic: 't', reason: 'epoch', from: 16, to: null, epoch: 'e2' });
  });

  it('a SUBSCRIBED for an open subscription is an epoch change: recovered goes on, not recovered is a gap', async () => {
    const env = setup();
    const sub = env.client.subscribe('t', { from: 1 });
    const gaps: GapEvent[] = [];
    sub.on('gap', (g) => gaps.push(g));
    const c1 = await connected(env);
    c1.take(3);
    c1.reply({ type: 4, subId: 1, epoch: 'e1', head: 2, from: 1, recovered: true });
    c1.reply({ type: 15, topic: 't', first: 1, messages: [{ data: 'a', ts: 1 }, { data: 'b', ts: 2 }] });
    // The same log under a new name: nothing lost, later messages carry the new epoch.
    c1.reply({ type: 4, subId: 1, epoch: 'e2', head: 2, from: 3, recovered: true });
    c1.reply({ type: 10, topic: 't', offset: 3, data: 'c', ts: 3 });
    assert.deepEqual(gaps, []);
    // Offsets reused with other contents: told, and delivery restarts where the gateway says.
    c1.reply({ type: 4, subId: 1, epoch: 'e3', head: 3, from: 3, recovered: false });
    c1.reply({ type: 10, topic: 't', offset: 3, data: 'c2', ts: 4 });
    assert.deepEqual(gaps, [{ topic: 't', reason: 'epoch', from: 4, to: null, epoch: 'e3' }]);
    const got: [number, string, unknown][] = [];
    const it = sub[Symbol.asyncIterator]();
    for (let i = 0; i < 4; i++) {
      const m = (await it.next()).value!;
      got.push([m.offset, m.epoch, m.data]);
    }
    assert.deepEqual(got, [[1, 'e1', 'a'], [2, 'e1', 'b'], [3, 'e2', 'c'], [3, 'e3', 'c2']]);
    env.client.close();
  });

  it('a refused subscription rejects ready and ends its iterator', async () => {
    const env = setup();
    const sub = env.client.subscribe('secret');
    const c = await connected(env);
    c.reply({ type: 11, id: c.take(3).subId, code: 'forbidden', message: 'no' });
    await assert.rejects(sub.ready, (e: SluiceError) => e.code === 'forbidden');
    assert.equal(sub.state, 'closed');
    await assert.rejects(sub[Symbol.asyncIterator]().next(), (e: SluiceError) => e.code === 'forbidden');
  });

  it('a topic is either subscribed or consumed on one client', () => {
    const env = setup();
    env.client.subscribe('t');
    env.client.consume('c', 'g');
    assert.throws(() => env.client.consume('t', 'g'), (e: SluiceError) => e.code === 'already-subscribed');
    assert.throws(() => env.client.subscribe('c'), (e: SluiceError) => e.code === 'already-subscribed');
    assert.throws(() => env.client.subscribe('no spaces'), (e: SluiceError) => e.code === 'invalid-topic');
  });

  it('saves positions to Web Storage and a new client resumes after the last handled message', async () => {
    const data = new Map<string, string>();
    const storage: StorageLike = {
      getItem: (k) => data.get(k) ?? null,
      setItem: (k, v) => { data.set(k, v); },
      removeItem: (k) => { data.delete(k); },
    };
    const env = setup({ resume: webStorageResume(storage) });
    env.client.subscribe('t', () => undefined, { from: 1 });
    const c = await connected(env);
    c.take(3);
    c.reply({ type: 4, subId: 1, epoch: 'E', head: 3, from: 1, recovered: true });
    c.reply({ type: 15, topic: 't', first: 1, messages: [1, 2, 3].map((d) => ({ data: d, ts: 0 })) });
    await flush();
    assert.deepEqual(JSON.parse(data.get('sluice:pos:t')!), { offset: 3, epoch: 'E' });
    env.client.close();

    // "Reload": a new client with the same storage.
    const env2 = setup({ resume: webStorageResume(storage) });
    env2.client.subscribe('t', () => undefined, { from: 1 });
    const c2 = await connected(env2);
    assert.deepEqual(c2.take(3), { type: 3, subId: 1, topic: 't', from: 4, epoch: 'E', credit: 64 });
  });

  it('handler errors are reported and do not stall the stream', async () => {
    const env = setup();
    const seen: number[] = [];
    const errors: SluiceError[] = [];
    const sub = env.client.subscribe('t', (m: Message) => {
      seen.push(m.offset);
      if (m.offset === 1) throw new Error('boom');
    });
    sub.on('error', (e) => errors.push(e));
    const c = await connected(env);
    c.take(3);
    c.reply({ type: 4, subId: 1, epoch: 'e', head: 0, from: 1, recovered: false });
    c.reply({ type: 15, topic: 't', first: 1, messages: [{ data: 1, ts: 0 }, { data: 2, ts: 0 }] });
    await flush();
    assert.deepEqual(seen, [1, 2]);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /boom/);
  });
});

