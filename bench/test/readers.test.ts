/**
 * The bench's lean readers must agree with the real wire: the Sluice MSG/MSGS header reader
 * against frames the protocol module builds, the NATS parser against messages split across
 * WebSocket frames, the payload fields, and the latency histogram's quantiles. No timing here:
 * the bench's figures are never asserted in `npm test`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode, encodeDelivery, encodeEntry, encodeStr } from '@sluice/client/protocol';
import { ack, delivery, forEachPayload, frameType, lease, LEASE, MSG, MSGS } from '../src/clients/sluice-frames.js';
import { NatsParser } from '../src/clients/nats-parser.js';
import { deliveryCount, streamSeq } from '../src/clients/jetstream.js';
import { Histogram } from '../src/histogram.js';
import { makePayload, readSentUs, readSeq, readTopicIndex, SIZE } from '../src/payload.js';
import { Tally } from '../src/clients/subscriber.js';

/** A stored entry whose data is the payload as MessagePack bin 8. */
function entry(seq: number, ts = 1_700_000_000_000): Uint8Array {
  const p = makePayload(seq, 3, 123_456_789 + seq);
  const data = new Uint8Array(2 + p.length);
  data[0] = 0xc4;
  data[1] = p.length;
  data.set(p, 2);
  return encodeEntry(data, ts);
}

describe('payload', () => {
  it('carries sequence, send time and topic index in place', () => {
    const p = makePayload(4_000_000_001, 9999, 987_654_321_012);
    assert.equal(p.length, SIZE);
    assert.equal(readSeq(p), 4_000_000_001);
    assert.equal(readSentUs(p), 987_654_321_012);
    assert.equal(readTopicIndex(p), 9999);
  });
});

describe('sluice-frames: lean MSG/MSGS reading agrees with the codec', () => {
  const topic = encodeStr('bench.t0');
  for (const [first, count] of [[1, 1], [127, 2], [300, 15], [65_600, 16], [4_294_967_300, 70], [70_000, 70_000]] as const) {
    it(`first ${first}, ${count} message(s)`, () => {
      const entries = Array.from({ length: count }, (_, i) => entry(first + i));
      const frame = encodeDelivery(topic, first, entries);
      assert.equal(frameType(frame), count === 1 ? MSG : MSGS);
      const d = delivery(frame);
      assert.equal(d.first, first);
      assert.equal(d.count, count);
      const seqs: number[] = [];
      forEachPayload(frame, d, (at) => seqs.push(readSeq(frame, at)));
      assert.deepEqual(seqs, entries.map((_, i) => first + i));
    });
  }

  it('reads an ACK', () => {
    assert.deepEqual(ack(encode({ type: 9, reqId: 70_000, offset: 2 ** 40, duplicate: true })), { reqId: 70_000, offset: 2 ** 40, duplicate: true });
    assert.deepEqual(ack(encode({ type: 9, reqId: 1, offset: 5, duplicate: false })), { reqId: 1, offset: 5, duplicate: false });
  });
});

describe('sluice-frames: lean LEASE reading agrees with the codec', () => {
  // LEASE frames built by the protocol module's own encoder: every shape a stored message may have.
  const cases: { offset: number; attempt: number; headers: Record<string, string> | undefined; orderingKey: string | undefined }[] = [
    { offset: 1, attempt: 1, headers: undefined, orderingKey: undefined },
    { offset: 200, attempt: 2, headers: { 'content-type': 'application/octet-stream' }, orderingKey: undefined },
    { offset: 70_000, attempt: 5, headers: undefined, orderingKey: 'order-42' },
    { offset: 2 ** 40 + 3, attempt: 300, headers: { a: 'b' }, orderingKey: 'k' },
  ];
  for (const c of cases) {
    it(`offset ${c.offset}, attempt ${c.attempt}${c.headers ? ', headers' : ''}${c.orderingKey ? ', ordering key' : ''}`, () => {
      const seq = c.offset % 1e9; // the payload's field is 10 digits wide
      const payload = makePayload(seq, 0, 987_654_321);
      const frame = encode({
        type: 18,
        topic: 'bench.t0',
        offset: c.offset,
        attempt: c.attempt,
        message: { data: payload, ts: 1_700_000_000_000, ...(c.headers ? { headers: c.headers } : {}), ...(c.orderingKey ? { orderingKey: c.orderingKey } : {}) },
      });
      assert.equal(frameType(frame), LEASE);
      const l = lease(frame);
      assert.equal(l.offset, c.offset);
      assert.equal(l.attempt, c.attempt);
      assert.equal(readSeq(frame, l.payloadAt), seq);
      assert.equal(readSentUs(frame, l.payloadAt), 987_654_321);
      assert.deepEqual(frame.subarray(l.payloadAt, l.payloadAt + SIZE), payload);
    });
  }

  it('a GROUP_ACK of one offset or of several is what the member sends', () => {
    // The member builds its acks with `encode`; this pins the two shapes it relies on.
    assert.deepEqual([...encode({ type: 16, subId: 1, offsets: [7] })], [0x93, 16, 1, 7]);
    assert.deepEqual([...encode({ type: 16, subId: 1, offsets: [7, 8] })], [0x93, 16, 1, 0x92, 7, 8]);
  });
});

