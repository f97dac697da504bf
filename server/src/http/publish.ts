/**
 * Edge publishing over HTTP.
 *
 * - `POST /v1/topics/{topic}/messages`: the body is the message (by Content-Type, see messages.ts),
 *   `Idempotency-Key` the optional key → 201 `{offset, epoch, duplicate: false}`, or 200 with
 *   `duplicate: true` and the original offset.
 * - `POST /v1/publish`: `{"messages": [{topic, data, key?, headers?, encoding?}]}` (JSON or
 *   MessagePack) → 200 `{"results": [...]}`, one result per message in order: `{offset, epoch,
 *   duplicate}` or `{error: {code, message}}`. Messages are independent: an invalid or forbidden
 *   one fails alone. Every valid message is appended in the same loop turn, so the store writes
 *   the whole batch in one commit.
 *
 * Both acknowledge only after the store made the messages durable, like a WebSocket ACK.
 */
import {
  checkHeaders,
  MAX_KEY_BYTES,
  topicError,
  utf8Length,
  type ErrorCode,
} from '@sluice/client/protocol';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Principal } from '../auth/auth.js';
import { StoreUnavailableError, type AppendInput, type AppendResult } from '../log/log.js';
import {
  authenticate,
  begin,
  clientKey,
  guard,
  rateLimited,
  readBody,
  tokenOf,
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

function remote(res: HttpResponse): string {
  return Buffer.from(res.getRemoteAddressAsText()).toString();
}

/** Content-Encoding other than identity is refused (the gateway does not decompress). */
function encodingRefused(ex: Exchange, encoding: string): boolean {
  if (!encoding || encoding.toLowerCase() === 'identity') return false;
  ex.error('bad-request', `Content-Encoding ${encoding.slice(0, 40)} is not supported`, 415);
  return true;
}

/** `POST /v1/topics/{topic}/messages`. Called in the synchronous top of the route. */
export function publishOne(res: HttpResponse, req: HttpRequest, topic: string, ctx: HttpContext): void {
  const ex = begin(res, req, 'publish', ctx);
  if (!ex) return;
  const token = tokenOf(req, false);
  const contentType = req.getHeader('content-type');
  const encoding = req.getHeader('content-encoding');
  const key = req.getHeader('idempotency-key');
  const address = remote(res);
  const body = readBody(ex, req.getHeader('content-length'), ctx.http.maxBody);

  guard(ex, ctx, async () => {
    const principal = await authenticate(ex, ctx, token);
    if (!principal || !ex.open) return;
    const invalid = topicError(topic);
    if (invalid) return ex.error('invalid-topic', invalid);
    if (!principal.can('pub', topic)) return ex.error('forbidden', `not allowed to publish to ${topic}`);
    if (utf8Length(key) > MAX_KEY_BYTES) return ex.error('too-large', `Idempotency-Key longer than ${MAX_KEY_BYTES} bytes`);
    if (encodingRefused(ex, encoding)) return;
    const bytes = await body;
    if (!bytes || !ex.open) return;
    ctx.metrics.bytesIn.inc(bytes.length);
    const data = payloadOf(contentType, bytes, ctx.limits.maxFrame);
    if (isBad(data)) return ex.error(data.code, data.message, data.status);
    const wait = ctx.rates.take(clientKey(ctx, principal, address), 1);
    if (wait > 0) return rateLimited(ex, wait);

    const input: AppendInput = key ? { data, key } : { data };
    const started = performance.now();
    let r: AppendResult;
    try {
      [r] = (await ctx.store.append(topic, [input])) as [AppendResult];
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      return ex.error(err.code, err.message, undefined, { 'retry-after': String(err.retryAfterS) });
    }
    countAppends(ctx, started, [r]);
    ex.json(r.duplicate ? 200 : 201, { offset: r.offset, epoch: r.epoch, duplicate: r.duplicate });
  });
}

function countAppends(ctx: HttpContext, started: number, results: readonly AppendResult[]): void {
  const seconds = (performance.now() - started) / 1000;
  for (const r of results) {
    ctx.metrics.appendSeconds.observe(seconds);
    if (r.duplicate) ctx.metrics.duplicates.inc();
    else ctx.metrics.messagesIn.inc();
  }
}

interface BatchItem {
  topic: string;
  input: AppendInput;
}

type ItemResult = { offset: number; epoch: string; duplicate: boolean } | { error: { code: ErrorCode; message: string } };

/** `POST /v1/publish`. */
export function publishBatch(res: HttpResponse, req: HttpRequest, ctx: HttpContext): void {
  const ex = begin(res, req, 'batch', ctx);
  if (!ex) return;
  const token = tokenOf(req, false);
  const type = mediaType(req.getHeader('content-type'));
  const encoding = req.getHeader('content-encoding');
  const address = remote(res);
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

    const results: (ItemResult | undefined)[] = new Array(list.length);
    const valid: { index: number; item: BatchItem }[] = [];
    list.forEach((raw: unknown, index: number) => {
      const item = batchItem(raw, principal, ctx.limits.maxFrame);
      if (isBad(item)) {
        ctx.metrics.error(item.code);
        results[index] = { error: { code: item.code, message: item.message } };
      } else {
        valid.push({ index, item });
      }
    });
    if (valid.length > 0) {
      const wait = ctx.rates.take(clientKey(ctx, principal, address), valid.length);
      if (wait > 0) return rateLimited(ex, wait);
    }

    // Group by topic, keeping order within a topic; append every group in this loop turn so the
    // store commits the whole batch at once.
    const groups = new Map<string, { index: number; item: BatchItem }[]>();
    for (const v of valid) {
      let g = groups.get(v.item.topic);
      if (!g) groups.set(v.item.topic, (g = []));
      g.push(v);
    }
    const started = performance.now();
    await Promise.all([...groups].map(async ([topic, group]) => {
      try {
        const appended = await ctx.store.append(topic, group.map((g) => g.item.input));
        countAppends(ctx, started, appended);
        appended.forEach((r, i) => {
          results[group[i]!.index] = { offset: r.offset, epoch: r.epoch, duplicate: r.duplicate };
        });
      } catch (err) {
        if (err instanceof StoreUnavailableError) {
          ctx.metrics.error(err.code);
          for (const g of group) results[g.index] = { error: { code: err.code, message: err.message } };
          return;
        }
        ctx.metrics.handlerFailures.inc();
        ctx.metrics.error('internal');
        console.error(`sluice: batch append to ${topic} failed`, err);
        for (const g of group) results[g.index] = { error: { code: 'internal', message: 'the store failed; nothing was stored' } };
      }
    }));
    ex.json(200, { results });
  });
}

