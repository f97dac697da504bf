/**
 * The gateway as a real process on the disk store: kill -9 it mid-stream and restart it on the
 * same data directory.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { RawClient } from './helpers/raw-client.js';
import { removeDir, spawnGateway, tempDir } from './helpers/gateway.js';

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
      const retry = await p2.publish(1, 'dur.keys', 'once (retried)', 'order-42');
      assert.deepEqual([retry.offset, retry.duplicate], [first.offset, true]);
      const fresh = await p2.publish(2, 'dur.keys', 'new', 'order-43');
      assert.deepEqual([fresh.offset, fresh.duplicate], [3, false]);
      p2.close();
    } finally {
      await again.kill('SIGKILL');
    }
  });
});
