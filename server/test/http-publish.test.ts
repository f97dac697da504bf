import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decodeServerFrame, encodeMsgs, encodeStr, encodeValue } from '@sluice/client/protocol';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

let gw: RunningServer;
before(async () => {
  gw = await startGateway((c) => { c.http.maxBody = 64 * 1024; });
});
after(async () => { await gw.close(); });

const head = async (topic: string) => (await gw.store.info(topic)).head;

describe('POST /v1/topics/{topic}/messages', () => {
  it('stores a JSON body as its value: 201, and WebSocket subscribers and pull see the same data', async () => {
    const sub = await RawClient.connect(gw.url);
    await sub.subscribe(1, 'pub.json', {});
    const r = await api(gw.url, '/v1/topics/pub.json/messages', { json: { text: 'hi', n: [1, 2] } });
    assert.equal(r.status, 201);
    assert.deepEqual(r.body, { offset: 1, epoch: (await gw.store.info('pub.json')).epoch, duplicate: false });
    const [m] = await sub.waitDelivered('pub.json', 1);
    assert.deepEqual(m!.data, { text: 'hi', n: [1, 2] });
    const pulled = await api(gw.url, '/v1/topics/pub.json/messages?from=1');
    assert.deepEqual(pulled.body.messages.map((x: { data: unknown }) => x.data), [{ text: 'hi', n: [1, 2] }]);
    sub.close();
  });

  it('stores a MessagePack body byte for byte, and any other body as binary data', async () => {
    const sub = await RawClient.connect(gw.url);
    await sub.subscribe(1, 'pub.bin', {});
    const packed = encodeValue({ a: 1, b: [true, null] });
    const r1 = await api(gw.url, '/v1/topics/pub.bin/messages', { raw: Buffer.from(packed), headers: { 'content-type': 'application/msgpack' } });
    assert.equal(r1.status, 201);
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const r2 = await api(gw.url, '/v1/topics/pub.bin/messages', { raw: bytes, headers: { 'content-type': 'application/octet-stream' } });
    const r3 = await api(gw.url, '/v1/topics/pub.bin/messages', { raw: 'plain text', headers: { 'content-type': 'text/plain' } });
    assert.deepEqual([r2.status, r3.status, r2.body.offset, r3.body.offset], [201, 201, 2, 3]);
    const got = await sub.waitDelivered('pub.bin', 3);
    assert.deepEqual(got[0]!.data, { a: 1, b: [true, null] });
    assert.deepEqual(new Uint8Array(got[1]!.data as Uint8Array), bytes);
    assert.equal(Buffer.from(got[2]!.data as Uint8Array).toString(), 'plain text');
    const stored = await gw.store.read('pub.bin', 1, { limit: 1 });
    assert.deepEqual([...stored.entries[0]!.subarray(1, 1 + packed.length)], [...packed], 'the MessagePack payload is stored unchanged');
    const pulled = await api(gw.url, '/v1/topics/pub.bin/messages?from=2&limit=1');
    assert.deepEqual(pulled.body.messages[0], { offset: 2, ts: pulled.body.messages[0].ts, data: Buffer.from(bytes).toString('base64'), encoding: 'base64' });
    sub.close();
  });

  it('Idempotency-Key: a retry answers 200 with the original offset and stores nothing', async () => {
    const first = await api(gw.url, '/v1/topics/pub.idem/messages', { json: 'once', headers: { 'idempotency-key': 'order-17' } });
    const again = await api(gw.url, '/v1/topics/pub.idem/messages', { json: 'once', headers: { 'idempotency-key': 'order-17' } });
    assert.equal(first.status, 201);
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { ...first.body, duplicate: true });
    assert.equal(await head('pub.idem'), 1);
  });

  it('takes topics with "/" raw or percent-encoded', async () => {
    const a = await api(gw.url, '/v1/topics/room/42.chat/messages', { json: 1 });
    const b = await api(gw.url, `/v1/topics/${encodeURIComponent('room/42.chat')}/messages`, { json: 2 });
    assert.deepEqual([a.status, b.status, a.body.offset, b.body.offset], [201, 201, 1, 2]);
    assert.equal(await head('room/42.chat'), 2);
  });

  it('answers every bad request with a JSON error and the right status, storing nothing', async () => {
    const topic = '/v1/topics/pub.bad/messages';
    const cases: [string, Promise<{ status: number; body: any; headers: Headers }>, number, string][] = [
      ['invalid JSON', api(gw.url, topic, { raw: '{nope', headers: { 'content-type': 'application/json' } }), 400, 'bad-request'],
      ['invalid MessagePack', api(gw.url, topic, { raw: new Uint8Array([0xc1]), headers: { 'content-type': 'application/msgpack' } }), 400, 'bad-request'],
      ['MessagePack with an extension type', api(gw.url, topic, { raw: new Uint8Array([0xd6, 0xff, 0, 0, 0, 0]), headers: { 'content-type': 'application/msgpack' } }), 400, 'bad-request'],
      ['MessagePack with a non-string map key', api(gw.url, topic, { raw: new Uint8Array([0x81, 0x01, 0x01]), headers: { 'content-type': 'application/msgpack' } }), 400, 'bad-request'],
      ['too deep', api(gw.url, topic, { raw: '['.repeat(100) + ']'.repeat(100), headers: { 'content-type': 'application/json' } }), 400, 'bad-request'],
      ['invalid topic', api(gw.url, '/v1/topics/a..b/messages', { json: 1 }), 400, 'invalid-topic'],
      ['reserved topic', api(gw.url, '/v1/topics/$sys.x/messages', { json: 1 }), 400, 'invalid-topic'],
      ['key too long', api(gw.url, topic, { json: 1, headers: { 'idempotency-key': 'k'.repeat(129) } }), 413, 'too-large'],
      ['body too large', api(gw.url, topic, { raw: 'x'.repeat(64 * 1024 + 1) }), 413, 'too-large'],
      ['compressed', api(gw.url, topic, { raw: 'x', headers: { 'content-encoding': 'gzip' } }), 415, 'bad-request'],
      ['unknown route', api(gw.url, '/v1/topics/pub.bad/nothing', { json: 1 }), 404, 'not-found'],
      ['no topic', api(gw.url, '/v1/topics//messages', { json: 1 }), 404, 'not-found'],
      ['wrong method', api(gw.url, topic, { method: 'PUT', json: 1 }), 405, 'method-not-allowed'],
      ['wrong method on a held route', api(gw.url, '/v1/topics/pub.bad/scheduled', { method: 'POST', json: 1 }), 405, 'method-not-allowed'],
      ['bad Authorization', api(gw.url, topic, { json: 1, headers: { authorization: 'Basic abc' } }), 401, 'unauthorized'],
    ];
    for (const [what, p, status, code] of cases) {
      const r = await p;
      assert.equal(r.status, status, what);
      assert.equal(r.body.error.code, code, what);
      assert.equal(typeof r.body.error.message, 'string', what);
      assert.match(r.headers.get('content-type') ?? '', /application\/json/, what);
    }
    assert.equal((await api(gw.url, topic, { method: 'PUT', json: 1 })).headers.get('allow'), 'GET, POST, OPTIONS');
    assert.equal((await api(gw.url, '/v1/topics/pub.bad/events', { method: 'POST', json: 1 })).headers.get('allow'), 'GET, OPTIONS');
    assert.equal((await api(gw.url, '/v1/topics/pub.bad/scheduled/x', { method: 'GET' })).headers.get('allow'), 'DELETE, OPTIONS');
    // The deepest payload accepted is still deliverable inside a MSGS frame (data two levels down).
    const nested = (d: number) => '['.repeat(d) + ']'.repeat(d);
    const json = { 'content-type': 'application/json' };
    assert.equal((await api(gw.url, '/v1/topics/pub.deep/messages', { raw: nested(62), headers: json })).status, 201);
    assert.equal((await api(gw.url, '/v1/topics/pub.deep/messages', { raw: nested(63), headers: json })).status, 400);
    const [entry] = (await gw.store.read('pub.deep', 1, { limit: 1 })).entries;
    assert.equal(decodeServerFrame(encodeMsgs(encodeStr('pub.deep'), 1, [entry!, entry!])).type, 15);
    assert.equal(await head('pub.bad'), 0);
    assert.equal(await head('a..b'), 0);
  });

  it('refuses a body over the cap while it streams in, before the client finished sending', async () => {
    const port = gw.port;
    const answer = await new Promise<{ text: string; sentWhenAnswered: number }>((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      let sent = 0;
      let text = '';
      let answeredAt = -1;
      s.on('connect', () => {
        s.write('POST /v1/topics/pub.stream/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
        const chunk = 'y'.repeat(16 * 1024);
        const tick = () => {
          if (answeredAt >= 0 || s.destroyed || sent >= 1024 * 1024) return;
          s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`, () => { sent += chunk.length; setImmediate(tick); });
        };
        tick();
      });
      s.on('data', (d) => {
        text += d.toString();
        if (answeredAt < 0) answeredAt = sent;
      });
      s.on('error', () => undefined);
      s.on('close', () => (text ? resolve({ text, sentWhenAnswered: answeredAt }) : reject(new Error('no answer'))));
    });
    assert.match(answer.text, /^HTTP\/1.1 413/);
    assert.match(answer.text, /"code":"too-large"/);
    assert.ok(answer.sentWhenAnswered < 1024 * 1024, `answered after ${answer.sentWhenAnswered} bytes of a 1 MiB body`);
    assert.equal(await head('pub.stream'), 0);
  });
});

describe('POST /v1/publish (batch)', () => {
  it('answers per message, in order, and commits the whole batch at once', async () => {
    const store = gw.store as unknown as { commit: () => Promise<void> };
    const commit = store.commit.bind(store);
    let commits = 0;
    store.commit = () => { commits++; return commit(); };
    const notified: [string, number, number][] = [];
    const unwatch = gw.store.watch((topic, first, entries) => notified.push([topic, first, entries.length]));
    try {
      const r = await api(gw.url, '/v1/publish', {
        json: {
          messages: [
            { topic: 'batch.a', data: { n: 1 } },
            { topic: 'batch.b', data: 'x', key: 'kb' },
            { topic: 'bad..topic', data: 1 },
            { topic: 'batch.a', data: 'aGVsbG8=', encoding: 'base64', headers: { trace: 't1' } },
            { topic: 'batch.b', data: 'x', key: 'kb' },
            { topic: 'batch.a' },
          ],
        },
      });
      assert.equal(r.status, 200);
      const { epoch } = await gw.store.info('batch.a');
      assert.deepEqual(r.body.results, [
        { offset: 1, epoch, duplicate: false },
        { offset: 1, epoch, duplicate: false },
        { error: { code: 'invalid-topic', message: r.body.results[2].error.message } },
        { offset: 2, epoch, duplicate: false },
        { offset: 1, epoch, duplicate: true },
        { error: { code: 'bad-request', message: 'data missing' } },
      ]);
      assert.equal(commits, 1, 'one store commit for the batch');
      assert.deepEqual(notified.sort(), [['batch.a', 1, 2], ['batch.b', 1, 1]]);
      const pulled = await api(gw.url, '/v1/topics/batch.a/messages?from=2');
      assert.deepEqual(pulled.body.messages[0], {
        offset: 2, ts: pulled.body.messages[0].ts, data: Buffer.from('hello').toString('base64'), encoding: 'base64', headers: { trace: 't1' },
      });
    } finally {
      store.commit = commit;
      unwatch();
    }
  });

  it('accepts a MessagePack batch', async () => {
    const body = encodeValue({ messages: [{ topic: 'batch.mp', data: new Uint8Array([9, 8]) }, { topic: 'batch.mp', data: { ok: true } }] });
    const r = await api(gw.url, '/v1/publish', { raw: Buffer.from(body), headers: { 'content-type': 'application/msgpack' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.results.map((x: { offset: number }) => x.offset), [1, 2]);
    const pulled = await api(gw.url, '/v1/topics/batch.mp/messages');
    assert.deepEqual(pulled.body.messages.map((m: { data: unknown }) => m.data), ['CQg=', { ok: true }]);
  });

  it('refuses malformed batches as a whole', async () => {
    const cases: [string, Promise<{ status: number; body: any }>, number, string][] = [
      ['not JSON', api(gw.url, '/v1/publish', { raw: 'x', headers: { 'content-type': 'text/plain' } }), 415, 'bad-request'],
      ['invalid JSON', api(gw.url, '/v1/publish', { raw: '{', headers: { 'content-type': 'application/json' } }), 400, 'bad-request'],
      ['no list', api(gw.url, '/v1/publish', { json: { message: [] } }), 400, 'bad-request'],
      ['empty', api(gw.url, '/v1/publish', { json: { messages: [] } }), 400, 'bad-request'],
      ['too many', api(gw.url, '/v1/publish', { json: { messages: Array.from({ length: 1001 }, () => ({ topic: 'batch.many', data: 1 })) } }), 413, 'too-large'],
    ];
    for (const [what, p, status, code] of cases) {
      const r = await p;
      assert.equal(r.status, status, what);
      assert.equal(r.body.error.code, code, what);
    }
    assert.equal(await head('batch.many'), 0);
  });
});
