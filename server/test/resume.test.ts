import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { RawClient } from './helpers/raw-client.js';

let gw: RunningServer;
before(async () => { gw = await startGateway((c) => { c.retention.maxCount = 50; }); });
after(async () => { await gw.close(); });

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function seed(topic: string, n: number): Promise<string> {
  const pub = await RawClient.connect(gw.url);
  for (let i = 1; i <= n; i++) await pub.publish(i, topic, i);
  pub.close();
  return (await gw.store.info(topic)).epoch;
}

describe('resume', () => {
  it('from an offset with the matching epoch: no gap, no duplicate, recovered', async () => {
    const epoch = await seed('resume.ok', 10);
    const c = await RawClient.connect(gw.url);
    const s = await c.subscribe(1, 'resume.ok', { from: 6, epoch, credit: 100 });
    assert.deepEqual({ ...s, type: undefined }, { type: undefined, subId: 1, epoch, head: 10, from: 6, recovered: true });
    await c.waitDelivered('resume.ok', 5);
    const pub = await RawClient.connect(gw.url);
    await pub.publish(1, 'resume.ok', 11);
    await c.waitDelivered('resume.ok', 6);
    await c.barrier();
    assert.deepEqual(c.delivered('resume.ok').map((d) => d.offset), range(6, 11));
    assert.deepEqual(c.delivered('resume.ok').map((d) => d.data), range(6, 11));
    c.close();
    pub.close();
  });

  it('from an offset without an epoch resumes too', async () => {
    await seed('resume.noepoch', 4);
    const c = await RawClient.connect(gw.url);
    const s = await c.subscribe(1, 'resume.noepoch', { from: 2 });
    assert.equal(s.recovered, true);
    await c.waitDelivered('resume.noepoch', 3);
    assert.deepEqual(c.delivered('resume.noepoch').map((d) => d.offset), [2, 3, 4]);
    c.close();
  });

  it('with another epoch: starts live and says it did not recover', async () => {
    await seed('resume.epoch', 5);
    const c = await RawClient.connect(gw.url);
    const s = await c.subscribe(1, 'resume.epoch', { from: 2, epoch: 'some-other-epoch' });
    assert.equal(s.recovered, false);
    assert.equal(s.from, 6);
    assert.equal(s.head, 5);
    const pub = await RawClient.connect(gw.url);
    await pub.publish(1, 'resume.epoch', 'new');
    await c.waitDelivered('resume.epoch', 1);
    await c.barrier();
    assert.deepEqual(c.delivered('resume.epoch').map((d) => d.offset), [6]);
    c.close();
    pub.close();
  });

  it('without from: live only', async () => {
    await seed('resume.live', 3);
    const c = await RawClient.connect(gw.url);
    const s = await c.subscribe(1, 'resume.live');
    assert.deepEqual([s.from, s.recovered], [4, false]);
    c.close();
  });

  it('from: 1 reads the retained log from the start', async () => {
    await seed('resume.start', 3);
    const c = await RawClient.connect(gw.url);
    const s = await c.subscribe(1, 'resume.start', { from: 1 });
    assert.deepEqual([s.from, s.recovered], [1, true]);
    await c.waitDelivered('resume.start', 3);
    c.close();
  });

  it('a trimmed range: SUBSCRIBED says where delivery starts, recovered false', async () => {
    await seed('resume.trimmed', 60); // retention keeps 50: offsets 11..60
    const c = await RawClient.connect(gw.url);
    const s = await c.subscribe(1, 'resume.trimmed', { from: 5, credit: 100 });
    assert.deepEqual([s.from, s.recovered, s.head], [11, false, 60]);
    await c.waitDelivered('resume.trimmed', 50);
    assert.deepEqual(c.delivered('resume.trimmed').map((d) => d.offset), range(11, 60));
    c.close();
  });

  it('a paused subscriber whose cursor falls behind retention gets GAP, then the rest', async () => {
    const c = await RawClient.connect(gw.url);
    await c.subscribe(1, 'resume.gap', { credit: 2 });
    await seed('resume.gap', 80); // the subscriber takes 1..2 live, then pauses at 3; 31..80 retained
    await c.waitDelivered('resume.gap', 2);
    c.send({ type: 7, subId: 1, n: 100 });
    const gap = await c.next((f) => f.type === 14);
    assert.deepEqual(gap, { type: 14, topic: 'resume.gap', from: 3, to: 30 });
    await c.waitDelivered('resume.gap', 52);
    await c.barrier();
    assert.deepEqual(c.delivered('resume.gap').map((d) => d.offset), [1, 2, ...range(31, 80)]);
    c.close();
  });

  it('a future offset in the same epoch starts at the head + 1, not recovered', async () => {
    const epoch = await seed('resume.future', 2);
    const c = await RawClient.connect(gw.url);
    const s = await c.subscribe(1, 'resume.future', { from: 10, epoch });
    assert.deepEqual([s.from, s.recovered], [3, false]);
    c.close();
  });
});
