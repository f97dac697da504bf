/**
 * Stored entries and the gateway's fast paths. A stored message is the MessagePack of
 * `[data, ts, headers?, meta?]` — exactly one element of MSGS — so catch-up and fan-out frames are
 * assembled from stored bytes without decoding any payload. `meta` (since 1.2) is a map of what
 * the gateway needs to know about a message besides its data: `k` its ordering key; a message
 * with meta but no headers has nil in their place.
 */
import { FrameType, type Headers, type MsgsItem } from './frames.js';
import { MAX_DEPTH } from './limits.js';
import { arrayHeaderSize, readUint, skipValue, uintSize, writeArrayHeader, writeUint } from './msgpack.js';
import { pack } from './pack.js';
import { unpack } from './value.js';

/**
 * A stored message: MessagePack `[data, ts]`, `[data, ts, headers]` or `[data, ts, headers|nil,
 * meta]`, with `data`, `headers` and `meta` already encoded. This is byte for byte one element of
 * a MSGS frame.
 */
export function encodeEntry(data: Uint8Array, ts: number, headers?: Uint8Array, meta?: Uint8Array): Uint8Array {
  const out = new Uint8Array(entrySize(data, ts, headers, meta));
  writeEntry(out, data, ts, headers, meta);
  return out;
}

/** The size of the entry `encodeEntry` makes of these parts. */
export function entrySize(data: Uint8Array, ts: number, headers?: Uint8Array, meta?: Uint8Array): number {
  const h = headers ?? (meta ? NIL : undefined);
  return 1 + data.length + uintSize(ts) + (h ? h.length : 0) + (meta ? meta.length : 0);
}

/**
 * Writes the entry `encodeEntry` makes of these parts into `out`, which MUST be exactly
 * `entrySize` bytes (a store that keeps entries in its own memory encodes them in place).
 */
export function writeEntry(out: Uint8Array, data: Uint8Array, ts: number, headers?: Uint8Array, meta?: Uint8Array): void {
  const h = headers ?? (meta ? NIL : undefined);
  out[0] = meta ? 0x94 : h ? 0x93 : 0x92;
  out.set(data, 1);
  let p = writeUint(out, 1 + data.length, ts);
  if (h) { out.set(h, p); p += h.length; }
  if (meta) out.set(meta, p);
}

const NIL = new Uint8Array([0xc0]);

/** A stored entry's meta: its ordering key (since 1.2), priority and trace mark (since 1.3). */
export interface EntryMeta {
  k?: string;
  p?: number;
  t?: 1;
}

/** The meta of a stored entry (its 4th element) as a value, or undefined when it has none. */
export function entryMeta(entry: Uint8Array): EntryMeta | undefined {
  if ((entry[0]! & 0x0f) < 4) return undefined;
  let p = skipValue(entry, 1, MAX_DEPTH);
  p = skipValue(entry, p, 1);
  p = skipValue(entry, p, MAX_DEPTH);
  return metaOf(unpack(entry.subarray(p)));
}

function metaOf(v: unknown): EntryMeta | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const { k, p, t } = v as { k?: unknown; p?: unknown; t?: unknown };
  const out: EntryMeta = {};
  if (typeof k === 'string') out.k = k;
  if (typeof p === 'number' && Number.isInteger(p) && p > 0 && p <= 9) out.p = p;
  if (t === 1) out.t = 1;
  return out.k === undefined && out.p === undefined && out.t === undefined ? undefined : out;
}

/** The timestamp of a stored entry. */
export function entryTs(entry: Uint8Array): number {
  return readUint(entry, skipValue(entry, 1, MAX_DEPTH));
}

/** A stored entry's parts, still encoded: the data's MessagePack bytes, ts, and the headers' bytes. */
export function splitEntry(entry: Uint8Array): { data: Uint8Array; ts: number; headers?: Uint8Array } {
  const dataEnd = skipValue(entry, 1, MAX_DEPTH);
  const tsEnd = skipValue(entry, dataEnd, 1);
  const out: { data: Uint8Array; ts: number; headers?: Uint8Array } = { data: entry.subarray(1, dataEnd), ts: readUint(entry, dataEnd) };
  if ((entry[0]! & 0x0f) >= 3 && entry[tsEnd] !== 0xc0) out.headers = entry.subarray(tsEnd, skipValue(entry, tsEnd, MAX_DEPTH));
  return out;
}

