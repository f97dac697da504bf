/**
 * Messages JSON cannot carry: values a gateway before v1.1 stored (MessagePack extensions, maps
 * with non-string keys) and values JSON loses (NaN, integers beyond 2^53). Every HTTP reader must
 * get past them — pull answers 200, SSE keeps streaming — with the data rendered losslessly as
 * `"encoding": "msgpack"`. The SSE client is the `eventsource` package, a real EventSource.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventSource } from 'eventsource';
import { encodeValue, FrameType, RawData } from '@sluice/client/protocol';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const TOPIC = 'poison.t';
const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

/** Stored data that JSON cannot carry exactly, as raw MessagePack. */
const POISON: Record<string, Uint8Array> = {
  ext: hex('d40501'), // fixext1, type 5
  timestamp: hex('d6ff00000005'), // timestamp extension (-1), 5 s
  arrayKey: hex('81910101'), // {[1]: 1}
  bigInt: hex('cfffffffffffffffff'), // 2^64 - 1
  nan: hex('cb7ff8000000000000'),
};

let gw: RunningServer;
before(async () => {
  gw = await startGateway();
  // Stored directly, as an older gateway (which accepted them over the WebSocket) stored them.
  await gw.store.append(TOPIC, [
    { data: encodeValue({ n: 'before' }) },
    ...Object.values(POISON).map((data) => ({ data })),
    { data: encodeValue({ n: 'after' }) },
  ]);
});
after(() => gw.close());

const rawOf = (m: { data: string }) => Buffer.from(m.data, 'base64').toString('hex');
const EXPECTED = ['before', ...Object.values(POISON).map((b) => Buffer.from(b).toString('hex')), 'after'];
function view(m: { data: any; encoding?: string }): string {
  return m.encoding === 'msgpack' ? rawOf(m) : m.data.n;
}

describe('messages JSON cannot carry', () => {
  it('pull answers every page with them, losslessly as encoding: msgpack', async () => {
    const r = await api(gw.url, `/v1/topics/${TOPIC}/messages?from=1`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.messages.map((m: { offset: number }) => m.offset), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(r.body.messages.map(view), EXPECTED);
    // One page per message: none of them fails on its own either.
    for (let from = 1; from <= 7; from++) {
      const page = await api(gw.url, `/v1/topics/${TOPIC}/messages?from=${from}&limit=1`);
      assert.equal(page.status, 200, `page at ${from}`);
      assert.equal(view(page.body.messages[0]), EXPECTED[from - 1]);
    }
  });

  it('an EventSource streams past them and goes on live', async () => {
    const es = new EventSource(`${gw.url}/v1/topics/${TOPIC}/events?from=1`);
    const got: { offset: number; data: any; encoding?: string }[] = [];
    const ended: string[] = [];
    es.addEventListener('end', (e) => ended.push(e.data));
    const done = new Promise<void>((resolve, reject) => {
      es.onmessage = (e) => {
        got.push(JSON.parse(e.data));
        if (got.length === 8) resolve();
      };
      es.onerror = () => reject(new Error('the event stream failed'));
    });
    await new Promise<void>((resolve) => es.addEventListener('subscribed', () => resolve()));
    await api(gw.url, `/v1/topics/${TOPIC}/messages`, { json: { n: 'live' } });
    await done;
    es.close();
    assert.deepEqual(ended, [], 'the stream was never ended');
    assert.deepEqual(got.map((m) => m.offset), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(got.map(view), [...EXPECTED, 'live']);
  });
  it('the same values are refused on every publish path (one rule)', async () => {
    for (const [name, bytes] of Object.entries({ ext: POISON.ext!, timestamp: POISON.timestamp!, arrayKey: POISON.arrayKey! })) {
      const r = await api(gw.url, '/v1/topics/poison.refused/messages', { raw: Buffer.from(bytes), headers: { 'content-type': 'application/msgpack' } });
      assert.equal(r.status, 400, name);
      assert.equal(r.body.error.code, 'bad-request', name);
    }
    // Over the WebSocket: ERROR bad-frame naming the PUB, and the connection goes on.
    const c = await RawClient.connect(gw.url);
    for (const [i, bytes] of [POISON.ext!, POISON.timestamp!, POISON.arrayKey!].entries()) {
      c.sendRaw(Buffer.concat([Buffer.from([0x94, 0x08, i + 1, 0xae]), Buffer.from('poison.refused'), Buffer.from(bytes)]));
      const f = await c.next((x) => x.type === FrameType.ERROR || x.type === FrameType.ACK);
      assert.deepEqual(f.type === FrameType.ERROR && [f.id, f.code, f.re], [i + 1, 'bad-frame', FrameType.PUB]);
    }
    await c.publish(9, 'poison.refused', 'fine');
    c.close();
    assert.equal((await gw.store.info('poison.refused')).head, 1, 'only the valid one was stored');
  });

  it('a WebSocket subscriber gets past them too, byte for byte', async () => {
    const c = await RawClient.connect(gw.url);
    await c.subscribe(1, TOPIC, { from: 1, credit: 100 });
    const got = (await c.waitDelivered(TOPIC, 7)).slice(0, 7);
    assert.deepEqual(got.map((d) => d.offset), [1, 2, 3, 4, 5, 6, 7]);
    // What no JS value represents arrives as its stored bytes; the rest as values.
    const raw = got.map((d) => (d.data instanceof RawData ? Buffer.from(d.data.bytes).toString('hex') : null));
    assert.deepEqual(raw, [null, Buffer.from(POISON.ext!).toString('hex'), null, Buffer.from(POISON.arrayKey!).toString('hex'), null, null, null]);
    assert.ok(Number.isNaN(got[5]!.data));
    c.close();
  });
});
