/**
 * The SDK's decoder of gateway frames: strict on every field the protocol defines, payloads become
 * JS values. A frame that breaks the layout throws FrameError — never a NaN, an "undefined" string
 * or a guessed default that the SDK would then act on.
 */
import { FrameError } from './errors.js';
import { FrameType, type Headers, type MsgsItem, type ServerFrame, type WelcomeFrame } from './frames.js';
import { MAX_DEPTH } from './limits.js';
import { arrayElements } from './msgpack.js';
import { isUint, own, unpack } from './value.js';

const NAMES = new Map<unknown, string>(Object.entries(FrameType).map(([name, type]) => [type, name]));

/** A decoded MessagePack map (msgpackr gives plain objects; a Date or bytes are not maps). */
function isMap(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Reads the fields of one frame; every getter throws FrameError naming the frame and field. */
class Fields {
  constructor(private readonly frame: string) {}

  fail(field: string, rule: string): never {
    throw new FrameError('bad-frame', `${this.frame} ${field} must be ${rule}`);
  }

  uint(v: unknown, field: string): number {
    return isUint(v) ? v : this.fail(field, 'an unsigned integer (at most 2^53 - 1)');
  }

  /** A limit the gateway announces: an unsigned integer of at least 1. */
  positive(v: unknown, field: string): number {
    return isUint(v) && v > 0 ? v : this.fail(field, 'an integer from 1 to 2^53 - 1');
  }

  str(v: unknown, field: string): string {
    return typeof v === 'string' ? v : this.fail(field, 'a string');
  }

  bool(v: unknown, field: string): boolean {
    return typeof v === 'boolean' ? v : this.fail(field, 'a boolean');
  }

  map(v: unknown, field: string): Record<string, unknown> {
    return isMap(v) ? v : this.fail(field, 'a map');
  }

  /** Optional headers: absent or nil is none; otherwise a map of strings. */
  headers(v: unknown, field: string): Headers | undefined {
    if (v === undefined || v === null) return undefined;
    if (!isMap(v)) return this.fail(field, 'a map of strings');
    for (const k of Object.keys(v)) if (typeof v[k] !== 'string') this.fail(field, 'a map of strings');
    return v as Headers;
  }
}

/** Splits a frame into its elements after the same guard as the gateway's: depth, lengths, 0xc1, trailing bytes. */
function elements(bytes: Uint8Array): number[] {
  try {
    return arrayElements(bytes, MAX_DEPTH - 1);
  } catch (err) {
    throw new FrameError('bad-frame', (err as Error).message, 0, true);
  }
}

/**
 * Decodes a frame from the gateway. Throws FrameError when the frame is malformed: not one
 * MessagePack array, a type that gateways do not send, or a field missing or of the wrong type
 * (ids, offsets, credit and limits are unsigned integers ≤ 2^53 - 1). Extra trailing elements and
 * unknown fields in maps are ignored.
 */
export function decodeServerFrame(bytes: Uint8Array): ServerFrame {
  elements(bytes);
  const a = unpack(bytes, 0, true) as unknown[];
  const type = a[0];
  const f = new Fields(NAMES.get(type) ?? `frame type ${String(type)}`);

  switch (type) {
    case FrameType.WELCOME: {
      const o = f.map(a[1], 'options');
      const w: WelcomeFrame = {
        type: FrameType.WELCOME,
        session: f.str(own(o, 'session'), 'session'),
        version: f.str(own(o, 'version'), 'version'),
        maxFrame: f.positive(own(o, 'maxFrame'), 'maxFrame'),
        maxCredit: f.positive(own(o, 'maxCredit'), 'maxCredit'),
        heartbeat: f.positive(own(o, 'heartbeat'), 'heartbeat'),
      };
      const protocol = own(o, 'protocol');
      if (protocol !== undefined && protocol !== null) w.protocol = f.str(protocol, 'protocol');
      const maxSubscriptions = own(o, 'maxSubscriptions');
      if (maxSubscriptions !== undefined && maxSubscriptions !== null) w.maxSubscriptions = f.uint(maxSubscriptions, 'maxSubscriptions');
      return w;
    }
    case FrameType.SUBSCRIBED: {
      const subId = f.uint(a[1], 'subId');
      const o = f.map(a[2], 'options');
      return {
        type: FrameType.SUBSCRIBED,
        subId,
        epoch: f.str(own(o, 'epoch'), 'epoch'),
        head: f.uint(own(o, 'head'), 'head'),
        from: f.uint(own(o, 'from'), 'from'),
        recovered: f.bool(own(o, 'recovered'), 'recovered'),
      };
    }
    case FrameType.UNSUBSCRIBED:
      return { type: FrameType.UNSUBSCRIBED, subId: f.uint(a[1], 'subId') };
    case FrameType.ACK:
      return {
        type: FrameType.ACK, reqId: f.uint(a[1], 'reqId'), offset: f.uint(a[2], 'offset'),
        duplicate: f.bool(a[3], 'duplicate'),
      };
    case FrameType.MSG: {
      if (a.length < 4) f.fail('data', 'present');
      const msg: ServerFrame = {
        type: FrameType.MSG, topic: f.str(a[1], 'topic'), offset: f.uint(a[2], 'offset'), data: a[3],
        ts: f.uint(a[4], 'ts'),
      };
      const headers = f.headers(a[5], 'headers');
      if (headers) msg.headers = headers;
      return msg;
    }
    case FrameType.ERROR:
      return {
        type: FrameType.ERROR, id: f.uint(a[1], 'id'), code: f.str(a[2], 'code'), message: f.str(a[3], 'message'),
        // 1.0 gateways do not send `re`.
        re: a[4] === undefined || a[4] === null ? 0 : f.uint(a[4], 're'),
      };
    case FrameType.PING:
      return { type: FrameType.PING, n: f.uint(a[1], 'n') };
    case FrameType.PONG:
      return { type: FrameType.PONG, n: f.uint(a[1], 'n') };
    case FrameType.GAP:
      return { type: FrameType.GAP, topic: f.str(a[1], 'topic'), from: f.uint(a[2], 'from'), to: f.uint(a[3], 'to') };
    case FrameType.MSGS: {
      const topic = f.str(a[1], 'topic');
      const first = f.uint(a[2], 'first');
      const list = Array.isArray(a[3]) ? (a[3] as unknown[]) : f.fail('messages', 'an array');
      const messages: MsgsItem[] = list.map((e: unknown) => {
        if (!Array.isArray(e) || e.length < 2) return f.fail('message', 'an array [data, ts, headers?]');
        const item: MsgsItem = { data: e[0], ts: f.uint(e[1], 'ts') };
        const headers = f.headers(e[2], 'headers');
        if (headers) item.headers = headers;
        return item;
      });
      return { type: FrameType.MSGS, topic, first, messages };
    }
    default:
      throw new FrameError('bad-frame', NAMES.has(type) ? `${NAMES.get(type)} is sent by clients only` : `unknown frame type ${String(type)}`);
  }
}
