import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pack } from 'msgpackr';
import { CloseCode, encode } from '@sluice/client/protocol';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { RawClient } from './helpers/raw-client.js';

let gw: RunningServer;
before(async () => { gw = await startGateway((c) => { c.limits.maxFrame = 64 * 1024; c.limits.maxSubscriptions = 3; }); });
after(async () => { await gw.close(); });

/** Bad inputs that leave the connection open: the ERROR each one gets. */
const recoverable: { name: string; bytes: Uint8Array; id: number; code: string }[] = [
  { name: 'unknown frame type', bytes: pack([99, 5]), id: 5, code: 'bad-frame' },
  { name: 'server-only frame type', bytes: pack([9, 5, 1, false]), id: 5, code: 'bad-frame' },
  { name: 'SUB with a numeric topic', bytes: pack([3, 5, 42]), id: 5, code: 'bad-frame' },
  { name: 'SUB with a string subId', bytes: pack([3, 'x', 'a']), id: 0, code: 'bad-frame' },
  { name: 'SUB with a negative credit', bytes: pack([3, 5, 'a', { credit: -1 }]), id: 5, code: 'bad-frame' },
  { name: 'SUB with options not a map', bytes: pack([3, 5, 'a', [1]]), id: 5, code: 'bad-frame' },
  { name: 'SUB to an invalid topic', bytes: pack([3, 5, 'bad topic!']), id: 5, code: 'invalid-topic' },
  { name: 'SUB to an empty segment', bytes: pack([3, 5, 'a..b']), id: 5, code: 'invalid-topic' },
  { name: 'SUB to a wildcard', bytes: pack([3, 5, 'a.*']), id: 5, code: 'invalid-topic' },
  { name: 'PUB to a reserved topic', bytes: pack([8, 5, '$sys.x', 1]), id: 5, code: 'invalid-topic' },
  { name: 'PUB to a 256-byte topic', bytes: pack([8, 5, 'a'.repeat(256), 1]), id: 5, code: 'invalid-topic' },
  { name: 'PUB without data', bytes: pack([8, 5, 'a']), id: 5, code: 'bad-frame' },
  { name: 'PUB with a 129-byte key', bytes: pack([8, 5, 'a', 1, { key: 'k'.repeat(129) }]), id: 5, code: 'too-large' },
  { name: 'PUB with an empty key', bytes: pack([8, 5, 'a', 1, { key: '' }]), id: 5, code: 'bad-frame' },
  { name: 'PUB with a numeric key', bytes: pack([8, 5, 'a', 1, { key: 7 }]), id: 5, code: 'bad-frame' },
  { name: 'PUB with a timestamp (extension type) in its data', bytes: pack([8, 5, 'a', { at: new Date(0) }]), id: 5, code: 'bad-frame' },
  { name: 'PUB with a non-string map key in its data', bytes: pack([8, 5, 'a', new Map([[1, 'x']])]), id: 5, code: 'bad-frame' },
  { name: 'PUB with non-string headers', bytes: pack([8, 5, 'a', 1, { headers: { h: 1 } }]), id: 5, code: 'bad-frame' },
  { name: 'a frame over maxFrame', bytes: encode({ type: 8, reqId: 5, topic: 'a', data: 'x'.repeat(70 * 1024) }), id: 5, code: 'too-large' },
  { name: 'CREDIT for an unknown subscription', bytes: pack([7, 5, 10]), id: 5, code: 'not-subscribed' },
  { name: 'UNSUB of an unknown subscription', bytes: pack([5, 5]), id: 5, code: 'not-subscribed' },
  { name: 'a second HELLO', bytes: pack([1, {}]), id: 0, code: 'bad-frame' },
];

/** Bad inputs that cannot be parsed at all: ERROR bad-frame, then the socket closes. */
const fatal: { name: string; data: Uint8Array | string; binary?: boolean; close: number }[] = [
  { name: 'not MessagePack', data: new Uint8Array([0xc1, 0x00]), close: CloseCode.BAD_FRAME },
  { name: 'not an array', data: pack({ type: 3 }), close: CloseCode.BAD_FRAME },
  { name: 'an empty array', data: pack([]), close: CloseCode.BAD_FRAME },
  { name: 'a truncated frame', data: new Uint8Array([0x94, 8, 1]), close: CloseCode.BAD_FRAME },
  { name: 'a string frame type', data: pack(['PUB', 1]), close: CloseCode.BAD_FRAME },
  { name: 'a nesting bomb', data: new Uint8Array([0x94, 8, 1, 0xa1, 0x61, ...new Array<number>(5000).fill(0x91), 0xc0]), close: CloseCode.BAD_FRAME },
  { name: 'a text frame', data: '[1,{}]', binary: false, close: CloseCode.POLICY },
];

