/**
 * The admin API of consumer groups, on an in-process gateway whose members are raw WebSocket
 * subscriptions (and one HTTP consumer): the rows, settings, reset, replay, their validation, the
 * admin stream's groups event and the groups' metrics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FrameType, type ServerFrame } from '@sluice/client/protocol';
import { mintToken } from '@sluice/client/token';
import type { Config } from '../src/config.js';
import type { RunningServer } from '../src/server.js';
import { removeDir, startGateway, tempDir } from './helpers/gateway.js';
import { api, SseReader, waitFor } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

let gw: RunningServer;
let pub: RawClient;
let req = 0;
before(async () => {
  gw = await startGateway((c) => {
    c.groups.ackWaitMs = 5000;
    c.groups.maxDeliveries = 3;
    c.groups.backoffMs = [50, 100];
  });
  pub = await RawClient.connect(gw.url);
});
after(async () => {
  pub.close();
  await gw.close();
});

type Lease = Extract<ServerFrame, { type: 18 }>;
const leases = (c: RawClient, topic: string): Lease[] => c.frames.filter((f): f is Lease => f.type === FrameType.LEASE && f.topic === topic);

/** A WebSocket member of `group`, subscribed (SUBSCRIBED received). */
async function member(topic: string, group: string, credit: number, from?: number): Promise<RawClient> {
  const c = await RawClient.connect(gw.url);
  c.send({ type: FrameType.SUB, subId: 1, topic, group, credit, ...(from === undefined ? {} : { from }) });
  const f = await c.next((x) => x.type === FrameType.SUBSCRIBED || x.type === FrameType.ERROR);
  if (f.type === FrameType.ERROR) throw new Error(`${f.code}: ${f.message}`);
  return c;
}

async function publish(topic: string, ...values: unknown[]): Promise<void> {
  for (const v of values) await pub.publish(++req, topic, v);
}

const groupsOf = async (topic: string) => (await api(gw.url, `/v1/admin/topics/${encodeURIComponent(topic)}/groups`)).body as any[];
const rowOf = async (topic: string, group: string) => (await groupsOf(topic)).find((r) => r.group === group);
const put = (topic: string, group: string, json: unknown) => api(gw.url, `/v1/admin/topics/${topic}/groups/${group}`, { method: 'PUT', json });
const post = (topic: string, group: string, action: string, json?: unknown) =>
  api(gw.url, `/v1/admin/topics/${topic}/groups/${group}/${action}`, { method: 'POST', ...(json === undefined ? {} : { json }) });

