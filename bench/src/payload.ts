/**
 * The benchmark message: 200 bytes of fixed-width ASCII that every target carries unchanged (a
 * scenario may ask for longer ones: the same fields, more padding).
 *
 *   [0, 10)   sequence number within its topic (1, 2, ...), zero padded
 *   [11, 27)  send time in microseconds of the system monotonic clock (see `nowUs`)
 *   [28, 36)  topic index, so the peer servers can route without a protocol of their own
 *   the rest  padding up to SIZE
 *
 * Why ASCII: the same bytes travel as a binary frame (uWS, ws, NATS, Sluice `bin` data) and as a
 * JSON string (Socket.IO), and subscribers read the fields in place without decoding the message.
 * Why the monotonic clock: `process.hrtime()` reads CLOCK_MONOTONIC, which is the same clock in
 * every process of the machine, so a subscriber process can subtract a publisher's timestamp.
 */

export const SIZE = 200;

const SEQ_AT = 0;
const SEQ_WIDTH = 10;
const TS_AT = 11;
const TS_WIDTH = 16;
const TOPIC_AT = 28;
const TOPIC_WIDTH = 8;

/** Microseconds of the system-wide monotonic clock (comparable across processes). */
export function nowUs(): number {
  const t = process.hrtime();
  return t[0] * 1e6 + Math.floor(t[1] / 1e3);
}

function writeDigits(out: Uint8Array, at: number, width: number, value: number): void {
  let v = Math.floor(value);
  for (let i = at + width - 1; i >= at; i--) {
    out[i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
}

function readDigits(b: Uint8Array, at: number, width: number): number {
  let v = 0;
  for (let i = at; i < at + width; i++) v = v * 10 + (b[i]! - 48);
  return v;
}

/** A fresh message of `size` bytes (default SIZE; at least the 37 bytes of its fields). */
export function makePayload(seq: number, topicIndex: number, sentUs = nowUs(), size = SIZE): Uint8Array {
  const out = new Uint8Array(Math.max(size, TOPIC_AT + TOPIC_WIDTH + 1)).fill(46); // '.'
  writeDigits(out, SEQ_AT, SEQ_WIDTH, seq);
  out[SEQ_AT + SEQ_WIDTH] = 58; // ':'
  writeDigits(out, TS_AT, TS_WIDTH, sentUs);
  out[TS_AT + TS_WIDTH] = 58;
  writeDigits(out, TOPIC_AT, TOPIC_WIDTH, topicIndex);
  out[TOPIC_AT + TOPIC_WIDTH] = 58;
  return out;
}

/** The payload as a string (for Socket.IO, which carries it as a JSON string). */
export function payloadText(p: Uint8Array): string {
  return Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('latin1');
}

/** Fields read in place from bytes that hold a payload at `at`. */
export function readSeq(b: Uint8Array, at = 0): number {
  return readDigits(b, at + SEQ_AT, SEQ_WIDTH);
}

export function readSentUs(b: Uint8Array, at = 0): number {
  return readDigits(b, at + TS_AT, TS_WIDTH);
}

export function readTopicIndex(b: Uint8Array, at = 0): number {
  return readDigits(b, at + TOPIC_AT, TOPIC_WIDTH);
}
