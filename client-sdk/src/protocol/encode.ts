/**
 * The encoder: any frame object → its bytes. Pure; every frame the SDK or the gateway sends goes
 * through here or through the gateway's fast paths in entry.ts.
 *
 * `encode` takes any frame. The SDK imports `encodeClientFrame` directly so that its browser bundle
 * leaves out the encoding of frames only a gateway sends.
 */
import { FrameType, type ClientFrame, type Frame, type ServerFrame } from './frames.js';
import { pack } from './pack.js';

/** Drops undefined fields so option maps carry only what was given. */
function opts<T extends object>(o: T): Partial<T> | undefined {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined) (out ??= {})[k] = v;
  }
  return out as Partial<T> | undefined;
}

/** Encodes any frame. */
export function encode(frame: Frame): Uint8Array {
  switch (frame.type) {
    case FrameType.HELLO:
    case FrameType.SUB:
    case FrameType.UNSUB:
    case FrameType.CREDIT:
    case FrameType.PUB:
    case FrameType.PING:
    case FrameType.PONG:
    case FrameType.GROUP_ACK:
    case FrameType.GROUP_NACK:
    case FrameType.RESOLVE:
      return encodeClientFrame(frame);
    default:
      return encodeServerFrame(frame);
  }
}

/** @internal Encodes a frame a client sends (PING and PONG go both ways). */
export function encodeClientFrame(frame: ClientFrame): Uint8Array {
  switch (frame.type) {
    case FrameType.HELLO: {
      const o = opts({ token: frame.token, client: frame.client, protocol: frame.protocol });
      return pack(o ? [FrameType.HELLO, o] : [FrameType.HELLO]);
    }
    case FrameType.SUB: {
      const o = opts({ from: frame.from, epoch: frame.epoch, credit: frame.credit, group: frame.group });
      return pack(o ? [FrameType.SUB, frame.subId, frame.topic, o] : [FrameType.SUB, frame.subId, frame.topic]);
    }
    case FrameType.UNSUB:
      return pack([FrameType.UNSUB, frame.subId]);
    case FrameType.CREDIT:
      return pack([FrameType.CREDIT, frame.subId, frame.n]);
    case FrameType.PUB: {
      const o = opts({
        key: frame.key, headers: frame.headers, orderingKey: frame.orderingKey, priority: frame.priority, trace: frame.trace || undefined,
        delay: frame.delay, at: frame.at, prepare: frame.prepare || undefined, checkUrl: frame.checkUrl,
      });
      const arr: unknown[] = [FrameType.PUB, frame.reqId, frame.topic, frame.data];
      if (o) arr.push(o);
      return pack(arr);
    }
    case FrameType.PING:
    case FrameType.PONG:
      return pack([frame.type, frame.n]);
    case FrameType.GROUP_ACK:
      return pack([FrameType.GROUP_ACK, frame.subId, frame.offsets.length === 1 ? frame.offsets[0] : frame.offsets]);
    case FrameType.GROUP_NACK: {
      const o = opts({ delay: frame.delay, reason: frame.reason });
      return pack(o ? [FrameType.GROUP_NACK, frame.subId, frame.offset, o] : [FrameType.GROUP_NACK, frame.subId, frame.offset]);
    }
    case FrameType.RESOLVE:
      return pack([FrameType.RESOLVE, frame.reqId, frame.id, frame.op]);
    default: {
      const never: never = frame;
      throw new TypeError(`unknown frame ${JSON.stringify(never)}`);
    }
  }
}

/** A message as the elements of a stored entry: `[data, ts, headers|nil, meta]`, trailing ones left out. */
function entryElements(m: { data: unknown; ts: number; headers?: unknown; orderingKey?: string; priority?: number; traced?: boolean }): unknown[] {
  if (m.orderingKey !== undefined || m.priority || m.traced) {
    const meta: { k?: string; p?: number; t?: 1 } = {};
    if (m.orderingKey !== undefined) meta.k = m.orderingKey;
    if (m.priority) meta.p = m.priority;
    if (m.traced) meta.t = 1;
    return [m.data, m.ts, m.headers ?? null, meta];
  }
  return m.headers ? [m.data, m.ts, m.headers] : [m.data, m.ts];
}

/** @internal Encodes a frame a gateway sends (PING and PONG go both ways). */
export function encodeServerFrame(frame: ServerFrame): Uint8Array {
  switch (frame.type) {
    case FrameType.WELCOME:
      return pack([FrameType.WELCOME, opts({
        session: frame.session, protocol: frame.protocol, version: frame.version, maxFrame: frame.maxFrame,
        maxCredit: frame.maxCredit, heartbeat: frame.heartbeat, maxSubscriptions: frame.maxSubscriptions,
        maxWindowBytes: frame.maxWindowBytes,
      })]);
    case FrameType.SUBSCRIBED:
      return pack([FrameType.SUBSCRIBED, frame.subId, {
        epoch: frame.epoch, head: frame.head, from: frame.from, recovered: frame.recovered,
      }]);
    case FrameType.UNSUBSCRIBED:
      return pack([FrameType.UNSUBSCRIBED, frame.subId]);
    case FrameType.ACK:
      return pack([FrameType.ACK, frame.reqId, frame.offset, frame.duplicate]);
    case FrameType.MSG:
      return pack([FrameType.MSG, frame.topic, frame.offset, ...entryElements(frame)]);
    case FrameType.ERROR:
      return pack([FrameType.ERROR, frame.id, frame.code, frame.message, frame.re ?? 0]);
    case FrameType.PING:
    case FrameType.PONG:
      return pack([frame.type, frame.n]);
    case FrameType.GAP:
      return pack([FrameType.GAP, frame.topic, frame.from, frame.to]);
    case FrameType.MSGS:
      return pack([FrameType.MSGS, frame.topic, frame.first, frame.messages.map(entryElements)]);
    case FrameType.LEASE:
      return pack([FrameType.LEASE, frame.topic, frame.offset, frame.attempt, entryElements(frame.message)]);
    case FrameType.HELD:
      return pack([FrameType.HELD, frame.reqId, frame.id, opts({ due: frame.due, duplicate: frame.duplicate })]);
    case FrameType.RESOLVED: {
      const o = opts({ offset: frame.offset, duplicate: frame.duplicate });
      return pack(o ? [FrameType.RESOLVED, frame.reqId, frame.outcome, o] : [FrameType.RESOLVED, frame.reqId, frame.outcome]);
    }
    default: {
      const never: never = frame;
      throw new TypeError(`unknown frame ${JSON.stringify(never)}`);
    }
  }
}
