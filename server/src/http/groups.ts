/**
 * Consumer groups over HTTP, for members that cannot keep a socket open (edge workers):
 *
 *   POST /v1/topics/{topic}/groups/{group}/lease?max=&wait=&consumer=   → {messages, ackWaitMs}
 *   POST /v1/topics/{topic}/groups/{group}/ack    {offsets, consumer?}  → {results}
 *   POST /v1/topics/{topic}/groups/{group}/nack   {offsets, delay?, reason?, consumer?} → {results}
 *
 * An HTTP consumer is a member of the group named `consumer` (default: the token's `sub`; in dev
 * mode `http`): its leases belong to that name, whichever request acknowledges them. A lease
 * request takes up to `max` messages (1–100, default 10), waiting up to `wait` seconds (capped at
 * --max-wait) for the first; between requests the consumer takes no new leases. Messages are the
 * pull's JSON plus `attempt`. Acknowledging an offset not leased to the consumer is refused per
 * offset with `not-leased`. Every route needs the `consume` capability on the topic.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { groupError, NotLeased, type Groups, type Member } from '../groups/registry.js';
import { authenticate, begin, guard, readBody, streamsFull, tokenOf, uintParam, type HttpContext } from './context.js';
import type { Exchange } from './exchange.js';
import { isBad, parseJson } from './messages.js';
import { messageJson } from './messages.js';

const MAX_LEASE = 100;
/** Idle HTTP consumers (no leases, no request) leave their group after this long. */
const IDLE_MS = 60_000;

/** `/v1/topics/<topic>/groups/<group>/<action>` (the topic may contain `/`). */
export function groupPath(url: string): { topic: string; group: string; action: string } | undefined {
  const m = /^\/v1\/topics\/(.+)\/groups\/([^/]+)\/(lease|ack|nack)$/.exec(url);
  if (!m) return undefined;
  try {
    return { topic: decodeURIComponent(m[1]!), group: decodeURIComponent(m[2]!), action: m[3]! };
  } catch {
    return undefined;
  }
}

/** An HTTP consumer: a member that takes leases only while one of its requests is waiting for them. */
class HttpMember implements Member {
  leased = 0;
  lastUsed = Date.now();
  pending: { ex: Exchange; got: string[]; max: number; timer: ReturnType<typeof setTimeout> | undefined } | undefined;
  /** The group's ack wait, as the group said when this consumer joined. */
  ackWaitMs = 0;
  constructor(readonly id: string, readonly clientId: string, readonly topic: string, readonly group: string, private readonly groups: Groups) {}

  /**
   * Leases it may hold: while a request waits, what it holds plus the room left in that request;
   * else what it holds. Computed, not stored: an ack or nack between requests lowers `leased` and
   * must not open room that no request would receive (the group would lease into the void).
   */
  get window(): number {
    const p = this.pending;
    return p ? this.leased + Math.max(0, p.max - p.got.length) : this.leased;
  }

  deliver(offset: number, attempt: number, entry: Uint8Array): void {
    const p = this.pending;
    if (!p) return; // only a lease relayed from another node while the answer went out (cluster mode): it expires and goes again
    p.got.push(messageJson(offset, entry).replace(/^\{/, `{"attempt":${attempt},`));
    if (p.got.length === 1) setImmediate(() => this.answer());
  }

  /** Answers the waiting request with what it got, and takes no more leases. */
  answer(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    if (p.timer) clearTimeout(p.timer);
    this.lastUsed = Date.now();
    this.groups.poke(this.topic, this.group); // a group on another node learns the smaller window
    p.ex.send(200, 'application/json', `{"messages":[${p.got.join(',')}],"ackWaitMs":${this.ackWaitMs}}`);
  }
}

export class HttpConsumers {
  private readonly members = new Map<string, HttpMember>();
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(private readonly groups: Groups) {
    this.sweeper = setInterval(() => this.sweep(), IDLE_MS / 4);
    this.sweeper.unref();
  }

  /** Lease requests waiting now. */
  get waiting(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.pending) n++;
    return n;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const m of this.members.values()) {
      m.answer();
      this.groups.leave(m.topic, m.group, m);
    }
    this.members.clear();
  }

  async member(topic: string, group: string, consumer: string, clientId: string): Promise<HttpMember> {
    const k = `${topic}\0${group}\0${consumer}`;
    let m = this.members.get(k);
    if (!m) {
      const created = new HttpMember(`http:${consumer}`, clientId, topic, group, this.groups);
      this.members.set(k, created);
      try {
        created.ackWaitMs = (await this.groups.join(topic, group, created)).settings.ackWaitMs;
      } catch (err) {
        this.members.delete(k);
        throw err;
      }
      m = created;
    }
    m.lastUsed = Date.now();
    return m;
  }

  existing(topic: string, group: string, consumer: string): HttpMember | undefined {
    return this.members.get(`${topic}\0${group}\0${consumer}`);
  }

  private sweep(): void {
    const old = Date.now() - IDLE_MS;
    for (const [k, m] of this.members) {
      if (m.pending || m.leased > 0 || m.lastUsed > old) continue;
      this.members.delete(k);
      this.groups.leave(m.topic, m.group, m);
    }
  }
}

