/**
 * Where delivery starts, on every transport. `resolveStart` is the one rule; this file checks the
 * rule itself, then that a WebSocket SUB, an SSE stream and a pull give the same answer for the
 * same position — first offset, recovered, and the trimmed range — in each case.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FrameType } from '@sluice/client/protocol';
import { resolveStart } from '../src/core/start.js';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api, SseReader } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

describe('resolveStart', () => {
  const log = { epoch: 'e1', head: 25, first: 16 };
  it('decides from, recovered and the gap for each case', () => {
    assert.deepEqual(resolveStart(log, {}), { epoch: 'e1', head: 25, from: 26, recovered: false });
    assert.deepEqual(resolveStart(log, {}, 'oldest'), { epoch: 'e1', head: 25, from: 16, recovered: false });
    assert.deepEqual(resolveStart(log, { from: 20 }), { epoch: 'e1', head: 25, from: 20, recovered: true });
    assert.deepEqual(resolveStart(log, { from: 26, epoch: 'e1' }), { epoch: 'e1', head: 25, from: 26, recovered: true });
    assert.deepEqual(resolveStart(log, { from: 3 }), { epoch: 'e1', head: 25, from: 16, recovered: false, gap: { from: 3, to: 15 } });
    assert.deepEqual(resolveStart(log, { from: 0 }), { epoch: 'e1', head: 25, from: 16, recovered: false, gap: { from: 1, to: 15 } });
    assert.deepEqual(resolveStart(log, { from: 20, epoch: 'e0' }), { epoch: 'e1', head: 25, from: 26, recovered: false });
    assert.deepEqual(resolveStart(log, { from: 40 }), { epoch: 'e1', head: 25, from: 26, recovered: false });
    assert.deepEqual(resolveStart({ epoch: 'e', head: 0, first: 1 }, { from: 1 }), { epoch: 'e', head: 0, from: 1, recovered: true });
    // An earlier epoch of the same log: valid up to the last offset it holds here.
    const renamed = { ...log, history: [{ epoch: 'e0', last: 21 }] };
    assert.deepEqual(resolveStart(renamed, { from: 22, epoch: 'e0' }), { epoch: 'e1', head: 25, from: 22, recovered: true });
    assert.deepEqual(resolveStart(renamed, { from: 23, epoch: 'e0' }), { epoch: 'e1', head: 25, from: 26, recovered: false }, 'it saw offsets the log no longer has in that epoch');
  });
});

interface Answer {
  from: number;
  recovered: boolean;
  gap: { from: number; to: number } | null;
}

let gw: RunningServer;
let epoch: string;
const FULL = 'start.full'; // offsets 1..5, nothing trimmed
const TRIMMED = 'start.trimmed'; // offsets 16..25 retained of 25

before(async () => {
  gw = await startGateway((c) => { c.retention.maxCount = 10; });
  const pub = await RawClient.connect(gw.url);
  for (let i = 1; i <= 25; i++) await pub.publish(i, TRIMMED, i);
  for (let i = 1; i <= 5; i++) await pub.publish(100 + i, FULL, i);
  pub.close();
  epoch = (await gw.store.info(TRIMMED)).epoch;
});
after(() => gw.close());

async function overWebSocket(topic: string, pos: { from?: number; epoch?: string }): Promise<Answer> {
  const c = await RawClient.connect(gw.url);
  const s = await c.subscribe(1, topic, { ...pos, credit: 0 });
  await c.barrier(); // a GAP is sent right after SUBSCRIBED
  const gap = c.frames.find((f) => f.type === FrameType.GAP);
  c.close();
  return { from: s.from, recovered: s.recovered, gap: gap && gap.type === FrameType.GAP ? { from: gap.from, to: gap.to } : null };
}

async function overSse(topic: string, pos: { from?: number; epoch?: string }): Promise<Answer> {
  const q = new URLSearchParams();
  if (pos.from !== undefined) q.set('from', String(pos.from));
  if (pos.epoch !== undefined) q.set('epoch', pos.epoch);
  const r = await SseReader.open(`${gw.url}/v1/topics/${topic}/events?${q}`);
  const subscribed = JSON.parse((await r.next((e) => e.event === 'subscribed')).data);
  // The gap event is written with `subscribed`; a message (or nothing, when live) comes after it.
  const end = subscribed.from <= subscribed.head ? await r.next((e) => e.event === 'message' || e.event === 'gap') : undefined;
  const gap = end?.event === 'gap' ? JSON.parse(end.data) : null;
  r.close();
  return { from: subscribed.from, recovered: subscribed.recovered, gap };
}

async function overPull(topic: string, pos: { from?: number; epoch?: string }): Promise<Answer> {
  const q = new URLSearchParams({ limit: '1' });
  if (pos.from !== undefined) q.set('from', String(pos.from));
  if (pos.epoch !== undefined) q.set('epoch', pos.epoch);
  const r = await api(gw.url, `/v1/topics/${topic}/messages?${q}`);
  assert.equal(r.status, 200);
  const from = r.body.messages[0]?.offset ?? r.body.next;
  return { from, recovered: r.body.recovered, gap: r.body.gap ?? null };
}

describe('the same start on WebSocket, SSE and pull', () => {
  const cases: { name: string; topic: string; pos: () => { from?: number; epoch?: string }; want: Answer }[] = [
    { name: 'at the tail (from = head + 1)', topic: TRIMMED, pos: () => ({ from: 26, epoch }), want: { from: 26, recovered: true, gap: null } },
    { name: 'from 1 of an untrimmed log', topic: FULL, pos: () => ({ from: 1 }), want: { from: 1, recovered: true, gap: null } },
    { name: 'from a trimmed offset', topic: TRIMMED, pos: () => ({ from: 3, epoch }), want: { from: 16, recovered: false, gap: { from: 3, to: 15 } } },
    { name: 'from another epoch', topic: TRIMMED, pos: () => ({ from: 20, epoch: 'not-this-epoch' }), want: { from: 26, recovered: false, gap: null } },
    { name: 'from beyond the head', topic: TRIMMED, pos: () => ({ from: 40 }), want: { from: 26, recovered: false, gap: null } },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const [ws, sse, pull] = await Promise.all([overWebSocket(c.topic, c.pos()), overSse(c.topic, c.pos()), overPull(c.topic, c.pos())]);
      assert.deepEqual({ ws, sse, pull }, { ws: c.want, sse: c.want, pull: c.want });
    });
  }

  it('live (no position) on the subscribing transports', async () => {
    const want = { from: 26, recovered: false, gap: null };
    assert.deepEqual(await overWebSocket(TRIMMED, {}), want);
    assert.deepEqual(await overSse(TRIMMED, {}), want);
  });
});
