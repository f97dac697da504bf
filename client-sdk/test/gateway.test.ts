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
import { createClient, type Client, type ClientOptions, type Message } from '../src/index.js';
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

  it('slow consumer: 50 ms per message while 5,000 are published — bounded memory, all in order', async () => {
    const gw = await gateway({ store: 'memory' });
    const pub = client(gw.url);
    const subClient = client(gw.url);
    const window = 64;
    let maxHeld = 0;
    const offsets: number[] = [];
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => { resolveDone = r; });
    const sub = subClient.subscribe<number>('sdk.slow', async (m) => {
      maxHeld = Math.max(maxHeld, sub.held);
      offsets.push(m.offset);
      await new Promise((r) => setTimeout(r, 50));
      if (offsets.length === 5000) resolveDone();
    }, { window });
    await sub.ready;
    // Publish as fast as the gateway acknowledges (500 in flight), far faster than 20 msg/s.
    const acks: Promise<unknown>[] = [];
    for (let i = 1; i <= 5000; i++) {
      if (i > 500) await acks[i - 501];
      acks.push(pub.publish('sdk.slow', i));
    }
    await Promise.all(acks);
    await done;
    console.log(`slow consumer: max held ${maxHeld} (window ${window}), 5000 messages`);
    assert.ok(maxHeld <= window, `held ${maxHeld} > window ${window}`);
    assert.deepEqual(offsets, Array.from({ length: 5000 }, (_, i) => i + 1));
  });
});
