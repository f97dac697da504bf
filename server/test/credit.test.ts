import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../src/server.js';
import { DEFAULT_LIMITS } from '../src/config.js';
import { removeDir, startGateway, tempDir } from './helpers/gateway.js';
import { RawClient } from './helpers/raw-client.js';

let gw: RunningServer;
before(async () => { gw = await startGateway(); });
after(async () => { await gw.close(); });

const offsets = (c: RawClient, topic: string) => c.delivered(topic).map((d) => d.offset);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function publishMany(pub: RawClient, topic: string, n: number, firstReq = 1): Promise<void> {
  const acks = [];
  for (let i = 0; i < n; i++) acks.push(pub.publish(firstReq + i, topic, { i: firstReq + i }));
  await Promise.all(acks);
}

describe('credit', () => {
  it('grant 5 → exactly 5, then silence; grant more → the next ones in order', async () => {
    const pub = await RawClient.connect(gw.url);
    const sub = await RawClient.connect(gw.url);
    const s = await sub.subscribe(1, 'credit.exact', { credit: 5 });
    assert.equal(s.from, 1);
    await publishMany(pub, 'credit.exact', 20);
    await sub.waitDelivered('credit.exact', 5);
    await sub.barrier(); // anything sent before the PONG has arrived by now
    assert.deepEqual(offsets(sub, 'credit.exact'), range(1, 5));

    sub.send({ type: 7, subId: 1, n: 3 });
    await sub.waitDelivered('credit.exact', 8);
    await sub.barrier();
    assert.deepEqual(offsets(sub, 'credit.exact'), range(1, 8));

    sub.send({ type: 7, subId: 1, n: 100 });
    await sub.waitDelivered('credit.exact', 20);
    // Now live with credit left: new publishes flow without further grants, still in order.
    await publishMany(pub, 'credit.exact', 10, 21);
    await sub.waitDelivered('credit.exact', 30);
    await sub.barrier();
    assert.deepEqual(offsets(sub, 'credit.exact'), range(1, 30));
    assert.deepEqual(sub.delivered('credit.exact').map((d) => (d.data as { i: number }).i), range(1, 30));
    pub.close();
    sub.close();
  });

  it('a live subscriber stops exactly at its limit, mid-batch', async () => {
    const pub = await RawClient.connect(gw.url);
    const sub = await RawClient.connect(gw.url);
    await sub.subscribe(1, 'credit.live', { credit: 7 }); // live at the tail with credit 7
    // Publish in one burst so the store commits them together and the hub must split a batch.
    await publishMany(pub, 'credit.live', 25);
    await sub.waitDelivered('credit.live', 7);
    await sub.barrier();
    assert.deepEqual(offsets(sub, 'credit.live'), range(1, 7));
    sub.send({ type: 7, subId: 1, n: 18 });
    await sub.waitDelivered('credit.live', 25);
    await sub.barrier();
    assert.deepEqual(offsets(sub, 'credit.live'), range(1, 25));
    pub.close();
    sub.close();
  });

  it('zero credit at SUB delivers nothing until CREDIT', async () => {
    const pub = await RawClient.connect(gw.url);
    const sub = await RawClient.connect(gw.url);
    await sub.subscribe(1, 'credit.zero', { credit: 0 });
    await publishMany(pub, 'credit.zero', 3);
    await sub.barrier();
    assert.equal(sub.delivered('credit.zero').length, 0);
    sub.send({ type: 7, subId: 1, n: 1 });
    await sub.waitDelivered('credit.zero', 1);
    await sub.barrier();
    assert.deepEqual(offsets(sub, 'credit.zero'), [1]);
    pub.close();
    sub.close();
  });

  it('clamps grants to maxCredit outstanding (not an error)', async () => {
    const max = DEFAULT_LIMITS.maxCredit;
    const pub = await RawClient.connect(gw.url);
    const sub = await RawClient.connect(gw.url);
    assert.equal(sub.welcome!.maxCredit, max);
    await sub.subscribe(1, 'credit.clamp', { credit: 0 });
    sub.send({ type: 7, subId: 1, n: Number.MAX_SAFE_INTEGER });
    sub.send({ type: 7, subId: 1, n: 10 });
    await sub.barrier();
    assert.equal(sub.frames.filter((f) => f.type === 11).length, 0, 'no ERROR for a large grant');
    const [s] = gw.hub.subscribers('credit.clamp');
    assert.equal(gw.hub.position(s!).credit, max);
    await publishMany(pub, 'credit.clamp', 3);
    await sub.waitDelivered('credit.clamp', 3);
    pub.close();
    sub.close();
  });

  it('keeps order across many pause/resume cycles with several subscribers', async () => {
    const pub = await RawClient.connect(gw.url);
    const subs = await Promise.all([1, 2, 3].map(() => RawClient.connect(gw.url)));
    const windows = [1, 3, 10];
    await Promise.all(subs.map((s, i) => s.subscribe(1, 'credit.cycle', { credit: windows[i]! })));
    const total = 300;
    const publishing = publishMany(pub, 'credit.cycle', total);
    // Each subscriber grants as it consumes, in its own window size, until it has everything.
    await Promise.all(subs.map(async (s, i) => {
      let granted = windows[i]!;
      while (granted < total) {
        await s.waitDelivered('credit.cycle', granted);
        s.send({ type: 7, subId: 1, n: windows[i]! });
        granted += windows[i]!;
      }
      await s.waitDelivered('credit.cycle', total);
    }));
    await publishing;
    for (const s of subs) {
      await s.barrier();
      assert.deepEqual(offsets(s, 'credit.cycle'), range(1, total));
      s.close();
    }
    pub.close();
  });
});