describe('nats-parser', () => {
  it('parses MSG, HMSG, PING and INFO split anywhere across chunks', () => {
    const p1 = makePayload(1, 0);
    const p2 = makePayload(2, 0);
    const wire = Buffer.concat([
      Buffer.from('INFO {"server_id":"x"}\r\nMSG t.0 1 200\r\n'), Buffer.from(p1), Buffer.from('\r\nPING\r\n'),
      Buffer.from('HMSG _INBOX.a 2 $JS.ACK.S.C.1.2.3.4.5 12 212\r\nNATS/1.0\r\n\r\n'), Buffer.from(p2), Buffer.from('\r\n'),
    ]);
    for (const cut of [1, 7, 30, 40, 100, 250, 300, wire.length - 1]) {
      const got: string[] = [];
      const parser = new NatsParser({
        msg: (sid, reply, payload, headers) => got.push(`${sid}|${reply}|${readSeq(payload)}|${headers ? headers.length : '-'}`),
        ping: () => got.push('PING'),
        pong: () => got.push('PONG'),
        info: () => got.push('INFO'),
        err: (t) => got.push(t),
      });
      parser.feed(wire.subarray(0, cut));
      parser.feed(wire.subarray(cut));
      assert.deepEqual(got, ['INFO', '1||1|-', 'PING', '2|$JS.ACK.S.C.1.2.3.4.5|2|12'], `cut at ${cut}`);
    }
  });
});

describe('jetstream reply subjects', () => {
  it('give the stream sequence and the delivery count, in both forms', () => {
    // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>
    const v1 = '$JS.ACK.QUEUE.workers.3.1207.1300.1764000000000000000.12';
    assert.deepEqual([deliveryCount(v1), streamSeq(v1)], [3, 1207]);
    // v2 adds the domain and the account hash after ACK, and a random token at the end
    const v2 = '$JS.ACK.hub.ACCHASH.QUEUE.workers.1.42.42.1764000000000000000.0.tok';
    assert.deepEqual([deliveryCount(v2), streamSeq(v2)], [1, 42]);
  });
});

describe('tally', () => {
  it('counts gaps and duplicates; a late joiner starts at its first message', () => {
    const t = new Tally();
    t.gotRange(1, 3);
    t.got(5);
    t.got(5);
    assert.deepEqual([t.last, t.received, t.gaps, t.dups], [5, 5, 1, 1]);
    const late = new Tally();
    late.late = true;
    late.gotRange(1000, 2);
    assert.deepEqual([late.last, late.gaps], [1001, 0]);
  });
});

describe('histogram', () => {
  it('quantiles within 2% and mergeable', () => {
    const a = new Histogram();
    const b = new Histogram();
    for (let v = 1; v <= 100_000; v++) (v % 2 ? a : b).record(v);
    a.merge(b.toJSON());
    assert.equal(a.count, 100_000);
    for (const q of [0.5, 0.99, 0.999]) {
      const got = a.quantile(q);
      assert.ok(Math.abs(got - q * 100_000) / (q * 100_000) < 0.02, `q${q}: ${got}`);
    }
    assert.equal(a.max, 100_000);
  });
});
