import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { publishingGateway, startGateway } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const fx = publishingGateway();
const publish = fx.publish;

describe('GET /v1/topics/{topic}/messages (pull)', () => {
  it('reads history from an offset, with limit and next', async () => {
    await publish('pull.h', 'a', 'b', 'c', 'd', 'e');
    const { epoch } = await fx.gw.store.info('pull.h');
    const r = await api(fx.gw.url, '/v1/topics/pull.h/messages?from=2&limit=2');
    assert.equal(r.status, 200);
    assert.deepEqual(
      { ...r.body, messages: r.body.messages.map((m: { offset: number; data: unknown }) => [m.offset, m.data]) },
      { epoch, head: 5, next: 4, recovered: true, messages: [[2, 'b'], [3, 'c']] },
    );
    assert.equal(typeof r.body.messages[0].ts, 'number');
    const all = await api(fx.gw.url, '/v1/topics/pull.h/messages');
    assert.deepEqual(all.body.messages.map((m: { data: unknown }) => m.data), ['a', 'b', 'c', 'd', 'e'], 'no from: the oldest retained');
    // Beyond head + 1 the log is behind the client (it was reset): the answer starts at head + 1.
    const past = await api(fx.gw.url, '/v1/topics/pull.h/messages?from=9');
    assert.deepEqual([past.body.next, past.body.messages.length, past.body.head, past.body.recovered], [6, 0, 5, false]);
    const never = await api(fx.gw.url, '/v1/topics/pull.never/messages?from=1');
    assert.deepEqual([never.status, never.body.head, never.body.next, never.body.messages.length], [200, 0, 1, 0]);
    // Another epoch: the position means nothing here, so the answer starts at head + 1 too.
    const other = await api(fx.gw.url, '/v1/topics/pull.h/messages?from=2&epoch=not-this-one');
    assert.deepEqual([other.body.next, other.body.messages.length, other.body.recovered], [6, 0, false]);
  });

  it('renders a binary payload as base64 with encoding, and headers', async () => {
    const id = fx.nextReq();
    fx.pub.send({ type: 8, reqId: id, topic: 'pull.bin', data: new Uint8Array([1, 2, 3]), headers: { k: 'v' } });
    await fx.pub.next((f) => f.type === 9 && f.reqId === id);
    const r = await api(fx.gw.url, '/v1/topics/pull.bin/messages');
    assert.deepEqual(r.body.messages[0], { offset: 1, ts: r.body.messages[0].ts, data: 'AQID', encoding: 'base64', headers: { k: 'v' } });
  });

  it('wait: long-polls until a message is stored, then answers at once', async () => {
    const started = Date.now();
    const pending = api(fx.gw.url, '/v1/topics/pull.lp/messages?from=1&wait=20');
    await waitFor(() => fx.gw.http.polls.size === 1, 'the pull to be parked');
    await publish('pull.lp', { hello: 'world' });
    const r = await pending;
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.messages.map((m: { offset: number; data: unknown }) => [m.offset, m.data]), [[1, { hello: 'world' }]]);
    assert.deepEqual([r.body.head, r.body.next], [1, 2]);
    assert.ok(Date.now() - started < 10_000);
    assert.equal(fx.gw.http.polls.size, 0);
  });

  it('wait: parked pulls on one topic all wake; one from beyond the head waits at head + 1', async () => {
    await publish('pull.many', 0);
    const atTwo = Array.from({ length: 20 }, () => api(fx.gw.url, '/v1/topics/pull.many/messages?from=2&wait=20'));
    const atThree = api(fx.gw.url, '/v1/topics/pull.many/messages?from=3&wait=20');
    await waitFor(() => fx.gw.http.polls.size === 21, '21 parked pulls');
    await publish('pull.many', 1);
    for (const r of await Promise.all(atTwo)) {
      assert.deepEqual([r.body.messages.map((m: { data: unknown }) => m.data), r.body.recovered], [[1], true]);
    }
    const beyond = await atThree;
    assert.deepEqual([beyond.body.messages.map((m: { offset: number }) => m.offset), beyond.body.recovered], [[2], false]);
    assert.equal(fx.gw.http.polls.size, 0);
  });

  it('wait: ends empty when nothing arrives, with next = from', async () => {
    const started = Date.now();
    const r = await api(fx.gw.url, '/v1/topics/pull.quiet/messages?from=1&wait=0.3');
    const took = Date.now() - started;
    assert.equal(r.status, 200);
    assert.deepEqual([r.body.messages, r.body.next, r.body.head], [[], 1, 0]);
    assert.ok(took >= 250 && took < 3000, `took ${took} ms`);
  });

  it('a client that goes away stops waiting (nothing kept for it)', async () => {
    const abort = new AbortController();
    const pending = api(fx.gw.url, '/v1/topics/pull.gone/messages?wait=20', { signal: abort.signal }).catch((e: Error) => e);
    await waitFor(() => fx.gw.http.polls.size === 1, 'the pull to be parked');
    abort.abort();
    await pending;
    await waitFor(() => fx.gw.http.polls.size === 0, 'the parked pull to be dropped');
  });

  it('refuses malformed queries with 400', async () => {
    for (const q of ['from=x', 'from=-1', 'limit=1.5', 'wait=soon', 'wait=-1']) {
      const r = await api(fx.gw.url, `/v1/topics/pull.h/messages?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error.code, 'bad-request', q);
    }
    const bad = await api(fx.gw.url, '/v1/topics/bad..t/messages');
    assert.deepEqual([bad.status, bad.body.error.code], [400, 'invalid-topic']);
  });
});

describe('pull limits and retention', () => {
  it('announces a trimmed range as a gap, then goes on', async () => {
    const g = await startGateway((c) => { c.retention.maxCount = 3; });
    try {
      const c = await RawClient.connect(g.url);
      for (let i = 1; i <= 10; i++) await c.publish(i, 'pull.trim', i);
      const r = await api(g.url, '/v1/topics/pull.trim/messages?from=2');
      assert.deepEqual(r.body.gap, { from: 2, to: 7 });
      assert.deepEqual(r.body.messages.map((m: { offset: number }) => m.offset), [8, 9, 10]);
      assert.equal(r.body.next, 11);
      const oldest = await api(g.url, '/v1/topics/pull.trim/messages');
      assert.equal(oldest.body.gap, undefined, 'no from: nothing was asked for, nothing is missing');
      c.close();
    } finally {
      await g.close();
    }
  });

  it('caps wait at --max-wait and parked requests at --max-http-streams (429 limit-exceeded)', async () => {
    const g = await startGateway((c) => { c.http.maxWaitS = 1; c.http.maxStreams = 2; });
    try {
      const started = Date.now();
      const a = api(g.url, '/v1/topics/cap.a/messages?wait=1000');
      const b = api(g.url, '/v1/topics/cap.b/messages?wait=1000');
      await waitFor(() => g.http.polls.size === 2, 'two parked pulls');
      const third = await api(g.url, '/v1/topics/cap.c/messages?wait=1');
      assert.deepEqual([third.status, third.body.error.code], [429, 'limit-exceeded']);
      const answers = await Promise.all([a, b]);
      assert.deepEqual(answers.map((r) => [r.status, r.body.messages.length]), [[200, 0], [200, 0]]);
      assert.ok(Date.now() - started < 5000, 'the 1000 s wait was capped');
    } finally {
      await g.close();
    }
  });
});
