/**
 * Consumer groups in cluster mode: members connected to different gateway processes on one Redis
 * share one group — each message leased to one member at a time, across nodes — and when the node
 * that runs the group is killed with kill -9, another takes it over: nothing acknowledged is
 * delivered again, everything else is, nothing is lost.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { FrameType, type ServerFrame } from '@sluice/client/protocol';
import type { Admin } from '@sluice/client/protocol';
import type { GatewayProcess } from '../src/testing.js';
import { startNodes } from './helpers/cluster.js';
import { api, waitFor } from './helpers/http.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { RawClient } from './helpers/raw-client.js';

const nodes: GatewayProcess[] = [];
const redises: RedisServer[] = [];
after(async () => {
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  await Promise.all(redises.map((r) => r.stop()));
});

type Lease = Extract<ServerFrame, { type: 18 }>;

/** A group member on one node that records its leases and, while `acking`, acknowledges each. */
class Member {
  acking = true;
  readonly acked: number[] = [];
  private seen = 0;
  private constructor(readonly c: RawClient) {}

  static async join(url: string, topic: string, group: string, credit: number): Promise<Member> {
    const c = await RawClient.connect(url);
    c.send({ type: FrameType.SUB, subId: 1, topic, group, credit });
    const f = await c.next((x) => x.type === FrameType.SUBSCRIBED || x.type === FrameType.ERROR);
    if (f.type === FrameType.ERROR) throw new Error(`${f.code}: ${f.message}`);
    return new Member(c);
  }

  leases(): Lease[] {
    return this.c.frames.filter((f): f is Lease => f.type === FrameType.LEASE);
  }

  /** Acknowledges what arrived since the last call, when acking. */
  tick(): void {
    const got = this.leases();
    if (!this.acking) return;
    const fresh = got.slice(this.seen).map((l) => l.offset);
    this.seen = got.length;
    if (fresh.length === 0) return;
    this.c.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: fresh });
    this.acked.push(...fresh);
  }

  /** Starts acknowledging from now on, including what it held. */
  resume(): void {
    this.acking = true;
  }
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

async function publish(url: string, topic: string, from: number, to: number): Promise<void> {
  const r = await api(url, '/v1/publish', { json: { messages: range(from, to).map((i) => ({ topic, data: i })) } });
  assert.equal(r.status, 200);
}

async function groupRow(url: string, topic: string, group: string): Promise<Admin.GroupRow | undefined> {
  const r = await api<Admin.GroupRow[]>(url, `/v1/admin/topics/${topic}/groups`);
  return r.status === 200 ? r.body.find((g) => g.group === group) : undefined;
}

describe('consumer groups in cluster mode', () => {
  it('members on three nodes share one group: every message acknowledged once, by members of every node', async () => {
    const redis = await startRedis();
    redises.push(redis);
    const three = await startNodes(3, redis.url);
    nodes.push(...three);
    const members: Member[] = [];
    for (const n of three) for (let i = 0; i < 2; i++) members.push(await Member.join(n.url, 'cg.share', 'w', 16));
    await publish(three[1]!.url, 'cg.share', 1, 600);
    await waitFor(() => {
      for (const m of members) m.tick();
      return members.reduce((n, m) => n + m.acked.length, 0) >= 600;
    }, '600 acknowledged', 20_000);
    const all = members.flatMap((m) => m.acked).sort((a, b) => a - b);
    assert.deepEqual(all, range(1, 600), 'each message acknowledged once');
    assert.ok(members.every((m) => m.leases().every((l) => l.attempt === 1)), 'no message leased twice');
    for (let i = 0; i < three.length; i++) {
      const did = members.slice(2 * i, 2 * i + 2).reduce((k, m) => k + m.acked.length, 0);
      assert.ok(did > 0, `the members on node ${i} did work`);
    }
    // Every node shows the same group: the one that runs it answers.
    await waitFor(async () => (await groupRow(three[2]!.url, 'cg.share', 'w'))?.floor === 601, 'the floor saved at 601');
    for (const n of three) assert.equal((await groupRow(n.url, 'cg.share', 'w'))?.floor, 601);
    for (const m of members) m.c.close();
  });

  it('the node running the group dies (kill -9): another takes over; acknowledged messages are not delivered again, the rest are', async () => {
    const redis = await startRedis();
    redises.push(redis);
    const three = await startNodes(3, redis.url);
    nodes.push(...three);
    const topic = 'cg.failover';
    // The first member's node takes the group: it runs it.
    const onOwner = await Member.join(three[0]!.url, topic, 'w', 10);
    const owner = (await api<Admin.NodeRow[]>(three[0]!.url, '/v1/admin/nodes')).body.find((n) => n.self)!.id;
    assert.equal(await redis.call('GET', `sl:{${topic}}:gl:w`), owner, 'the first member\'s node holds the group');
    const survivors = [await Member.join(three[1]!.url, topic, 'w', 10), await Member.join(three[2]!.url, topic, 'w', 10)];
    const everyone = [onOwner, ...survivors];

    await publish(three[1]!.url, topic, 1, 60);
    await waitFor(() => {
      for (const m of everyone) m.tick();
      return everyone.reduce((n, m) => n + m.acked.length, 0) >= 60;
    }, '60 acknowledged', 20_000);
    await waitFor(async () => (await groupRow(three[1]!.url, topic, 'w'))?.floor === 61, 'the acknowledgements saved');

    // Now everyone holds what it is given without acknowledging: 30 leases out of 60 messages.
    for (const m of everyone) m.acking = false;
    const before = everyone.map((m) => m.leases().length);
    await publish(three[2]!.url, topic, 61, 120);
    await waitFor(() => everyone.reduce((n, m, i) => n + m.leases().length - before[i]!, 0) >= 30, '30 leases out');

    await three[0]!.kill('SIGKILL');
    const killedAt = Date.now();
    for (const m of survivors) m.resume();
    await waitFor(() => {
      for (const m of survivors) m.tick();
      return new Set(survivors.flatMap((m) => m.acked).filter((o) => o > 60)).size >= 60;
    }, 'messages 61-120 acknowledged by the survivors', 20_000);
    const took = Date.now() - killedAt;

    const afterKill = survivors.flatMap((m) => m.leases()).filter((l) => l.offset <= 60 && l.attempt > 1);
    assert.deepEqual(afterKill, [], 'nothing acknowledged before the kill is delivered again');
    const acked = new Set(survivors.flatMap((m) => m.acked).filter((o) => o > 60));
    assert.deepEqual([...acked].sort((a, b) => a - b), range(61, 120), 'nothing lost');
    assert.notEqual(await redis.call('GET', `sl:{${topic}}:gl:w`), owner, 'a survivor runs the group now');
    assert.ok(took < 10_000, `taken over in ${took} ms`);
    for (const m of survivors) m.c.close();
  });
});