/** Validates one batch entry; a BadPayload names what is wrong with it. */
function batchItem(raw: unknown, principal: Principal, maxBytes: number): BatchItem | BadPayload {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('bad-request', 'each message must be an object');
  const m = raw as Record<string, unknown>;
  const topic = m.topic;
  const invalid = topicError(topic);
  if (invalid) return bad('invalid-topic', invalid);
  if (!principal.can('pub', topic as string)) return bad('forbidden', `not allowed to publish to ${topic as string}`);
  if (!Object.hasOwn(m, 'data')) return bad('bad-request', 'data missing');
  let data: Uint8Array | BadPayload;
  if (m.encoding !== undefined && m.encoding !== null) {
    if (m.encoding !== 'base64') return bad('bad-request', 'encoding must be "base64" when given');
    if (typeof m.data !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(m.data)) return bad('bad-request', 'data must be a base64 string');
    data = encodeData(Buffer.from(m.data, m.data.includes('-') || m.data.includes('_') ? 'base64url' : 'base64'), maxBytes);
  } else {
    data = encodeData(m.data, maxBytes);
  }
  if (isBad(data)) return data;
  const input: AppendInput = { data };
  const key = m.key;
  if (key !== undefined && key !== null && key !== '') {
    if (typeof key !== 'string') return bad('bad-request', 'key must be a string');
    if (utf8Length(key) > MAX_KEY_BYTES) return bad('too-large', `key longer than ${MAX_KEY_BYTES} bytes`);
    input.key = key;
  }
  if (m.headers !== undefined && m.headers !== null) {
    const h = checkHeaders(m.headers);
    if (typeof h === 'string') return bad('bad-request', h);
    if (Object.keys(h).length > 0) {
      const encoded = encodeData(h, maxBytes);
      if (isBad(encoded)) return encoded;
      input.headers = encoded;
    }
  }
  return { topic: topic as string, input };
}