describe('admin API: consumer groups', () => {
  it('GET …/groups: position, backlog, leases and members of both transports; the topic detail names the groups', async () => {
    const T = 'ag.list';
    const ws = await member(T, 'workers', 2);
    await publish(T, 1, 2, 3, 4, 5, 6);
    await waitFor(() => leases(ws, T).length === 2, 'two leases to the WebSocket member');
    const http = await api(gw.url, `/v1/topics/${T}/groups/workers/lease?max=1&consumer=edge`, { method: 'POST' });
    assert.equal(http.body.messages.length, 1);
    ws.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [leases(ws, T)[0]!.offset] });
    await waitFor(async () => (await rowOf(T, 'workers'))?.acked === 1, 'the acknowledgement counted');
    // Offset 1 was acknowledged: the floor passes it once that is saved.
    await waitFor(async () => (await rowOf(T, 'workers')).floor === 2, 'the ack floor at 2');
    await waitFor(async () => (await rowOf(T, 'workers')).leased === 3, 'a third lease (the WebSocket credit freed)');
    const row = await rowOf(T, 'workers');
    assert.deepEqual({ ...row, members: undefined }, {
      group: 'workers', floor: 2, next: 7, head: 6, backlog: 2, leased: 3, redeliveriesPerSec: 0, deadLettered: 0, acked: 1,
      members: undefined, settings: { ackWaitMs: 5000, maxDeliveries: 3, backoffMs: [50, 100], deadLetterTopic: `${T}.dlq` },
    });
    const wsRow = row.members.find((m: { transport: string }) => m.transport === 'ws');
    const httpRow = row.members.find((m: { transport: string }) => m.transport === 'http');
    assert.match(wsRow.id, /^[^:]+:1$/);
    assert.deepEqual({ ...wsRow, id: '' }, { id: '', clientId: 'anonymous', transport: 'ws', window: 2, leased: 2 });
    assert.deepEqual(httpRow, { id: 'http:edge', clientId: 'anonymous', transport: 'http', window: 1, leased: 1 });

    const detail = await api(gw.url, `/v1/admin/topics/${T}`);
    assert.deepEqual(detail.body.groups, ['workers']);
    assert.deepEqual((await api(gw.url, '/v1/admin/topics/ag.none/groups')).body, [], 'a topic without groups has none');
    const invalid = await api(gw.url, '/v1/admin/topics/a..b/groups');
    assert.deepEqual([invalid.status, invalid.body.error.code], [400, 'invalid-topic']);
    ws.close();
  });

  it('lists a group that has saved state but is not held by the node (after a restart), and changes it', async () => {
    const dir = tempDir();
    try {
      const disk = (c: Config) => { c.store = 'disk'; c.dataDir = dir; };
      const first = await startGateway(disk);
      const c = await RawClient.connect(first.url);
      c.send({ type: FrameType.SUB, subId: 1, topic: 'ag.saved', group: 'billing', credit: 10, from: 1 });
      await c.next((f) => f.type === FrameType.SUBSCRIBED);
      await c.publish(1, 'ag.saved', 'a');
      await c.publish(2, 'ag.saved', 'b');
      await waitFor(() => leases(c, 'ag.saved').length === 2, 'both leased');
      c.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [1] });
      await waitFor(() => first.groups.loaded('ag.saved')[0]?.savedFloor === 2, 'offset 1 acknowledged durably');
      c.close();
      await first.close();

      const second = await startGateway(disk);
      try {
        assert.equal(second.groups.loaded('ag.saved').length, 0, 'not held after the restart');
        assert.deepEqual((await api(second.url, '/v1/admin/topics/ag.saved')).body.groups, ['billing'], 'named without loading it');
        assert.equal(second.groups.loaded('ag.saved').length, 0);
        const rows = (await api(second.url, '/v1/admin/topics/ag.saved/groups')).body;
        assert.deepEqual(rows.map((r: any) => [r.group, r.floor, r.head, r.backlog, r.leased, r.members.length]), [['billing', 2, 2, 1, 0, 0]]);
        const changed = await api(second.url, '/v1/admin/topics/ag.saved/groups/billing', { method: 'PUT', json: { maxDeliveries: 9 } });
        assert.deepEqual([changed.status, changed.body.settings.maxDeliveries], [200, 9]);
      } finally {
        await second.close();
      }
      const third = await startGateway(disk);
      try {
        const rows = (await api(third.url, '/v1/admin/topics/ag.saved/groups')).body;
        assert.equal(rows[0].settings.maxDeliveries, 9, 'the settings were saved');
      } finally {
        await third.close();
      }
    } finally {
      removeDir(dir);
    }
  });

  it('PUT …/groups/{group}: changes the settings it is given and answers the row; the group uses them', async () => {
    const T = 'ag.put';
    const m = await member(T, 'w', 5);
    const r = await put(T, 'w', { ackWaitMs: 100, maxDeliveries: 7, backoffMs: [0], deadLetterTopic: 'ag.put.dead' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.settings, { ackWaitMs: 100, maxDeliveries: 7, backoffMs: [0], deadLetterTopic: 'ag.put.dead' });
    assert.deepEqual((await put(T, 'w', { maxDeliveries: 2 })).body.settings, { ackWaitMs: 100, maxDeliveries: 2, backoffMs: [0], deadLetterTopic: 'ag.put.dead' });
    assert.equal((await put(T, 'w', {})).status, 200, 'an empty change is the row');
    // The new ack wait: an unacknowledged lease comes back within ~100 ms, as attempt 2.
    await publish(T, 'x');
    await waitFor(() => leases(m, T).length === 2, 'redelivered after the 100 ms ack wait', 3000);
    assert.equal(leases(m, T)[1]!.attempt, 2);
    m.close();
  });

  it('PUT validation: stable codes, nothing changed', async () => {
    const T = 'ag.valid';
    const m = await member(T, 'w', 1);
    const before = (await rowOf(T, 'w')).settings;
    const refused: [unknown, string][] = [
      [{ ackWaitMs: 0 }, 'ackWaitMs'],
      [{ ackWaitMs: 1.5 }, 'ackWaitMs'],
      [{ ackWaitMs: '100' }, 'ackWaitMs'],
      [{ ackWaitMs: 86_400_001 }, 'ackWaitMs'],
      [{ maxDeliveries: 0 }, 'maxDeliveries'],
      [{ maxDeliveries: -3 }, 'maxDeliveries'],
      [{ backoffMs: 100 }, 'backoffMs'],
      [{ backoffMs: [100, -1] }, 'backoffMs'],
      [{ backoffMs: Array.from({ length: 21 }, () => 10) }, 'backoffMs'],
      [{ deadLetterTopic: 'bad..topic' }, 'deadLetterTopic'],
      [{ deadLetterTopic: '$sys.x' }, 'deadLetterTopic'],
      [{ deadLetterTopic: T }, 'deadLetterTopic'],
      [{ ackWaitMs: 100, colour: 'red' }, 'unknown setting'],
      [[1, 2], 'JSON object'],
    ];
    for (const [body, mentions] of refused) {
      const r = await put(T, 'w', body);
      assert.deepEqual([r.status, r.body.error.code], [400, 'bad-request'], JSON.stringify(body));
      assert.match(r.body.error.message, new RegExp(mentions.replace('$', '\\$')));
    }
    const notJson = await api(gw.url, `/v1/admin/topics/${T}/groups/w`, { method: 'PUT', raw: '{nope', headers: { 'content-type': 'application/json' } });
    assert.deepEqual([notJson.status, notJson.body.error.code], [400, 'bad-request']);
    const badGroup = await put(T, 'no%20spaces', {});
    assert.deepEqual([badGroup.status, badGroup.body.error.code], [400, 'invalid-group']);
    const badTopic = await put('a..b', 'w', {});
    assert.deepEqual([badTopic.status, badTopic.body.error.code], [400, 'invalid-topic']);
    const unknown = await put(T, 'nobody', { ackWaitMs: 100 });
    assert.deepEqual([unknown.status, unknown.body.error.code], [404, 'not-found']);
    assert.deepEqual(await groupsOf(T).then((rows) => rows.map((r) => r.group)), ['w'], 'a PUT creates no group');
    const wrong = await post(T, 'w', 'nothing');
    assert.equal(wrong.status, 404);
    const method = await api(gw.url, `/v1/admin/topics/${T}/groups/w`, { method: 'POST', json: {} });
    assert.deepEqual([method.status, method.headers.get('allow'), method.body.error.code], [405, 'PUT, OPTIONS', 'method-not-allowed']);
    assert.deepEqual((await rowOf(T, 'w')).settings, before, 'unchanged');
    m.close();
  });

  it('POST …/reset: to an offset, or to a time; the members get the messages from there again', async () => {
    const T = 'ag.reset';
    const m = await member(T, 'w', 20);
    await publish(T, 'a', 'b', 'c');
    await waitFor(() => leases(m, T).length === 3, 'three leases');
    // Stored timestamps are whole ms: keep the time clear of both sides.
    await new Promise((r) => setTimeout(r, 5));
    const atFourth = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    await publish(T, 'd', 'e');
    await waitFor(() => leases(m, T).length === 5, 'five leases');
    m.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [1, 2, 3, 4, 5] });
    await waitFor(async () => (await rowOf(T, 'w')).floor === 6, 'all five done');

    const r = await post(T, 'w', 'reset', { offset: 2 });
    assert.equal(r.status, 200);
    assert.deepEqual([r.body.floor, r.body.next <= 6, r.body.leased + r.body.backlog], [2, true, 4]);
    await waitFor(() => leases(m, T).length === 9, 'offsets 2-5 leased again');
    assert.deepEqual(leases(m, T).slice(5).map((l) => [l.offset, l.attempt]), [[2, 1], [3, 1], [4, 1], [5, 1]]);

    const byTime = await post(T, 'w', 'reset', { at: atFourth });
    assert.deepEqual([byTime.status, byTime.body.floor], [200, 4]);
    await waitFor(() => leases(m, T).length === 11, 'offsets 4-5 leased again');
    const end = await post(T, 'w', 'reset', { offset: 6 });
    assert.deepEqual([end.body.floor, end.body.backlog, end.body.leased], [6, 0, 0], 'to head + 1: nothing left');

    for (const body of [{}, { offset: 2, at: 1 }, { offset: 0 }, { offset: 7 }, { offset: '2' }, { at: -1 }, { to: 2 }]) {
      const bad = await post(T, 'w', 'reset', body);
      assert.deepEqual([bad.status, bad.body.error.code], [400, 'bad-request'], JSON.stringify(body));
    }
    assert.equal((await post(T, 'nobody', 'reset', { offset: 1 })).status, 404);
    assert.equal((await post(T, 'w', 'reset')).status, 400, 'no body');
    m.close();
  });

  it('POST …/replay: the group\'s dead letters go back to the topic (not another group\'s), and the members get them', async () => {
    const T = 'ag.replay';
    const m = await member(T, 'w', 10);
    const other = await member(T, 'audit', 10);
    await put(T, 'w', { maxDeliveries: 1 });
    await put(T, 'audit', { maxDeliveries: 1 });
    pub.send({ type: FrameType.PUB, reqId: ++req, topic: T, data: 'poison', headers: { trace: 't1' } });
    await pub.next((f) => f.type === FrameType.ACK && f.reqId === req);
    await publish(T, 'fine');
    await waitFor(() => leases(m, T).length === 2 && leases(other, T).length === 2, 'both groups leased both');
    m.send({ type: FrameType.GROUP_NACK, subId: 1, offset: 1, reason: 'broken' });
    m.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [2] });
    other.send({ type: FrameType.GROUP_NACK, subId: 1, offset: 2, reason: 'audit failed' });
    other.send({ type: FrameType.GROUP_ACK, subId: 1, offsets: [1] });
    await waitFor(async () => (await gw.store.info(`${T}.dlq`)).head === 2, 'two dead letters, one per group');
    await waitFor(async () => (await rowOf(T, 'w')).deadLettered === 1, 'counted');

    const r = await post(T, 'w', 'replay');
    assert.deepEqual([r.status, r.body], [200, { replayed: 1 }]);
    await waitFor(() => leases(m, T).length === 3, 'the replayed message leased');
    const again = leases(m, T)[2]!;
    assert.deepEqual([again.offset, again.attempt, again.message.data, { ...again.message.headers }], [3, 1, 'poison', { trace: 't1' }]);
    assert.equal((await gw.store.info(T)).head, 3, 'only w\'s dead letter was appended');
    assert.equal((await post(T, 'w', 'replay', { limit: 1 })).status, 400);
    assert.equal((await post(T, 'nobody', 'replay')).status, 404);
    assert.deepEqual((await post('ag.none', 'w', 'replay')).status, 404);
    m.close();
    other.close();
  });

  it('redeliveries per second, and the groups\' metrics with two labels', async () => {
    const T = 'ag.metrics';
    const m = await member(T, 'w', 4);
    await put(T, 'w', { ackWaitMs: 30, maxDeliveries: 1000, backoffMs: [0] });
    await publish(T, 'a', 'b', 'c', 'd', 'e', 'f');
    let rate = 0;
    await waitFor(async () => (rate = (await rowOf(T, 'w')).redeliveriesPerSec) > 0, 'a redelivery rate', 4000);
    // Four leases every ~30 ms: some tens a second (timers on a busy machine run late, never early).
    assert.ok(rate > 10 && rate < 400, `redeliveriesPerSec ${rate}`);
    m.close();

    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      assert.ok(line, `${series} in ${text.slice(0, 200)}…`);
      return Number(line.slice(series.length + 1));
    };
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? -?[0-9.e+-]+$/, line);
    }
    assert.match(text, /# TYPE sluice_group_redelivered_total counter/);
    assert.match(text, /# TYPE sluice_group_backlog gauge/);
    assert.ok(value(`sluice_group_redelivered_total{topic="${T}",group="w"}`) > 0);
    assert.equal(value(`sluice_group_leased{topic="${T}",group="w"}`) + value(`sluice_group_backlog{topic="${T}",group="w"}`), 6);
    assert.equal(value('sluice_group_dead_lettered_total{topic="ag.replay",group="w"}'), 1);
    assert.equal(value('sluice_group_backlog{topic="ag.put",group="w"}'), 0);
  });

  it('the admin stream: event groups with ?topic=&groups=1, not without', async () => {
    const T = 'ag.stream';
    const m = await member(T, 'w', 1);
    await publish(T, 1, 2);
    const s = await SseReader.open(`${gw.url}/v1/admin/stream?topic=${T}&groups=1`);
    const rows = JSON.parse((await s.next((e) => e.event === 'groups')).data);
    assert.deepEqual(rows.map((r: any) => [r.group, r.head, r.members.length]), [['w', 2, 1]]);
    await s.next((e) => e.event === 'groups', 3000); // and again on the next tick
    s.close();
    const plain = await SseReader.open(`${gw.url}/v1/admin/stream?topic=${T}`);
    await plain.next((e) => e.event === 'topic');
    assert.equal(plain.events.filter((e) => e.event === 'groups').length, 0);
    plain.close();
    m.close();
  });

  it('needs an admin token', async () => {
    const key = 'admin-groups-test-secret-long-enough!';
    const secured = await startGateway((c) => { c.auth.secret = key; });
    try {
      const worker = await mintToken({ key, sub: 'worker', caps: { '>': ['consume', 'pub', 'sub'] } });
      const admin = await mintToken({ key, sub: 'ops', admin: true });
      for (const [method, path] of [['GET', '/groups'], ['PUT', '/groups/w'], ['POST', '/groups/w/reset'], ['POST', '/groups/w/replay']] as const) {
        const url = `/v1/admin/topics/ag.sec${path}`;
        const json = method === 'GET' ? undefined : {};
        assert.equal((await api(secured.url, url, { method, json })).status, 401, `${method} ${path} without a token`);
        assert.equal((await api(secured.url, url, { method, json, token: worker })).status, 403, `${method} ${path} as a worker`);
        assert.ok([200, 404].includes((await api(secured.url, url, { method, json, token: admin })).status), `${method} ${path} as an admin`);
      }
    } finally {
      await secured.close();
    }
  });
});
