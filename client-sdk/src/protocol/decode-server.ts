/**
 * The SDK's decoder of gateway frames: payloads become JS values.
 */
import { FrameError } from './errors.js';
import { FrameType, type Headers, type MsgsItem, type ServerFrame } from './frames.js';
import { MAX_DEPTH } from './limits.js';
import { arrayElements } from './msgpack.js';
import { isUint, unpack } from './value.js';

/** The same guard as the gateway's: depth, lengths, 0xc1, trailing bytes. */
function elements(bytes: Uint8Array): number[] {
  try {
    return arrayElements(bytes, MAX_DEPTH - 1);
  } catch (err) {
    throw new FrameError('bad-frame', (err as Error).message, 0, true);
  }
}

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
        type: FrameType.WELCOME,
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
        type: FrameType.SUBSCRIBED, subId: u(1), epoch: String(o.epoch), head: Number(o.head), from: Number(o.from),
        recovered: o.recovered === true,
      };
    }
    case FrameType.UNSUBSCRIBED:
      return { type: FrameType.UNSUBSCRIBED, subId: u(1) };
    case FrameType.ACK:
      return { type: FrameType.ACK, reqId: u(1), offset: u(2), duplicate: a[3] === true };
    case FrameType.MSG: {
      const f: ServerFrame = { type: FrameType.MSG, topic: s(1), offset: u(2), data: a[3], ts: u(4) };
      if (a[5] && typeof a[5] === 'object') f.headers = a[5] as Headers;
      return f;
    }
    case FrameType.ERROR:
      return { type: FrameType.ERROR, id: u(1), code: s(2), message: typeof a[3] === 'string' ? a[3] : '' };
    case FrameType.PING:
      return { type: FrameType.PING, n: u(1) };
    case FrameType.PONG:
      return { type: FrameType.PONG, n: u(1) };
    case FrameType.GAP:
      return { type: FrameType.GAP, topic: s(1), from: u(2), to: u(3) };
    case FrameType.MSGS: {
      const list = a[3];
      if (!Array.isArray(list)) return fail('MSGS messages must be an array');
      const messages: MsgsItem[] = list.map((e: unknown) => {
        if (!Array.isArray(e)) return fail('MSGS item must be an array');
        const item: MsgsItem = { data: e[0], ts: Number(e[1]) };
        if (e[2] && typeof e[2] === 'object') item.headers = e[2] as Headers;
        return item;
      });
      return { type: FrameType.MSGS, topic: s(1), first: u(2), messages };
    }
    default:
      return fail(`unexpected frame type ${String(a[0])}`);
  }
}
