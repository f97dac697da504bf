/**
 * The one publish path. A WebSocket PUB, an HTTP publish, each message of an HTTP batch and the
 * console's publish form all go through `PublishService`: the transports only parse their input
 * and render the outcome.
 *
 * Every publish is checked in this order, and the first failure is its answer (stable codes):
 *   topic name (invalid-topic) → capability `pub` (forbidden) → payload size ≤ maxFrame
 *   (too-large) → the message rules of the protocol module's `checkMessage`: idempotency key 1–128
 *   bytes, payload content and depth, headers (bad-request / too-large) → rate limits
 *   (rate-limited, retry after) → append (unavailable / insufficient-storage when the store cannot
 *   write) → metrics.
 * Its outcome is `{offset, epoch, duplicate}`, taken from the store's append (no second round trip).
 *
 * Idempotency keys (IETF draft "The Idempotency-Key HTTP Header Field"): a key names one message
 * of one topic. The store keeps the key with a fingerprint of the message (`fingerprintOf`); a
 * publish that sends the key again with the same message is a duplicate (the first offset), with
 * another message it is refused with `idempotency-key-reused` (HTTP 422) and nothing is stored.
 */
import * as crypto from 'node:crypto';
import { checkMessage, decodeValue, MessageFault, topicError, type ErrorCode } from '@sluice/client/protocol';
import type { Principal } from '../auth/auth.js';
import type { AppendInput, AppendResult, TopicLog } from '../log/log.js';
import { StoreUnavailableError } from '../log/log.js';
import type { Metrics } from '../metrics.js';
import type { RateLimiter, TokenBucket } from '../ratelimit.js';
import type { Tracer } from './trace.js';
import { logger } from '../logger.js';

/** One message to publish, as a transport parsed it. */
export interface PublishRequest {
  topic: string;
  /** The payload, MessagePack-encoded (stored and delivered byte for byte). */
  data: Uint8Array;
  key?: string;
  /** Headers as sent (checked here: a map of at most 32 string → string entries). */
  headers?: unknown;
  /** Consumer groups hand out messages of one ordering key one at a time, in order. */
  orderingKey?: string;
  /** 0–9: consumer groups hand out their ready messages highest priority first. */
  priority?: number;
  /** Record the message's journey (see trace.ts); absent: sampled at the configured rate. */
  trace?: boolean;
}

/** Who publishes: the principal, its rate-limit key and, on a WebSocket, its connection's bucket. */
export interface Publisher {
  principal: Principal;
  /** Per-client rate-limit key (see `clientKey`). */
  client: string;
  bucket?: TokenBucket;
  /** How it publishes (`ws`, `http`, `batch`), for traces. */
  transport?: string;
}

export interface Published {
  offset: number;
  epoch: string;
  duplicate: boolean;
}

/** A refused publish: a stable code, a message, and for retryable ones when to retry (ms). */
export class PublishError extends Error {
  override name = 'PublishError';
  constructor(readonly code: ErrorCode, message: string, readonly retryAfterMs?: number) {
    super(message);
  }
}

export type PublishOutcome = Published | PublishError;

function refuseIfWaiting(wait: number): void {
  if (wait > 0) throw new PublishError('rate-limited', `publish rate limit reached; retry in ${wait} ms`, wait);
}

/** The per-client rate-limit key: the token's `sub`, or the remote address in dev mode. */
export function clientKey(devMode: boolean, principal: Principal, remoteAddress: string): string {
  return devMode ? `addr:${remoteAddress}` : `sub:${principal.id}`;
}

export interface PublishDeps {
  store: TopicLog;
  metrics: Metrics;
  rates: RateLimiter;
  /** Largest payload (bytes), the gateway's maxFrame. */
  maxPayload: number;
  /** True once the gateway drains (SIGTERM): publishes get `shutting-down`. */
  draining?: () => boolean;
  tracer?: Tracer;
}

export class PublishService {
  /** Inputs of traced publishes, with who sent them and when (their events are recorded once stored). */
  private readonly traced = new WeakMap<AppendInput, Received>();

  constructor(private readonly deps: PublishDeps) {}

