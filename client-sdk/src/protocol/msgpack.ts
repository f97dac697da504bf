/**
 * The low-level MessagePack pieces the codec needs beyond msgpackr: a guarded scanner for untrusted
 * input, scalar readers, and writers for the few headers the gateway assembles by hand.
 *
 * Why a scanner: msgpackr is fast but trusts its input — it recurses once per nesting level (a few
 * KB of `0x91` bytes overflow the stack), returns an object for the reserved byte 0xC1 instead of
 * failing, and allocates by declared lengths. `skipValue` walks a value iteratively, bounds its depth,
 * checks every declared length against the bytes actually present, and rejects 0xC1. Only bytes it
 * accepted are ever handed to msgpackr. `checkPayload` is the same walk with the payload rule added.
 *
 * This module is pure: no sockets, no timers, no platform APIs beyond TextEncoder/TextDecoder.
 */

export class MsgpackError extends Error {
  override name = 'MsgpackError';
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();

function u16(b: Uint8Array, p: number): number {
  return (b[p]! << 8) | b[p + 1]!;
}

function u32(b: Uint8Array, p: number): number {
  return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
}

/**
 * Returns the position just after the MessagePack value that starts at `pos`.
 * Throws MsgpackError if the value is truncated, nests deeper than `maxDepth` containers, declares
 * more elements than bytes remain, or uses the reserved byte 0xC1.
 */
export function skipValue(b: Uint8Array, pos: number, maxDepth: number): number {
  return scan(b, pos, maxDepth, false);
}

/**
 * `skipValue` for a message payload: the same walk, and also the payload rule (PROTOCOL.md, "What
 * data may contain"): only nil, bool, int, float, str, bin, array and maps whose keys are all str.
 * Extension types (msgpack timestamps included) and other map keys throw MsgpackError.
 */
export function checkPayload(b: Uint8Array, pos: number, maxDepth: number): number {
  return scan(b, pos, maxDepth, true);
}

function isStrByte(t: number): boolean {
  return (t >= 0xa0 && t <= 0xbf) || t === 0xd9 || t === 0xda || t === 0xdb;
}

/**
 * The one walk behind skipValue and checkPayload: iterative, bounded by `maxDepth`, allocating
 * nothing per value (one small stack per container level).
 */
function scan(b: Uint8Array, pos: number, maxDepth: number, payload: boolean): number {
  const len = b.length;
  // Per open container level: values still to read there, times 2, plus 1 when it is a map.
  const stack: number[] = [];
  // Values still to read in the innermost container; in a map, keys and values alternate, and
  // a key is read whenever `pending` is even (a map of n entries starts at 2n).
  let pending = 1;
  let inMap = false;
  for (;;) {
    if (pending === 0) {
      if (stack.length === 0) return pos;
      const top = stack.pop()!;
      inMap = top % 2 === 1;
      pending = (top - (inMap ? 1 : 0)) / 2;
      continue;
    }
    if (pos >= len) throw new MsgpackError('truncated value');
    const t = b[pos++]!;
    if (payload) {
      if (inMap && pending % 2 === 0 && !isStrByte(t)) throw new MsgpackError('map keys must be strings');
      if ((t >= 0xc7 && t <= 0xc9) || (t >= 0xd4 && t <= 0xd8)) throw new MsgpackError('extension types are not allowed');
    }
    pending--;
    let skip = 0; // payload bytes after the header
    let children = 0; // values contained (maps count keys and values)
    let map = false;
    if (t <= 0x7f || t >= 0xe0) {
      // positive or negative fixint
    } else if (t <= 0x8f) {
      children = (t & 0x0f) * 2;
      map = true;
    } else if (t <= 0x9f) {
      children = t & 0x0f;
    } else if (t <= 0xbf) {
      skip = t & 0x1f;
    } else {
      switch (t) {
        case 0xc0: case 0xc2: case 0xc3: break;
        case 0xc1: throw new MsgpackError('reserved byte 0xc1');
        case 0xc4: case 0xd9: need(b, pos, 1); skip = b[pos]!; pos += 1; break;
        case 0xc5: case 0xda: need(b, pos, 2); skip = u16(b, pos); pos += 2; break;
        case 0xc6: case 0xdb: need(b, pos, 4); skip = u32(b, pos); pos += 4; break;
        case 0xc7: need(b, pos, 1); skip = b[pos]! + 1; pos += 1; break;
        case 0xc8: need(b, pos, 2); skip = u16(b, pos) + 1; pos += 2; break;
        case 0xc9: need(b, pos, 4); skip = u32(b, pos) + 1; pos += 4; break;
        case 0xca: skip = 4; break;
        case 0xcb: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xce: case 0xd2: skip = 4; break;
        case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break;
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: need(b, pos, 2); children = u16(b, pos); pos += 2; break;
        case 0xdd: need(b, pos, 4); children = u32(b, pos); pos += 4; break;
        case 0xde: need(b, pos, 2); children = u16(b, pos) * 2; pos += 2; map = true; break;
        case 0xdf: need(b, pos, 4); children = u32(b, pos) * 2; pos += 4; map = true; break;
      }
    }
    if (skip > 0) {
      if (skip > len - pos) throw new MsgpackError('declared length exceeds frame');
      pos += skip;
    }
    if (children > 0) {
      // Every value takes at least one byte: a larger count is a lie, refuse before allocating.
      if (children > len - pos) throw new MsgpackError('declared length exceeds frame');
      if (stack.length + 1 > maxDepth) throw new MsgpackError(`nesting deeper than ${maxDepth}`);
      stack.push(pending * 2 + (inMap ? 1 : 0));
      pending = children;
      inMap = map;
    }
  }
}

function need(b: Uint8Array, pos: number, n: number): void {
  if (pos + n > b.length) throw new MsgpackError('truncated header');
}

/** Reads an array header at `pos`: returns [count, position of the first element], or null if not an array. */
export function readArrayHeader(b: Uint8Array, pos: number): [number, number] | null {
  const t = b[pos];
  if (t === undefined) return null;
  if (t >= 0x90 && t <= 0x9f) return [t & 0x0f, pos + 1];
  if (t === 0xdc && pos + 3 <= b.length) return [u16(b, pos + 1), pos + 3];
  if (t === 0xdd && pos + 5 <= b.length) return [u32(b, pos + 1), pos + 5];
  return null;
}

/**
 * Splits the array that must span all of `b` (a frame) into its elements, walking each one with
 * skipValue at `maxDepth` (levels below the array itself). Returns the start of every element and,
 * last, `b.length`. Throws MsgpackError unless `b` is exactly one well-formed, non-empty array.
 */
export function arrayElements(b: Uint8Array, maxDepth: number): number[] {
  // The header read here, not by readArrayHeader: this runs for every frame, and its pair is garbage.
  const t = b[0];
  let count: number;
  let pos: number;
  if (t !== undefined && t >= 0x90 && t <= 0x9f) { count = t & 0x0f; pos = 1; }
  else if (t === 0xdc && b.length >= 3) { count = u16(b, 1); pos = 3; }
  else if (t === 0xdd && b.length >= 5) { count = u32(b, 1); pos = 5; }
  else throw new MsgpackError('frame is not a MessagePack array');
  if (count === 0) throw new MsgpackError('frame is empty');
  if (count > b.length) throw new MsgpackError('declared length exceeds frame');
  // Frames have a handful of elements: sized once (a declared count is trusted only when small).
  const starts: number[] = count <= 16 ? new Array<number>(count + 1) : [];
  for (let i = 0; i < count; i++) {
    starts[i] = pos;
    pos = skipValue(b, pos, maxDepth);
  }
  if (pos !== b.length) throw new MsgpackError('trailing bytes after frame');
  starts[count] = pos; // sentinel: end of the last element
  return starts;
}

/**
 * Reads a non-negative integer at `pos`. Accepts any integer encoding and integral floats (other
 * encoders write large integers as float64). Returns -1 if the value is not a safe non-negative integer.
 */
export function readUint(b: Uint8Array, pos: number): number {
  const t = b[pos]!;
  if (t <= 0x7f) return t;
  switch (t) {
    case 0xcc: return b[pos + 1]!;
    case 0xcd: return u16(b, pos + 1);
    case 0xce: return u32(b, pos + 1);
    case 0xcf: {
      const hi = u32(b, pos + 1);
      return hi > 0x1fffff ? -1 : hi * 0x100000000 + u32(b, pos + 5);
    }
    case 0xd0: return b[pos + 1]! < 0x80 ? b[pos + 1]! : -1;
    default: return readOtherUint(b, pos);
  }
}

/** readUint's rarer encodings: signed integers and floats (a DataView each). */
function readOtherUint(b: Uint8Array, pos: number): number {
  const view = () => new DataView(b.buffer, b.byteOffset + pos + 1);
  switch (b[pos]) {
    case 0xd1: { const v = view().getInt16(0); return v >= 0 ? v : -1; }
    case 0xd2: { const v = view().getInt32(0); return v >= 0 ? v : -1; }
    case 0xd3: { const v = Number(view().getBigInt64(0)); return v >= 0 && Number.isSafeInteger(v) ? v : -1; }
    case 0xca: return safeUint(view().getFloat32(0));
    case 0xcb: return safeUint(view().getFloat64(0));
    default: return -1;
  }
}

function safeUint(v: number): number {
  return Number.isSafeInteger(v) && v >= 0 ? v : -1;
}

/** Reads a string at `pos`; returns undefined if the value is not a valid UTF-8 string. */
export function readStr(b: Uint8Array, pos: number): string | undefined {
  const t = b[pos]!;
  let n: number;
  let p: number;
  if (t >= 0xa0 && t <= 0xbf) { n = t & 0x1f; p = pos + 1; }
  else if (t === 0xd9) { n = b[pos + 1]!; p = pos + 2; }
  else if (t === 0xda) { n = u16(b, pos + 1); p = pos + 3; }
  else if (t === 0xdb) { n = u32(b, pos + 1); p = pos + 5; }
  else return undefined;
  // Short ASCII strings (topics, keys) are the common case: skip the decoder for them.
  if (n <= 64) {
    let ascii = true;
    for (let i = p; i < p + n; i++) if (b[i]! >= 0x80) { ascii = false; break; }
    if (ascii) return String.fromCharCode.apply(null, b.subarray(p, p + n) as unknown as number[]);
  }
  try {
    return textDecoder.decode(b.subarray(p, p + n));
  } catch {
    return undefined;
  }
}

export function isNil(b: Uint8Array, pos: number): boolean {
  return b[pos] === 0xc0;
}

export function isMap(b: Uint8Array, pos: number): boolean {
  const t = b[pos]!;
  return (t >= 0x80 && t <= 0x8f) || t === 0xde || t === 0xdf;
}

// ---- writers ---------------------------------------------------------------------------------

/** Bytes needed to encode a non-negative integer. */
export function uintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9;
}

