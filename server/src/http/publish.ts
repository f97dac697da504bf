/**
 * Edge publishing over HTTP: parsing requests and rendering outcomes; the checks and the append are
 * the publish service's (core/publish.ts), the same as for a WebSocket PUB.
 *
 * - `POST /v1/topics/{topic}/messages`: the body is the message (by Content-Type, see messages.ts),
 *   `Idempotency-Key` the optional key, `Sluice-Headers` optional message headers as a JSON object
 *   of string values, `Sluice-Ordering-Key` and `Sluice-Priority` (0–9) the optional ordering key
 *   and priority for consumer groups, `Sluice-Trace: 1` to trace it → 201 `{offset, epoch, duplicate: false}`, or 200 with `duplicate: true` and
 *   the original offset.
 * - `POST /v1/publish`: `{"messages": [{topic, data, key?, headers?, encoding?, orderingKey?, priority?, trace?}]}` (JSON or
 *   MessagePack) → 200 `{"results": [...]}`, one result per message in order: `{offset, epoch,
 *   duplicate}` or `{error: {code, message}}`. Messages are independent: an invalid or forbidden
 *   one fails alone. Every valid message is appended in the same loop turn, so the store writes
 *   the whole batch in one commit.
 *
 * Both acknowledge only after the store made the messages durable, like a WebSocket ACK.
 *
 * Delayed (protocol 1.4): `Sluice-Delay: <ms>` or `Sluice-At: <ms since the epoch>` on a single
 * publish, `delay` / `at` on a batch entry → held, not appended yet: 202 `{id, due, duplicate}`
 * (batch: that as the entry's result). `POST /v1/topics/{topic}/transactions` takes a message the
 * same way (and `Sluice-Check-Url`) and prepares it: 201 `{id, duplicate}`. See http/held.ts.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { clientKey, PublishError, type Publisher, type PublishRequest } from '../core/publish.js';
import type { When } from '../core/held.js';
import type { Principal } from '../auth/auth.js';
import {
  authenticate,
  begin,
  guard,
  readBody,
  refused,
  clientAddress,
  tokenOf,
  uintParam,
  type HttpContext,
} from './context.js';
import type { Exchange } from './exchange.js';
import {
  bad,
  encodeData,
  isBad,
  isJsonType,
  isMsgpackType,
  mediaType,
  parseJson,
  parseMsgpack,
  payloadOf,
  type BadPayload,
} from './messages.js';

/** Most messages in one batch. */
export const MAX_BATCH = 1000;

/** Content-Encoding other than identity is refused (the gateway does not decompress). */
function encodingRefused(ex: Exchange, encoding: string): boolean {
  if (!encoding || encoding.toLowerCase() === 'identity') return false;
  ex.error('bad-request', `Content-Encoding ${encoding.slice(0, 40)} is not supported`, 415);
  return true;
}

function publisher(ctx: HttpContext, principal: Principal, address: string, transport: 'http' | 'batch'): Publisher {
  return { principal, client: clientKey(ctx.auth.mode === 'dev', principal, address), transport };
}

/** The `Sluice-Headers` request header: a JSON object of message headers (undefined when absent). */
function headersOf(value: string): unknown {
  if (!value) return undefined;
  const v = parseJson(Buffer.from(value));
  return isBad(v) ? bad('bad-request', 'Sluice-Headers must be a JSON object of string values') : v;
}

