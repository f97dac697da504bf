/**
 * One MessagePack value: the msgpackr configuration every part of the module shares, the payload
 * and headers rules, and checks on decoded field values.
 */
import { Unpackr } from 'msgpackr/unpack';
import { FrameError } from './errors.js';
import type { Headers } from './frames.js';
import { MAX_DEPTH, MAX_HEADER_NAME_BYTES, MAX_HEADERS, MAX_KEY_BYTES, MAX_PAYLOAD_DEPTH, MAX_PRIORITY, MAX_UINT } from './limits.js';
import { checkPayload, skipValue, utf8Length } from './msgpack.js';
import { pack } from './pack.js';

/** @internal The encoder of frames and values. */
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/**
 * @internal msgpackr on bytes the scanner already accepted. It can still refuse some (a map whose
 * keys are not strings, an unknown extension): that is a bad frame, never an exception that escapes.
 */
export function unpack(bytes: Uint8Array, id = 0, fatal = false, re = 0): unknown {
  try {
    return unpackr.unpack(bytes);
  } catch (err) {
    throw new FrameError('bad-frame', `undecodable value: ${(err as Error).message}`, id, fatal, re);
  }
}

/** MessagePack of one value (a payload), e.g. for HTTP publishing. */
export function encodeValue(value: unknown): Uint8Array {
  return pack(value);
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

/** What a stored message's meta carries, as a publish asks for it. */
export interface MessageOptions {
  /** Since 1.2: consumer groups hand out one message per key at a time. */
  orderingKey?: string | undefined;
  /** Since 1.3: 0–9, consumer groups hand out higher first. */
  priority?: number | undefined;
  /** Since 1.3: record the message's journey (see README, "Message tracing"). */
  trace?: boolean | undefined;
}

/** Why a message breaks a publish rule: `bad-request` (on the WebSocket: `bad-frame`) or `too-large`. */
export class MessageFault {
  constructor(readonly code: 'bad-request' | 'too-large', readonly message: string) {}
}

/**
 * The rules every published message meets, whatever carried it (WebSocket PUB, HTTP, batch): the
 * gateway's publish service applies them after the topic and capability checks. The idempotency
 * key is 1–MAX_KEY_BYTES bytes (an empty one is refused: a client that meant one would lose
 * dedup); the data obeys the payload rule; headers are a map of at most MAX_HEADERS string →
 * string entries; an ordering key (since 1.2) is 1–MAX_KEY_BYTES bytes; a priority (since 1.3) is
 * an integer 0–MAX_PRIORITY (0, the default, is not stored). Returns the headers and
 * the entry's meta encoded for storage (undefined when none), or the fault.
 */
export function checkMessage(
  data: Uint8Array,
  key: string | undefined,
  headers: unknown,
  options: MessageOptions = {},
): { headers: Uint8Array | undefined; meta: Uint8Array | undefined } | MessageFault {
  const { orderingKey, priority, trace } = options;
  if (key !== undefined) {
    if (key.length === 0) return new MessageFault('bad-request', `key must be 1-${MAX_KEY_BYTES} bytes`);
    if (utf8Length(key) > MAX_KEY_BYTES) return new MessageFault('too-large', `key longer than ${MAX_KEY_BYTES} bytes`);
  }
  let meta: Uint8Array | undefined;
  if (orderingKey !== undefined && (orderingKey.length === 0 || utf8Length(orderingKey) > MAX_KEY_BYTES)) {
    return new MessageFault('bad-request', `orderingKey must be 1-${MAX_KEY_BYTES} bytes`);
  }
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0 && priority <= MAX_PRIORITY)) {
    return new MessageFault('bad-request', `priority must be an integer 0-${MAX_PRIORITY}`);
  }
  if (orderingKey !== undefined || priority || trace) {
    const m: { k?: string; p?: number; t?: 1 } = {};
    if (orderingKey !== undefined) m.k = orderingKey;
    if (priority) m.p = priority;
    if (trace) m.t = 1;
    meta = pack(m);
  }
  const content = payloadError(data);
  if (content) return new MessageFault('bad-request', content);
  if (headers === undefined || headers === null) return { headers: undefined, meta };
  const h = checkHeaders(headers);
  if (typeof h === 'string') return new MessageFault('bad-request', h);
  return { headers: Object.keys(h).length > 0 ? pack(h) : undefined, meta };
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

/** @internal An own property of a decoded map (never one inherited from Object.prototype). */
export function own(o: Record<string, unknown>, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

/** @internal An unsigned integer the protocol carries: 0 ≤ v ≤ 2^53 - 1. */
export function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** @internal An integer beyond 2^53 (as number or bigint): representable on the wire, clamped on receipt. */
export function isHugeUint(v: unknown): boolean {
  return (typeof v === 'number' && Number.isInteger(v) && v > MAX_UINT) || (typeof v === 'bigint' && v > 0n);
}