/** Writes a non-negative safe integer at `pos`; returns the position after it. */
export function writeUint(b: Uint8Array, pos: number, n: number): number {
  if (n < 0x80) { b[pos] = n; return pos + 1; }
  if (n < 0x100) { b[pos] = 0xcc; b[pos + 1] = n; return pos + 2; }
  if (n < 0x10000) { b[pos] = 0xcd; b[pos + 1] = n >>> 8; b[pos + 2] = n & 0xff; return pos + 3; }
  if (n < 0x100000000) {
    b[pos] = 0xce;
    b[pos + 1] = n >>> 24; b[pos + 2] = (n >>> 16) & 0xff; b[pos + 3] = (n >>> 8) & 0xff; b[pos + 4] = n & 0xff;
    return pos + 5;
  }
  b[pos] = 0xcf;
  const hi = Math.floor(n / 0x100000000);
  const lo = n >>> 0;
  b[pos + 1] = hi >>> 24; b[pos + 2] = (hi >>> 16) & 0xff; b[pos + 3] = (hi >>> 8) & 0xff; b[pos + 4] = hi & 0xff;
  b[pos + 5] = lo >>> 24; b[pos + 6] = (lo >>> 16) & 0xff; b[pos + 7] = (lo >>> 8) & 0xff; b[pos + 8] = lo & 0xff;
  return pos + 9;
}

