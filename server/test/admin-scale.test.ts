/**
 * The admin API at a large topic count (issue 14 §4): the admin stream stays small (aggregates and
 * the busiest few topics), the topic list pages and searches on the server, and periodic work
 * follows active topics only. 20,000 topics are written straight into the memory store (one
 * append each, in one burst), so the file runs in a few seconds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Admin } from '@sluice/client/protocol';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api, SseReader, waitFor, type ApiResponse } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const TOPICS = 20_000;
const TOP = 5;
/** One stats event with 20,000 topics: ~3.4 MB before paging; now aggregates plus five rows. */
const EVENT_BOUND = 8 * 1024;

let gw: RunningServer;
let sub: RawClient;
/** The string "x" as MessagePack (fixstr): what a publish stores as data. */
const data = Uint8Array.of(0xa1, 0x78);
const names: string[] = [];

before(async () => {
  gw = await startGateway((c) => { c.http.adminStreamTopics = TOP; });
  // Names in three families so search has something to tell apart: orders.<region>.<n>, users.<n>, misc-<n>.
  for (let i = 0; i < TOPICS; i++) {
    names.push(i % 4 === 0 ? `orders.${['eu', 'us'][i % 8 === 0 ? 0 : 1]}.${i}` : i % 4 === 1 ? `users.${i}` : `misc-${i}`);
  }
  // One topic of every family holds more messages, for the sorted paging below.
  await Promise.all(names.map((t, i) => gw.store.append(t, Array.from({ length: 1 + (i % 3) }, () => ({ data })))));
  // A subscribed topic with nothing stored is listed too.
  sub = await RawClient.connect(gw.url);
  await sub.subscribe(1, 'watched.only', {});
});
after(async () => {
  sub.close();
  await gw.close();
});

