/**
 * The MessagePack encoder: JS values → bytes, for frames and payloads. Small on purpose — it ships
 * in the browser bundle — and it writes exactly what msgpackr writes for the values a message may
 * hold (the golden vectors check it), so the gateway and the SDK agree byte for byte:
 *
 *   undefined, null → nil · booleans · integers in [-2^31, 2^32) in their smallest form, every other
 *   number as float64 · bigint as int64 (uint64 from 2^63) · strings as UTF-8 str · Uint8Array
 *   (and Buffer) as bin · arrays · Maps and other objects as maps of their entries / own
 *   enumerable properties.
 *
 * Dates and other extension types are not encoded (the payload rule refuses them): a TypeError
 * says so. Deeper than MAX_DEPTH containers is refused too (a cycle would be infinite).
 */
import { MAX_DEPTH } from './limits.js';

const encoder = new TextEncoder();

class Writer {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  pos = 0;

  /** Back to a small empty buffer. */
  reset(): void {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  /** A type byte and a big-endian unsigned length of `size` bytes. */
  head(type: number, n: number, size: 1 | 2 | 4): void {
    this.room(1 + size);
    this.buf[this.pos++] = type;
    if (size === 1) this.view.setUint8(this.pos, n);
    else if (size === 2) this.view.setUint16(this.pos, n);
    else this.view.setUint32(this.pos, n);
    this.pos += size;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A length for a family: fix form (below `fixMax`) with `fix`, else 8/16/32-bit forms. */
  length(n: number, fix: number, fixMax: number, t8: number, t16: number, t32: number): void {
    if (n < fixMax) this.byte(fix | n);
    else if (t8 && n < 0x100) this.head(t8, n, 1);
    else if (n < 0x10000) this.head(t16, n, 2);
    else this.head(t32, n, 4);
  }
}

function number(w: Writer, v: number): void {
  if (Number.isInteger(v) && v >= -0x80000000 && v < 0x100000000) {
    if (v >= 0) {
      if (v < 0x80) w.byte(v);
      else if (v < 0x100) w.head(0xcc, v, 1);
      else if (v < 0x10000) w.head(0xcd, v, 2);
      else w.head(0xce, v, 4);
    } else if (v >= -32) {
      w.byte(v & 0xff);
    } else {
      w.room(5);
      if (v >= -0x80) { w.buf[w.pos++] = 0xd0; w.view.setInt8(w.pos, v); w.pos += 1; }
      else if (v >= -0x8000) { w.buf[w.pos++] = 0xd1; w.view.setInt16(w.pos, v); w.pos += 2; }
      else { w.buf[w.pos++] = 0xd2; w.view.setInt32(w.pos, v); w.pos += 4; }
    }
    return;
  }
  w.room(9);
  w.buf[w.pos++] = 0xcb;
  w.view.setFloat64(w.pos, v);
  w.pos += 8;
}

function value(w: Writer, v: unknown, depth: number): void {
  if (v === undefined || v === null) return w.byte(0xc0);
  switch (typeof v) {
    case 'boolean': return w.byte(v ? 0xc3 : 0xc2);
    case 'number': return number(w, v);
    case 'string': {
      const b = encoder.encode(v);
      w.length(b.length, 0xa0, 32, 0xd9, 0xda, 0xdb);
      return w.bytes(b);
    }
    case 'bigint': {
      if (v < -(2n ** 63n) || v >= 2n ** 64n) throw new RangeError(`${v} does not fit in 64 bits`);
      w.room(9);
      w.buf[w.pos++] = v >= 2n ** 63n ? 0xcf : 0xd3;
      w.view.setBigUint64(w.pos, BigInt.asUintN(64, v));
      w.pos += 8;
      return;
    }
    case 'object': break;
    default: throw new TypeError(`cannot encode a ${typeof v}`);
  }
  if (depth >= MAX_DEPTH) throw new RangeError(`nesting deeper than ${MAX_DEPTH} (a cycle?)`);
  if (v instanceof Uint8Array) {
    w.length(v.length, 0, 0, 0xc4, 0xc5, 0xc6);
    return w.bytes(v);
  }
  if (Array.isArray(v)) {
    w.length(v.length, 0x90, 16, 0, 0xdc, 0xdd);
    for (const x of v) value(w, x, depth + 1);
    return;
  }
  if (v instanceof Date || ArrayBuffer.isView(v)) {
    throw new TypeError(`cannot encode a ${v.constructor.name}: data may hold nil, booleans, numbers, strings, bytes (Uint8Array), arrays and maps`);
  }
  const entries: [unknown, unknown][] = v instanceof Map ? [...(v as Map<unknown, unknown>)] : Object.keys(v).map((k) => [k, (v as Record<string, unknown>)[k]]);
  w.length(entries.length, 0x80, 16, 0, 0xde, 0xdf);
  for (const [k, x] of entries) {
    value(w, k, depth + 1);
    value(w, x, depth + 1);
  }
}

// One writer serves every call (frames are encoded one at a time): no buffer allocated per frame.
// It keeps the largest buffer it grew to, up to SCRATCH_MAX; a bigger one is dropped after use.
const SCRATCH_MAX = 64 * 1024;
let scratch: Writer | undefined = new Writer();

/** The MessagePack encoding of `v` (see the header for what each JS value becomes). */
export function pack(v: unknown): Uint8Array {
  // A getter inside `v` may call pack again: that call gets a writer of its own.
  const w = scratch ?? new Writer();
  scratch = undefined;
  w.pos = 0;
  try {
    value(w, v, 0);
    return w.buf.slice(0, w.pos);
  } finally {
    if (w.buf.length > SCRATCH_MAX) w.reset();
    scratch = w;
  }
}
