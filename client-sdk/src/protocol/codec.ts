/**
 * The codec: frames ↔ bytes. Pure functions, no sockets, no timers.
 *
 * - `encode(frame)` for any frame (the SDK's PUB/SUB/..., the gateway's control frames).
 * - `decodeClientFrame(bytes)` is the gateway's guarded decoder for untrusted input: it keeps PUB
 *   payloads and headers MessagePack-encoded so they are stored and forwarded byte for byte.
 * - `decodeServerFrame(bytes)` is the SDK's decoder; payloads become JS values.
 * - `encodeEntry` / `encodeMsg` / `encodeMsgs` are the gateway's fast path: a stored message is the
 *   MessagePack of `[data, ts, headers?]` — exactly one element of MSGS — so catch-up and fan-out
 *   frames are assembled from stored bytes without decoding any payload.
 */
import { Packr, Unpackr } from 'msgpackr';
import { FrameType } from './frames.js';
import type {
  EncodedClientFrame,
  Frame,
  Headers,
  MsgsItem,
  ServerFrame,
} from './frames.js';
import {
  DEFAULT_MAX_FRAME,
  MAX_DEPTH,
  MAX_HEADER_NAME_BYTES,
  MAX_HEADERS,
  MAX_KEY_BYTES,
  MAX_PAYLOAD_DEPTH,
  MAX_UINT,
} from './limits.js';
import {
  arrayHeaderSize,
  checkPayload,
  isMap,
  isNil,
  MsgpackError,
  readArrayHeader,
  readStr,
  readUint,
  skipValue,
  uintSize,
  utf8Length,
  writeArrayHeader,
  writeUint,
} from './msgpack.js';

const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/**
 * msgpackr on bytes the scanner already accepted. It can still refuse some (a map whose keys are
 * not strings, an unknown extension): that is a bad frame, never an exception that escapes.
 */
function unpack(bytes: Uint8Array, id = 0, fatal = false): unknown {
  try {
    return unpackr.unpack(bytes);
  } catch (err) {
    throw new FrameError('bad-frame', `undecodable value: ${(err as Error).message}`, id, fatal);
  }
}

/**
 * A frame that cannot be accepted. `fatal` means it could not be parsed at all (the gateway then
 * closes the socket with 1007); otherwise the connection stays usable and ERROR `code` is sent for
 * request `id` (0 when unknown).
 */
export class FrameError extends Error {
  override name = 'FrameError';
  constructor(
    readonly code: 'bad-frame' | 'too-large',
    message: string,
    readonly id = 0,
    readonly fatal = false,
  ) {
    super(message);
  }
}

// ---- encode ----------------------------------------------------------------------------------

/** Drops undefined fields so option maps carry only what was given. */
function opts<T extends object>(o: T): Partial<T> | undefined {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined) (out ??= {})[k] = v;
  }
  return out as Partial<T> | undefined;
}

