/**
 * The gateway as a real process on the disk store: kill -9 it mid-stream and restart it on the
 * same data directory.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FrameType, type ServerFrame } from '@sluice/client/protocol';
import { RawClient } from './helpers/raw-client.js';
import { removeDir, spawnGateway, tempDir } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';

type Lease = Extract<ServerFrame, { type: 18 }>;

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

describe('durability (kill -9)', () => {
  it('every acknowledged message survives SIGKILL, with the same epoch', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const gw = await spawnGateway(['--data', dir]);
    const pub = await RawClient.connect(gw.url);
    const acked = new Map<number, number>(); // offset → value
    let sent = 0;
    // A steady stream of publishes with up to 200 in flight; kill once 3,000 are acknowledged.
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (sent - acked.size < 200 && sent < 100_000) {
          const v = ++sent;
          pub.publish(v, 'dur.stream', v).then((ack) => {
            acked.set(ack.offset, v);
            if (acked.size === 3000) resolve();
            else pump();
          }, () => undefined);
        }
      };
      pump();
    });
    const epochBefore = (await (await RawClient.connect(gw.url)).subscribe(1, 'dur.stream')).epoch;
    await gw.kill('SIGKILL');
    assert.ok(sent > acked.size, 'publishes were still in flight when the gateway died');

    const again = await spawnGateway(['--data', dir]);
    try {
      const c = await RawClient.connect(again.url);
      const s = await c.subscribe(1, 'dur.stream', { from: 1, epoch: epochBefore, credit: 1024 });
      assert.equal(s.epoch, epochBefore, 'epoch unchanged');
      assert.equal(s.recovered, true);
      assert.ok(s.head >= acked.size, `head ${s.head} < acked ${acked.size}`);
      const got = await c.consume(1, 'dur.stream', s.head);
      const byOffset = new Map(got.map((d) => [d.offset, d.data]));
      for (const [offset, value] of acked) assert.equal(byOffset.get(offset), value, `acked offset ${offset}`);
      assert.deepEqual(got.map((d) => d.offset), Array.from({ length: s.head }, (_, i) => i + 1), 'dense offsets');
      c.close();
    } finally {
      await again.kill('SIGKILL');
    }
  });

  // The disk store indexes topics' offsets after the commit (a checkpoint, up to 10 s later): a kill
  // before it leaves the messages of many topics in the log only, found again at open. Twice, so the
  // second restart starts from a store that the first one recovered and wrote on.
  it('acknowledged messages of many interleaved topics survive SIGKILL, twice, offsets dense per topic', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const topics = Array.from({ length: 40 }, (_, i) => `dur.many.${i}`);
    const acked = new Map<string, Map<number, number>>(topics.map((t) => [t, new Map()])); // topic → offset → value
    let value = 0;
    const round = async (url: string, count: number) => {
      const pub = await RawClient.connect(url);
      await Promise.all(Array.from({ length: count }, () => {
        const v = ++value;
        const topic = topics[v % topics.length]!;
        return pub.publish(v, topic, v).then((ack) => { acked.get(topic)!.set(ack.offset, v); });
      }));
      // More in flight when the kill comes, acknowledged or not.
      for (let i = 0; i < 200; i++) { const v = ++value; pub.publish(v, topics[v % topics.length]!, v).catch(() => undefined); }
    };
    const check = async (url: string) => {
      const c = await RawClient.connect(url);
      for (const [i, topic] of topics.entries()) {
        const s = await c.subscribe(i + 1, topic, { from: 1, credit: 4096 });
        const mine = acked.get(topic)!;
        assert.ok(s.head >= mine.size, `${topic}: head ${s.head} < acked ${mine.size}`);
        const got = await c.consume(i + 1, topic, s.head);
        assert.deepEqual(got.map((d) => d.offset), Array.from({ length: s.head }, (_, k) => k + 1), `${topic}: dense offsets`);
        const byOffset = new Map(got.map((d) => [d.offset, d.data]));
        for (const [offset, v] of mine) assert.equal(byOffset.get(offset), v, `${topic}: acked offset ${offset}`);
        // What the gateway stored beyond the acknowledged ones counts as acknowledged from now on.
        for (const d of got) mine.set(d.offset, d.data as number);
      }
      c.close();
    };
    let gw = await spawnGateway(['--data', dir]);
    try {
      await round(gw.url, 2000);
      await gw.kill('SIGKILL');
      gw = await spawnGateway(['--data', dir]);
      await check(gw.url);
      await round(gw.url, 2000);
      await gw.kill('SIGKILL');
      gw = await spawnGateway(['--data', dir]);
      await check(gw.url);
    } finally {
      await gw.kill('SIGKILL');
    }
  });

  it('idempotency keys survive a restart', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const gw = await spawnGateway(['--data', dir]);
    const pub = await RawClient.connect(gw.url);
    const first = await pub.publish(1, 'dur.keys', 'once', 'order-42');
    await pub.publish(2, 'dur.keys', 'other');
    await gw.kill('SIGKILL');

    const again = await spawnGateway(['--data', dir]);
    try {
      const p2 = await RawClient.connect(again.url);
      const retry = await p2.publish(1, 'dur.keys', 'once', 'order-42');
      assert.deepEqual([retry.offset, retry.duplicate], [first.offset, true]);
      // The key's fingerprint survived too: the key with another message is refused.
      p2.send({ type: 8, reqId: 9, topic: 'dur.keys', data: 'once (changed)', key: 'order-42' });
      const refused = await p2.next((f) => (f.type === 11 || f.type === 9) && (f.type === 11 ? f.id : f.reqId) === 9);
      assert.deepEqual(refused.type === 11 && [refused.code, refused.re], ['idempotency-key-reused', 8]);
      const fresh = await p2.publish(2, 'dur.keys', 'new', 'order-43');
      assert.deepEqual([fresh.offset, fresh.duplicate], [3, false]);
      p2.close();
    } finally {
      await again.kill('SIGKILL');
    }
  });
});

describe('consumer groups survive kill -9', () => {
  it('after SIGKILL and a restart: no acknowledged message is delivered again, every leased one is, none is lost', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const gw = await spawnGateway(['--data', dir]);
    const topic = 'dur.group';
    const join = async (url: string) => {
      const c = await RawClient.connect(url);
      c.send({ type: FrameType.SUB, subId: 1, topic, group: 'w', credit: 20, from: 1 });
      await c.next((f) => f.type === FrameType.SUBSCRIBED);
      return c;
    };
    const leases = (c: RawClient) => c.frames.filter((f): f is Lease => f.type === FrameType.LEASE);
    const pub = await RawClient.connect(gw.url);
    for (let i = 1; i <= 100; i++) await pub.publish(i, topic, i);
    const a = await join(gw.url);
    const b = await join(gw.url);
    // a acknowledges the first 20 it is given; b holds its 20 without acknowledging.
    await waitFor(() => leases(a).length === 20 && leases(b).length === 20, '20 leases each');
    const acked = leases(a).map((l) => l.offset);
    a.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: acked });
    const held = leases(b).map((l) => l.offset);
    // The admin API's floor is the saved one: the acknowledgements are durable once it moved.
    assert.deepEqual(acked, Array.from({ length: 20 }, (_, i) => i + 1), 'the first member took the first 20');
    await waitFor(async () => {
      const r = await api<{ group: string; floor: number }[]>(gw.url, `/v1/admin/topics/${topic}/groups`);
      return r.body.find((g) => g.group === 'w')?.floor === 21;
    }, 'the acknowledgements saved');
    await gw.kill('SIGKILL');

    const again = await spawnGateway(['--data', dir]);
    try {
      const c = await join(again.url);
      const got = new Map<number, number>(); // offset → attempt
      let seen = 0;
      await waitFor(() => {
        const ls = leases(c);
        const fresh = ls.slice(seen);
        seen = ls.length;
        for (const l of fresh) got.set(l.offset, l.attempt);
        if (fresh.length > 0) c.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: fresh.map((l) => l.offset) });
        return got.size >= 80;
      }, 'the 80 unacknowledged messages', 10_000);
      for (const o of acked) assert.ok(!got.has(o), `acknowledged offset ${o} delivered again`);
      for (const o of held) assert.ok(got.has(o), `leased offset ${o} delivered again`);
      const expected = Array.from({ length: 100 }, (_, i) => i + 1).filter((o) => !acked.includes(o));
      assert.deepEqual([...got.keys()].sort((x, y) => x - y), expected, 'none lost, none twice');
      c.close();
    } finally {
      await again.kill('SIGKILL');
    }
  });
});
