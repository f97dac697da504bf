import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VERSION, type RunningServer } from '../src/server.js';
import { StatsHistory } from '../src/http/admin-history.js';
import { startGateway } from './helpers/gateway.js';
import { api, SseReader, waitFor } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

let gw: RunningServer;
let live: RawClient;
let paused: RawClient;
let sse: SseReader;
const T = 'adm.room';

before(async () => {
  gw = await startGateway();
  live = await RawClient.connect(gw.url, { headers: { 'user-agent': 'live-agent/1' } });
  paused = await RawClient.connect(gw.url, { headers: { 'user-agent': 'paused-agent/1' } });
  await live.subscribe(1, T, {});
  await paused.subscribe(7, T, { credit: 0 });
  sse = await SseReader.open(`${gw.url}/v1/topics/${T}/events`, { 'user-agent': 'sse-agent/1' });
  await sse.next((e) => e.event === 'subscribed');
  for (let i = 1; i <= 5; i++) assert.equal((await api(gw.url, `/v1/topics/${T}/messages`, { json: { i } })).status, 201);
  await live.waitDelivered(T, 5);
  await sse.waitMessages(5);
  await api(gw.url, '/v1/topics/bad..name/messages', { json: 1 }); // one invalid-topic error
});
after(async () => {
  sse.close();
  live.close();
  paused.close();
  await gw.close();
});

