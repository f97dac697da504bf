/**
 * The SDK in Node against a real gateway process on loopback (the `ws` package as WebSocket).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { spawnGateway, type GatewayProcess } from '@sluice/server/testing';
import { createClient, ServerError, type Client, type ClientOptions, type Message } from '../src/index.js';
import { createPublisher } from '../src/publisher.js';
import type { Admin } from '../src/protocol/index.js';
import type { WebSocketConstructor } from '../src/transport.js';
import { CuttingProxy } from './helpers/proxy.js';

const WS = WebSocket as unknown as WebSocketConstructor;
const cleanup: (() => unknown)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sdk-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function gateway(options: Parameters<typeof spawnGateway>[0] = {}): Promise<GatewayProcess> {
  const gw = await spawnGateway(options);
  cleanup.push(() => gw.kill('SIGKILL'));
  return gw;
}

function client(url: string, options: Partial<ClientOptions> = {}): Client {
  const c = createClient({ url, WebSocket: WS, backoff: (n) => Math.min(50 * 2 ** n, 500), ...options });
  cleanup.push(() => c.close());
  return c;
}

/** Resolves when `predicate` holds, checked after each message the handler sees. */
function collector<T>() {
  const got: Message<T>[] = [];
  let waiter: { n: number; resolve: () => void } | undefined;
  return {
    got,
    handler: (m: Message<T>) => {
      got.push(m);
      if (waiter && got.length >= waiter.n) { waiter.resolve(); waiter = undefined; }
    },
    waitFor: (n: number) => new Promise<void>((resolve) => {
      if (got.length >= n) resolve();
      else waiter = { n, resolve };
    }),
  };
}

/**
 * A handler that holds each message until the test releases it, so the test (not a timer) decides
 * when the app consumes. `next()` resolves with the next message handed to the app.
 */
function heldHandler<T>() {
  type Call = { msg: Message<T>; release: () => void };
  const calls: Call[] = [];
  let waiter: ((c: Call) => void) | undefined;
  let inHandler: Promise<void> = Promise.resolve();
  return {
    handler: (msg: Message<T>) => {
      const done = new Promise<void>((release) => {
        const call = { msg, release };
        if (waiter) { waiter(call); waiter = undefined; } else calls.push(call);
      });
      inHandler = done;
      return done;
    },
    next: () => new Promise<Call>((resolve) => {
      const call = calls.shift();
      if (call) resolve(call);
      else waiter = resolve;
    }),
    /** Resolves once the last message handed out was released (the SDK saw it complete first: it listened first). */
    settled: () => inHandler,
  };
}

/** The gateway's view of the one subscriber of `topic` (admin API), once `until` holds for it. */
async function subscriber(url: string, topic: string, until: (row: Admin.SubscriberRow) => boolean): Promise<Admin.SubscriberRow> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const detail = (await (await fetch(`${url}/v1/admin/topics/${topic}`)).json()) as Admin.TopicDetail;
    assert.equal(detail.subscribers.length, 1);
    const row = detail.subscribers[0]!;
    if (until(row)) return row;
    if (Date.now() > deadline) assert.fail(`the gateway never reached the expected state: ${JSON.stringify(row)}`);
  }
}