/** Encodes any frame. Every frame the SDK or gateway sends goes through here or the fast paths below. */
export function encode(frame: Frame): Uint8Array {
  switch (frame.type) {
    case FrameType.HELLO: {
      const o = opts({ token: frame.token, client: frame.client });
      return packr.pack(o ? [1, o] : [1]);
    }
    case FrameType.WELCOME:
      return packr.pack([2, opts({
        session: frame.session, version: frame.version, maxFrame: frame.maxFrame,
        maxCredit: frame.maxCredit, heartbeat: frame.heartbeat, maxSubscriptions: frame.maxSubscriptions,
      })]);
    case FrameType.SUB: {
      const o = opts({ from: frame.from, epoch: frame.epoch, credit: frame.credit });
      return packr.pack(o ? [3, frame.subId, frame.topic, o] : [3, frame.subId, frame.topic]);
    }
    case FrameType.SUBSCRIBED:
      return packr.pack([4, frame.subId, {
        epoch: frame.epoch, head: frame.head, from: frame.from, recovered: frame.recovered,
      }]);
    case FrameType.UNSUB:
      return packr.pack([5, frame.subId]);
    case FrameType.UNSUBSCRIBED:
      return packr.pack([6, frame.subId]);
    case FrameType.CREDIT:
      return packr.pack([7, frame.subId, frame.n]);
    case FrameType.PUB: {
      const o = opts({ key: frame.key, headers: frame.headers });
      const arr: unknown[] = [8, frame.reqId, frame.topic, frame.data];
      if (o) arr.push(o);
      return packr.pack(arr);
    }
    case FrameType.ACK:
      return packr.pack([9, frame.reqId, frame.offset, frame.duplicate]);
    case FrameType.MSG: {
      const arr: unknown[] = [10, frame.topic, frame.offset, frame.data, frame.ts];
      if (frame.headers) arr.push(frame.headers);
      return packr.pack(arr);
    }
    case FrameType.ERROR:
      return packr.pack([11, frame.id, frame.code, frame.message]);
    case FrameType.PING:
      return packr.pack([12, frame.n]);
    case FrameType.PONG:
      return packr.pack([13, frame.n]);
    case FrameType.GAP:
      return packr.pack([14, frame.topic, frame.from, frame.to]);
    case FrameType.MSGS:
      return packr.pack([15, frame.topic, frame.first, frame.messages.map((m) =>
        m.headers ? [m.data, m.ts, m.headers] : [m.data, m.ts])]);
    default: {
      const never: never = frame;
      throw new TypeError(`unknown frame ${JSON.stringify(never)}`);
    }
  }
}