export function arrayHeaderSize(n: number): number {
  return n < 16 ? 1 : n < 0x10000 ? 3 : 5;
}

export function writeArrayHeader(b: Uint8Array, pos: number, n: number): number {
  if (n < 16) { b[pos] = 0x90 | n; return pos + 1; }
  if (n < 0x10000) { b[pos] = 0xdc; b[pos + 1] = n >>> 8; b[pos + 2] = n & 0xff; return pos + 3; }
  b[pos] = 0xdd;
  b[pos + 1] = n >>> 24; b[pos + 2] = (n >>> 16) & 0xff; b[pos + 3] = (n >>> 8) & 0xff; b[pos + 4] = n & 0xff;
  return pos + 5;
}

/** A complete MessagePack string value (header + UTF-8 bytes). */
export function encodeStr(s: string): Uint8Array {
  const body = textEncoder.encode(s);
  const n = body.length;
  const head = n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  const out = new Uint8Array(head + n);
  if (n < 32) out[0] = 0xa0 | n;
  else if (n < 0x100) { out[0] = 0xd9; out[1] = n; }
  else if (n < 0x10000) { out[0] = 0xda; out[1] = n >>> 8; out[2] = n & 0xff; }
  else { out[0] = 0xdb; out[1] = n >>> 24; out[2] = (n >>> 16) & 0xff; out[3] = (n >>> 8) & 0xff; out[4] = n & 0xff; }
  out.set(body, head);
  return out;
}

export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) { n += 4; i++; }
    else n += 3;
  }
  return n;
}
