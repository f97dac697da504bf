/**
 * The gateway's decoder of client frames: strict, for untrusted input. PUB payloads and headers stay
 * MessagePack-encoded so they are stored and forwarded byte for byte.
 */
import { FrameError } from './errors.js';
import { FrameType, type EncodedClientFrame, type ResolveOp } from './frames.js';
import { DEFAULT_MAX_FRAME, MAX_ACK_BATCH, MAX_DEPTH, MAX_KEY_BYTES, MAX_UINT } from './limits.js';
import { arrayElements, isMap, isNil, readArrayHeader, readStr, readUint, skipValue, utf8Length } from './msgpack.js';
import { isHugeUint, isUint, own, unpack } from './value.js';

const UINT = 'an unsigned integer (at most 2^53 - 1)';

/**
 * Decodes a frame from a client. Never trusts the input: size, depth, lengths and types are checked
 * before anything is allocated or interpreted. Ids, offsets and credit are unsigned integers
 * ≤ 2^53 - 1 (a larger credit is clamped to that: a grant is never refused for being generous).
 * Throws FrameError; every failure carries the frame's type as `re` and, when it could be read, its
 * reqId or subId as `id`.
 */
export function decodeClientFrame(bytes: Uint8Array, maxFrame = DEFAULT_MAX_FRAME): EncodedClientFrame {
  if (bytes.length > maxFrame) {
    const { id, re } = peek(bytes);
    throw new FrameError('too-large', `frame of ${bytes.length} bytes exceeds maxFrame ${maxFrame}`, id, false, re);
  }
  let at: number[];
  try {
    at = arrayElements(bytes, MAX_DEPTH - 1);
  } catch (err) {
    const { id, re } = peek(bytes);
    throw new FrameError('bad-frame', (err as Error).message, id, true, re);
  }
  const n = at.length - 1;
  const type = readUint(bytes, at[0]!);
  if (type < 0) throw new FrameError('bad-frame', 'frame type must be an unsigned integer', 0, true);

  // A PUB without options — [PUB, reqId, topic, data], what nearly every publish is — decoded
  // without the helpers below (closures, made anew per frame). Anything else about it, wrong
  // included, takes the general path, which names every failure.
  if (type === FrameType.PUB && n === 4) {
    const reqId = readUint(bytes, at[1]!);
    const topic = readStr(bytes, at[2]!);
    if (reqId >= 0 && topic !== undefined) return { type: FrameType.PUB, reqId, topic, data: bytes.subarray(at[3]!, at[4]!) };
  }

  // From here on every failure names the request: its id when readable, and its type.
  const id = n > 1 && carriesId(type) ? Math.max(readUint(bytes, at[1]!), 0) : 0;
  const fail = (message: string): never => { throw new FrameError('bad-frame', message, id, false, type); };
  const uintAt = (i: number, what: string): number => {
    if (i >= n) fail(`${what} missing`);
    const v = readUint(bytes, at[i]!);
    if (v < 0) fail(`${what} must be ${UINT}`);
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
    const decoded = unpack(bytes.subarray(at[i]!, at[i + 1]!), id, false, type) as Record<string, unknown>;
    for (const k of Object.keys(decoded)) out[k] = decoded[k];
    return out;
  };

  switch (type) {
    case FrameType.HELLO: {
      const o = optsAt(1);
      const frame: EncodedClientFrame = { type: FrameType.HELLO };
      for (const field of ['token', 'client', 'protocol'] as const) {
        const v = own(o, field);
        if (v === undefined || v === null) continue;
        if (typeof v !== 'string') fail(`${field} must be a string`);
        frame[field] = v as string;
      }
      return frame;
    }
    case FrameType.SUB: {
      const subId = uintAt(1, 'subId');
      const topic = strAt(2, 'topic');
      const o = optsAt(3);
      const from = own(o, 'from');
      const epoch = own(o, 'epoch');
      const credit = own(o, 'credit');
      const group = own(o, 'group');
      if (from !== undefined && from !== null && !isUint(from)) fail(`from must be ${UINT}`);
      if (group !== undefined && group !== null && typeof group !== 'string') fail('group must be a string');
      if (epoch !== undefined && epoch !== null && typeof epoch !== 'string') fail('epoch must be a string');
      if (credit !== undefined && credit !== null && !isUint(credit) && !isHugeUint(credit)) {
        fail('credit must be an unsigned integer');
      }
      const frame: EncodedClientFrame = { type: FrameType.SUB, subId, topic };
      if (isUint(from)) frame.from = from;
      if (typeof epoch === 'string') frame.epoch = epoch;
      if (isUint(credit)) frame.credit = credit;
      else if (isHugeUint(credit)) frame.credit = MAX_UINT;
      if (typeof group === 'string') frame.group = group;
      return frame;
    }
    case FrameType.UNSUB:
      return { type: FrameType.UNSUB, subId: uintAt(1, 'subId') };
    case FrameType.CREDIT: {
      const subId = uintAt(1, 'subId');
      if (n < 3) fail('credit missing');
      let credit = readUint(bytes, at[2]!);
      // A grant too large to represent is still a grant: it is clamped later, like any other.
      if (credit < 0 && isHugeUint(unpack(bytes.subarray(at[2]!, at[3]!), subId, false, type))) credit = MAX_UINT;
      if (credit < 0) fail('credit must be an unsigned integer');
      return { type: FrameType.CREDIT, subId, n: credit };
    }
    case FrameType.PUB: {
      // Only the frame's shape is checked here. The message rules (key length, payload content,
      // headers: `checkMessage`) are the gateway's publish service's, the same for every transport.
      const reqId = uintAt(1, 'reqId');
      const topic = strAt(2, 'topic');
      if (n < 4) fail('data missing');
      const data = bytes.subarray(at[3]!, at[4]!);
      const frame: EncodedClientFrame = { type: FrameType.PUB, reqId, topic, data };
      if (n > 4 && !isNil(bytes, at[4]!)) {
        const o = optsAt(4);
        const key = own(o, 'key');
        if (key !== undefined && key !== null) {
          if (typeof key !== 'string') fail('key must be a string');
          frame.key = key as string;
        }
        const headers = own(o, 'headers');
        if (headers !== undefined && headers !== null) frame.headers = headers;
        const orderingKey = own(o, 'orderingKey');
        if (orderingKey !== undefined && orderingKey !== null) {
          if (typeof orderingKey !== 'string') fail('orderingKey must be a string');
          frame.orderingKey = orderingKey as string;
        }
        const priority = own(o, 'priority');
        if (priority !== undefined && priority !== null) {
          if (!isUint(priority)) fail('priority must be an unsigned integer');
          frame.priority = priority as number;
        }
        const trace = own(o, 'trace');
        if (trace !== undefined && trace !== null) {
          if (typeof trace !== 'boolean') fail('trace must be a boolean');
          if (trace) frame.trace = true;
        }
        for (const field of ['delay', 'at'] as const) {
          const v = own(o, field);
          if (v === undefined || v === null) continue;
          if (!isUint(v)) fail(`${field} must be ${UINT} (ms)`);
          frame[field] = v as number;
        }
        const prepare = own(o, 'prepare');
        if (prepare !== undefined && prepare !== null) {
          if (typeof prepare !== 'boolean') fail('prepare must be a boolean');
          if (prepare) frame.prepare = true;
        }
        const checkUrl = own(o, 'checkUrl');
        if (checkUrl !== undefined && checkUrl !== null) {
          if (typeof checkUrl !== 'string') fail('checkUrl must be a string');
          frame.checkUrl = checkUrl as string;
        }
        if (frame.prepare && (frame.delay !== undefined || frame.at !== undefined)) fail('prepare cannot be combined with delay or at');
      }
      return frame;
    }
    case FrameType.GROUP_ACK: {
      const subId = uintAt(1, 'subId');
      if (n < 3) fail('offsets missing');
      const one = readUint(bytes, at[2]!);
      if (one >= 0) return { type: FrameType.GROUP_ACK, subId, offsets: [one] };
      const list = unpack(bytes.subarray(at[2]!, at[3]!), subId, false, type);
      if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ACK_BATCH || !list.every(isUint)) {
        fail(`offsets must be ${UINT}, or an array of 1-${MAX_ACK_BATCH} of them`);
      }
      return { type: FrameType.GROUP_ACK, subId, offsets: list as number[] };
    }
    case FrameType.GROUP_NACK: {
      const subId = uintAt(1, 'subId');
      const offset = uintAt(2, 'offset');
      const o = optsAt(3);
      const delay = own(o, 'delay');
      const reason = own(o, 'reason');
      if (delay !== undefined && delay !== null && !isUint(delay)) fail(`delay must be ${UINT} (ms)`);
      if (reason !== undefined && reason !== null && typeof reason !== 'string') fail('reason must be a string');
      const frame: EncodedClientFrame = { type: FrameType.GROUP_NACK, subId, offset };
      if (isUint(delay)) frame.delay = delay;
      if (typeof reason === 'string') frame.reason = reason.slice(0, 256);
      return frame;
    }
    case FrameType.RESOLVE: {
      const reqId = uintAt(1, 'reqId');
      const id = strAt(2, 'id');
      const op = strAt(3, 'op');
      if (op !== 'commit' && op !== 'abort' && op !== 'cancel') fail('op must be commit, abort or cancel');
      return { type: FrameType.RESOLVE, reqId, id, op: op as ResolveOp };
    }
    case FrameType.PING:
      return { type: FrameType.PING, n: n > 1 ? uintAt(1, 'n') : 0 };
    case FrameType.PONG:
      return { type: FrameType.PONG, n: n > 1 ? uintAt(1, 'n') : 0 };
    default:
      if ((type >= 2 && type <= 15) || type === FrameType.LEASE || type === FrameType.HELD || type === FrameType.RESOLVED) fail(`frame type ${type} is sent by servers only`);
      return fail(`unknown frame type ${type}`);
  }
}

/** Whether the second element of a frame of this type is a reqId or subId (all but HELLO, PING, PONG). */
function carriesId(type: number): boolean {
  return type !== FrameType.HELLO && type !== FrameType.PING && type !== FrameType.PONG;
}

/**
 * Best effort, for a frame that cannot be decoded whole (too large, or malformed further on): its
 * type and id when the first two elements are complete unsigned integers, so ERROR can name them.
 */
function peek(bytes: Uint8Array): { id: number; re: number } {
  const head = readArrayHeader(bytes, 0);
  if (!head || head[0] === 0) return { id: 0, re: 0 };
  const second = complete(bytes, head[1]);
  const re = second < 0 ? -1 : readUint(bytes, head[1]);
  if (re < 0) return { id: 0, re: 0 };
  if (head[0] < 2 || !carriesId(re) || complete(bytes, second) < 0) return { id: 0, re };
  return { id: Math.max(readUint(bytes, second), 0), re };
}

/** The end of the scalar at `pos`, or -1 when it is truncated or not a scalar. */
function complete(bytes: Uint8Array, pos: number): number {
  try {
    return skipValue(bytes, pos, 0);
  } catch {
    return -1;
  }
}