/** `POST /v1/topics/{topic}/messages`. Called in the synchronous top of the route. */
export function publishOne(res: HttpResponse, req: HttpRequest, topic: string, ctx: HttpContext, prepare = false): void {
  const ex = begin(res, req, prepare ? 'tx_prepare' : 'publish', ctx);
  if (!ex) return;
  const token = tokenOf(req, false);
  const contentType = req.getHeader('content-type');
  const encoding = req.getHeader('content-encoding');
  const key = req.getHeader('idempotency-key');
  const headers = headersOf(req.getHeader('sluice-headers'));
  const orderingKey = req.getHeader('sluice-ordering-key');
  const priority = req.getHeader('sluice-priority');
  const trace = req.getHeader('sluice-trace');
  const delay = req.getHeader('sluice-delay');
  const at = req.getHeader('sluice-at');
  const checkUrl = req.getHeader('sluice-check-url');
  const address = clientAddress(ex);
  const body = readBody(ex, req.getHeader('content-length'), ctx.http.maxBody);

  guard(ex, ctx, async () => {
    const principal = await authenticate(ex, ctx, token);
    if (!principal || !ex.open) return;
    if (encodingRefused(ex, encoding)) return;
    if (isBad(headers)) return ex.error(headers.code, headers.message);
    const bytes = await body;
    if (!bytes || !ex.open) return;
    ctx.metrics.bytesIn.inc(bytes.length);
    const data = payloadOf(contentType, bytes);
    if (isBad(data)) return ex.error(data.code, data.message, data.status);
    // uWS gives '' for an absent header: an empty Idempotency-Key means none.
    const request: PublishRequest = { topic, data, key: key || undefined, headers };
    if (orderingKey) request.orderingKey = orderingKey;
    if (priority) {
      if (!/^[0-9]$/.test(priority)) return ex.error('bad-request', 'Sluice-Priority must be an integer 0-9');
      request.priority = Number(priority);
    }
    if (trace) {
      if (trace !== '1' && trace !== '0') return ex.error('bad-request', 'Sluice-Trace must be 1 or 0');
      request.trace = trace === '1';
    }
    const when = { delay: uintParam(delay), at: uintParam(at) };
    if (Number.isNaN(when.delay) || Number.isNaN(when.at)) return ex.error('bad-request', 'Sluice-Delay and Sluice-At must be whole numbers of ms');
    if (prepare && (when.delay !== undefined || when.at !== undefined)) return ex.error('bad-request', 'a prepared message cannot be delayed');
    const who = publisher(ctx, principal, address, 'http');
    try {
      if (prepare) {
        const h = await ctx.held.prepare(who, request, checkUrl || undefined);
        return ex.json(h.duplicate ? 200 : 201, { id: h.id, duplicate: h.duplicate });
      }
      if (when.delay !== undefined || when.at !== undefined) {
        const h = await ctx.held.schedule(who, request, when);
        return ex.json(202, { id: h.id, due: h.due, duplicate: h.duplicate });
      }
      const r = await ctx.publisher.publish(who, request);
      ex.json(r.duplicate ? 200 : 201, r);
    } catch (err) {
      if (!(err instanceof PublishError)) throw err;
      refused(ex, err);
    }
  });
}