/** A stored entry as JS values. */
export function decodeEntry(entry: Uint8Array): MsgsItem {
  const [data, ts, headers, raw] = unpack(entry) as [unknown, number, Headers | null | undefined, unknown];
  const item: MsgsItem = { data, ts };
  if (headers) item.headers = headers;
  const meta = metaOf(raw);
  if (meta?.k !== undefined) item.orderingKey = meta.k;
  if (meta?.p !== undefined) item.priority = meta.p;
  if (meta?.t) item.traced = true;
  return item;
}

/**
 * Where a frame is written: `size` bytes, returned as a Uint8Array of exactly that length. By
 * default a new array; a caller that hands the frame on to something that copies it at once may
 * pass a view of a buffer it reuses.
 */
export type FrameAlloc = (size: number) => Uint8Array;
const fresh: FrameAlloc = (size) => new Uint8Array(size);

/** MSG `[10, topic, offset, data, ts, headers?]` built from a stored entry. `topic` is an encoded string. */
export function encodeMsg(topic: Uint8Array, offset: number, entry: Uint8Array, alloc = fresh): Uint8Array {
  // entry is a fixarray of 2, 3 or 4: MSG adds type, topic and offset in front of its elements.
  const count = (entry[0]! & 0x0f) + 3;
  const out = alloc(2 + topic.length + uintSize(offset) + entry.length - 1);
  out[0] = 0x90 | count;
  out[1] = FrameType.MSG;
  out.set(topic, 2);
  const p = writeUint(out, 2 + topic.length, offset);
  out.set(entry.subarray(1), p);
  return out;
}

/**
 * ACK `[9, reqId, offset, duplicate]`, byte for byte what `encode` makes of the frame, without the
 * frame object, its array and the general encoder: the gateway sends one per publish. Numbers from
 * 2^32 on are left to the general encoder (it writes them as float64; `writeUint` would not).
 */
export function encodeAck(reqId: number, offset: number, duplicate: boolean): Uint8Array {
  if (reqId >= 0x100000000 || offset >= 0x100000000) return pack([FrameType.ACK, reqId, offset, duplicate]);
  const out = new Uint8Array(3 + uintSize(reqId) + uintSize(offset));
  out[0] = 0x94;
  out[1] = FrameType.ACK;
  const p = writeUint(out, writeUint(out, 2, reqId), offset);
  out[p] = duplicate ? 0xc3 : 0xc2;
  return out;
}

/** LEASE `[18, topic, offset, attempt, entry]` built from a stored entry. `topic` is an encoded string. */
export function encodeLease(topic: Uint8Array, offset: number, attempt: number, entry: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + topic.length + uintSize(offset) + uintSize(attempt) + entry.length);
  out[0] = 0x95;
  out[1] = FrameType.LEASE;
  out.set(topic, 2);
  let p = writeUint(out, 2 + topic.length, offset);
  p = writeUint(out, p, attempt);
  out.set(entry, p);
  return out;
}

/**
 * MSGS `[15, topic, first, [entry, ...]]` from `entries[start..end)`, offsets `first...`.
 * One allocation, payload bytes copied once.
 */
export function encodeMsgs(
  topic: Uint8Array,
  first: number,
  entries: readonly Uint8Array[],
  start = 0,
  end = entries.length,
  alloc = fresh,
): Uint8Array {
  const count = end - start;
  let size = 2 + topic.length + uintSize(first) + arrayHeaderSize(count);
  for (let i = start; i < end; i++) size += entries[i]!.length;
  const out = alloc(size);
  out[0] = 0x94;
  out[1] = FrameType.MSGS;
  out.set(topic, 2);
  let p = writeUint(out, 2 + topic.length, first);
  p = writeArrayHeader(out, p, count);
  for (let i = start; i < end; i++) {
    const e = entries[i]!;
    out.set(e, p);
    p += e.length;
  }
  return out;
}

/** MSG for one entry, MSGS for several: what the gateway sends for `entries[start..end)`. */
export function encodeDelivery(
  topic: Uint8Array,
  first: number,
  entries: readonly Uint8Array[],
  start = 0,
  end = entries.length,
  alloc = fresh,
): Uint8Array {
  return end - start === 1
    ? encodeMsg(topic, first, entries[start]!, alloc)
    : encodeMsgs(topic, first, entries, start, end, alloc);
}
