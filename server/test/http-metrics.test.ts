import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../src/server.js';
import { removeDir, startGateway, tempDir } from './helpers/gateway.js';
import { api, SseReader, waitFor } from './helpers/http.js';

let gw: RunningServer;
before(async () => { gw = await startGateway(); });
after(async () => { await gw.close(); });

async function metrics(of: RunningServer = gw): Promise<Map<string, number>> {
  const text = await (await fetch(`${of.url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+$/, `a valid exposition line: ${line}`);
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('GET /metrics (HTTP API)', () => {
  it('counts HTTP requests by route and status, their latency, and open long-polls and event streams', async () => {
    await api(gw.url, '/v1/topics/m.t/messages', { json: 1 });
    await api(gw.url, '/v1/topics/m.t/messages', { json: 2 });
    await api(gw.url, '/v1/topics/m..t/messages', { json: 3 });
    await api(gw.url, '/v1/nothing');
    const poll = api(gw.url, '/v1/topics/m.wait/messages?wait=20');
    const abort = new AbortController();
    const gone = api(gw.url, '/v1/topics/m.gone/messages?wait=20', { signal: abort.signal }).catch(() => undefined);
    const sse = await SseReader.open(`${gw.url}/v1/topics/m.t/events`);
    await waitFor(() => gw.http.polls.size === 2 && gw.http.streams.size === 1, 'two parked pulls and a stream');

    let m = await metrics();
    assert.equal(m.get('sluice_http_requests_total{route="publish",code="201"}'), 2);
    assert.equal(m.get('sluice_http_requests_total{route="publish",code="400"}'), 1);
    assert.equal(m.get('sluice_http_request_duration_seconds_count{route="publish"}'), 3);
    assert.equal(m.get('sluice_http_request_duration_seconds_bucket{route="publish",le="+Inf"}'), 3);
    assert.equal(m.get('sluice_errors_total{code="invalid-topic"}'), 1);
    assert.equal(m.get('sluice_messages_in_total'), 2);
    assert.equal(m.get('sluice_http_long_polls'), 2);
    assert.equal(m.get('sluice_sse_streams{kind="topic"}'), 1);
    assert.equal(m.get('sluice_store_append_duration_seconds_count'), 2);

    abort.abort();
    await gone;
    await waitFor(() => gw.http.polls.size === 1, 'the aborted pull to go');
    await api(gw.url, '/v1/topics/m.wait/messages', { json: 'x' });
    await poll;
    sse.close();
    await waitFor(() => gw.http.streams.size === 0, 'the stream to close');
    m = await metrics();
    assert.equal(m.get('sluice_http_requests_total{route="pull",code="499"}'), 1, 'a client that left is counted as 499');
    assert.equal(m.get('sluice_http_requests_total{route="pull",code="200"}'), 1);
    assert.equal(m.get('sluice_http_long_polls'), 0);
    assert.equal(m.get('sluice_sse_streams{kind="topic"}'), 0);
  });

  it('a failing handler answers 500 internal, is counted, and the gateway goes on', async () => {
    const read = gw.store.read.bind(gw.store);
    gw.store.read = () => Promise.reject(new Error('disk on fire'));
    const errors = console.error;
    console.error = () => {};
    try {
      const r = await api(gw.url, '/v1/topics/m.t/messages');
      assert.deepEqual([r.status, r.body.error.code], [500, 'internal']);
    } finally {
      gw.store.read = read;
      console.error = errors;
    }
    const m = await metrics();
    assert.equal(m.get('sluice_handler_failures_total'), 1);
    assert.equal((await api(gw.url, '/v1/topics/m.t/messages')).status, 200);
  });
});

describe('GET /metrics: the disk store syncs', () => {
  it('times the sync each acknowledged publish waited for (flush durability), beside publish → commit', async () => {
    const dir = tempDir();
    const disk = await startGateway((c) => { c.store = 'disk'; c.dataDir = dir; c.durability = 'flush'; });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await api(disk.url, '/v1/topics/m.sync/messages', { json: i })).status, 201);
      const m = await metrics(disk);
      // One publish at a time: each ACK waited for its own sync, which was timed before the ACK.
      assert.equal(m.get('sluice_store_append_duration_seconds_count'), 5);
      assert.equal(m.get('sluice_store_sync_duration_seconds_count'), 5);
      assert.ok(m.get('sluice_store_sync_duration_seconds_sum')! <= m.get('sluice_store_append_duration_seconds_sum')!, 'a sync is part of its publish');
      const memory = await metrics();
      assert.equal(memory.get('sluice_store_sync_duration_seconds_count'), 0, 'the memory store syncs nothing');
    } finally {
      await disk.close();
      removeDir(dir);
    }
  });
});
