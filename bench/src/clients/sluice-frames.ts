/**
 * Reading the hot Sluice frames, MSG, MSGS and LEASE, without decoding them: the subscribers of a
 * fan-out receive millions of them, and a full decode (msgpackr + objects per message) would make
 * the load generator the bottleneck. Everything else goes through the protocol module's
 * `decodeServerFrame`; nothing here builds a frame.
 *
 *   MSG   [10, topic, offset, data, ts, headers?, meta?]
 *   MSGS  [15, topic, first, [[data, ts, headers?, meta?], ...]]
 *   LEASE [18, topic, offset, attempt, [data, ts, headers?, meta?]]   (a consumer-group member's)
 *
 * The bench publishes `data` as `bin` holding a payload (payload.ts), so a message's payload
 * starts right after the bin header.
 */
import { MAX_DEPTH, skipValue } from '@sluice/client/protocol';

export const MSG = 10;
export const MSGS = 15;
export const ACK = 9;
export const LEASE = 18;

/** Frame type of a frame whose array header is one byte (every Sluice frame has < 16 elements). */
export function frameType(b: Uint8Array): number {
  return b.length > 1 && (b[0]! & 0xf0) === 0x90 ? b[1]! : -1;
}

/**
 * Reads a MessagePack unsigned integer at `pos`; returns [value, next position]. msgpackr writes
 * integers beyond 32 bits as float64, so an integral float is accepted too.
 */
function uint(b: Uint8Array, pos: number): [number, number] {
  const t = b[pos]!;
  if (t <= 0x7f) return [t, pos + 1];
  switch (t) {
    case 0xcb: return [new DataView(b.buffer, b.byteOffset + pos + 1, 8).getFloat64(0), pos + 9];
    case 0xcc: return [b[pos + 1]!, pos + 2];
    case 0xcd: return [(b[pos + 1]! << 8) | b[pos + 2]!, pos + 3];
    case 0xce: return [b[pos + 1]! * 0x1000000 + ((b[pos + 2]! << 16) | (b[pos + 3]! << 8) | b[pos + 4]!), pos + 5];
    case 0xcf: {
      const hi = b[pos + 1]! * 0x1000000 + ((b[pos + 2]! << 16) | (b[pos + 3]! << 8) | b[pos + 4]!);
      const lo = b[pos + 5]! * 0x1000000 + ((b[pos + 6]! << 16) | (b[pos + 7]! << 8) | b[pos + 8]!);
      return [hi * 0x100000000 + lo, pos + 9];
    }
    default: throw new Error(`expected an unsigned integer, got byte 0x${t.toString(16)}`);
  }
}

/** Where a `bin` value's bytes start. */
function binStart(b: Uint8Array, pos: number): number {
  switch (b[pos]) {
    case 0xc4: return pos + 2;
    case 0xc5: return pos + 3;
    case 0xc6: return pos + 5;
    default: throw new Error(`expected bin data, got byte 0x${b[pos]!.toString(16)}`);
  }
}

/** Offset of the first message and how many the frame carries; `at` is where the item list (MSGS) or data (MSG) starts. */
export interface Delivery {
  first: number;
  count: number;
  at: number;
}

/** For a MSG or MSGS frame: first offset and message count, reading only the headers. */
export function delivery(b: Uint8Array): Delivery {
  const type = b[1]!;
  const afterTopic = skipValue(b, 2, 1);
  const [first, pos] = uint(b, afterTopic);
  if (type === MSG) return { first, count: 1, at: pos };
  const h = b[pos]!;
  if ((h & 0xf0) === 0x90) return { first, count: h & 0x0f, at: pos + 1 };
  if (h === 0xdc) return { first, count: (b[pos + 1]! << 8) | b[pos + 2]!, at: pos + 3 };
  if (h === 0xdd) return { first, count: b[pos + 1]! * 0x1000000 + ((b[pos + 2]! << 16) | (b[pos + 3]! << 8) | b[pos + 4]!), at: pos + 5 };
  throw new Error(`MSGS without an item array (byte 0x${h.toString(16)})`);
}

/**
 * Calls `each(payloadStart)` for every message of a MSG/MSGS frame, in offset order, where
 * `payloadStart` indexes `b` at the first byte of the message's bin data.
 */
export function forEachPayload(b: Uint8Array, d: Delivery, each: (payloadStart: number) => void): void {
  if (b[1] === MSG) {
    each(binStart(b, d.at));
    return;
  }
  let pos = d.at;
  for (let i = 0; i < d.count; i++) {
    // An item is a fixarray [data, ts, headers?]: data follows the one-byte header.
    each(binStart(b, pos + 1));
    pos = skipValue(b, pos, MAX_DEPTH);
  }
}

/** For an ACK frame [9, reqId, offset, duplicate]: the reqId and offset. */
export function ack(b: Uint8Array): { reqId: number; offset: number; duplicate: boolean } {
  const [reqId, p] = uint(b, 2);
  const [offset, q] = uint(b, p);
  return { reqId, offset, duplicate: b[q] === 0xc3 };
}

/** A LEASE frame's offset and attempt, and where its payload (the bin data) starts in the frame. */
export interface Lease {
  offset: number;
  attempt: number;
  payloadAt: number;
}

/**
 * For a LEASE frame: offset, attempt and payload start, reading only the headers. The stored
 * message is a fixarray (2 to 4 elements) whose first element is the data.
 */
export function lease(b: Uint8Array): Lease {
  const afterTopic = skipValue(b, 2, 1);
  const [offset, p] = uint(b, afterTopic);
  const [attempt, q] = uint(b, p);
  if ((b[q]! & 0xf0) !== 0x90) throw new Error(`LEASE without a message array (byte 0x${b[q]!.toString(16)})`);
  return { offset, attempt, payloadAt: binStart(b, q + 1) };
}
