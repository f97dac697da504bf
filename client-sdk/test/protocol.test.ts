import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { pack, Packr } from 'msgpackr';
import {
  checkMessage,
  MessageFault,
  decodeClientFrame,
  decodeServerFrame,
  decodeEntry,
  encode,
  encodeAck,
  encodeDelivery,
  encodeEntry,
  encodeLease,
  encodeStr,
  encodeValue,
  entryTs,
  FrameError,
  closePolicy,
  isValidTopic,
  matchTopic,
  patternError,
  payloadError,
  skipValue,
  MAX_PAYLOAD_DEPTH,
  PROTOCOL_VERSION,
  protocolCompatible,
  protocolMinor,
  RawData,
  type Frame,
} from '../src/protocol/index.js';

function decodeError(bytes: Uint8Array): FrameError {
  return decodeErrorWith(bytes);
}

function decodeErrorWith(bytes: Uint8Array, maxFrame?: number): FrameError {
  try {
    decodeClientFrame(bytes, maxFrame);
  } catch (err) {
    assert.ok(err instanceof FrameError, `expected FrameError, got ${String(err)}`);
    return err;
  }
  assert.fail('decode should have thrown');
}

describe('codec: client frames round trip through the gateway decoder', () => {
  it('HELLO, SUB, UNSUB, CREDIT, PING, PONG', () => {
    assert.deepEqual(decodeClientFrame(encode({ type: 1, token: 't', client: 'c' })), { type: 1, token: 't', client: 'c' });
    assert.deepEqual(decodeClientFrame(encode({ type: 1 })), { type: 1 });
    assert.deepEqual(decodeClientFrame(encode({ type: 1, protocol: '1.1' })), { type: 1, protocol: '1.1' });
    assert.deepEqual(
      decodeClientFrame(encode({ type: 3, subId: 7, topic: 'a.b', from: 5, epoch: 'e', credit: 10 })),
      { type: 3, subId: 7, topic: 'a.b', from: 5, epoch: 'e', credit: 10 },
    );
    assert.deepEqual(decodeClientFrame(encode({ type: 3, subId: 1, topic: 'x' })), { type: 3, subId: 1, topic: 'x' });
    assert.deepEqual(decodeClientFrame(encode({ type: 5, subId: 3 })), { type: 5, subId: 3 });
    assert.deepEqual(decodeClientFrame(encode({ type: 7, subId: 3, n: 9 })), { type: 7, subId: 3, n: 9 });
    assert.deepEqual(decodeClientFrame(encode({ type: 12, n: 4 })), { type: 12, n: 4 });
    assert.deepEqual(decodeClientFrame(encode({ type: 13, n: 4 })), { type: 13, n: 4 });
  });

  it('PUB keeps the payload encoded, byte for byte', () => {
    const data = { text: 'héllo', n: [1, 2.5, -3], bin: new Uint8Array([0, 255]) };
    const f = decodeClientFrame(encode({ type: 8, reqId: 42, topic: 't', data, key: 'k1', headers: { a: 'b' } }));
    assert.equal(f.type, 8);
    if (f.type !== 8) return;
    assert.equal(f.reqId, 42);
    assert.equal(f.key, 'k1');
    assert.deepEqual(Buffer.from(f.data), Buffer.from(encodeValue(data)));
    assert.deepEqual({ ...(f.headers as object) }, { a: 'b' }, 'headers as sent: the publish service checks them');
  });

  it('ignores unknown option fields and trailing elements (forward compatibility)', () => {
    const f = decodeClientFrame(pack([3, 1, 'a', { credit: 2, future: { x: 1 } }, 'extra']));
    assert.deepEqual(f, { type: 3, subId: 1, topic: 'a', credit: 2 });
  });

  it('clamps an oversized credit grant instead of rejecting it', () => {
    const bytes = new Uint8Array([0x93, 7, 1, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert.deepEqual(decodeClientFrame(bytes), { type: 7, subId: 1, n: Number.MAX_SAFE_INTEGER });
  });
});

describe('codec: guarded decoding of untrusted frames', () => {
  it('rejects deep nesting without recursion (msgpackr would overflow the stack)', () => {
    // PUB [8, 1, 'a', data] where data is 100,000 nested one-element arrays around nil.
    const depth = 100_000;
    const bytes = new Uint8Array(5 + depth + 1);
    bytes.set([0x94, 8, 1, 0xa1, 0x61]);
    bytes.fill(0x91, 5, 5 + depth);
    bytes[5 + depth] = 0xc0;
    const err = decodeError(bytes);
    assert.equal(err.code, 'bad-frame');
    assert.match(err.message, /nesting deeper than/);
  });

  it('accepts a payload only as deep as every delivery frame can carry', () => {
    const nest = (depth: number) => { let v: unknown = 1; for (let i = 0; i < depth; i++) v = [v]; return v; };
    const ok = decodeClientFrame(encode({ type: 8, reqId: 1, topic: 't', data: nest(MAX_PAYLOAD_DEPTH) }));
    assert.equal(ok.type, 8);
    if (ok.type !== 8) return;
    // The deepest accepted payload still decodes inside MSGS, three containers down.
    const entry = encodeEntry(ok.data, 1);
    const frame = decodeServerFrame(encodeDelivery(encodeStr('t'), 1, [entry, entry]));
    assert.equal(frame.type, 15);
    assert.equal(payloadError(encodeValue(nest(MAX_PAYLOAD_DEPTH))), null);
    assert.match(payloadError(encodeValue(nest(MAX_PAYLOAD_DEPTH + 1))) ?? '', /nesting deeper than/, 'the publish service refuses it');
  });

  it('rejects the reserved byte 0xc1 anywhere', () => {
    assert.equal(decodeError(new Uint8Array([0x94, 8, 1, 0xa1, 0x61, 0xc1])).fatal, true);
    assert.equal(decodeError(new Uint8Array([0xc1])).fatal, true);
  });

  it('rejects declared lengths larger than the frame before allocating', () => {
    // array32 claiming 4 billion elements, str32 claiming 4 GB
    assert.equal(decodeError(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff, 8])).fatal, true);
    assert.equal(decodeError(new Uint8Array([0x94, 8, 1, 0xa1, 0x61, 0xdb, 0xff, 0xff, 0xff, 0xff])).fatal, true);
    assert.equal(decodeError(new Uint8Array([0x94, 8, 1, 0xa1, 0x61, 0xdf, 0xff, 0xff, 0xff, 0xff])).fatal, true);
  });

  it('does not let __proto__ in options pollute anything', () => {
    const bytes = pack([3, 1, 'a', JSON.parse('{"__proto__": {"credit": 99}, "from": 2}')]);
    const f = decodeClientFrame(bytes);
    assert.deepEqual(f, { type: 3, subId: 1, topic: 'a', from: 2 });
    assert.equal(({} as Record<string, unknown>).credit, undefined);
  });

  it('turns values msgpackr refuses (non-string map keys) into bad-frame', () => {
    // SUB options {[1]: 2}: a map whose key is an array (found by the fuzzer).
    const err = decodeError(new Uint8Array([0x94, 3, 1, 0xa1, 0x61, 0x81, 0x91, 1, 2]));
    assert.deepEqual([err.code, err.id], ['bad-frame', 1]);
  });

  it('names the request in non-fatal errors', () => {
    const err = decodeError(pack([8, 77, 5, 'data']));
    assert.equal(err.fatal, false);
    assert.equal(err.id, 77);
    assert.match(err.message, /topic must be a string/);
    // The short PUB (no options) is decoded by a fast path; a wrong one still gets the general path's answer.
    const badId = decodeError(pack([8, -1, 't', 1]));
    assert.deepEqual([badId.code, badId.id, badId.re, badId.fatal], ['bad-frame', 0, 8, false]);
    assert.match(badId.message, /reqId must be an unsigned integer/);
    assert.deepEqual(decodeClientFrame(pack([8, 2 ** 53 - 1, 'room.é', 'x'])), { type: 8, reqId: 2 ** 53 - 1, topic: 'room.é', data: pack('x') });
  });

  it('classifies failures', () => {
    assert.equal(decodeError(pack('not an array')).fatal, true);
    assert.equal(decodeError(pack([])).fatal, true);
    assert.equal(decodeError(pack(['x'])).fatal, true);
    assert.equal(decodeError(new Uint8Array([0x92, 1])).fatal, true); // truncated
    assert.equal(decodeError(new Uint8Array([0x91, 1, 2])).fatal, true); // trailing bytes
    const unknown = decodeError(pack([99, 1]));
    assert.equal(unknown.fatal, false);
    assert.match(unknown.message, /unknown frame type 99/);
    assert.match(decodeError(pack([9, 1, 1, false])).message, /sent by servers only/);
    assert.equal(decodeError(pack([8, 1, 't', 1, { key: 7 }])).code, 'bad-frame');
    assert.equal(decodeError(pack([7, 1, -1])).code, 'bad-frame');
    assert.equal(decodeError(pack([3, 1, 'a', { from: 'x' }])).code, 'bad-frame');
  });

  it('ids, offsets and credit are unsigned integers up to 2^53 - 1; later fields fail with the id', () => {
    const beyond = new Uint8Array([0xcf, 0x00, 0x20, 0, 0, 0, 0, 0, 0]); // 2^53
    const sub = new Uint8Array([0x93, 3, ...beyond, 0xa1, 0x61]);
    const e1 = decodeError(sub);
    assert.deepEqual([e1.id, e1.re], [0, 3]);
    assert.match(e1.message, /subId must be an unsigned integer \(at most 2\^53 - 1\)/);
    assert.match(decodeError(pack([3, 1, 'a', { from: 2 ** 53 }])).message, /from must be an unsigned integer/);
    assert.match(decodeError(pack([3, 1, 'a', { from: 1.5 }])).message, /from must be/);
    assert.deepEqual(decodeClientFrame(pack([3, 2 ** 53 - 1, 'a', { from: 2 ** 53 - 1 }])), { type: 3, subId: 2 ** 53 - 1, topic: 'a', from: 2 ** 53 - 1 });
    // Generous credit is clamped, never refused.
    assert.deepEqual(decodeClientFrame(pack([3, 1, 'a', { credit: 2 ** 64 }])), { type: 3, subId: 1, topic: 'a', credit: 2 ** 53 - 1 });
    for (const bad of [pack([8, 4, 't', 1, 5]), pack([8, 4, 't', 1, { key: 1 }]), pack([8, 4, 't'])]) {
      const err = decodeError(bad);
      assert.deepEqual([err.code, err.id, err.re, err.fatal], ['bad-frame', 4, 8, false], err.message);
    }
  });

  it('the message rules refuse an empty idempotency key instead of reading it as none', () => {
    // The decoder reads the key; the rules every publish meets (checkMessage) judge it.
    assert.equal((decodeClientFrame(pack([8, 4, 't', 1, { key: '' }])) as { key?: string }).key, '');
    const fault = checkMessage(encodeValue(1), '', undefined);
    assert.ok(fault instanceof MessageFault);
    assert.deepEqual([fault.code, fault.message], ['bad-request', 'key must be 1-128 bytes']);
    assert.equal((decodeClientFrame(pack([8, 4, 't', 1, { key: null }])) as { key?: string }).key, undefined);
    assert.ok(!(checkMessage(encodeValue(1), 'k'.repeat(128), undefined) instanceof MessageFault));
    const long = checkMessage(encodeValue(1), 'k'.repeat(129), undefined);
    assert.ok(long instanceof MessageFault && long.code === 'too-large');
    const headers = checkMessage(encodeValue(1), undefined, []);
    assert.ok(headers instanceof MessageFault && headers.code === 'bad-request');
  });

  it('reports a frame over maxFrame as too-large with its id', () => {
    const bytes = encode({ type: 8, reqId: 5, topic: 't', data: 'x'.repeat(2000) });
    try {
      decodeClientFrame(bytes, 1024);
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof FrameError);
      assert.equal(err.code, 'too-large');
      assert.equal(err.id, 5);
    }
  });
});