describe('bad input', () => {
  for (const t of recoverable) {
    it(`${t.name} → ERROR ${t.code}, connection stays usable`, async () => {
      const c = await RawClient.connect(gw.url);
      c.sendRaw(t.bytes);
      const err = await c.next((f) => f.type === 11);
      assert.equal(err.type === 11 && err.code, t.code);
      assert.equal(err.type === 11 && err.id, t.id);
      const ack = await c.publish(900, 'bad.control', 'still works');
      assert.equal(ack.type, 9);
      c.close();
    });
  }

  for (const t of fatal) {
    it(`${t.name} → ERROR bad-frame and close ${t.close}`, async () => {
      const c = await RawClient.connect(gw.url);
      c.sendRaw(t.data, t.binary ?? true);
      const err = await c.next((f) => f.type === 11);
      assert.equal(err.type === 11 && err.code, 'bad-frame');
      const closed = await c.closed;
      assert.equal(closed.code, t.close);
    });
  }

  it('SUB before HELLO → ERROR bad-frame, close 1008', async () => {
    const c = await RawClient.connect(gw.url, { hello: false });
    c.send({ type: 3, subId: 1, topic: 'a' });
    const err = await c.next((f) => f.type === 11);
    assert.equal(err.type === 11 && err.code, 'bad-frame');
    assert.equal((await c.closed).code, CloseCode.POLICY);
  });

  it('a second SUB on the same topic → already-subscribed', async () => {
    const c = await RawClient.connect(gw.url);
    await c.subscribe(1, 'bad.twice');
    c.send({ type: 3, subId: 2, topic: 'bad.twice' });
    const err = await c.next((f) => f.type === 11);
    assert.deepEqual(err.type === 11 && [err.id, err.code], [2, 'already-subscribed']);
    c.send({ type: 3, subId: 1, topic: 'bad.other' });
    const again = await c.next((f) => f.type === 11);
    assert.deepEqual(again.type === 11 && [again.id, again.code], [1, 'already-subscribed']);
    c.close();
  });

  it('with several subscriptions (topics indexed from the second), a SUB on a held topic → already-subscribed; after UNSUB it is free', async () => {
    const c = await RawClient.connect(gw.url);
    await c.subscribe(1, 'bad.many.a');
    await c.subscribe(2, 'bad.many.b');
    for (const topic of ['bad.many.a', 'bad.many.b']) {
      c.send({ type: 3, subId: 3, topic });
      const err = await c.next((f) => f.type === 11);
      assert.deepEqual(err.type === 11 && [err.id, err.code], [3, 'already-subscribed'], topic);
    }
    c.send({ type: 5, subId: 1 });
    await c.next((f) => f.type === 6 && f.subId === 1);
    await c.subscribe(3, 'bad.many.a');
    c.close();
  });

  it('more subscriptions than announced → limit-exceeded', async () => {
    const c = await RawClient.connect(gw.url);
    assert.equal(c.welcome!.maxSubscriptions, 3);
    for (let i = 1; i <= 3; i++) await c.subscribe(i, `bad.limit.${i}`);
    c.send({ type: 3, subId: 4, topic: 'bad.limit.4' });
    const err = await c.next((f) => f.type === 11);
    assert.deepEqual(err.type === 11 && [err.id, err.code], [4, 'limit-exceeded']);
    // UNSUB frees a slot.
    c.send({ type: 5, subId: 1 });
    await c.next((f) => f.type === 6 && f.subId === 1);
    await c.subscribe(4, 'bad.limit.4');
    c.close();
  });

  it('a frame far over maxFrame closes with 1006/1009 and the gateway stays up', async () => {
    const c = await RawClient.connect(gw.url);
    c.sendRaw(new Uint8Array(256 * 1024));
    const closed = await c.closed;
    assert.ok([1006, 1009].includes(closed.code), `close ${closed.code}`);
    const ok = await RawClient.connect(gw.url);
    await ok.publish(1, 'bad.after', 1);
    ok.close();
  });

  it('every error was counted by code and no handler failed', async () => {
    const res = await fetch(`${gw.url}/metrics`);
    const text = await res.text();
    assert.match(text, /sluice_errors_total\{code="bad-frame"\} \d+/);
    assert.match(text, /sluice_errors_total\{code="invalid-topic"\} \d+/);
    assert.match(text, /sluice_handler_failures_total 0/);
  });
});
