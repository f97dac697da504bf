/**
 * Readers that take credit and never read their socket (issue 14.3): what the gateway holds for
 * each stays bounded by the high-water mark whatever its credit, readers beside them get every
 * message, and a stuck reader that reads again gets everything from the log — no gap, no duplicate.
 * Real sockets: a stuck reader is a `ws` client whose TCP socket is paused after SUBSCRIBED, so
 * the kernel's buffers fill first and then the gateway's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FrameType, type ServerFrame } from '@sluice/client/protocol';
import { pack } from 'msgpackr';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Big messages so a stuck reader's credit (4,096) is far more than the kernel's socket buffers hold. */
const BODY = 'x'.repeat(48 * KiB);
const COUNT = 400; // 19 MB per reader

let gw: RunningServer;
before(async () => {
  gw = await startGateway();
});
after(() => gw.close());

function pause(c: RawClient): void {
  (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
}
function resume(c: RawClient): void {
  (c.ws as unknown as { _socket: { resume(): void } })._socket.resume();
}

/** The most any one connection holds unsent in the gateway, from the admin API. */
async function mostBuffered(): Promise<number> {
  const r = await api<{ buffered?: number }[]>(gw.url, '/v1/admin/connections');
  assert.equal(r.status, 200);
  return Math.max(...r.body.map((row) => row.buffered ?? 0));
}

async function publishAll(topic: string): Promise<void> {
  const pub = await RawClient.connect(gw.url);
  for (let i = 1; i <= COUNT; i++) await pub.publish(i, topic, `${i}:${BODY}`);
  pub.close();
}

const offsets = (c: RawClient, topic: string) => c.delivered(topic).map((d) => d.offset);
const oneToCount = Array.from({ length: COUNT }, (_, i) => i + 1);

describe('stuck readers', () => {
  it('a subscriber with the maximum credit that never reads pins at most about the high-water mark; it resumes from the log', async () => {
    const topic = 'stuck.sub';
    const stuck = await Promise.all([1, 2, 3].map(() => RawClient.connect(gw.url)));
    for (const c of stuck) {
      await c.subscribe(1, topic, { credit: 4096 });
      pause(c);
    }
    const reader = await RawClient.connect(gw.url);
    await reader.subscribe(1, topic, { credit: 4096 });

    await publishAll(topic);
    await reader.waitDelivered(topic, COUNT);
    assert.deepEqual(offsets(reader, topic), oneToCount, 'the reader beside them gets every message');
    await waitFor(() => gw.metrics.backpressured.value >= stuck.length, 'every stuck subscriber taken off the live path');
    // 19 MB went to each; the kernel holds a few MB of it, the gateway at most the high-water mark
    // (128 KiB) plus what was published between two checks.
    const most = await mostBuffered();
    assert.ok(most < 4 * MiB, `a stuck connection holds ${(most / MiB).toFixed(1)} MiB in the gateway`);

    for (const c of stuck) resume(c);
    for (const c of stuck) {
      await c.waitDelivered(topic, COUNT, 20_000);
      assert.deepEqual(offsets(c, topic), oneToCount, 'every message once, in order, after reading again');
    }
    for (const c of [...stuck, reader]) c.close();
  });

  it('one stored batch of 19 MB (a commit after a late loop turn) leaves a stuck reader no more than the mark plus two checks', async () => {
    const topic = 'stuck.batch';
    const stuck = await Promise.all([1, 2, 3].map(() => RawClient.connect(gw.url)));
    for (const c of stuck) {
      await c.subscribe(1, topic, { credit: 4096 });
      pause(c);
    }
    const reader = await RawClient.connect(gw.url);
    await reader.subscribe(1, topic, { credit: 4096 });
    try {
      // All COUNT messages in one loop turn: the store commits them as one batch, and the hub
      // publishes them natively in one synchronous step, with no timer in between.
      const who = { principal: { id: 'test', admin: true, can: () => true }, client: 'test' };
      const outcomes = await gw.publisher.publishMany(who, oneToCount.map((i) => ({ topic, data: pack(`${i}:${BODY}`) })));
      assert.deepEqual(outcomes.map((o) => ('offset' in o ? o.offset : o.code)), oneToCount);
      // Before: the whole batch was one frame, and what the kernel refused of it (~15 MB) stayed in
      // the gateway for each. Now: at most the high-water mark (128 KiB) and two checks, each at most
      // 32 KiB or one message (48 KiB here).
      const most = await mostBuffered();
      assert.ok(most < 512 * KiB, `a stuck connection holds ${(most / MiB).toFixed(2)} MiB in the gateway`);
      await reader.waitDelivered(topic, COUNT);
      assert.deepEqual(offsets(reader, topic), oneToCount, 'the reader beside them gets every message');

      for (const c of stuck) resume(c);
      for (const c of stuck) {
        await c.waitDelivered(topic, COUNT, 20_000);
        assert.deepEqual(offsets(c, topic), oneToCount, 'every message once, in order, after reading again');
      }
    } finally {
      for (const c of [...stuck, reader]) c.ws.terminate();
    }
  });

  it('a group member that never reads is given no more leases; the others get its messages once they expire', async () => {
    const topic = 'stuck.group';
    await gw.groups.configure(topic, 'w', { ackWaitMs: 300 });
    const join = async (credit: number) => {
      const c = await RawClient.connect(gw.url);
      c.send({ type: FrameType.SUB, subId: 1, topic, group: 'w', credit });
      await c.next((f) => f.type === FrameType.SUBSCRIBED);
      return c;
    };
    const stuck = await join(4096);
    pause(stuck);
    await publishAll(topic);
    // It was leased until its socket stopped taking frames, and then nothing more.
    await waitFor(() => gw.groups.loaded(topic)[0]!.group.counts.leased > 0, 'leases to the stuck member');
    const worker = await join(64);
    const acked = new Set<number>();
    let seen = 0;
    type Lease = Extract<ServerFrame, { type: 18 }>;
    await waitFor(() => {
      const got = worker.frames.filter((f): f is Lease => f.type === FrameType.LEASE);
      const fresh = got.slice(seen).map((l) => l.offset);
      seen = got.length;
      if (fresh.length > 0) worker.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: fresh });
      for (const o of fresh) acked.add(o);
      return acked.size === COUNT;
    }, 'every message acknowledged by the reading member', 30_000);
    const most = await mostBuffered();
    assert.ok(most < 4 * MiB, `the stuck member's connection holds ${(most / MiB).toFixed(1)} MiB in the gateway`);
    stuck.ws.terminate(); // it reads nothing, not even a close handshake
    worker.close();
  });
});