describe('the payload rule', () => {
  const hex = (h: string) => Uint8Array.from(Buffer.from(h.replace(/ /g, ''), 'hex'));

  it('accepts nil, bool, int, float, str, bin, array and maps with string keys', () => {
    const ok = [
      'c0', 'c2', 'c3', '00', '7f', 'ff', 'cc ff', 'cd ffff', 'ce ffffffff', 'cf 0000000000000001',
      'd0 80', 'd1 8000', 'd2 80000000', 'd3 8000000000000000', 'ca 3fc00000', 'cb 3ff8000000000000',
      'a0', 'a3 616263', 'd9 01 61', 'da 0001 61', 'db 00000001 61', 'c4 00', 'c4 02 00ff', 'c5 0001 00', 'c6 00000001 00',
      '90', '93 01 a1 61 c0', 'dc 0001 01', 'dd 00000001 01', '80', '81 a1 61 01', 'de 0001 a1 61 01', 'df 00000001 a1 61 01',
      // values (not keys) of any allowed type, maps nested in maps and arrays
      '82 a1 61 91 01 a1 62 81 a1 63 c4 01 00', '92 81 a0 80 81 a1 78 90',
    ];
    for (const h of ok) assert.equal(payloadError(hex(h)), null, h);
    assert.equal(payloadError(encodeValue({ text: 'héllo', n: [1, 2.5, -3, 2 ** 40], bin: new Uint8Array([0, 255]), none: null })), null);
  });

  it('refuses extension types anywhere, msgpack timestamps included', () => {
    const ext = ['d4 01 00', 'd5 01 0000', 'd6 ff 00000000', 'd7 ff 0000000000000000', 'd8 01 ' + '00'.repeat(16),
      'c7 00 01', 'c7 0c ff ' + '00'.repeat(12), 'c8 0001 01 00', 'c9 00000001 01 00'];
    for (const h of ext) {
      for (const wrapped of [h, `91 ${h}`, `81 a1 61 ${h}`, `92 01 81 a1 61 91 ${h}`]) {
        assert.equal(payloadError(hex(wrapped)), 'payload rejected: extension types are not allowed', wrapped);
      }
    }
    // The encoder never writes one: a Date is refused before it leaves.
    assert.throws(() => encodeValue({ at: new Date(0) }), /cannot encode a Date/);
    // Frames in general may carry them (option maps ignore what they do not know).
    assert.equal(skipValue(hex('d6 ff 00000000'), 0, 1), 6);
  });

  it('refuses maps whose keys are not all strings, at any depth', () => {
    const bad = ['81 01 01', '81 c0 01', '81 c4 01 61 01', '81 90 01', '81 80 01', '81 cb 3ff8000000000000 01',
      '82 a1 61 01 02 01', '82 a1 61 81 a1 62 01 02 01', '91 81 01 01', '81 a1 61 81 d4 01 00 01', 'de 0001 01 01'];
    for (const h of bad) assert.equal(payloadError(hex(h)), 'payload rejected: map keys must be strings', h);
    assert.equal(payloadError(encodeValue(new Map([[1, 'a']]))), 'payload rejected: map keys must be strings');
  });

  it('refuses what is not exactly one well-formed value', () => {
    assert.match(payloadError(hex('01 02'))!, /trailing bytes/);
    assert.match(payloadError(hex('92 01'))!, /declared length exceeds/);
    assert.match(payloadError(hex('92 01 cd 00'))!, /exceeds/);
    assert.match(payloadError(hex('c1'))!, /0xc1/);
    assert.match(payloadError(hex(''))!, /truncated/);
  });

  it('a PUB breaking it decodes, and the message rules refuse it (the gateway answers bad-frame)', () => {
    for (const data of ['d6 ff 00000000', '81 01 01', '91 c7 00 05']) {
      const f = decodeClientFrame(hex(`94 08 05 a1 74 ${data}`));
      assert.equal(f.type, 8);
      if (f.type !== 8) return;
      const fault = checkMessage(f.data, f.key, f.headers);
      assert.ok(fault instanceof MessageFault && fault.code === 'bad-request', data);
      assert.match(fault.message, /^payload rejected: /);
    }
    // Headers and options are not payloads: their own rules apply.
    assert.equal(decodeClientFrame(hex('95 08 05 a1 74 01 81 a3 6b6579 a1 6b')).type, 8);
  });
});