  /**
   * Publishes one message; rejects with PublishError (never throws). A plain function, not an
   * async one: it is every WebSocket PUB's path, and each async frame and await cost garbage.
   */
  publish(who: Publisher, req: PublishRequest): Promise<Published> {
    try {
      const input = this.check(who, req);
      if (input instanceof PublishError) return Promise.reject(input);
      const admitted = this.admit(who, 1);
      if (admitted) return admitted.then(() => this.append(req.topic, [input], true));
      return this.append(req.topic, [input], true);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Checks and admits one publish exactly as `publish` does, without appending it: the input a held
   * message (delayed or prepared) keeps until `appendChecked` appends it. Rejects with PublishError.
   */
  async admitted(who: Publisher, req: PublishRequest): Promise<AppendInput> {
    const input = this.check(who, req);
    if (input instanceof PublishError) throw input;
    await this.admit(who, 1);
    return input;
  }

  /**
   * Appends inputs checked earlier by `admitted` (held messages as they fall due or are committed),
   * with metrics and traces like any publish; `by` says who published each (for traced ones).
   */
  appendChecked(topic: string, inputs: AppendInput[], by: readonly ({ client: string; transport?: string | undefined } | undefined)[] = []): Promise<Published[]> {
    if (this.deps.tracer) {
      inputs.forEach((input, i) => {
        const who = by[i];
        if (who && input.meta && isTracedMeta(input.meta)) this.traced.set(input, { client: who.client, transport: who.transport, at: 0 });
      });
    }
    // Held inputs carry their held key and no fingerprint (it matches any message), so a
    // refusal here means the store broke that contract: fail the append, nothing is marked.
    return this.append(topic, inputs).then((outcomes) => outcomes.map((o) => {
      if (o instanceof PublishError) throw o;
      return o;
    }));
  }

  /**
   * Publishes several messages, each checked on its own (an invalid or forbidden one fails alone).
   * The rate limit is taken for all valid ones at once (refused as a whole: rejects). Valid
   * messages are appended in this loop turn, grouped by topic, so the store writes them in one
   * commit. Outcomes are in request order.
   */
  async publishMany(who: Publisher, reqs: readonly PublishRequest[]): Promise<PublishOutcome[]> {
    const outcomes: PublishOutcome[] = new Array(reqs.length);
    const groups = new Map<string, { index: number; input: AppendInput }[]>();
    let valid = 0;
    reqs.forEach((req, index) => {
      const input = this.check(who, req);
      if (input instanceof PublishError) {
        outcomes[index] = input;
        return;
      }
      let g = groups.get(req.topic);
      if (!g) groups.set(req.topic, (g = []));
      g.push({ index, input });
      valid++;
    });
    if (valid > 0) await this.admit(who, valid);
    await Promise.all([...groups].map(async ([topic, group]) => {
      try {
        const results = await this.append(topic, group.map((g) => g.input));
        results.forEach((r, i) => { outcomes[group[i]!.index] = r; });
      } catch (err) {
        const e = err instanceof PublishError ? err : new PublishError('internal', 'the store failed; nothing was stored');
        if (!(err instanceof PublishError)) logger.error(`append to ${topic} failed`, { err });
        for (const g of group) outcomes[g.index] = e;
      }
    }));
    return outcomes;
  }

  /** The checks every publish passes, in the documented order; the input to append, or why not. */
  private check(who: Publisher, req: PublishRequest): AppendInput | PublishError {
    const { principal } = who;
    if (this.deps.draining?.()) return new PublishError('shutting-down', 'the gateway is shutting down; nothing was stored, publish again (elsewhere)', 1000);
    const invalid = topicError(req.topic);
    if (invalid) return new PublishError('invalid-topic', invalid);
    if (!principal.can('pub', req.topic)) return new PublishError('forbidden', `not allowed to publish to ${req.topic}`);
    const { maxPayload } = this.deps;
    if (req.data.length > maxPayload) return new PublishError('too-large', `payload of ${req.data.length} bytes exceeds ${maxPayload}`);
    const trace = req.trace ?? this.deps.tracer?.sampled() ?? false;
    const checked = checkMessage(req.data, req.key, req.headers, { orderingKey: req.orderingKey, priority: req.priority, trace });
    if (checked instanceof MessageFault) return new PublishError(checked.code, checked.message);
    const input: AppendInput = { data: req.data };
    if (req.key !== undefined) input.key = req.key;
    if (checked.headers) input.headers = checked.headers;
    if (checked.meta) input.meta = checked.meta;
    if (req.key !== undefined) input.fingerprint = fingerprintOf(req.data, checked.headers, req.orderingKey, req.priority);
    if (trace && this.deps.tracer) this.traced.set(input, { client: who.principal.id, transport: who.transport, at: 0 });
    return input;
  }

  /** Takes `n` publishes from the rate limits or throws `rate-limited` (shared limits: async). */
  private admit(who: Publisher, n: number): void | Promise<void> {
    const { rates } = this.deps;
    if (!rates.enabled) return;
    const wait = rates.take(who.client, n, who.bucket);
    if (typeof wait === 'number') return refuseIfWaiting(wait);
    return wait.then(refuseIfWaiting, (err: unknown) => {
      throw err instanceof StoreUnavailableError ? new PublishError(err.code, err.message, err.retryAfterS * 1000) : err;
    });
  }

  /**
   * Appends; a message whose key was stored with another message is a PublishError in its place.
   * Never throws (rejects). With `one`, the outcome of the one message itself (a PublishError
   * rejects): no array of outcomes and no second promise for `publish`. Not async, and no array of
   * traces unless a message is traced: it runs once per publish.
   */
  private append(topic: string, inputs: AppendInput[], one: true): Promise<Published>;
  private append(topic: string, inputs: AppendInput[], one?: false): Promise<PublishOutcome[]>;
  private append(topic: string, inputs: AppendInput[], one = false): Promise<Published | PublishOutcome[]> {
    const { store, tracer } = this.deps;
    let traced: (Received | undefined)[] | undefined;
    if (tracer) {
      for (let i = 0; i < inputs.length; i++) {
        const t = this.traced.get(inputs[i]!);
        if (!t) continue;
        t.at = tracer.publishStarted();
        (traced ??= new Array<Received | undefined>(inputs.length))[i] = t;
      }
    }
    const started = performance.now();
    let appended;
    try {
      appended = store.append(topic, inputs);
    } catch (err) {
      return Promise.reject(this.appendFailed(topic, traced, err));
    }
    return appended.then(
      (results) => {
        const seconds = (performance.now() - started) / 1000;
        return one ? onlyPublished(this.outcome(topic, inputs[0]!, traced?.[0], seconds, results[0]!)) : this.outcomes(topic, inputs, traced, seconds, results);
      },
      (err: unknown) => { throw this.appendFailed(topic, traced, err); },
    );
  }

  /** What a failed append rejects with (traced messages are recorded as not stored). */
  private appendFailed(topic: string, traced: readonly (Received | undefined)[] | undefined, err: unknown): unknown {
    if (traced) for (const t of traced) if (t) this.deps.tracer!.published(topic, undefined, t, 0);
    if (err instanceof StoreUnavailableError) return new PublishError(err.code, err.message, err.retryAfterS * 1000);
    return err;
  }

  private outcomes(topic: string, inputs: AppendInput[], traced: readonly (Received | undefined)[] | undefined, seconds: number, results: AppendResult[]): PublishOutcome[] {
    return results.map((r, i) => this.outcome(topic, inputs[i]!, traced?.[i], seconds, r));
  }

  /** One message's outcome, with its metrics and its trace event (`seconds`: its append's time). */
  private outcome(topic: string, input: AppendInput, traced: Received | undefined, seconds: number, r: AppendResult): PublishOutcome {
    const { metrics, tracer } = this.deps;
    if (traced) tracer!.published(topic, r.duplicate ? undefined : r.offset, traced, Math.round(seconds * 10_000) / 10);
    if (r.keyReused) {
      const key = JSON.stringify(input.key!.slice(0, 128));
      return new PublishError('idempotency-key-reused', `idempotency key ${key} was used for another message of ${topic} (offset ${r.offset}); nothing was stored: use a new key for a new message`);
    }
    metrics.appendSeconds.observe(seconds);
    if (r.duplicate) metrics.duplicates.inc();
    else metrics.messagesIn.inc();
    return { offset: r.offset, epoch: r.epoch, duplicate: r.duplicate };
  }
}

/** The outcome of a one-message append, as `publish` resolves or rejects. */
function onlyPublished(r: PublishOutcome): Published {
  if (r instanceof PublishError) throw r;
  return r;
}

/** Who sent a traced publish, and when its append started. */
interface Received {
  at: number;
  client: string;
  transport?: string | undefined;
}

/** Whether an entry meta (MessagePack map) marks the message traced (`t: 1`). */
function isTracedMeta(meta: Uint8Array): boolean {
  const m = decodeValue(meta) as { t?: unknown } | null;
  return m !== null && typeof m === 'object' && m.t === 1;
}

/**
 * What makes two publishes with one idempotency key the same request: the payload as stored (the
 * MessagePack bytes, so JSON that differs only in spacing is the same), the headers as stored (in
 * the order sent), the ordering key and the priority (0 and none alike). The topic is not in it —
 * a key is per topic already — and neither is `trace`, which only asks to observe the message (and
 * sampling sets it at random). SHA-256, the first 16 bytes: accidental equality is out of reach.
 * Each part is length-prefixed, so no two different requests encode alike.
 */
export function fingerprintOf(data: Uint8Array, headers: Uint8Array | undefined, orderingKey: string | undefined, priority: number | undefined): Uint8Array {
  // One buffer, hashed in one call: per call, a hash object costs more than hashing a small message.
  const key = orderingKey === undefined ? '' : `k${orderingKey}`;
  const h = headers ?? EMPTY;
  const buf = Buffer.allocUnsafe(13 + data.length + h.length + Buffer.byteLength(key));
  let at = buf.writeUInt32BE(data.length, 0);
  buf.set(data, at);
  at = buf.writeUInt32BE(h.length, at + data.length);
  buf.set(h, at);
  at = buf.writeUInt32BE(Buffer.byteLength(key), at + h.length);
  at += buf.write(key, at);
  buf[at] = priority ?? 0;
  return new Uint8Array(sha256(buf).subarray(0, 16));
}

/** SHA-256 in one call: `crypto.hash` (Node 20.12 on) makes no hash object; older 20.x use one. */
const sha256: (b: Uint8Array) => Uint8Array = typeof crypto.hash === 'function'
  ? (b) => crypto.hash('sha256', b, 'buffer')
  : (b) => crypto.createHash('sha256').update(b).digest();

const EMPTY = new Uint8Array(0);