/** Every page of `/v1/admin/topics` with `query`, following `sluice-next-cursor`; bounded. */
async function allPages(query: string): Promise<{ rows: Admin.TopicRow[]; pages: number; total: number }> {
  const rows: Admin.TopicRow[] = [];
  let cursor: string | null = null;
  let pages = 0;
  let total = -1;
  do {
    const r: ApiResponse<Admin.TopicRow[]> = await api<Admin.TopicRow[]>(gw.url, `/v1/admin/topics?${query}${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, r.text);
    assert.ok(Array.isArray(r.body));
    const t = Number(r.headers.get('sluice-total-count'));
    assert.ok(total === -1 || t === total, 'the total stays the same across pages');
    total = t;
    rows.push(...r.body);
    cursor = r.headers.get('sluice-next-cursor');
    assert.ok(++pages <= 100, 'at most 100 pages');
  } while (cursor);
  return { rows, pages, total };
}

describe('admin API at 20,000 topics', () => {
  it('the admin stream sends aggregates and the busiest topics, in a few KiB', async () => {
    const stream = await SseReader.open(`${gw.url}/v1/admin/stream`);
    try {
      // Publish bursts of 30, 20 and 10 messages until a snapshot ranks them by rate (bounded: 40 rounds).
      const hot = ['hot.a', 'hot.b', 'hot.c'];
      let ranked: Admin.Snapshot | undefined;
      let bytes = 0;
      for (let round = 0; round < 40 && !ranked; round++) {
        await Promise.all(hot.flatMap((t, i) => Array.from({ length: 30 - 10 * i }, () => gw.store.append(t, [{ data }]))));
        const e = await stream.next((x) => x.event === 'stats', 3000);
        const snap = JSON.parse(e.data) as Admin.Snapshot;
        bytes = Buffer.byteLength(e.data);
        assert.ok(bytes < EVENT_BOUND, `one stats event is ${bytes} bytes`);
        // Until the startup writes are forgotten (two samples), those topics have a rate too.
        if (snap.topics.slice(0, 3).map((t) => t.topic).join() === hot.join() && snap.topics.some((t) => t.topic === 'watched.only')) ranked = snap;
      }
      assert.ok(ranked, 'a snapshot ranked the three hot topics by rate, then the subscribed one');
      assert.ok(ranked.topics.length <= TOP, `at most ${TOP} rows`);
      const rates = ranked.topics.map((t) => t.msgsPerSec);
      assert.deepEqual(rates, [...rates].sort((a, b) => b - a), 'by rate, descending');
      assert.ok(ranked.topics.some((t) => t.topic === 'watched.only' && t.subscribers === 1 && t.live === 1));
      assert.equal(ranked.stats.topics, TOPICS + 3);
      assert.equal(ranked.topicTotals.topics, TOPICS + 3);
      assert.equal(ranked.topicTotals.subscribed, 1);
      assert.ok(ranked.topicTotals.active >= 3, `${ranked.topicTotals.active} active`);
    } finally {
      stream.close();
    }
  });

  it('rate counters forget quiet topics: the per-second sampling follows active topics only', async () => {
    // Every topic was written at startup; two samples later only the ones still written are counted.
    await waitFor(() => gw.http.admin.rates.tracked < 10, 'quiet topics to be forgotten', 5000);
  });

  it('pages: every topic exactly once across pages, by name and by a figure', async () => {
    const expected = [...names, 'hot.a', 'hot.b', 'hot.c', 'watched.only'].sort();
    const byName = await allPages('limit=1500');
    assert.equal(byName.total, expected.length);
    assert.equal(byName.pages, Math.ceil(expected.length / 1500));
    assert.deepEqual(byName.rows.map((r) => r.topic), expected, 'in name order, each once');

    const byCount = await allPages('limit=999&sort=-count');
    assert.equal(byCount.rows.length, expected.length);
    assert.equal(new Set(byCount.rows.map((r) => r.topic)).size, expected.length, 'each once');
    for (let i = 1; i < byCount.rows.length; i++) {
      const [a, b] = [byCount.rows[i - 1]!, byCount.rows[i]!];
      assert.ok(a.count > b.count || (a.count === b.count && a.topic < b.topic), `order at ${i}: ${a.topic} ${a.count}, ${b.topic} ${b.count}`);
    }
  });

  it('without paging parameters: the old array shape, the first 1000 by name, and a cursor for more', async () => {
    const r = await api<Admin.TopicRow[]>(gw.url, '/v1/admin/topics');
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 1000);
    assert.deepEqual(Object.keys(r.body[0]!).sort(), ['bytes', 'count', 'epoch', 'first', 'head', 'lastTs', 'live', 'msgsPerSec', 'paused', 'subscribers', 'topic']);
    assert.ok(r.headers.get('sluice-next-cursor'));
    assert.equal(Number(r.headers.get('sluice-total-count')), TOPICS + 4);
    assert.ok(r.text.length < 200_000, `a page of 1000 rows is ${r.text.length} bytes`);
  });

  it('searches on the server: by prefix or substring, case-insensitive, with paging', async () => {
    const eu = names.filter((t) => t.startsWith('orders.eu.')).sort();
    const found = await allPages('q=orders.eu.&limit=700');
    assert.deepEqual(found.rows.map((r) => r.topic), eu);
    assert.equal(found.total, eu.length);

    const sub = await api<Admin.TopicRow[]>(gw.url, `/v1/admin/topics?q=${encodeURIComponent('RS.US.1')}&limit=10000`);
    assert.deepEqual(sub.body.map((r) => r.topic), names.filter((t) => t.includes('rs.us.1')).sort());
    const none = await api<Admin.TopicRow[]>(gw.url, '/v1/admin/topics?q=no-such-topic');
    assert.deepEqual([none.status, none.body, none.headers.get('sluice-total-count'), none.headers.get('sluice-next-cursor')], [200, [], '0', null]);
  });

  it('bad paging parameters get 400 bad-request', async () => {
    const next = (await api(gw.url, '/v1/admin/topics?limit=10&sort=-head')).headers.get('sluice-next-cursor')!;
    for (const q of ['limit=0', 'limit=-1', 'limit=abc', 'sort=nope', 'sort=--head', 'cursor=%%%', 'cursor=bm90IGpzb24', `cursor=${next}`, `cursor=${next}&sort=head`]) {
      const r = await api(gw.url, `/v1/admin/topics?${q}`);
      assert.deepEqual([r.status, r.body.error?.code], [400, 'bad-request'], q);
    }
    const capped = await api<Admin.TopicRow[]>(gw.url, '/v1/admin/topics?limit=50000');
    assert.equal(capped.body.length, 10_000, 'a limit above 10,000 is capped');
  });
});
