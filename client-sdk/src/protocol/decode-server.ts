/**
 * The SDK's decoder of gateway frames: strict on every field the protocol defines, payloads become
 * JS values. A frame that breaks the layout throws FrameError — never a NaN, an "undefined" string
 * or a guessed default that the SDK would then act on.
 *
 * Written as small closures rather than a class: it ships in the browser bundle, where local names
 * minify and method names do not.
 */
import { FrameError } from './errors.js';
import { FrameType, RawData, type Headers, type MsgsItem, type ResolvedFrame, type ServerFrame, type WelcomeFrame } from './frames.js';
import { MAX_DEPTH } from './limits.js';
import { arrayElements, readArrayHeader, skipValue } from './msgpack.js';
import { isUint, own, unpack } from './value.js';

const NAMES = new Map<unknown, string>(Object.entries(FrameType).map(([name, type]) => [type, name]));

type Fields = Record<string, unknown>;

/** A decoded MessagePack map (msgpackr gives plain objects; a Date or bytes are not maps). */
function isMap(v: unknown): v is Fields {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A payload as a JS value, or — if it holds what no JS value here represents — its bytes. */
function payload(b: Uint8Array, start: number, end: number): unknown {
  try {
    return unpack(b.subarray(start, end));
  } catch (err) {
    return new RawData(b.slice(start, end), (err as Error).message);
  }
}

/**
 * A MSG, MSGS or LEASE whose whole-frame decode failed, decoded part by part: a payload a gateway
 * stored before protocol 1.1 refused such values (an unknown extension, a map with non-string keys)
 * arrives as RawData, so no stored message can stop a subscription or a consumer. Any other frame:
 * `err`.
 */
function lenient(b: Uint8Array, starts: number[], err: FrameError): unknown[] {
  const type = b[starts[0]!];
  if (type !== FrameType.MSG && type !== FrameType.MSGS && type !== FrameType.LEASE) throw err;
  // The element holding the message(s): MSG's data, MSGS's list, LEASE's stored message.
  const at = type === FrameType.LEASE ? 4 : 3;
  const a = starts.slice(0, -1).map((s, i) => (i === at ? undefined : unpack(b.subarray(s, starts[i + 1]), 0, true)));
  if (type === FrameType.MSG) {
    a[3] = payload(b, starts[3]!, starts[4]!);
    return a;
  }
  /** `[data, ts, headers?, meta?]` at pos: the data as payload, the rest as values. */
  const item = (pos: number): [unknown[], number] => {
    const head = readArrayHeader(b, pos);
    if (!head) throw err;
    const parts: unknown[] = [];
    let p = head[1];
    for (let j = 0; j < head[0]; j++) {
      const end = skipValue(b, p, MAX_DEPTH);
      parts.push(j === 0 ? payload(b, p, end) : unpack(b.subarray(p, end), 0, true));
      p = end;
    }
    return [parts, p];
  };
  if (type === FrameType.LEASE) {
    a[4] = item(starts[4]!)[0];
    return a;
  }
  const list = readArrayHeader(b, starts[3]!);
  if (!list) throw err;
  const items: unknown[] = [];
  let pos = list[1];
  for (let i = 0; i < list[0]; i++) {
    const [parts, end] = item(pos);
    items.push(parts);
    pos = end;
  }
  a[3] = items;
  return a;
}

/**
 * Decodes a frame from the gateway. Throws FrameError when the frame is malformed: not one
 * MessagePack array (checked by the same guard as the gateway's: depth, lengths, 0xc1, trailing
 * bytes), a type that gateways do not send, or a field missing or of the wrong type (ids, offsets
 * and ts are unsigned integers ≤ 2^53 - 1; the limits in WELCOME are at least 1). Extra trailing
 * elements and unknown fields in maps are ignored.
 */
export function decodeServerFrame(bytes: Uint8Array): ServerFrame {
  let starts: number[];
  try {
    starts = arrayElements(bytes, MAX_DEPTH - 1);
  } catch (err) {
    throw new FrameError('bad-frame', (err as Error).message, 0, true);
  }
  let a: unknown[];
  try {
    a = unpack(bytes, 0, true) as unknown[];
  } catch (err) {
    a = lenient(bytes, starts, err as FrameError);
  }
  const type = a[0];
  const name = NAMES.get(type) ?? `frame type ${String(type)}`;

  const fail = (field: string, rule: string): never => {
    throw new FrameError('bad-frame', `${name} ${field} must be ${rule}`);
  };
  const uint = (v: unknown, field: string): number => (isUint(v) ? v : fail(field, 'an unsigned integer (at most 2^53 - 1)'));
  const str = (v: unknown, field: string): string => (typeof v === 'string' ? v : fail(field, 'a string'));
  const bool = (v: unknown, field: string): boolean => (typeof v === 'boolean' ? v : fail(field, 'a boolean'));
  const map = (v: unknown): Fields => (isMap(v) ? v : fail('options', 'a map'));
  /** Optional: absent or nil is none. */
  const opt = <T>(v: unknown, read: (v: unknown) => T): T | undefined => (v === undefined || v === null ? undefined : read(v));
  const headers = (v: unknown): Headers => {
    if (!isMap(v) || Object.values(v).some((x) => typeof x !== 'string')) fail('headers', 'a map of strings');
    return v as Headers;
  };
  /** A stored message's meta (`{k: orderingKey}` since 1.2, `p: priority` since 1.3), copied onto `m`. */
  const meta = (v: unknown, m: { orderingKey?: string; priority?: number; traced?: boolean }): void => {
    if (v === undefined || v === null) return;
    const { k, p, t } = map(v);
    if (t === 1) m.traced = true;
    if (k !== undefined && k !== null) m.orderingKey = str(k, 'orderingKey');
    if (p !== undefined && p !== null) {
      const n = uint(p, 'priority');
      if (n > 0) m.priority = n;
    }
  };
  /** `[data, ts, headers?, meta?]`, a stored message as MSGS and LEASE carry it. */
  const item = (e: unknown[]): MsgsItem => {
    const m: MsgsItem = { data: e[0], ts: uint(e[1], 'ts') };
    const h = opt(e[2], headers);
    if (h) m.headers = h;
    meta(e[3], m);
    return m;
  };

  switch (type) {
    case FrameType.WELCOME: {
      const o = map(a[1]);
      const limit = (k: string): number => {
        const v = own(o, k);
        return isUint(v) && v > 0 ? v : fail(k, 'a positive integer (at most 2^53 - 1)');
      };
      const w: WelcomeFrame = {
        type,
        session: str(own(o, 'session'), 'session'),
        version: str(own(o, 'version'), 'version'),
        maxFrame: limit('maxFrame'),
        maxCredit: limit('maxCredit'),
        heartbeat: limit('heartbeat'),
      };
      const protocol = opt(own(o, 'protocol'), (v) => str(v, 'protocol'));
      if (protocol !== undefined) w.protocol = protocol;
      const maxSubscriptions = opt(own(o, 'maxSubscriptions'), (v) => uint(v, 'maxSubscriptions'));
      if (maxSubscriptions !== undefined) w.maxSubscriptions = maxSubscriptions;
      // Since 1.5; like the other limits at least 1 when present.
      const maxWindowBytes = opt(own(o, 'maxWindowBytes'), (v) => (isUint(v) && v > 0 ? v : fail('maxWindowBytes', 'a positive integer (at most 2^53 - 1)')));
      if (maxWindowBytes !== undefined) w.maxWindowBytes = maxWindowBytes;
      return w;
    }
    case FrameType.SUBSCRIBED: {
      const subId = uint(a[1], 'subId');
      const o = map(a[2]);
      return {
        type, subId, epoch: str(own(o, 'epoch'), 'epoch'), head: uint(own(o, 'head'), 'head'),
        from: uint(own(o, 'from'), 'from'), recovered: bool(own(o, 'recovered'), 'recovered'),
      };
    }
    case FrameType.UNSUBSCRIBED:
      return { type, subId: uint(a[1], 'subId') };
    case FrameType.ACK:
      return { type, reqId: uint(a[1], 'reqId'), offset: uint(a[2], 'offset'), duplicate: bool(a[3], 'duplicate') };
    case FrameType.MSG: {
      // Without data there is no ts either: the ts check refuses it.
      const msg: ServerFrame = { type, topic: str(a[1], 'topic'), offset: uint(a[2], 'offset'), data: a[3], ts: uint(a[4], 'ts') };
      const h = opt(a[5], headers);
      if (h) msg.headers = h;
      meta(a[6], msg);
      return msg;
    }
    case FrameType.LEASE: {
      const e = Array.isArray(a[4]) ? (a[4] as unknown[]) : fail('message', 'an array');
      return { type, topic: str(a[1], 'topic'), offset: uint(a[2], 'offset'), attempt: uint(a[3], 'attempt'), message: item(e) };
    }
    case FrameType.ERROR:
      return {
        type, id: uint(a[1], 'id'), code: str(a[2], 'code'), message: str(a[3], 'message'),
        // 1.0 gateways do not send `re`.
        re: opt(a[4], (v) => uint(v, 're')) ?? 0,
      };
    case FrameType.PING:
    case FrameType.PONG:
      return { type, n: uint(a[1], 'n') };
    case FrameType.GAP:
      return { type, topic: str(a[1], 'topic'), from: uint(a[2], 'from'), to: uint(a[3], 'to') };
    case FrameType.MSGS: {
      const topic = str(a[1], 'topic');
      const first = uint(a[2], 'first');
      const list = Array.isArray(a[3]) ? (a[3] as unknown[]) : fail('messages', 'an array');
      const messages = list.map((e: unknown): MsgsItem => (Array.isArray(e) ? item(e) : fail('message', 'an array')));
      return { type, topic, first, messages };
    }
    case FrameType.HELD: {
      const o = map(a[3]);
      const h: ServerFrame = { type, reqId: uint(a[1], 'reqId'), id: str(a[2], 'id'), duplicate: bool(own(o, 'duplicate'), 'duplicate') };
      const due = opt(own(o, 'due'), (v) => uint(v, 'due'));
      if (due !== undefined) h.due = due;
      return h;
    }
    case FrameType.RESOLVED: {
      const outcome = str(a[2], 'outcome');
      if (outcome !== 'committed' && outcome !== 'aborted' && outcome !== 'cancelled') fail('outcome', 'committed, aborted or cancelled');
      const r: ResolvedFrame = { type, reqId: uint(a[1], 'reqId'), outcome: outcome as ResolvedFrame['outcome'] };
      const o = a[3] === undefined || a[3] === null ? {} : map(a[3]);
      const offset = opt(own(o, 'offset'), (v) => uint(v, 'offset'));
      if (offset !== undefined) r.offset = offset;
      const duplicate = opt(own(o, 'duplicate'), (v) => bool(v, 'duplicate'));
      if (duplicate !== undefined) r.duplicate = duplicate;
      return r;
    }
    default:
      throw new FrameError('bad-frame', `${name} is not a frame gateways send`);
  }
}