describe('codec: server frames', () => {
  const frames: Frame[] = [
    { type: 2, session: 's', version: '1', maxFrame: 10, maxCredit: 20, heartbeat: 30, maxSubscriptions: 40 },
    { type: 4, subId: 1, epoch: 'e', head: 9, from: 3, recovered: true },
    { type: 6, subId: 1 },
    { type: 9, reqId: 2, offset: 2 ** 40, duplicate: true },
    { type: 10, topic: 't', offset: 1, data: { a: 1 }, ts: 5 },
    { type: 11, id: 3, code: 'forbidden', message: 'no', re: 8 },
    { type: 14, topic: 't', from: 1, to: 4 },
    { type: 15, topic: 't', first: 3, messages: [{ data: 1, ts: 2 }, { data: 'x', ts: 3, headers: { h: 'v' } }] },
    { type: 18, topic: 't', offset: 4, attempt: 2, message: { data: [1], ts: 6, headers: { h: 'v' }, orderingKey: 'k' } },
  ];
  for (const f of frames) {
    it(`round trips type ${f.type}`, () => assert.deepEqual(decodeServerFrame(encode(f)), f));
  }

  it('checks every field: a missing or mistyped one throws instead of becoming NaN or "undefined"', () => {
    const bad: [unknown[], RegExp][] = [
      [[2, { session: 's', version: 'v', maxCredit: 1, heartbeat: 1 }], /WELCOME maxFrame must be/],
      [[2, { session: 's', version: 'v', maxFrame: 1, maxCredit: 1, heartbeat: 0 }], /WELCOME heartbeat must be a positive integer/],
      [[2, { session: 1, version: 'v', maxFrame: 1, maxCredit: 1, heartbeat: 1 }], /WELCOME session must be a string/],
      [[4, 1, { head: 1, from: 1, recovered: true }], /SUBSCRIBED epoch must be a string/],
      [[4, 1, { epoch: 'e', head: 1, from: 1, recovered: 1 }], /SUBSCRIBED recovered must be a boolean/],
      [[9, 1, 2.5, false], /ACK offset must be an unsigned integer/],
      [[10, 't', 1], /MSG ts must be/],
      [[11, 1, 'forbidden'], /ERROR message must be a string/],
      [[15, 't', 1, [1]], /MSGS message must be an array/],
      [[15, 't', 1, [[1]]], /MSGS ts must be/],
      [[3, 1, 't'], /SUB is not a frame gateways send/],
      [[0], /frame type 0 is not a frame gateways send/],
    ];
    for (const [frame, message] of bad) {
      assert.throws(() => decodeServerFrame(pack(frame)), (e: unknown) => e instanceof FrameError && message.test(e.message), JSON.stringify(frame));
    }
  });

  it('fast-path MSG and MSGS equal the general encoder', () => {
    const topic = encodeStr('room.1');
    const entries = [encodeEntry(encodeValue({ a: 1 }), 1000), encodeEntry(encodeValue('b'), 2 ** 41, encodeValue({ h: 'v' }))];
    assert.deepEqual(
      decodeServerFrame(encodeDelivery(topic, 7, entries, 0, 1)),
      { type: 10, topic: 'room.1', offset: 7, data: { a: 1 }, ts: 1000 },
    );
    assert.deepEqual(
      decodeServerFrame(encodeDelivery(topic, 2 ** 33, entries)),
      { type: 15, topic: 'room.1', first: 2 ** 33, messages: [{ data: { a: 1 }, ts: 1000 }, { data: 'b', ts: 2 ** 41, headers: { h: 'v' } }] },
    );
    assert.equal(entryTs(entries[1]!), 2 ** 41);
  });

  it('fast-path LEASE equals the general encoder, meta and all', () => {
    const entry = encodeEntry(encodeValue({ job: 1 }), 1000, undefined, encodeValue({ k: 'customer-7' }));
    assert.deepEqual(
      decodeServerFrame(encodeLease(encodeStr('jobs'), 2 ** 35, 3, entry)),
      { type: 18, topic: 'jobs', offset: 2 ** 35, attempt: 3, message: { data: { job: 1 }, ts: 1000, orderingKey: 'customer-7' } },
    );
  });

  it('fast-path ACK is byte for byte the general encoder, at every integer width', () => {
    for (const reqId of [0, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      for (const offset of [1, 200, 70_000, 2 ** 32 - 1, 2 ** 32, 2 ** 40]) {
        for (const duplicate of [false, true]) {
          const frame = { type: 9, reqId, offset, duplicate } as const; // ACK
          assert.deepEqual(encodeAck(reqId, offset, duplicate), encode(frame), `${reqId} ${offset} ${duplicate}`);
          assert.deepEqual(decodeServerFrame(encodeAck(reqId, offset, duplicate)), frame);
        }
      }
    }
  });

  it('data stored before 1.1 that no JS value represents arrives as RawData in MSG, MSGS and LEASE', () => {
    const ext = Buffer.from('d40501', 'hex'); // fixext1, type 5: msgpackr cannot decode it
    const topic = encodeStr('t');
    const entry = encodeEntry(ext, 7, encodeValue({ h: 'v' }), encodeValue({ k: 'a' }));
    const msg = decodeServerFrame(encodeDelivery(topic, 1, [entry], 0, 1));
    const msgs = decodeServerFrame(encodeDelivery(topic, 1, [entry, encodeEntry(encodeValue('ok'), 8)]));
    const lease = decodeServerFrame(encodeLease(topic, 1, 1, entry));
    assert.ok(msg.type === 10 && msg.data instanceof RawData && Buffer.from(msg.data.bytes).equals(ext));
    assert.ok(msgs.type === 15 && msgs.messages[0]!.data instanceof RawData && msgs.messages[1]!.data === 'ok');
    assert.ok(lease.type === 18 && lease.message.data instanceof RawData && Buffer.from(lease.message.data.bytes).equals(ext));
    assert.deepEqual(lease.type === 18 && [lease.message.ts, lease.message.headers, lease.message.orderingKey, lease.attempt], [7, { h: 'v' }, 'a', 1]);
  });
});

describe('ERROR re: what an error answers', () => {
  it('is the fifth element: encoded always (0 when none), decoded as 0 from 1.0 gateways', () => {
    assert.deepEqual([...encode({ type: 11, id: 3, code: 'x', message: '' })], [0x95, 11, 3, 0xa1, 0x78, 0xa0, 0]);
    assert.deepEqual(decodeServerFrame(pack([11, 3, 'forbidden', 'no'])), { type: 11, id: 3, code: 'forbidden', message: 'no', re: 0 });
    assert.deepEqual(decodeServerFrame(pack([11, 3, 'forbidden', 'no', 3, 'later'])), { type: 11, id: 3, code: 'forbidden', message: 'no', re: 3 });
    assert.throws(() => decodeServerFrame(pack([11, 3, 'forbidden', 'no', 'SUB'])), /ERROR re must be/);
  });

  it('every FrameError of the client decoder carries the frame type as re, and the id when readable', () => {
    const cases: [Uint8Array, { code: string; fatal: boolean; id: number; re: number }][] = [
      [pack([8, 5, 42, 1]), { code: 'bad-frame', fatal: false, id: 5, re: 8 }],
      [pack([3, 6, 'a', { credit: 'x' }]), { code: 'bad-frame', fatal: false, id: 6, re: 3 }],
      [pack([7, 7, -1]), { code: 'bad-frame', fatal: false, id: 7, re: 7 }],
      [pack([5, 'x']), { code: 'bad-frame', fatal: false, id: 0, re: 5 }],
      [pack([1, { token: 1 }]), { code: 'bad-frame', fatal: false, id: 0, re: 1 }],
      [pack([12, 'x']), { code: 'bad-frame', fatal: false, id: 0, re: 12 }],
      [pack([99, 9]), { code: 'bad-frame', fatal: false, id: 9, re: 99 }],
      // Fatal: the frame cannot be parsed, but its first two elements could be read.
      [new Uint8Array([0x94, 8, 5, 0xa1, 0x61, ...new Array<number>(100).fill(0x91), 0xc0]), { code: 'bad-frame', fatal: true, id: 5, re: 8 }],
      [new Uint8Array([0x94, 8, 5, 0xa1, 0x61, 0xc1]), { code: 'bad-frame', fatal: true, id: 5, re: 8 }],
      [new Uint8Array([0x94, 3, 0xcd, 0x01]), { code: 'bad-frame', fatal: true, id: 0, re: 3 }],
      [new Uint8Array([0x94, 0xa1, 0x78, 5, 0xc1]), { code: 'bad-frame', fatal: true, id: 0, re: 0 }],
    ];
    for (const [bytes, want] of cases) {
      const err = decodeError(bytes);
      assert.deepEqual({ code: err.code, fatal: err.fatal, id: err.id, re: err.re }, want, Buffer.from(bytes).toString('hex'));
    }
    const big = decodeErrorWith(encode({ type: 8, reqId: 5, topic: 't', data: 'x'.repeat(2000) }), 1024);
    assert.deepEqual([big.code, big.id, big.re], ['too-large', 5, 8]);
  });
});

describe('protocol version', () => {
  it('is 1.5, announced in HELLO and WELCOME', () => {
    assert.equal(PROTOCOL_VERSION, '1.5');
    const hello = pack([1, { protocol: '1.1', client: 'c' }]);
    assert.deepEqual(decodeClientFrame(hello), { type: 1, protocol: '1.1', client: 'c' });
    const err = decodeError(pack([1, { protocol: 1.1 }]));
    assert.deepEqual([err.code, err.fatal], ['bad-frame', false]);
    assert.match(err.message, /protocol must be a string/);
    const welcome = { type: 2, session: 's', protocol: '1.1', version: '0.1.0', maxFrame: 10, maxCredit: 20, heartbeat: 30 } as const;
    assert.deepEqual(decodeServerFrame(encode(welcome)), welcome);
    // A 1.0 gateway's WELCOME has no protocol.
    assert.equal((decodeServerFrame(pack([2, { session: 's', version: 'v', maxFrame: 1, maxCredit: 1, heartbeat: 1 }])) as { protocol?: string }).protocol, undefined);
  });

  it('protocolCompatible: major 1 only; no version at all is a 1.0 peer', () => {
    for (const v of [undefined, '1', '1.0', '1.1', '1.99']) assert.equal(protocolCompatible(v), true, String(v));
    for (const v of ['2', '2.0', '0.9', '', 'x', '1.', '1.1.1', ' 1.1', '01.1', '1.-1']) assert.equal(protocolCompatible(v), false, v);
  });

  it('protocolMinor: what a peer may use (1.5: the byte window)', () => {
    assert.deepEqual([undefined, '1', '1.0', '1.4', '1.5', '1.12'].map(protocolMinor), [0, 0, 0, 4, 5, 12]);
  });
});

describe('topics and codes', () => {
  it('validates topic names', () => {
    for (const t of ['a', 'chat.room-1', 'A_b:c@d/e', 'x'.repeat(255)]) assert.ok(isValidTopic(t), t);
    for (const t of ['', 'x'.repeat(256), 'a b', 'a..b', '.a', 'a.', 'a*', 'é', '$sys.x', 'a.>']) assert.ok(!isValidTopic(t), t);
    assert.ok(isValidTopic('$sys.stats', { allowReserved: true }));
  });

  it('matches patterns', () => {
    assert.equal(patternError('chat.*.msgs'), null);
    assert.equal(patternError('chat.>'), null);
    assert.notEqual(patternError('chat.>.x'), null);
    assert.ok(matchTopic('chat.*', 'chat.a'));
    assert.ok(!matchTopic('chat.*', 'chat.a.b'));
    assert.ok(matchTopic('chat.>', 'chat.a.b'));
    assert.ok(!matchTopic('chat.>', 'chat'));
    assert.ok(matchTopic('>', 'anything.at.all'));
  });

  it('close codes carry the reconnect policy', () => {
    assert.equal(closePolicy(1000), 'stop');
    assert.equal(closePolicy(4003), 'terminal');
    assert.equal(closePolicy(4101), 'refresh-token');
    assert.equal(closePolicy(1006), 'reconnect');
    assert.equal(closePolicy(4201), 'reconnect');
  });
});

describe('the encoder', () => {
  // msgpackr, as the protocol module configured it before it had its own encoder.
  const reference = new Packr({ useRecords: false, encodeUndefinedAsNil: true, variableMapSize: true });

  it('writes each value on its own: a value encoded from inside a getter, and a large value before small ones', () => {
    const inner = { a: [1, 'two', 3.5] };
    const outer = { get first() { return encodeValue(inner); }, then: 'x'.repeat(40) };
    assert.deepEqual(Buffer.from(encodeValue(outer)), reference.pack({ first: reference.pack(inner), then: 'x'.repeat(40) }));
    const big = { blob: new Uint8Array(200_000).fill(7), s: 'é'.repeat(1000) };
    assert.deepEqual(Buffer.from(encodeValue(big)), reference.pack(big));
    assert.deepEqual(Buffer.from(encodeValue([1, 2])), reference.pack([1, 2]));
    assert.deepEqual(Buffer.from(encode({ type: 9, reqId: 5, offset: 70_000, duplicate: true })), reference.pack([9, 5, 70_000, true]));
  });

  it('writes what msgpackr writes for every value a message may hold', () => {
    const edges = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129,
      -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 0.5, -0.1, 1e300, NaN, Infinity, -Infinity, -0];
    const strings = ['', 'a', 'é€😀', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(70_000)];
    const values: unknown[] = [null, undefined, true, false, ...edges, ...strings, 5n, -5n, 2n ** 63n,
      new Uint8Array(0), new Uint8Array(300), Buffer.from('bytes'), [], Array.from({ length: 16 }, (_, i) => i),
      Array.from({ length: 70_000 }, () => 1), {}, { a: 1, b: [true, null], c: { d: 'e' }, u: undefined },
      Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])), new Map([['m', 1]])];
    // And random nests of them.
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const random = (depth: number): unknown => {
      const k = rnd(depth > 4 ? 4 : 6);
      if (k < 4) return [edges[rnd(edges.length)], strings[rnd(4)], null, rnd(2) === 0][k];
      if (k === 4) return Array.from({ length: rnd(5) }, () => random(depth + 1));
      return Object.fromEntries(Array.from({ length: rnd(5) }, (_, i) => [`f${i}`, random(depth + 1)]));
    };
    for (let i = 0; i < 500; i++) values.push(random(0));
    for (const v of values) {
      assert.equal(Buffer.from(encodeValue(v)).toString('hex'), Buffer.from(reference.pack(v)).toString('hex'), inspect(v).slice(0, 80));
    }
  });

  it('refuses what the payload rule refuses, and cycles, with a TypeError or RangeError', () => {
    assert.throws(() => encodeValue(new Date()), TypeError);
    assert.throws(() => encodeValue(new Float32Array(2)), TypeError);
    assert.throws(() => encodeValue(() => 1), TypeError);
    assert.throws(() => encodeValue(Symbol('s')), TypeError);
    assert.throws(() => encodeValue(2n ** 64n), RangeError);
    const a: unknown[] = [];
    a.push(a);
    assert.throws(() => encodeValue(a), RangeError);
  });
});