/** `POST /v1/topics/{topic}/groups/{group}/{lease|ack|nack}`. Called in the synchronous top. */
export function groupRoute(res: HttpResponse, req: HttpRequest, path: { topic: string; group: string; action: string },
  ctx: HttpContext, consumers: HttpConsumers, streamsOpen: () => number): void {
  const ex = begin(res, req, `group_${path.action}`, ctx);
  if (!ex) return;
  const token = tokenOf(req, false);
  const maxParam = uintParam(req.getQuery('max'));
  const waitParam = req.getQuery('wait') ?? '';
  const consumerParam = req.getQuery('consumer') ?? '';
  const body = readBody(ex, req.getHeader('content-length'), ctx.http.maxBody);

  guard(ex, ctx, async () => {
    const principal = await authenticate(ex, ctx, token);
    if (!principal || !ex.open) return;
    const bad = groupError(path.group);
    if (bad) return ex.error('invalid-group', bad);
    if (!principal.can('consume', path.topic)) return ex.error('forbidden', `not allowed to consume ${path.topic}`);
    const bytes = await body;
    if (!bytes || !ex.open) return;
    const doc = bytes.length > 0 ? parseJson(bytes) : {};
    if (isBad(doc) || typeof doc !== 'object' || doc === null || Array.isArray(doc)) return ex.error('bad-request', 'the body must be a JSON object');
    const o = doc as Record<string, unknown>;
    const consumer = consumerParam || (typeof o.consumer === 'string' ? o.consumer : '') || (ctx.auth.mode === 'dev' ? 'http' : principal.id);
    if (consumer.length > 128) return ex.error('bad-request', 'consumer is at most 128 characters');

    if (path.action === 'lease') {
      const max = maxParam ?? (typeof o.max === 'number' ? o.max : 10);
      if (Number.isNaN(max) || !Number.isInteger(max) || max < 1 || max > MAX_LEASE) return ex.error('bad-request', `max must be 1-${MAX_LEASE}`);
      const waitS = waitParam ? Number(waitParam) : typeof o.wait === 'number' ? o.wait : 0;
      if (!Number.isFinite(waitS) || waitS < 0) return ex.error('bad-request', 'wait must be a number of seconds');
      const waitMs = Math.round(Math.min(waitS, ctx.http.maxWaitS) * 1000);
      if (waitMs > 0 && streamsFull(ex, ctx, streamsOpen)) return;
      const m = await consumers.member(path.topic, path.group, consumer, principal.id);
      const replaced = m.pending;
      if (replaced) {
        // Its timer MUST go with it: left running, it would answer the request that replaced it early.
        if (replaced.timer) clearTimeout(replaced.timer);
        replaced.ex.error('bad-request', 'another lease request of this consumer replaced this one', 409);
      }
      m.pending = { ex, got: [], max, timer: undefined };
      ex.onAbort(() => {
        if (m.pending?.ex !== ex) return;
        if (m.pending.timer) clearTimeout(m.pending.timer);
        m.pending = undefined;
      });
      ctx.groups.poke(path.topic, path.group);
      if (m.pending && m.pending.got.length === 0) {
        if (waitMs === 0) m.answer();
        else m.pending.timer = setTimeout(() => m.answer(), waitMs);
      }
      return;
    }

    const offsets = o.offsets;
    if (!Array.isArray(offsets) || offsets.length === 0 || offsets.length > 1000 || !offsets.every((x) => Number.isSafeInteger(x) && x > 0)) {
      return ex.error('bad-request', 'offsets must be an array of 1-1000 offsets');
    }
    const m = consumers.existing(path.topic, path.group, consumer);
    const notLeased = (offset: number) => ({ offset, error: { code: 'not-leased', message: new NotLeased(offset).message } });
    if (path.action === 'ack') {
      const refused = new Set(m ? await ctx.groups.ack(path.topic, path.group, m, offsets as number[]) : offsets);
      return ex.json(200, { results: (offsets as number[]).map((offset) => (refused.has(offset) ? notLeased(offset) : { offset, ok: true })) });
    }
    const delay = o.delay;
    if (delay !== undefined && (!Number.isSafeInteger(delay) || (delay as number) < 0)) return ex.error('bad-request', 'delay must be a number of ms');
    const reason = typeof o.reason === 'string' ? o.reason.slice(0, 256) : undefined;
    const results = await Promise.all((offsets as number[]).map(async (offset) => {
      try {
        if (!m) throw new NotLeased(offset);
        await ctx.groups.nack(path.topic, path.group, m, offset, delay as number | undefined, reason);
        return { offset, ok: true };
      } catch (err) {
        if (!(err instanceof NotLeased)) throw err;
        return notLeased(offset);
      }
    }));
    ex.json(200, { results });
  });
}
