/**
 * Failures a user must see (STATES.md): every state change carries its cause, the client suspends
 * after `suspendAfterMs` of failing (publishes reject, retries go on slower), fails for good on
 * terminal causes (a refused upgrade, a token loop), and `publish` honours `timeout` and `signal`.
 * Against the scripted peer (FakeServer) and manual time (FakeClock).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createClient, type ClientOptions, type LogEvent, type StateChange } from '../src/client.js';
import { ConnectionError, SluiceError, SuspendedError, TimeoutError } from '../src/errors.js';
import { FakeClock, FakeServer, flush } from './helpers/fake-server.js';

function setup(options: Partial<ClientOptions> = {}) {
  const server = new FakeServer();
  const clock = new FakeClock();
  const states: StateChange[] = [];
  const client = createClient({
    url: 'http://gateway.test:9400',
    transport: server.factory,
    clock,
    backoff: () => 100,
    suspendAfterMs: 1000,
    suspendedRetryMs: 5000,
    ...options,
  });
  client.on('state', (s) => states.push(s));
  return { server, clock, client, states };
}

/** What `ws` reports for a refused TCP connection. */
function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9400'), { code: 'ECONNREFUSED' });
}

describe('failures are visible', () => {
  it('a refused connection: each state change carries the runtime error as the cause', async () => {
    const env = setup();
    env.server.autoOpen = false;
    void env.client.connect().catch(() => undefined);
    await flush();
    env.server.last.drop(1006, 'connect ECONNREFUSED 127.0.0.1:9400', refused());
    const change = env.states.at(-1)!;
    assert.equal(change.newState, 'reconnecting');
    assert.ok(change.error instanceof ConnectionError);
    assert.equal(change.error.code, 'network');
    assert.equal((change.error.cause as { code: string }).code, 'ECONNREFUSED');
    assert.match(change.error.message, /ECONNREFUSED/);
  });

  it('a wrong path: the cause says 404, not-found', async () => {
    const env = setup();
    env.server.autoOpen = false;
    void env.client.connect().catch(() => undefined);
    await flush();
    env.server.last.drop(1006, 'Unexpected server response: 404', new Error('Unexpected server response: 404'));
    const err = env.states.at(-1)!.error as ConnectionError;
    assert.equal(err.code, 'not-found');
    assert.equal(err.status, 404);
    assert.equal(env.client.state, 'reconnecting', 'a 404 may be a proxy being deployed: retried, and suspended by the deadline');
  });

  it('an upgrade refused with 403 fails the client at once', async () => {
    const env = setup();
    env.server.autoOpen = false;
    const p = env.client.publish('t', 1);
    await flush();
    env.server.last.drop(1006, 'Unexpected server response: 403', new Error('Unexpected server response: 403'));
    assert.equal(env.client.state, 'failed');
    await assert.rejects(p, (e: SluiceError) => e.code === 'forbidden' && (e.cause as ConnectionError).status === 403);
    assert.equal(env.clock.pending, 0);
  });

  it('keeps failing for suspendAfterMs → suspended: publishes reject, new ones at once; retries every suspendedRetryMs', async () => {
    const env = setup();
    env.server.autoOpen = false;
    const p = env.client.publish('t', 1, { key: 'k1' });
    const connecting = env.client.connect();
    for (let i = 0; i < 20 && env.client.state !== 'suspended'; i++) {
      await flush();
      env.server.last.drop(1006, 'refused', refused());
      env.clock.advance(100);
    }
    assert.equal(env.client.state, 'suspended');
    const at = env.states.findIndex((s) => s.newState === 'suspended');
    assert.deepEqual(env.states.slice(0, 3).map((s) => s.newState), ['connecting', 'reconnecting', 'connecting']);
    assert.equal(env.states[at]!.error?.code, 'network');
    await assert.rejects(p, (e: unknown) => e instanceof SuspendedError && e.key === 'k1' && (e.cause as ConnectionError).code === 'network');
    await assert.rejects(connecting, (e: SluiceError) => e.code === 'network');
    await assert.rejects(env.client.publish('t', 2), SuspendedError);
    // 11 attempts in 1 s (100 ms apart): the last one at the deadline.
    assert.equal(env.server.connections.length, 11);
    const n = env.server.connections.length;
    env.clock.advance(4899); // the loop ended 100 ms after the drop that suspended
    await flush();
    assert.equal(env.server.connections.length, n, 'slower while suspended');
    env.clock.advance(1);
    await flush();
    assert.equal(env.server.connections.length, n + 1);
    assert.equal(env.client.state, 'connecting');
    env.server.last.drop(1006, 'refused', refused());
    assert.equal(env.client.state, 'suspended', 'a failed retry goes back to suspended');
    // connect() tries at once; a WELCOME ends the suspension and publishing works again.
    const again = env.client.connect();
    await flush();
    env.server.last.open();
    env.server.last.welcome();
    await again;
    assert.equal(env.client.state, 'connected');
    const p3 = env.client.publish('t', 3);
    await flush();
    const pub = env.server.last.take(8);
    env.server.last.reply({ type: 9, reqId: pub.reqId, offset: 1, duplicate: false });
    assert.deepEqual(await p3, { offset: 1, duplicate: false });
  });

  it('the deadline counts from the drop; a WELCOME resets it', async () => {
    const env = setup();
    void env.client.connect();
    await flush();
    env.server.last.welcome();
    env.clock.advance(10_000);
    env.server.last.drop(1006, 'gone');
    assert.equal(env.client.state, 'reconnecting', 'connected for 10 s: a drop starts a new run of attempts');
    env.clock.advance(100);
    await flush();
    env.server.last.welcome();
    assert.equal(env.client.state, 'connected');
  });

  it('subscriptions survive a suspension and resume after it', async () => {
    const env = setup();
    env.server.autoOpen = false;
    const sub = env.client.subscribe('t', { from: 1 });
    while (env.client.state !== 'suspended') {
      await flush();
      env.server.last.drop(1006, 'refused');
      env.clock.advance(100);
    }
    assert.equal(sub.state, 'subscribing');
    env.clock.advance(5000);
    await flush();
    env.server.last.open();
    env.server.last.welcome();
    assert.deepEqual(env.server.last.take(3).from, 1);
  });

  it('getToken returning tokens the gateway refuses: failed after maxTokenRefusals, with the cause', async () => {
    let calls = 0;
    const env = setup({ getToken: () => `bad-${++calls}`, maxTokenRefusals: 3 });
    const p = env.client.publish('t', 1);
    for (let i = 0; i < 3; i++) {
      await flush();
      env.server.last.take(1);
      env.server.last.drop(4101, 'invalid token');
      env.clock.advance(100);
    }
    assert.equal(env.client.state, 'failed');
    assert.equal(calls, 3);
    const last = env.states.at(-1)!;
    assert.equal(last.error?.code, 'unauthorized');
    assert.match(last.error!.message, /refused 3 tokens/);
    await assert.rejects(p, (e: SluiceError) => e.code === 'unauthorized' && !e.retryable);
    assert.equal(env.clock.pending, 0, 'the loop stopped');
  });

  it('a refused token between WELCOMEs (expiry) is refreshed for ever', async () => {
    let calls = 0;
    const env = setup({ getToken: () => `t-${++calls}`, maxTokenRefusals: 2 });
    void env.client.connect();
    for (let i = 0; i < 5; i++) {
      await flush();
      env.server.last.welcome();
      env.server.last.drop(4101, 'token expired');
      env.clock.advance(100);
    }
    assert.equal(env.client.state, 'connecting');
  });

  it('a getToken that never answers is a timed-out attempt, and the deadline still holds', async () => {
    let calls = 0;
    const env = setup({ getToken: () => { calls++; return new Promise<string>(() => undefined); }, connectTimeoutMs: 400 });
    const p = env.client.publish('t', 1);
    env.clock.advance(400);
    const change = env.states.at(-1)!;
    assert.equal(change.newState, 'reconnecting');
    assert.equal(change.error?.code, 'timeout');
    assert.equal(env.server.connections.length, 0);
    for (let i = 0; i < 5; i++) env.clock.advance(500);
    assert.equal(env.client.state, 'suspended');
    await assert.rejects(p, SuspendedError);
    assert.ok(calls >= 2);
  });

  it('publish timeout: rejects with TimeoutError and the key; not resent after', async () => {
    const env = setup();
    void env.client.connect();
    await flush();
    env.server.last.welcome();
    const p = env.client.publish('t', 1, { timeout: 500, key: 'order-1' });
    env.server.last.take(8);
    env.clock.advance(499);
    assert.equal(env.client.queuedPublishes, 1);
    env.clock.advance(1);
    await assert.rejects(p, (e: unknown) => e instanceof TimeoutError && e.code === 'timeout' && e.key === 'order-1');
    assert.equal(env.client.queuedPublishes, 0);
    env.server.last.drop(1006);
    env.clock.advance(100);
    await flush();
    env.server.last.welcome();
    assert.equal(env.server.last.all(8).length, 0, 'a timed-out publish is not resent');
    assert.equal(env.clock.pending, 1, 'only the heartbeat timer');
  });

  it('publish signal: abort rejects with the reason; an aborted signal rejects at once', async () => {
    const env = setup();
    env.server.autoOpen = false;
    const ac = new AbortController();
    const p = env.client.publish('t', 1, { signal: ac.signal });
    ac.abort(new Error('user left'));
    await assert.rejects(p, /user left/);
    assert.equal(env.client.queuedPublishes, 0);
    await assert.rejects(env.client.publish('t', 2, { signal: AbortSignal.abort() }), (e: Error) => e.name === 'AbortError');
    // An ACK that settles first removes the listener: a later abort is a no-op.
    const ac2 = new AbortController();
    const p2 = env.client.publish('t', 3, { signal: ac2.signal, timeout: 1000 });
    await flush();
    env.server.last.open();
    env.server.last.welcome();
    const pub = env.server.last.take(8);
    env.server.last.reply({ type: 9, reqId: pub.reqId, offset: 7, duplicate: false });
    assert.deepEqual(await p2, { offset: 7, duplicate: false });
    ac2.abort();
    assert.equal(env.clock.pending, 1, 'the timeout timer went with the ACK (heartbeat left)');
  });

  it('debug log: state changes, frames in and out, retries; the token never appears; nothing when off', async () => {
    const events: LogEvent[] = [];
    const env = setup({ token: 'secret-token', log: (e) => events.push(e) });
    void env.client.publish('t', { big: 'data' });
    await flush();
    env.server.last.welcome();
    env.server.last.drop(1006, 'x');
    const types = new Set(events.map((e) => e.type));
    assert.deepEqual([...types].sort(), ['in', 'out', 'retry', 'state']);
    const text = JSON.stringify(events);
    assert.doesNotMatch(text, /secret-token/);
    assert.doesNotMatch(text, /big/);
    assert.ok(events.some((e) => e.type === 'out' && e.frame.type === 8));
    // `debug: true` goes to console.debug.
    const original = console.debug;
    const lines: unknown[][] = [];
    console.debug = (...a: unknown[]) => { lines.push(a); };
    try {
      const env2 = setup({ debug: true });
      void env2.client.connect();
      assert.equal(lines[0]?.[0], '[sluice]');
      assert.equal(lines[0]?.[1], 'state');
      const quiet = setup();
      lines.length = 0;
      void quiet.client.connect();
      assert.equal(lines.length, 0);
    } finally {
      console.debug = original;
    }
  });
});
