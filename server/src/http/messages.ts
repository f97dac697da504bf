/**
 * Messages in the HTTP API: request bodies → stored payloads, stored entries → JSON.
 *
 * A stored payload is the MessagePack of the message's data, exactly as a WebSocket PUB stores it,
 * so a message published over HTTP reaches WebSocket, SSE and pull readers as the same value:
 * - `application/json` (or `+json`): the JSON value;
 * - `application/msgpack` (`x-msgpack`, `vnd.msgpack`): one MessagePack value, kept byte for byte;
 * - anything else: the body's bytes as a binary value.
 *
 * A message in JSON is `{"offset", "ts", "data"}`; binary data is base64 with `"encoding": "base64"`,
 * and headers, when present, are `"headers"`. Binary values nested inside other data become base64
 * strings (JSON has no bytes).
 */
import {
  decodeEntry,
  decodeValue,
  encodeValue,
  MAX_DEPTH,
  splitEntry,
  type ErrorCode,
} from '@sluice/client/protocol';

export interface BadPayload {
  code: ErrorCode;
  message: string;
  status?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

export function isJsonType(type: string): boolean {
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

export function isMsgpackType(type: string): boolean {
  return type === 'application/msgpack' || type === 'application/x-msgpack' || type === 'application/vnd.msgpack';
}

/** Nesting a JSON body may have: a payload's limit plus a batch's wrapping. */
const MAX_JSON_DEPTH = MAX_DEPTH + 4;

/** True when brackets nest deeper than `max` outside strings: checked before JSON.parse recurses. */
function tooDeep(body: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) { if (++depth > max) return true; }
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** Parses a JSON body; a BadPayload when it is not UTF-8 JSON or nests too deep. */
export function parseJson(body: Uint8Array): unknown | BadPayload {
  if (tooDeep(body, MAX_JSON_DEPTH)) return bad('bad-request', `the body is nested deeper than ${MAX_JSON_DEPTH}`);
  try {
    return JSON.parse(utf8.decode(body)) as unknown;
  } catch {
    return bad('bad-request', 'the body is not valid JSON');
  }
}

/** Decodes a MessagePack body with the guarded decoder; a BadPayload when it is not one valid value. */
export function parseMsgpack(body: Uint8Array): unknown | BadPayload {
  try {
    return decodeValue(body);
  } catch (err) {
    return bad('bad-request', `the body is not valid MessagePack: ${(err as Error).message}`);
  }
}

/** A class, so that a JSON body shaped like `{code, message}` is never mistaken for a failure. */
class BadBox implements BadPayload {
  constructor(readonly code: ErrorCode, readonly message: string, readonly status?: number) {}
}

export function bad(code: ErrorCode, message: string, status?: number): BadPayload {
  return new BadBox(code, message, status);
}

export function isBad(v: unknown): v is BadPayload {
  return v instanceof BadBox;
}

/** Encodes a data value for storage (its checks are the publish service's). */
export function encodeData(value: unknown): Uint8Array | BadPayload {
  try {
    return encodeValue(value);
  } catch (err) {
    return bad('bad-request', `data cannot be encoded: ${(err as Error).message}`);
  }
}

/** The stored payload for a single-message publish body, by Content-Type. */
export function payloadOf(contentType: string, body: Uint8Array): Uint8Array | BadPayload {
  const type = mediaType(contentType);
  if (isJsonType(type)) {
    const v = parseJson(body);
    return isBad(v) ? v : encodeData(v);
  }
  if (isMsgpackType(type)) {
    const v = parseMsgpack(body);
    // Kept byte for byte, like a WebSocket PUB's payload.
    return isBad(v) ? v : body;
  }
  return encodeData(body);
}


// ---- entries → JSON ----------------------------------------------------------------------------

function base64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/**
 * JSON.stringify replacer: nested binaries become base64 (Buffer's toJSON is bypassed via the
 * holder), and values JSON cannot carry exactly are flagged in `inexact`.
 */
let inexact = false;
function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (raw instanceof Uint8Array) return base64(raw);
  if (typeof raw === 'number' ? !Number.isFinite(raw) || (Number.isInteger(raw) && !Number.isSafeInteger(raw)) : raw instanceof Date || typeof raw === 'bigint') {
    inexact = true;
    return null;
  }
  return value;
}

/**
 * One stored entry as the JSON text of a message: `{"offset", "ts", "data", "encoding"?, "headers"?}`.
 * Never throws, whatever is stored. Data JSON carries exactly is JSON (a top-level binary is base64
 * with `"encoding": "base64"`; nested binaries become base64 strings). Data it cannot carry exactly
 * — NaN or ±Infinity, an integer beyond ±(2^53−1), a MessagePack extension (e.g. a timestamp), a map
 * with non-string keys stored before v1.1 refused them — is the base64 of its MessagePack bytes with
 * `"encoding": "msgpack"`: lossless, and no reader is ever stuck on it (PROTOCOL.md, "Messages in JSON").
 */
export function messageJson(offset: number, entry: Uint8Array): string {
  let decoded: ReturnType<typeof decodeEntry> | undefined;
  try {
    decoded = decodeEntry(entry);
  } catch {
    decoded = undefined;
  }
  if (decoded) {
    const { data, ts, headers } = decoded;
    const msg: Record<string, unknown> = { offset, ts };
    if (data instanceof Uint8Array) {
      msg.data = base64(data);
      msg.encoding = 'base64';
    } else {
      msg.data = data === undefined ? null : data;
    }
    if (headers) msg.headers = headers;
    if (decoded.orderingKey !== undefined) msg.orderingKey = decoded.orderingKey;
    if (decoded.priority !== undefined) msg.priority = decoded.priority;
    if (decoded.traced) msg.traced = true;
    inexact = false;
    const text = JSON.stringify(msg, replacer);
    if (!inexact) return text;
  }
  return rawMessageJson(offset, entry);
}

/** The lossless rendering: data as base64 of its MessagePack bytes. */
function rawMessageJson(offset: number, entry: Uint8Array): string {
  const { data, ts, headers } = splitEntry(entry);
  let h: unknown;
  try {
    h = headers ? decodeValue(headers) : undefined;
  } catch {
    h = undefined;
  }
  const msg: Record<string, unknown> = { offset, ts, data: base64(data), encoding: 'msgpack' };
  if (h && typeof h === 'object') msg.headers = h;
  return JSON.stringify(msg);
}