describe('SDK against a real gateway', () => {
  it('publishes and receives in order, data intact', async () => {
    const gw = await gateway({ store: 'memory' });
    const pub = client(gw.url);
    const subClient = client(gw.url);
    const c = collector<{ n: number; bin: Uint8Array }>();
    const sub = subClient.subscribe('sdk.basic', c.handler);
    await sub.ready;
    for (let n = 1; n <= 50; n++) await pub.publish('sdk.basic', { n, bin: new Uint8Array([n, 255]) });
    await c.waitFor(50);
    assert.deepEqual(c.got.map((m) => m.offset), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.deepEqual(c.got.map((m) => m.data.n), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.deepEqual([...c.got[9]!.data.bin], [10, 255]);
  });

  it('SIGKILL mid-stream and restart on the same data dir: every acknowledged message exactly once, in order', async () => {
    const dir = tempDir();
    let gw = await gateway({ dataDir: dir });
    const port = gw.port;
    const pub = client(gw.url);
    const subClient = client(gw.url);
    const c = collector<number>();
    const sub = subClient.subscribe('sdk.kill', c.handler, { from: 1, window: 256 });
    await sub.ready;

    const total = 3000;
    const acked = new Set<number>();
    const results: Promise<void>[] = [];
    let killed = false;
    let restarted: Promise<void> | undefined;
    // A steady stream with at most 100 publishes in flight; kill the gateway a third of the way.
    for (let v = 1; v <= total; v++) {
      if (v > 100) await results[v - 101]; // at most 100 in flight
      results.push(pub.publish('sdk.kill', v).then(() => { acked.add(v); }));
      if (!killed && acked.size >= 1000) {
        killed = true;
        await gw.kill('SIGKILL');
        restarted = gateway({ dataDir: dir, port }).then((g) => { gw = g; });
      }
    }
    await restarted;
    await Promise.all(results);
    assert.equal(acked.size, total);
    await c.waitFor(total);
    const values = c.got.map((m) => m.data);
    assert.equal(values.length, total, 'no message twice');
    assert.deepEqual([...values].sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i + 1), 'every acknowledged message');
    assert.deepEqual(c.got.map((m) => m.offset), Array.from({ length: total }, (_, i) => i + 1), 'in offset order, no gap');
    assert.ok(pub.lastDisconnect && subClient.lastDisconnect, 'both clients went through a reconnect');
  });

  it('ACK lost: the retry with the same key is stored once and resolves with the original offset', async () => {
    const gw = await gateway({ store: 'memory' });
    const proxy = new CuttingProxy(gw.port);
    const url = await proxy.start();
    cleanup.push(() => proxy.close());
    const pub = client(url);
    await pub.connect();
    proxy.cutOnNextServerData(); // the gateway's next bytes are the ACK: they never arrive
    const result = await pub.publish('sdk.acklost', 'pay once', { key: 'invoice-17' });
    assert.equal(proxy.cuts, 1);
    assert.deepEqual(result, { offset: 1, duplicate: true });
    const check = client(gw.url);
    const c = collector<string>();
    const sub = check.subscribe('sdk.acklost', c.handler, { from: 1 });
    const subscribed = await sub.ready;
    assert.equal(subscribed.head, 1, 'stored once');
    await c.waitFor(1);
    assert.equal(c.got[0]!.data, 'pay once');
  });

  it('a key reused with another message: publish rejects with idempotency-key-reused (not retried), over WebSocket and HTTP', async () => {
    const gw = await gateway({ store: 'memory' });
    const pub = client(gw.url);
    assert.deepEqual(await pub.publish('sdk.reuse', { amount: 10 }, { key: 'invoice-18' }), { offset: 1, duplicate: false });
    const refused = await pub.publish('sdk.reuse', { amount: 11 }, { key: 'invoice-18' }).then(() => undefined, (err: unknown) => err);
    assert.ok(refused instanceof ServerError, String(refused));
    assert.deepEqual([refused.code, refused.retryable], ['idempotency-key-reused', false]);
    assert.equal(pub.state, 'connected', 'the connection stays up');
    assert.deepEqual(await pub.publish('sdk.reuse', { amount: 10 }, { key: 'invoice-18' }), { offset: 1, duplicate: true });
    const http = createPublisher({ url: gw.url });
    const viaHttp = await http.publish('sdk.reuse', { amount: 12 }, { key: 'invoice-18' }).then(() => undefined, (err: unknown) => err);
    assert.ok(viaHttp instanceof ServerError, String(viaHttp));
    assert.deepEqual([viaHttp.code, viaHttp.status, viaHttp.retryable], ['idempotency-key-reused', 422, false]);
    const again = await http.publish('sdk.reuse', { amount: 10 }, { key: 'invoice-18' });
    assert.deepEqual([again.offset, again.duplicate], [1, true]);
  });

  it('slow consumer: 200 messages published at once to a handler that holds each one — never more than the window out, all in order', async () => {
    const gw = await gateway({ store: 'memory' });
    const pub = client(gw.url);
    const subClient = client(gw.url);
    // What it proves, step by step rather than by timing: the SDK never holds more than its window,
    // the gateway never sends past the credit (sent − handled ≤ window, and a subscriber with no
    // credit and messages behind is `paused`: the backlog stays in the log, not in memory), and
    // every message arrives once, in order. 200 messages × a 16-message window is 12 refills.
    const window = 16;
    const total = 200;
    const held = heldHandler<number>();
    const sub = subClient.subscribe<number>('sdk.slow', held.handler, { window });
    await sub.ready;
    // Everything is published (and acknowledged) while the handler still holds message 1.
    await Promise.all(Array.from({ length: total }, (_, i) => pub.publish('sdk.slow', i + 1)));

    let pausedSeen = 0;
    for (let k = 1; k <= total; k++) {
      const call = await held.next();
      assert.equal(call.msg.offset, k, 'in offset order, one at a time');
      assert.equal(call.msg.data, k);
      assert.ok(sub.held <= window, `message ${k}: the SDK holds ${sub.held} > window ${window}`);
      // While the app sits on message k (k - 1 handled), the gateway sends until its credit is
      // spent; then everything it sent and the app has not handled fits in the window.
      const row = await subscriber(gw.url, 'sdk.slow', (r) => r.credit === 0 || r.cursor === total);
      assert.ok(row.cursor >= k && row.cursor - (k - 1) <= window, `message ${k}: gateway sent up to ${row.cursor}, ${row.cursor - (k - 1)} unhandled > window ${window}`);
      if (row.cursor < total) {
        assert.equal(row.state, 'paused', `message ${k}: no credit with ${row.lag} messages behind is paused`);
        pausedSeen++;
      }
      call.release();
    }
    assert.ok(pausedSeen >= total - window, `the gateway held the subscriber back (${pausedSeen} times seen paused)`);
    await held.settled();
    assert.equal(sub.held, 0);
    assert.equal(sub.position?.offset, total, 'every message was handled');
  });

  it('byte window (1.5): big messages to a large window — the gateway stops at the window until the SDK grants by bytes, and everything arrives once, in order', { timeout: 60_000 }, async () => {
    const gw = await gateway({ store: 'memory', args: ['--max-window-bytes', '64KiB'] });
    const pub = client(gw.url);
    const subClient = client(gw.url);
    const held = heldHandler<Uint8Array>();
    const sub = subClient.subscribe<Uint8Array>('sdk.bytes', held.handler, { window: 4096 });
    await sub.ready;
    assert.equal(subClient.serverInfo?.maxWindowBytes, 64 * 1024);
    // Stored entries of 16,013 bytes: four fit in 64 KiB, the fifth starts inside it and passes it.
    const total = 200;
    const size = 16_000;
    await Promise.all(Array.from({ length: total }, (_, i) => pub.publish('sdk.bytes', new Uint8Array(size).fill(i % 251))));
    const first = await held.next();
    const row = await subscriber(gw.url, 'sdk.bytes', (r) => r.state === 'paused');
    assert.equal(row.cursor, 5, 'the app holds message 1: the gateway sent one byte window (5 messages), not its credit (4096)');
    assert.equal(row.credit, 4096 - 5, 'message credit was left: the byte window stopped it');
    first.release();
    for (let k = 2; k <= total; k++) {
      const call = await held.next();
      assert.equal(call.msg.offset, k, 'in offset order, each once');
      assert.equal(call.msg.data.length, size);
      assert.equal(call.msg.data[size - 1], (k - 1) % 251, `message ${k} intact`);
      call.release();
    }
    await held.settled();
    assert.equal(sub.position?.offset, total, 'every message was handled');
  });
});