describe('slow consumer', () => {
  it('zero credit while 20,000 messages arrive: bounded gateway memory, then all of them in order', async () => {
    // The disk store keeps the backlog out of the JS heap, so heap growth is the gateway's own.
    const dir = tempDir();
    const disk = await startGateway((c) => { c.store = 'disk'; c.dataDir = dir; });
    try {
      const pub = await RawClient.connect(disk.url);
      const slow = await RawClient.connect(disk.url);
      await slow.subscribe(1, 'slow.bulk', { credit: 0 });
      const [s] = disk.hub.subscribers('slow.bulk');
      const payload = 'x'.repeat(200);
      global.gc?.();
      const heapBefore = process.memoryUsage().heapUsed;
      for (let batch = 0; batch < 20; batch++) {
        const acks = [];
        for (let i = 0; i < 1000; i++) acks.push(pub.publish(batch * 1000 + i + 1, 'slow.bulk', payload));
        await Promise.all(acks);
        assert.equal(s!.state, 'paused');
      }
      await slow.barrier();
      assert.equal(slow.delivered('slow.bulk').length, 0, 'nothing sent without credit');
      // Nothing is queued for the paused subscriber: its whole state is a cursor and a credit.
      assert.deepEqual(disk.hub.position(s!), { credit: 0, cursor: 0 });
      pub.frames.length = 0; // the test client's own log of 20k ACKs is not the gateway's memory
      global.gc?.();
      const growth = process.memoryUsage().heapUsed - heapBefore;
      assert.ok(growth < 16 * 1024 * 1024, `heap grew ${growth} bytes`);

      // Now consume in windows of 500: everything arrives, in order.
      let granted = 0;
      while (granted < 20_000) {
        slow.send({ type: 7, subId: 1, n: 500 });
        granted += 500;
        await slow.waitDelivered('slow.bulk', granted, 20_000);
      }
      await slow.barrier();
      assert.deepEqual(offsets(slow, 'slow.bulk'), range(1, 20_000));
      pub.close();
      slow.close();
    } finally {
      await disk.close();
      removeDir(dir);
    }
  });
});

describe('byte window (protocol 1.5)', () => {
  let small: RunningServer;
  before(async () => { small = await startGateway((c) => { c.limits.maxWindowBytes = 8 * 1024; }); });
  after(async () => { await small.close(); });
  // Stored entries of 1,013 bytes (a 1,000-character string, ts): 8 fit in 8 KiB, the 9th starts inside it.
  const PER_WINDOW = 9;

  async function publishSized(topic: string, n: number): Promise<void> {
    const pub = await RawClient.connect(small.url);
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publish(i + 1, topic, 'x'.repeat(1000))));
    pub.close();
  }

  it('a 1.5 client is sent one byte window per CREDIT; 1.4 and 1.0 clients only their message credit', async () => {
    await publishSized('window.bytes', 50);
    const [v15, v14, v10] = await Promise.all([
      RawClient.connect(small.url, { protocol: '1.5' }),
      RawClient.connect(small.url, { protocol: '1.4' }),
      RawClient.connect(small.url),
    ]);
    assert.equal(v14.welcome?.maxWindowBytes, 8 * 1024, 'announced to every client');
    for (const c of [v15, v14, v10]) await c.subscribe(1, 'window.bytes', { from: 1, credit: 100 });
    await v14.waitDelivered('window.bytes', 50);
    await v10.waitDelivered('window.bytes', 50);
    await v15.waitDelivered('window.bytes', PER_WINDOW);
    await v15.barrier();
    assert.deepEqual(offsets(v15, 'window.bytes'), range(1, PER_WINDOW), 'one byte window, though 91 credit is left');
    v15.send({ type: 7, subId: 1, n: 0 }); // a CREDIT of 0 opens the next window
    await v15.waitDelivered('window.bytes', 2 * PER_WINDOW);
    await v15.barrier();
    assert.deepEqual(offsets(v15, 'window.bytes'), range(1, 2 * PER_WINDOW));
    for (let k = 3; k * PER_WINDOW < 50 + PER_WINDOW; k++) {
      v15.send({ type: 7, subId: 1, n: PER_WINDOW });
      await v15.waitDelivered('window.bytes', Math.min(k * PER_WINDOW, 50));
    }
    await v15.barrier();
    assert.deepEqual(offsets(v15, 'window.bytes'), range(1, 50), 'the rest, each once, in order');
    for (const c of [v15, v14, v10]) c.close();
  });
});