/** MessagePack of one value (a payload), e.g. for HTTP publishing. */
export function encodeValue(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes one MessagePack value after checking it with the guarded scanner. */
export function decodeValue(bytes: Uint8Array): unknown {
  let end: number;
  try {
    end = skipValue(bytes, 0, MAX_DEPTH);
  } catch (err) {
    throw new FrameError('bad-frame', (err as Error).message);
  }
  if (end !== bytes.length) throw new FrameError('bad-frame', 'trailing bytes after value');
  return unpack(bytes);
}

// ---- stored entries and the gateway's fast paths -----------------------------------------------

/**
 * A stored message: MessagePack `[data, ts]` or `[data, ts, headers]`, with `data` and `headers`
 * already encoded. This is byte for byte one element of a MSGS frame.
 */
export function encodeEntry(data: Uint8Array, ts: number, headers?: Uint8Array): Uint8Array {
  const size = 1 + data.length + uintSize(ts) + (headers ? headers.length : 0);
  const out = new Uint8Array(size);
  out[0] = headers ? 0x93 : 0x92;
  out.set(data, 1);
  let p = writeUint(out, 1 + data.length, ts);
  if (headers) { out.set(headers, p); p += headers.length; }
  return out;
}

/** The timestamp of a stored entry. */
export function entryTs(entry: Uint8Array): number {
  return readUint(entry, skipValue(entry, 1, MAX_DEPTH));
}

/** A stored entry as JS values. */
export function decodeEntry(entry: Uint8Array): MsgsItem {
  const [data, ts, headers] = unpack(entry) as [unknown, number, Headers | undefined];
  return headers ? { data, ts, headers } : { data, ts };
}

/** MSG `[10, topic, offset, data, ts, headers?]` built from a stored entry. `topic` is an encoded string. */
export function encodeMsg(topic: Uint8Array, offset: number, entry: Uint8Array): Uint8Array {
  // entry is a fixarray of 2 or 3: MSG adds type, topic and offset in front of its elements.
  const count = (entry[0]! & 0x0f) + 3;
  const out = new Uint8Array(2 + topic.length + uintSize(offset) + entry.length - 1);
  out[0] = 0x90 | count;
  out[1] = FrameType.MSG;
  out.set(topic, 2);
  const p = writeUint(out, 2 + topic.length, offset);
  out.set(entry.subarray(1), p);
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
): Uint8Array {
  const count = end - start;
  let size = 2 + topic.length + uintSize(first) + arrayHeaderSize(count);
  for (let i = start; i < end; i++) size += entries[i]!.length;
  const out = new Uint8Array(size);
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
): Uint8Array {
  return end - start === 1
    ? encodeMsg(topic, first, entries[start]!)
    : encodeMsgs(topic, first, entries, start, end);
}

// ---- decode: shared ---------------------------------------------------------------------------

/** Splits a frame into its top-level elements after validating the whole frame with the scanner. */
function elements(bytes: Uint8Array): number[] {
  const head = readArrayHeader(bytes, 0);
  if (!head) throw new FrameError('bad-frame', 'frame is not a MessagePack array', 0, true);
  const [count, first] = head;
  if (count === 0) throw new FrameError('bad-frame', 'frame is empty', 0, true);
  if (count > bytes.length) throw new FrameError('bad-frame', 'declared length exceeds frame', 0, true);
  const starts: number[] = [];
  let pos = first;
  try {
    for (let i = 0; i < count; i++) {
      starts.push(pos);
      pos = skipValue(bytes, pos, MAX_DEPTH - 1);
    }
  } catch (err) {
    throw new FrameError('bad-frame', (err as MsgpackError).message, 0, true);
  }
  if (pos !== bytes.length) throw new FrameError('bad-frame', 'trailing bytes after frame', 0, true);
  starts.push(pos); // sentinel: end of the last element
  return starts;
}

function own(o: Record<string, unknown>, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** An integer beyond 2^53 (as number or bigint): representable on the wire, clamped on receipt. */
function isHugeUint(v: unknown): boolean {
  return (typeof v === 'number' && Number.isInteger(v) && v > MAX_UINT) || (typeof v === 'bigint' && v > 0n);
}

// ---- decode: client frames, on the gateway -----------------------------------------------------

/**
 * Decodes a frame from a client. Never trusts the input: size, depth, lengths and types are checked
 * before anything is allocated or interpreted. Throws FrameError.
 */
export function decodeClientFrame(bytes: Uint8Array, maxFrame = DEFAULT_MAX_FRAME): EncodedClientFrame {
  if (bytes.length > maxFrame) {
    throw new FrameError('too-large', `frame of ${bytes.length} bytes exceeds maxFrame ${maxFrame}`, peekId(bytes));
  }
  const at = elements(bytes);
  const n = at.length - 1;
  const type = readUint(bytes, at[0]!);
  if (type < 0) throw new FrameError('bad-frame', 'frame type must be an unsigned integer', 0, true);

  const id = n > 1 ? Math.max(readUint(bytes, at[1]!), 0) : 0;
  const fail = (message: string): never => { throw new FrameError('bad-frame', message, id); };
  const uintAt = (i: number, what: string): number => {
    if (i >= n) fail(`${what} missing`);
    const v = readUint(bytes, at[i]!);
    if (v < 0) fail(`${what} must be an unsigned integer`);
    return v;
  };
  const strAt = (i: number, what: string): string => {
    if (i >= n) fail(`${what} missing`);
    const v = readStr(bytes, at[i]!);
    if (v === undefined) fail(`${what} must be a string`);
    return v as string;
  };
  /** Option map at element i: absent or nil gives an empty null-prototype object. */
  const optsAt = (i: number): Record<string, unknown> => {
    const out = Object.create(null) as Record<string, unknown>;
    if (i >= n || isNil(bytes, at[i]!)) return out;
    if (!isMap(bytes, at[i]!)) fail('options must be a map');
    const decoded = unpack(bytes.subarray(at[i]!, at[i + 1]!), id) as Record<string, unknown>;
    for (const k of Object.keys(decoded)) out[k] = decoded[k];
    return out;
  };

  switch (type) {
    case FrameType.HELLO: {
      const o = optsAt(1);
      const token = own(o, 'token');
      const client = own(o, 'client');
      if (token !== undefined && typeof token !== 'string') fail('token must be a string');
      if (client !== undefined && typeof client !== 'string') fail('client must be a string');
      return { type: 1, token: token as string | undefined, client: client as string | undefined };
    }
    case FrameType.SUB: {
      const subId = uintAt(1, 'subId');
      const topic = strAt(2, 'topic');
      const o = optsAt(3);
      const from = own(o, 'from');
      const epoch = own(o, 'epoch');
      const credit = own(o, 'credit');
      if (from !== undefined && from !== null && !isUint(from)) fail('from must be an unsigned integer');
      if (epoch !== undefined && epoch !== null && typeof epoch !== 'string') fail('epoch must be a string');
      if (credit !== undefined && credit !== null && !isUint(credit) && !isHugeUint(credit)) {
        fail('credit must be an unsigned integer');
      }
      const frame: EncodedClientFrame = { type: 3, subId, topic };
      if (isUint(from)) frame.from = from;
      if (typeof epoch === 'string') frame.epoch = epoch;
      if (isUint(credit)) frame.credit = credit;
      else if (isHugeUint(credit)) frame.credit = MAX_UINT;
      return frame;
    }
    case FrameType.UNSUB:
      return { type: 5, subId: uintAt(1, 'subId') };
    case FrameType.CREDIT: {
      const subId = uintAt(1, 'subId');
      if (n < 3) fail('credit missing');
      let credit = readUint(bytes, at[2]!);
      // A grant too large to represent is still a grant: it is clamped later, like any other.
      if (credit < 0 && isHugeUint(unpack(bytes.subarray(at[2]!, at[3]!), subId))) credit = MAX_UINT;
      if (credit < 0) fail('credit must be an unsigned integer');
      return { type: 7, subId, n: credit };
    }
    case FrameType.PUB: {
      const reqId = uintAt(1, 'reqId');
      const topic = strAt(2, 'topic');
      if (n < 4) fail('data missing');
      const data = bytes.subarray(at[3]!, at[4]!);
      const deep = payloadError(data);
      if (deep) fail(deep);
      const frame: EncodedClientFrame = { type: 8, reqId, topic, data };
      if (n > 4 && !isNil(bytes, at[4]!)) {
        const o = optsAt(4);
        const key = own(o, 'key');
        if (key !== undefined && key !== null) {
          if (typeof key !== 'string') fail('key must be a string');
          if (utf8Length(key as string) > MAX_KEY_BYTES) {
            throw new FrameError('too-large', `key longer than ${MAX_KEY_BYTES} bytes`, id);
          }
          if ((key as string).length > 0) frame.key = key as string;
        }
        const headers = own(o, 'headers');
        if (headers !== undefined && headers !== null) {
          const h = checkHeaders(headers);
          if (typeof h === 'string') fail(h);
          if (Object.keys(h).length > 0) frame.headers = packr.pack(h) as Uint8Array;
        }
      }
      return frame;
    }
    case FrameType.PING:
      return { type: 12, n: n > 1 ? uintAt(1, 'n') : 0 };
    case FrameType.PONG:
      return { type: 13, n: n > 1 ? uintAt(1, 'n') : 0 };
    default:
      if (type >= 2 && type <= 15) fail(`frame type ${type} is sent by servers only`);
      return fail(`unknown frame type ${type}`);
  }
}

/**
 * Null when `data` is one encoded payload that obeys the payload rule, else why not. The rule
 * (PROTOCOL.md, "What data may contain"): nil, bool, int, float, str, bin, array, and maps whose
 * keys are all str; no extension types; at most MAX_PAYLOAD_DEPTH containers deep, so that every
 * frame that carries it stays within MAX_DEPTH. One pass over the bytes, nothing decoded.
 */
export function payloadError(data: Uint8Array): string | null {
  let end: number;
  try {
    end = checkPayload(data, 0, MAX_PAYLOAD_DEPTH);
  } catch (err) {
    return `payload rejected: ${(err as Error).message}`;
  }
  return end === data.length ? null : 'payload rejected: trailing bytes after the value';
}

/** Validates headers; returns a null-prototype copy, or a reason string. */
export function checkHeaders(headers: unknown): Headers | string {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers) || headers instanceof Uint8Array) {
    return 'headers must be a map';
  }
  const out = Object.create(null) as Headers;
  const keys = Object.keys(headers);
  if (keys.length > MAX_HEADERS) return `more than ${MAX_HEADERS} headers`;
  for (const k of keys) {
    const v = (headers as Record<string, unknown>)[k];
    if (typeof v !== 'string') return `header ${k} must be a string`;
    if (k.length === 0 || utf8Length(k) > MAX_HEADER_NAME_BYTES) return 'header names must be 1-128 bytes';
    out[k] = v;
  }
  return out;
}