describe('admin API', () => {
  it('GET /v1/admin/stats', async () => {
    const r = await api(gw.url, '/v1/admin/stats');
    assert.equal(r.status, 200);
    const s = r.body;
    assert.deepEqual(Object.keys(s).sort(), ['authMode', 'connections', 'errors', 'http', 'nodes', 'rates', 'storeBytes', 'subscriptions', 'topics', 'uptimeMs', 'version']);
    assert.deepEqual([s.version, s.authMode, s.connections, s.topics, s.nodes], [VERSION, 'dev', 2, 1, 1]);
    assert.deepEqual(s.subscriptions, { live: 1, paused: 1, catchup: 0 });
    assert.deepEqual(Object.keys(s.rates).sort(), ['bytesInPerSec', 'bytesOutPerSec', 'messagesInPerSec', 'messagesOutPerSec']);
    assert.ok(s.storeBytes > 0 && s.uptimeMs >= 0);
    assert.equal(s.errors['invalid-topic'], 1);
    assert.deepEqual(s.http, { longPolls: 0, eventStreams: 1, adminStreams: 0 });
  });

  it('GET /v1/admin/stats/history: a sample a second of rates, connections and subscription states', async () => {
    let h: { now: number; intervalMs: number; samples: { at: number; connections: number; live: number; paused: number }[] } | undefined;
    await waitFor(async () => {
      h = (await api(gw.url, '/v1/admin/stats/history')).body;
      return (h?.samples.length ?? 0) >= 1;
    }, 'a first sample', 3000);
    assert.equal(h!.intervalMs, 1000);
    assert.ok(Math.abs(h!.now - Date.now()) < 1000);
    const last = h!.samples.at(-1)!;
    assert.deepEqual(Object.keys(last).sort(), ['at', 'bytesInPerSec', 'bytesOutPerSec', 'connections', 'live', 'messagesInPerSec', 'messagesOutPerSec', 'paused']);
    assert.deepEqual([last.connections, last.live, last.paused], [2, 1, 1]);
    assert.ok(last.at <= h!.now && h!.now - last.at <= 1500);
    const at = h!.samples.map((x) => x.at);
    assert.deepEqual(at, [...at].sort((a, b) => a - b), 'oldest first');
  });

  it('stats history keeps the newest samples up to its capacity, oldest first', () => {
    let n = 0;
    const history = new StatsHistory(() => ({ messagesInPerSec: ++n, messagesOutPerSec: 0, bytesInPerSec: 0, bytesOutPerSec: 0, connections: 0, live: 0, paused: 0 }), 3, 60_000);
    try {
      assert.deepEqual(history.snapshot().samples, []);
      for (let t = 1; t <= 5; t++) history.sample(t * 1000);
      const kept = history.snapshot().samples;
      assert.deepEqual(kept.map((x) => [x.at, x.messagesInPerSec]), [[3000, 3], [4000, 4], [5000, 5]]);
    } finally {
      history.close();
    }
  });

  it('GET /v1/admin/nodes: without cluster mode, the node itself', async () => {
    const r = await api(gw.url, '/v1/admin/nodes');
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 1);
    const n = r.body[0];
    assert.deepEqual(Object.keys(n).sort(), ['address', 'connections', 'id', 'lastSeen', 'self', 'startedAt', 'subscriptions', 'uptimeMs', 'version']);
    assert.deepEqual([n.id, n.address, n.connections, n.subscriptions, n.version, n.self], [gw.nodes.id, gw.url, 2, 2, VERSION, true]);
    assert.ok(n.startedAt <= Date.now() && n.uptimeMs >= 0 && Math.abs(n.lastSeen - Date.now()) < 5000);
  });

  it('GET /v1/admin/topics: one row per topic, with subscriber states and a per-topic rate', async () => {
    const r = await api(gw.url, '/v1/admin/topics');
    assert.equal(r.status, 200);
    const row = r.body.find((t: { topic: string }) => t.topic === T);
    const info = await gw.store.info(T);
    assert.deepEqual({ ...row, msgsPerSec: undefined }, {
      topic: T, epoch: info.epoch, head: 5, first: 1, count: 5, bytes: info.bytes,
      subscribers: 3, live: 2, paused: 1, msgsPerSec: undefined, lastTs: info.lastTs,
    });
    // The rate is sampled each second: publish a burst and watch it show up.
    await Promise.all(Array.from({ length: 20 }, (_, i) => api(gw.url, '/v1/topics/adm.busy/messages', { json: i })));
    let rate = 0;
    await waitFor(async () => {
      const rows = (await api(gw.url, '/v1/admin/topics')).body as { topic: string; msgsPerSec: number }[];
      rate = rows.find((t) => t.topic === 'adm.busy')?.msgsPerSec ?? 0;
      return rate > 0;
    }, 'a per-topic rate', 3000);
    assert.ok(rate > 0 && rate <= 25, `msgsPerSec ${rate} for 20 messages`);
  });

  it('GET /v1/admin/topics/{topic}: every subscriber with state, credit, cursor, lag and delivered', async () => {
    const r = await api(gw.url, `/v1/admin/topics/${T}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.head, 5);
    const subs = r.body.subscribers as Record<string, unknown>[];
    const byAgent = (ua: string) => subs.find((s) => s.userAgent === ua)!;
    const l = byAgent('live-agent/1');
    const p = byAgent('paused-agent/1');
    const e = byAgent('sse-agent/1');
    const liveSession = [...gw.sessions].find((s) => s.peer.userAgent === 'live-agent/1')!;
    assert.ok(typeof l.since === 'number' && l.since > 0 && l.since <= Date.now());
    assert.deepEqual({ ...l, since: 0 }, {
      transport: 'ws', connection: liveSession.id, clientId: 'anonymous', client: 'raw-test', remoteAddress: '127.0.0.1',
      userAgent: 'live-agent/1', subId: 1, state: 'live', credit: 64 - 5, cursor: 5, lag: 0, delivered: 5, since: 0, node: gw.nodes.id,
    });
    assert.deepEqual([r.body.live, r.body.paused, r.body.unanswered], [2, 1, []]);
    assert.deepEqual([p.subId, p.state, p.credit, p.cursor, p.lag, p.delivered], [7, 'paused', 0, 0, 5, 0]);
    assert.deepEqual([e.transport, e.state, e.credit, e.cursor, e.lag, e.delivered], ['sse', 'live', null, 5, 0, 5]);

    const missing = await api(gw.url, '/v1/admin/topics/adm.nothing');
    assert.deepEqual([missing.status, missing.body.error.code], [404, 'not-found']);
    const invalid = await api(gw.url, '/v1/admin/topics/a..b');
    assert.deepEqual([invalid.status, invalid.body.error.code], [400, 'invalid-topic']);
  });

  it('GET /v1/admin/connections: WebSockets and SSE streams, with traffic counters', async () => {
    const r = await api(gw.url, '/v1/admin/connections');
    assert.equal(r.status, 200);
    const rows = r.body as Record<string, any>[];
    const l = rows.find((c) => c.userAgent === 'live-agent/1')!;
    const p = rows.find((c) => c.userAgent === 'paused-agent/1')!;
    const e = rows.find((c) => c.userAgent === 'sse-agent/1')!;
    assert.deepEqual(Object.keys(l).sort(), ['buffered', 'bytesIn', 'bytesOut', 'client', 'clientId', 'connectedAt', 'id', 'node', 'remoteAddress', 'subscriptions', 'transport', 'userAgent']);
    assert.deepEqual([l.transport, l.client, l.clientId, l.remoteAddress, l.subscriptions, l.node], ['ws', 'raw-test', 'anonymous', '127.0.0.1', 1, gw.nodes.id]);
    assert.equal(r.headers.get('sluice-unanswered-nodes'), null, 'every node answered');
    assert.ok(l.bytesIn > 0);
    // The live one got five messages through the native fan-out on top of its control frames.
    assert.ok(l.bytesOut > p.bytesOut + 5 * 8, `live ${l.bytesOut} vs paused ${p.bytesOut}`);
    assert.deepEqual([e.transport, e.subscriptions], ['sse', 1]);
    assert.ok(e.bytesOut > 0);
  });

  it('DELETE /v1/admin/connections/{id}: closes a WebSocket with 4202 and ends an SSE stream with event end', async () => {
    const victim = await RawClient.connect(gw.url);
    const id = [...gw.sessions].find((s) => s.clientName === 'raw-test' && s.subs.size === 0)!.id;
    const r = await api(gw.url, `/v1/admin/connections/${id}`, { method: 'DELETE' });
    assert.deepEqual([r.status, r.body], [200, { id, closed: true, node: gw.nodes.id }]);
    assert.equal((await victim.closed).code, 4202);

    const stream = await SseReader.open(`${gw.url}/v1/topics/adm.kick/events`);
    await stream.next((e) => e.event === 'subscribed');
    const sid = [...gw.http.streams.all].find((s) => s.topic === 'adm.kick')!.id;
    assert.equal((await api(gw.url, `/v1/admin/connections/${sid}`, { method: 'DELETE' })).status, 200);
    const end = await stream.next((e) => e.event === 'end');
    assert.equal(JSON.parse(end.data).code, 'kicked');
    await stream.untilEnded();

    const missing = await api(gw.url, '/v1/admin/connections/nope', { method: 'DELETE' });
    assert.deepEqual([missing.status, missing.body.error.code], [404, 'not-found']);
    const elsewhere = await api(gw.url, `/v1/admin/connections/${id}?node=not-a-node`, { method: 'DELETE' });
    assert.deepEqual([elsewhere.status, elsewhere.body.error.message], [404, `no connection ${id} on node not-a-node`]);
  });

  it('GET /v1/admin/stream: {stats, topics, nodes, unanswered} every second; connections and a topic\'s detail on request', async () => {
    const s = await SseReader.open(`${gw.url}/v1/admin/stream`);
    assert.equal(s.status, 200);
    const first = JSON.parse((await s.next((e) => e.event === 'stats')).data);
    assert.deepEqual(Object.keys(first).sort(), ['nodes', 'stats', 'topicTotals', 'topics', 'unanswered']);
    assert.deepEqual(first.topicTotals, { topics: 2, active: first.topicTotals.active, subscribed: 1 }, 'adm.room and adm.busy stored; adm.room subscribed');
    assert.deepEqual([first.nodes.length, first.nodes[0].self, first.unanswered], [1, true, []]);
    assert.equal(first.stats.version, VERSION);
    assert.ok(first.topics.some((t: { topic: string }) => t.topic === T));
    const second = JSON.parse((await s.next((e) => e.event === 'stats', 3000)).data);
    assert.ok(second.stats.uptimeMs > first.stats.uptimeMs);
    assert.equal(second.stats.http.adminStreams, 1);
    assert.equal(s.events.filter((e) => e.event !== 'stats').length, 0, 'nothing else unless asked for');
    s.close();
    await waitFor(() => gw.http.admin.feed.size === 0, 'the admin stream to be dropped');

    const more = await SseReader.open(`${gw.url}/v1/admin/stream?connections=1&topic=${encodeURIComponent(T)}`);
    const conns = JSON.parse((await more.next((e) => e.event === 'connections')).data) as { userAgent: string }[];
    assert.ok(conns.some((c) => c.userAgent === 'live-agent/1'));
    const detail = JSON.parse((await more.next((e) => e.event === 'topic')).data);
    assert.deepEqual([detail.topic, detail.head, detail.subscribers.length], [T, 5, 3]);
    await more.next((e) => e.event === 'topic', 3000); // and again on the next tick
    more.close();
    const bad = await SseReader.open(`${gw.url}/v1/admin/stream?topic=a..b`);
    assert.equal(bad.status, 400);

    // ?history=1: the first message starts with the samples kept so far, then the snapshot as usual.
    const withHistory = await SseReader.open(`${gw.url}/v1/admin/stream?history=1`);
    await withHistory.next((e) => e.event === 'stats');
    assert.equal(withHistory.events[0]!.event, 'history');
    const h = JSON.parse(withHistory.events[0]!.data);
    assert.ok(h.samples.length >= 1 && h.intervalMs === 1000);
    await withHistory.next((e) => e.event === 'stats', 3000); // the next tick: stats, no history
    assert.equal(withHistory.events.filter((e) => e.event === 'history').length, 1, 'history only once');
    withHistory.close();
  });
});