/** `POST /v1/publish`. */
export function publishBatch(res: HttpResponse, req: HttpRequest, ctx: HttpContext): void {
  const ex = begin(res, req, 'batch', ctx);
  if (!ex) return;
  const token = tokenOf(req, false);
  const type = mediaType(req.getHeader('content-type'));
  const encoding = req.getHeader('content-encoding');
  const address = clientAddress(ex);
  const body = readBody(ex, req.getHeader('content-length'), ctx.http.maxBody);

  guard(ex, ctx, async () => {
    const principal = await authenticate(ex, ctx, token);
    if (!principal || !ex.open) return;
    if (encodingRefused(ex, encoding)) return;
    const json = isJsonType(type);
    if (!json && !isMsgpackType(type)) {
      return ex.error('bad-request', 'a batch must be application/json or application/msgpack', 415);
    }
    const bytes = await body;
    if (!bytes || !ex.open) return;
    ctx.metrics.bytesIn.inc(bytes.length);
    const doc = json ? parseJson(bytes) : parseMsgpack(bytes);
    if (isBad(doc)) return ex.error(doc.code, doc.message, doc.status);
    const list = (doc as { messages?: unknown } | null)?.messages;
    if (typeof doc !== 'object' || doc === null || !Array.isArray(list)) {
      return ex.error('bad-request', 'the body must be {"messages": [...]}');
    }
    if (list.length === 0) return ex.error('bad-request', 'messages must not be empty');
    if (list.length > MAX_BATCH) return ex.error('too-large', `at most ${MAX_BATCH} messages per batch`);

    // Malformed entries fail alone; the rest go to the publish service together (delayed ones are
    // held one by one).
    const items = list.map((raw: unknown) => batchItem(raw));
    const requests: PublishRequest[] = [];
    const at: number[] = [];
    const delayed: Promise<void>[] = [];
    const who = publisher(ctx, principal, address, 'batch');
    const results: unknown[] = items.map((item) => (isBad(item) ? failure(ctx, item) : undefined));
    items.forEach((item, index) => {
      if (isBad(item)) return;
      if (item.when) {
        delayed.push(ctx.held.schedule(who, item, item.when).then(
          (h) => { results[index] = { id: h.id, due: h.due, duplicate: h.duplicate }; },
          (err: unknown) => {
            if (!(err instanceof PublishError)) throw err;
            results[index] = failure(ctx, err);
          },
        ));
        return;
      }
      requests.push(item);
      at.push(index);
    });
    let outcomes;
    try {
      outcomes = requests.length > 0 ? await ctx.publisher.publishMany(who, requests) : [];
      await Promise.all(delayed);
    } catch (err) {
      if (!(err instanceof PublishError)) throw err;
      return refused(ex, err); // the batch as a whole (rate limit)
    }
    outcomes.forEach((o, i) => { results[at[i]!] = o instanceof PublishError ? failure(ctx, o) : o; });
    ex.json(200, { results });
  });
}

function failure(ctx: HttpContext, e: { code: PublishError['code']; message: string }): { error: { code: string; message: string } } {
  ctx.metrics.error(e.code);
  return { error: { code: e.code, message: e.message } };
}

/** Parses one batch entry into a publish request; a BadPayload names what is malformed. */
function batchItem(raw: unknown): (PublishRequest & { when?: When }) | BadPayload {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('bad-request', 'each message must be an object');
  const m = raw as Record<string, unknown>;
  if (typeof m.topic !== 'string') return bad('invalid-topic', 'topic must be a string');
  if (!Object.hasOwn(m, 'data')) return bad('bad-request', 'data missing');
  let data: Uint8Array | BadPayload;
  if (m.encoding !== undefined && m.encoding !== null) {
    if (m.encoding !== 'base64') return bad('bad-request', 'encoding must be "base64" when given');
    if (typeof m.data !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(m.data)) return bad('bad-request', 'data must be a base64 string');
    data = encodeData(Buffer.from(m.data, m.data.includes('-') || m.data.includes('_') ? 'base64url' : 'base64'));
  } else {
    data = encodeData(m.data);
  }
  if (isBad(data)) return data;
  const request: PublishRequest & { when?: When } = { topic: m.topic, data };
  for (const field of ['delay', 'at'] as const) {
    const v = m[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return bad('bad-request', `${field} must be a whole number of ms`);
    (request.when ??= {})[field] = v;
  }
  if (m.key !== undefined && m.key !== null) {
    if (typeof m.key !== 'string') return bad('bad-request', 'key must be a string');
    request.key = m.key;
  }
  if (m.headers !== undefined && m.headers !== null) request.headers = m.headers;
  if (m.orderingKey !== undefined && m.orderingKey !== null) {
    if (typeof m.orderingKey !== 'string') return bad('bad-request', 'orderingKey must be a string');
    request.orderingKey = m.orderingKey;
  }
  if (m.priority !== undefined && m.priority !== null) {
    if (typeof m.priority !== 'number') return bad('bad-request', 'priority must be an integer 0-9');
    request.priority = m.priority;
  }
  if (m.trace !== undefined && m.trace !== null) {
    if (typeof m.trace !== 'boolean') return bad('bad-request', 'trace must be a boolean');
    request.trace = m.trace;
  }
  return request;
}