/** Best effort: the id (second element) of a frame too large to decode, so ERROR can name it. */
function peekId(bytes: Uint8Array): number {
  const head = readArrayHeader(bytes, 0);
  if (!head || head[0] < 2) return 0;
  try {
    const second = skipValue(bytes, head[1], 1);
    return Math.max(readUint(bytes, second), 0);
  } catch {
    return 0;
  }
}

// ---- decode: server frames, in the SDK ----------------------------------------------------------

/** Decodes a frame from the gateway. Throws FrameError. */
export function decodeServerFrame(bytes: Uint8Array): ServerFrame {
  elements(bytes); // the same guard as the gateway's: depth, lengths, 0xc1
  const a = unpack(bytes) as unknown[];
  const fail = (message: string): never => { throw new FrameError('bad-frame', message); };
  const u = (i: number): number => (isUint(a[i]) ? (a[i] as number) : fail(`element ${i} must be an unsigned integer`));
  const s = (i: number): string => (typeof a[i] === 'string' ? (a[i] as string) : fail(`element ${i} must be a string`));
  const m = (i: number): Record<string, unknown> =>
    (typeof a[i] === 'object' && a[i] !== null ? (a[i] as Record<string, unknown>) : fail(`element ${i} must be a map`));

  switch (a[0]) {
    case FrameType.WELCOME: {
      const o = m(1);
      const w: ServerFrame = {
        type: 2,
        session: String(o.session),
        version: String(o.version),
        maxFrame: Number(o.maxFrame),
        maxCredit: Number(o.maxCredit),
        heartbeat: Number(o.heartbeat),
      };
      if (isUint(o.maxSubscriptions)) w.maxSubscriptions = o.maxSubscriptions;
      return w;
    }
    case FrameType.SUBSCRIBED: {
      const o = m(2);
      return {
        type: 4, subId: u(1), epoch: String(o.epoch), head: Number(o.head), from: Number(o.from),
        recovered: o.recovered === true,
      };
    }
    case FrameType.UNSUBSCRIBED:
      return { type: 6, subId: u(1) };
    case FrameType.ACK:
      return { type: 9, reqId: u(1), offset: u(2), duplicate: a[3] === true };
    case FrameType.MSG: {
      const f: ServerFrame = { type: 10, topic: s(1), offset: u(2), data: a[3], ts: u(4) };
      if (a[5] && typeof a[5] === 'object') f.headers = a[5] as Headers;
      return f;
    }
    case FrameType.ERROR:
      return { type: 11, id: u(1), code: s(2), message: typeof a[3] === 'string' ? a[3] : '' };
    case FrameType.PING:
      return { type: 12, n: u(1) };
    case FrameType.PONG:
      return { type: 13, n: u(1) };
    case FrameType.GAP:
      return { type: 14, topic: s(1), from: u(2), to: u(3) };
    case FrameType.MSGS: {
      const list = a[3];
      if (!Array.isArray(list)) return fail('MSGS messages must be an array');
      const messages: MsgsItem[] = list.map((e: unknown) => {
        if (!Array.isArray(e)) return fail('MSGS item must be an array');
        const item: MsgsItem = { data: e[0], ts: Number(e[1]) };
        if (e[2] && typeof e[2] === 'object') item.headers = e[2] as Headers;
        return item;
      });
      return { type: 15, topic: s(1), first: u(2), messages };
    }
    default:
      return fail(`unexpected frame type ${String(a[0])}`);
  }
}
