/**
 * The admin API, for the console. Every route needs a token with `admin: true` (dev mode: open);
 * GET routes also take the token as `?token=` because EventSource cannot set headers.
 *
 * - `GET /v1/admin/stats`                 this node's totals and rates, and how many nodes there are
 * - `GET /v1/admin/stats/history`         this node's last 10 minutes of rates, connections and
 *                                         subscriptions, a sample a second (admin-history.ts)
 * - `GET /v1/admin/nodes`                 the gateway nodes (cluster mode: every live one; else this one)
 * - `GET /v1/admin/topics`                one row per topic (stored, or with subscribers on any node),
 *                                         paged: `?limit=&cursor=&q=&sort=` (admin-topics.ts)
 * - `GET /v1/admin/topics/{topic}`        a topic and each of its subscribers, on every node, and
 *                                         the names of its consumer groups
 * - `GET /v1/admin/topics/{topic}/groups` its consumer groups, a row each (admin-groups.ts)
 * - `PUT /v1/admin/topics/{topic}/groups/{group}`          changes a group's settings → its row
 * - `POST /v1/admin/topics/{topic}/groups/{group}/reset`   moves its position ({offset} | {at}) → its row
 * - `POST /v1/admin/topics/{topic}/groups/{group}/replay`  appends its dead letters to the topic again
 * - `GET /v1/admin/topics/{topic}/messages/{offset}/trace` a traced message's journey, from every node
 *                                         → {replayed}
 * - `GET /v1/admin/connections`           WebSocket connections and SSE streams, on every node
 * - `DELETE /v1/admin/connections/{id}`   closes one, on whichever node holds it (`?node=<id>`: ask
 *                                         only that one) (WebSocket: close 4202, the SDK reconnects;
 *                                         SSE: `event: end` {code: "kicked"}, EventSource reconnects)
 * - `POST /v1/admin/backup`               copies this node's disk store into a new directory under
 *                                         `--backup-dir` ({compact?}) → {dir, bytes, topics, epoch,
 *                                         from, ms}, 201 (log/backup.ts: why the gateway copies itself)
 * - `GET /v1/admin/stream`                SSE every second: `event: stats` {stats, topics (the
 *                                         busiest few), topicTotals, nodes, unanswered}; with `?connections=1` also `event: connections`
 *                                         (the list), with `?topic=<name>` also `event: topic` (its detail),
 *                                         and with `?topic=<name>&groups=1` also `event: groups` (its rows);
 *                                         with `?history=1` the first message starts with `event: history`
 *
 * Subscribers and connections list both transports; `transport` says which, `node` where it is.
 * Per-topic rates come from a counter per topic fed by the store's `watch`, sampled once a second.
 * Nothing done every second costs a pass over every topic: the counters hold only topics with
 * recent messages, the stream carries the busiest `--admin-stream-topics` of those and of topics
 * with subscribers, and the store counts its topics without listing them. Only a request for the
 * topic list reads every topic, and sends one page.
 *
 * Across nodes (cluster mode, see cluster/): what only a node knows — its connections, a topic's
 * subscribers on it, closing one of its connections — is asked of every node with a time limit
 * (~500 ms). A node that does not answer in time is named, never waited for: `unanswered` in a
 * topic's detail and in the stream's stats event, the `sluice-unanswered-nodes` header of
 * `GET /v1/admin/connections` (its body stays a plain list). Consumer groups are shown as the node
 * answering holds them (admin-groups.ts).
 */
import { CloseCode, topicError, type Admin as Wire } from '@sluice/client/protocol';

type Stats = Wire.Stats;
type TopicRow = Wire.TopicRow;
type SubscriberRow = Wire.SubscriberRow;
type TopicDetail = Wire.TopicDetail;
type ConnectionRow = Wire.ConnectionRow;
type SubState = SubscriberRow['state'];
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { Principal } from '../auth/auth.js';
import type { NodeRow } from '../cluster/nodes.js';
import { atExpiry } from '../core/expiry.js';
import { groupError } from '../groups/registry.js';
import type { SubscriptionView } from '../hub/subscription.js';
import { BackupError, type BackupResult } from '../log/backup.js';
import { StoreUnavailableError, type TopicInfo, type TopicLog } from '../log/log.js';
import type { Session } from '../session/session.js';
import { AdminGroups, resetTarget, settingsUpdate } from './admin-groups.js';
import { StatsHistory } from './admin-history.js';
import { busiest, mergeActive, pageOf, parseTopicQuery, rowOf, type ActiveTopic, type TopicQuery } from './admin-topics.js';
import { authenticate, begin, guard, methodNotAllowed, notFound, readBody, streamsFull, tokenOf, topicPath, type HttpContext } from './context.js';
import type { Exchange } from './exchange.js';
import { isBad, parseJson } from './messages.js';
import type { LongPolls } from './pull.js';
import { SseWriter, type TopicStream, type TopicStreams } from './sse.js';
import { logger } from '../logger.js';

interface RateCount {
  total: number;
  last: number;
  rate: number;
  /** Set by a sample: nothing new since the last one, whose rate was already 0 (forgotten). */
  quiet: boolean;
}

/** Messages per second per topic, from the store's notifications, sampled every second. */
export class TopicRates {
  private counts = new Map<string, RateCount>();
  private readonly unwatch: () => void;
  private readonly sampler: ReturnType<typeof setInterval>;
  private sampledAt = Date.now();

  constructor(store: TopicLog) {
    this.unwatch = store.watch((topic, _first, entries) => {
      const c = this.counts.get(topic);
      if (c) c.total += entries.length;
      else this.counts.set(topic, { total: entries.length, last: 0, rate: 0, quiet: false });
    });
    this.sampler = setInterval(() => this.sample(), 1000);
    this.sampler.unref();
  }

  rate(topic: string): number {
    return this.counts.get(topic)?.rate ?? 0;
  }

  /** Topics counted now: those with messages in the last two samples (a quiet one is forgotten). */
  get tracked(): number {
    return this.counts.size;
  }

  /** Topics with a rate above 0 now, and their rates. */
  *rated(): IterableIterator<[string, number]> {
    for (const [topic, c] of this.counts) if (c.rate > 0) yield [topic, c.rate];
  }

  close(): void {
    this.unwatch();
    clearInterval(this.sampler);
  }

  private sample(): void {
    const now = Date.now();
    const dt = (now - this.sampledAt) / 1000;
    if (dt <= 0) return;
    this.sampledAt = now;
    // A quiet topic is forgotten: absent means 0/s, so the map holds only active topics.
    let quiet = 0;
    for (const c of this.counts.values()) {
      c.quiet = c.total === c.last && c.rate === 0;
      if (c.quiet) { quiet++; continue; }
      c.rate = Math.round(((c.total - c.last) / dt) * 100) / 100;
      c.last = c.total;
    }
    if (quiet === 0) return;
    if (quiet > this.counts.size / 2) {
      // Most went quiet at once (after a write to every topic): keeping the rest in a new map is
      // cheaper than deleting each (100,000 deletes stalled the loop ~70 ms).
      const kept = new Map<string, RateCount>();
      for (const [topic, c] of this.counts) if (!c.quiet) kept.set(topic, c);
      this.counts = kept;
    } else for (const [topic, c] of this.counts) if (c.quiet) this.counts.delete(topic);
  }
}

/**
 * What one admin stream asked for besides the stats (`?connections=1`, `?topic=<name>`, `&groups=1`;
 * `?history=1` is answered once, in its first message).
 */
export interface FeedWants {
  connections: boolean;
  topic: string | undefined;
  /** The topic's consumer groups too (only with `topic`). */
  groups: boolean;
}

interface FeedReader {
  writer: SseWriter;
  wants: FeedWants;
  cancelExpiry: (() => void) | undefined;
}

/**
 * Live dashboards: every second, each admin stream gets `event: stats` ({stats, topics}), plus
 * `event: connections` and/or `event: topic` when it asked for them. Each part is computed once
 * per tick however many streams want it. A backpressured stream skips ticks (the next snapshot
 * is complete by itself), so nothing queues up for a slow dashboard.
 */
class AdminFeed {
  private readonly readers = new Set<FeedReader>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private busy = false;

  constructor(private readonly render: (wanted: readonly FeedWants[]) => Promise<(wants: FeedWants) => string>) {}

  get size(): number {
    return this.readers.size;
  }

  /** Starts a stream with its first snapshot, after `prelude` (complete SSE events, or ''). */
  async add(ex: Exchange, principal: Principal, wants: FeedWants, prelude = ''): Promise<void> {
    const chunkFor = await this.render([wants]);
    if (!ex.open) return;
    const reader: FeedReader = { writer: new SseWriter(ex, () => {}), wants, cancelExpiry: undefined };
    this.readers.add(reader);
    ex.onAbort(() => this.remove(reader));
    reader.writer.start(`retry: 2000\n${prelude}${chunkFor(wants)}`);
    if (principal.expiresAt !== undefined) {
      reader.cancelExpiry = atExpiry(principal.expiresAt, () => {
        reader.writer.end({ name: 'end', data: { code: 'unauthorized', message: 'token expired' } });
        this.remove(reader);
      });
    }
    this.timer ??= setInterval(() => void this.tick(), 1000);
  }

  close(): void {
    for (const r of this.readers) {
      r.cancelExpiry?.();
      r.writer.end({ name: 'end', data: { code: 'shutting-down', message: 'the gateway is shutting down' } });
    }
    this.readers.clear();
    this.stop();
  }

  private remove(r: FeedReader): void {
    r.cancelExpiry?.();
    this.readers.delete(r);
    if (this.readers.size === 0) this.stop();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const ready = [...this.readers].filter((r) => !r.writer.blocked && r.writer.open);
      if (ready.length === 0) return;
      const chunkFor = await this.render(ready.map((r) => r.wants));
      for (const r of ready) if (!r.writer.blocked && r.writer.open) r.writer.send(chunkFor(r.wants));
    } catch (err) {
      logger.error('admin stream snapshot failed', { err });
    } finally {
      this.busy = false;
    }
  }
}

export class Admin {
  readonly rates: TopicRates;
  readonly feed: AdminFeed;
  readonly groups: AdminGroups;
  readonly history: StatsHistory;

  constructor(
    private readonly ctx: HttpContext,
    private readonly polls: LongPolls,
    private readonly streams: TopicStreams,
    private readonly startedAt = Date.now(),
  ) {
    this.rates = new TopicRates(ctx.store);
    this.groups = new AdminGroups(ctx.groups, ctx.store, ctx.metrics, ctx.nodes);
    this.feed = new AdminFeed((wanted) => this.renderFeed(wanted));
    this.history = new StatsHistory(() => {
      const r = ctx.metrics.rates;
      const c = ctx.hub.stateCounts();
      return {
        messagesInPerSec: r.messagesInPerSec, messagesOutPerSec: r.messagesOutPerSec,
        bytesInPerSec: r.bytesInPerSec, bytesOutPerSec: r.bytesOutPerSec,
        connections: ctx.sessions.size, live: c.live, paused: c.paused,
      };
    });
    // What other nodes ask of this one (cluster/nodes.ts); params come from a peer through Redis.
    ctx.nodes.handle('connections', () => this.localConnections());
    ctx.nodes.handle('active', () => this.localActive());
    ctx.nodes.handle('trace', (p) => {
      const { topic, offset } = p as { topic: string; offset: number };
      return ctx.tracer.get(topic, offset) ?? null;
    });
    ctx.nodes.handle('subscribers', (p) => {
      const { topic, head } = p as { topic: unknown; head: unknown };
      if (typeof topic !== 'string' || typeof head !== 'number') throw new Error('subscribers: bad params');
      return this.subscriberRows(topic, head);
    });
    ctx.nodes.handle('kick', (p) => {
      const { id } = p as { id: unknown };
      if (typeof id !== 'string') throw new Error('kick: bad params');
      return this.localKick(id);
    });
  }

  close(): void {
    this.feed.close();
    this.history.close();
    this.rates.close();
    this.groups.close();
  }

  // ---- data ---------------------------------------------------------------------------------------

  async stats(): Promise<Stats> {
    const { ctx } = this;
    const c = ctx.hub.stateCounts();
    return {
      version: ctx.version,
      authMode: ctx.auth.mode,
      uptimeMs: Date.now() - this.startedAt,
      connections: ctx.sessions.size,
      subscriptions: { live: c.live, paused: c.paused, catchup: c.catchup + c.opening },
      rates: ctx.metrics.rates,
      storeBytes: ctx.store.size(),
      topics: await ctx.store.topicCount(),
      errors: ctx.metrics.errorCounts(),
      http: { longPolls: this.polls.size, eventStreams: this.streams.size, adminStreams: this.feed.size },
      nodes: ctx.nodes.count,
    };
  }

  nodes(): Promise<NodeRow[]> {
    return this.ctx.nodes.list();
  }

  /**
   * One page of the topic list: every stored topic and every topic with subscribers on any node,
   * under `query` (admin-topics.ts). Reads every topic's info (in memory for the disk and memory
   * stores), and builds rows for the page only.
   */
  async topicPage(query: TopicQuery): Promise<{ rows: TopicRow[]; next: string | undefined; total: number; unanswered: string[] }> {
    const { store } = this.ctx;
    const [infos, { active, unanswered }] = await Promise.all([store.topics(), this.active()]);
    // Topics with subscribers but nothing stored yet (not in `topics()`) are listed too.
    const unstored = (await Promise.all([...active.keys()].map((t) => store.info(t)))).filter((i) => i.head === 0);
    return { ...pageOf(unstored.length > 0 ? [...infos, ...unstored] : infos, active, query), unanswered };
  }

  /** The busiest topics' rows (at most `--admin-stream-topics`) and figures over every topic. */
  async busiestTopics(): Promise<{ rows: TopicRow[]; totals: Wire.TopicTotals; unanswered: string[] }> {
    const { store, http } = this.ctx;
    const [{ active, unanswered }, topics] = await Promise.all([this.active(), store.topicCount()]);
    const top = busiest(active.values(), http.adminStreamTopics);
    const infos = await Promise.all(top.map((a) => store.info(a.topic)));
    let rated = 0;
    let subscribed = 0;
    for (const a of active.values()) {
      if (a.msgsPerSec > 0) rated++;
      if (a.subscribers > 0) subscribed++;
    }
    return { rows: top.map((a, i) => rowOf(infos[i]!, a)), totals: { topics, active: rated, subscribed }, unanswered };
  }

  /** Every node's active topics, merged (admin-topics.ts `mergeActive`). */
  private async active(): Promise<{ active: Map<string, ActiveTopic>; unanswered: string[] }> {
    const { answers, unanswered } = await this.ctx.nodes.gather<ActiveTopic[]>('active', {});
    return { active: mergeActive(answers.map((a) => a.value)), unanswered };
  }

  /**
   * This node's active topics: those with subscribers here (WebSocket or SSE) or a rate above 0.
   * Costs what is active: subscriptions, SSE streams and recently written topics.
   */
  private async localActive(): Promise<ActiveTopic[]> {
    const subscribed = new Set<string>();
    for (const t of this.ctx.hub.activeTopics()) subscribed.add(t.topic);
    for (const s of this.streams.all) subscribed.add(s.topic);
    const out: ActiveTopic[] = [];
    for (const topic of subscribed) {
      // Only an SSE stream's state needs the head (behind it: catching up).
      const head = this.streams.of(topic).length > 0 ? (await this.ctx.store.info(topic)).head : 0;
      out.push({ topic, ...this.localCounts(topic, head), msgsPerSec: this.rates.rate(topic) });
    }
    // Written, with nobody subscribed here: no lookups (after a write to every topic, this is all of them).
    for (const [topic, msgsPerSec] of this.rates.rated()) {
      if (!subscribed.has(topic)) out.push({ topic, subscribers: 0, live: 0, paused: 0, msgsPerSec });
    }
    return out;
  }

  /** A topic's subscribers on this node, by state. */
  private localCounts(topic: string, head: number): { subscribers: number; live: number; paused: number } {
    let subscribers = 0;
    let live = 0;
    let paused = 0;
    for (const sub of this.ctx.hub.subscribers(topic)) {
      subscribers++;
      if (sub.state === 'live') live++;
      else if (sub.state === 'paused') paused++;
    }
    for (const s of this.streams.of(topic)) {
      subscribers++;
      const state = sseState(s, head);
      if (state === 'live') live++;
      else if (state === 'paused') paused++;
    }
    return { subscribers, live, paused };
  }

  private subscriberRows(topic: string, head: number): SubscriberRow[] {
    const { hub, sessions } = this.ctx;
    const subs = hub.subscribers(topic);
    const rows: SubscriberRow[] = [];
    const node = this.ctx.nodes.id;
    const byConn = new Map<unknown, Session>();
    if (subs.length > 0) for (const s of sessions) byConn.set(s.conn, s);
    for (const sub of subs) rows.push(this.wsSubscriber(sub, head, byConn.get(sub.conn), node));
    for (const s of this.streams.of(topic)) rows.push(sseSubscriber(s, head, node));
    return rows;
  }

  private wsSubscriber(sub: SubscriptionView, head: number, session: Session | undefined, node: string): SubscriberRow {
    const { hub } = this.ctx;
    const { credit, cursor } = hub.position(sub);
    const state: SubState = sub.state === 'live' || sub.state === 'paused' ? sub.state : 'catchup';
    return {
      transport: 'ws',
      connection: session?.id ?? sub.conn.id,
      clientId: sub.clientId,
      client: session?.clientName ?? '',
      remoteAddress: session?.peer.remoteAddress ?? '',
      userAgent: session?.peer.userAgent ?? '',
      subId: sub.id,
      state,
      credit,
      cursor,
      lag: Math.max(0, head - cursor),
      delivered: hub.delivered(sub),
      since: sub.createdAt,
      node,
    };
  }

  /** A topic and its subscribers; undefined when it has no messages, no subscribers and no groups. */
  async topic(topic: string): Promise<TopicDetail | undefined> {
    const detail = await this.topicDetail(topic);
    return detail.head === 0 && detail.subscribers.length === 0 && detail.groups.length === 0 ? undefined : detail;
  }

  /**
   * A topic and its subscribers on every node, also when it has none yet (a live page waiting for
   * its topic). Every node measures lag against the same head, read here.
   */
  async topicDetail(topic: string): Promise<TopicDetail> {
    const [info, groups] = await Promise.all([this.ctx.store.info(topic), this.groups.names(topic)]);
    const { answers, unanswered } = await this.ctx.nodes.gather<SubscriberRow[]>('subscribers', { topic, head: info.head });
    const subscribers = answers.flatMap((a) => a.value);
    const { subscribers: _local, ...row } = rowOf(info, { topic, ...this.localCounts(topic, info.head), msgsPerSec: this.rates.rate(topic) });
    return {
      ...row,
      live: subscribers.filter((s) => s.state === 'live').length,
      paused: subscribers.filter((s) => s.state === 'paused').length,
      subscribers,
      unanswered,
      groups,
    };
  }

  /** The connections of every node, and the nodes that did not answer in time. */
  async connections(): Promise<{ rows: ConnectionRow[]; unanswered: string[] }> {
    const { answers, unanswered } = await this.ctx.nodes.gather<ConnectionRow[]>('connections', {});
    return { rows: answers.flatMap((a) => a.value), unanswered };
  }

  /** This node's connections. */
  private localConnections(): ConnectionRow[] {
    const rows: ConnectionRow[] = [];
    const node = this.ctx.nodes.id;
    for (const s of this.ctx.sessions) {
      rows.push({
        transport: 'ws',
        id: s.id,
        clientId: s.clientId,
        client: s.clientName,
        userAgent: s.peer.userAgent,
        remoteAddress: s.peer.remoteAddress,
        connectedAt: s.connectedAt,
        subscriptions: s.subs.size,
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        buffered: s.conn.bufferedAmount(),
        node,
      });
    }
    for (const s of this.streams.all) {
      rows.push({
        transport: 'sse',
        id: s.id,
        clientId: s.clientId,
        client: '',
        userAgent: s.userAgent,
        remoteAddress: s.remoteAddress,
        connectedAt: s.since,
        subscriptions: 1,
        bytesIn: 0,
        bytesOut: s.writer.bytesOut,
        node,
      });
    }
    return rows;
  }

  /**
   * Closes a connection or stream on the node that holds it (`node`: only that one is asked).
   * `closedOn` is that node's id, undefined when no node that answered has it; `unanswered`
   * names the nodes that did not answer in time (one of them may hold it). A `node` that is not
   * listed is not asked: nothing is closed, and nobody is unanswered.
   */
  async kick(id: string, node?: string): Promise<{ closedOn: string | undefined; unanswered: string[] }> {
    const { nodes } = this.ctx;
    if (node !== undefined) {
      if (!(await nodes.list()).some((n) => n.id === node)) return { closedOn: undefined, unanswered: [] };
      try {
        return { closedOn: (await nodes.ask<boolean>(node, 'kick', { id })) ? node : undefined, unanswered: [] };
      } catch {
        return { closedOn: undefined, unanswered: [node] };
      }
    }
    const { answers, unanswered } = await nodes.gather<boolean>('kick', { id });
    return { closedOn: answers.find((a) => a.value)?.node, unanswered };
  }

  /** Closes a connection or stream of this node; false when there is none with this id. */
  private localKick(id: string): boolean {
    for (const s of this.ctx.sessions) {
      if (s.id === id) {
        logger.info('connection kicked by an administrator', { session: id, client: s.clientId, address: s.peer.remoteAddress });
        s.disconnect(CloseCode.KICKED, 'disconnected by an administrator');
        return true;
      }
    }
    for (const s of this.streams.all) {
      if (s.id === id) {
        logger.info('event stream kicked by an administrator', { stream: id, client: s.clientId, address: s.remoteAddress });
        this.streams.end(s, 'kicked', 'disconnected by an administrator');
        return true;
      }
    }
    return false;
  }

  /**
   * Renders one tick of the admin feed: the parts the given streams want, each once, and a
   * function that assembles a stream's chunk from them.
   */
  private async renderFeed(wanted: readonly FeedWants[]): Promise<(wants: FeedWants) => string> {
    const topicNames = [...new Set(wanted.flatMap((w) => (w.topic === undefined ? [] : [w.topic])))];
    const groupTopics = [...new Set(wanted.flatMap((w) => (w.topic !== undefined && w.groups ? [w.topic] : [])))];
    const [stats, topics, nodes, connections, details, groupRows] = await Promise.all([
      this.stats(),
      this.busiestTopics(),
      this.nodes(),
      wanted.some((w) => w.connections) ? this.connections() : undefined,
      Promise.all(topicNames.map((t) => this.topicDetail(t))),
      Promise.all(groupTopics.map((t) => this.groups.rows(t))),
    ]);
    // The snapshot is the same for every stream but for `unanswered`, which names the nodes missing
    // from the parts that stream asked for: serialised once, closed per stream.
    const snapshot: Omit<Wire.Snapshot, 'unanswered'> = { stats, topics: topics.rows, topicTotals: topics.totals, nodes };
    const head = `event: stats\ndata: ${JSON.stringify(snapshot).slice(0, -1)},"unanswered":`;
    const connectionsChunk = connections ? `event: connections\ndata: ${JSON.stringify(connections.rows)}\n\n` : '';
    const detailChunks = new Map(details.map((d, i) => [topicNames[i]!, { chunk: `event: topic\ndata: ${JSON.stringify(d)}\n\n`, unanswered: d.unanswered }]));
    const groupChunks = new Map(groupRows.map((rows, i) => [groupTopics[i]!, `event: groups\ndata: ${JSON.stringify(rows)}\n\n`]));
    return (w) => {
      const detail = w.topic === undefined ? undefined : detailChunks.get(w.topic);
      const groups = w.topic !== undefined && w.groups ? groupChunks.get(w.topic) ?? '' : '';
      const unanswered = new Set([...topics.unanswered, ...(w.connections ? connections?.unanswered ?? [] : []), ...(detail?.unanswered ?? [])]);
      return `${head}${JSON.stringify([...unanswered])}}\n\n${w.connections ? connectionsChunk : ''}${detail?.chunk ?? ''}${groups}`;
    };
  }

  // ---- routes -------------------------------------------------------------------------------------

  /** Opens an admin exchange: authenticated, and admin. Answers 401/403 itself. */
  private async principal(ex: Exchange, token: string | undefined | null): Promise<Principal | undefined> {
    const p = await authenticate(ex, this.ctx, token);
    if (!p || !ex.open) return undefined;
    if (!p.admin) {
      ex.error('forbidden', 'the admin API needs a token with admin: true');
      return undefined;
    }
    return p;
  }

  /** Registers a GET route that answers JSON from `body`. */
  private getJson(app: TemplatedApp, path: string, body: () => Promise<unknown>): void {
    app.get(path, (res, req) => {
      const ex = begin(res, req, 'admin', this.ctx);
      if (!ex) return;
      const token = tokenOf(req, true);
      guard(ex, this.ctx, async () => {
        if (!(await this.principal(ex, token))) return;
        ex.json(200, await body());
      });
    });
  }

  mount(app: TemplatedApp, streamsOpen: () => number): void {
    this.getJson(app, '/v1/admin/stats', () => this.stats());
    this.getJson(app, '/v1/admin/stats/history', () => Promise.resolve(this.history.snapshot()));
    this.getJson(app, '/v1/admin/nodes', () => this.nodes());
    app.get('/v1/admin/topics', (res, req) => {
      const ex = begin(res, req, 'admin', this.ctx);
      if (!ex) return;
      const token = tokenOf(req, true);
      const query = parseTopicQuery({ limit: req.getQuery('limit'), cursor: req.getQuery('cursor'), q: req.getQuery('q'), sort: req.getQuery('sort') });
      guard(ex, this.ctx, async () => {
        if (!(await this.principal(ex, token))) return;
        if (typeof query === 'string') return ex.error('bad-request', query);
        const { rows, next, total, unanswered } = await this.topicPage(query);
        const headers: Record<string, string> = { 'sluice-total-count': String(total) };
        if (next !== undefined) headers['sluice-next-cursor'] = next;
        if (unanswered.length > 0) headers['sluice-unanswered-nodes'] = unanswered.join(',');
        ex.json(200, rows, headers);
      });
    });
    app.get('/v1/admin/topics/*', (res, req) => this.topicRoute(res, req));
    app.put('/v1/admin/topics/*', (res, req) => this.groupRoute(res, req));
    app.post('/v1/admin/topics/*', (res, req) => this.groupRoute(res, req));
    app.get('/v1/admin/connections', (res, req) => {
      const ex = begin(res, req, 'admin', this.ctx);
      if (!ex) return;
      const token = tokenOf(req, true);
      guard(ex, this.ctx, async () => {
        if (!(await this.principal(ex, token))) return;
        const { rows, unanswered } = await this.connections();
        ex.json(200, rows, unanswered.length > 0 ? { 'sluice-unanswered-nodes': unanswered.join(',') } : undefined);
      });
    });
    app.del('/v1/admin/connections/:id', (res, req) => {
      const ex = begin(res, req, 'admin', this.ctx);
      if (!ex) return;
      const token = tokenOf(req, false);
      const id = decodeURIComponent(req.getParameter(0) ?? '');
      const node = req.getQuery('node') || undefined;
      guard(ex, this.ctx, async () => {
        if (!(await this.principal(ex, token))) return;
        const { closedOn, unanswered } = await this.kick(id, node);
        if (closedOn !== undefined) return ex.json(200, { id, closed: true, node: closedOn } satisfies Wire.Kicked);
        const shown = id.slice(0, 64);
        if (unanswered.length > 0) {
          return ex.error('unavailable', `no node that answered has connection ${shown}; node(s) ${unanswered.join(', ')} did not answer in time: retry`);
        }
        ex.error('not-found', node === undefined ? `no connection ${shown}` : `no connection ${shown} on node ${node.slice(0, 64)}`);
      });
    });
    app.post('/v1/admin/backup', (res, req) => this.backupRoute(res, req));
    app.get('/v1/admin/stream', (res, req) => {
      const ex = begin(res, req, 'admin_stream', this.ctx);
      if (!ex) return;
      const token = tokenOf(req, true);
      const connections = ['1', 'true'].includes(req.getQuery('connections') ?? '');
      const topic = req.getQuery('topic') || undefined;
      const groups = ['1', 'true'].includes(req.getQuery('groups') ?? '');
      const history = ['1', 'true'].includes(req.getQuery('history') ?? '');
      guard(ex, this.ctx, async () => {
        const p = await this.principal(ex, token);
        if (!p) return;
        const invalid = topic === undefined ? null : topicError(topic, { allowReserved: true });
        if (invalid) return ex.error('invalid-topic', invalid);
        if (streamsFull(ex, this.ctx, streamsOpen)) return;
        const prelude = history ? `event: history\ndata: ${JSON.stringify(this.history.snapshot())}\n\n` : '';
        await this.feed.add(ex, p, { connections, topic, groups }, prelude);
      });
    });
  }

  /**
   * A backup of this node's disk store, taken by this process (never a second one: log/backup.ts),
   * into a new directory under `--backup-dir`; the body may ask for `{"compact": true}`.
   */
  private backupRoute(res: HttpResponse, req: HttpRequest): void {
    const ex = begin(res, req, 'admin', this.ctx);
    if (!ex) return;
    const token = tokenOf(req, false);
    const body = readBody(ex, req.getHeader('content-length'), this.ctx.http.maxBody);
    guard(ex, this.ctx, async () => {
      if (!(await this.principal(ex, token))) return;
      const bytes = await body;
      if (!bytes || !ex.open) return;
      const doc = bytes.length > 0 ? parseJson(bytes) : {};
      if (isBad(doc) || typeof doc !== 'object' || doc === null || Array.isArray(doc)) return ex.error('bad-request', 'the body must be a JSON object');
      const { compact } = doc as { compact?: unknown };
      if (compact !== undefined && typeof compact !== 'boolean') return ex.error('bad-request', 'compact must be true or false');
      const backups = this.ctx.backups;
      if (!backups) {
        return ex.error('not-found', this.ctx.store.kind === 'disk'
          ? 'this gateway takes no backups: start it with --backup-dir <directory> (SLUICE_BACKUP_DIR)'
          : `this gateway's store is ${this.ctx.store.kind}: only the disk store is backed up by the gateway`);
      }
      let r: BackupResult;
      try {
        r = await backups.take({ compact: compact === true });
      } catch (err) {
        // Another backup in progress, or the gateway closing: nothing was done.
        if (err instanceof BackupError) return ex.error('unavailable', `${err.message}: retry later`, undefined, { 'retry-after': '1' });
        logger.error('backup failed', { err, dir: backups.dir });
        const full = (err as { code?: unknown }).code === 'ENOSPC' || /no space left/i.test((err as Error).message);
        return ex.error(full ? 'insufficient-storage' : 'internal', `the backup failed: ${(err as Error).message}`);
      }
      logger.info(`backed up the store to ${r.dir}`, { ...r });
      ex.json(201, r satisfies Wire.Backup);
    });
  }

  private topicRoute(res: HttpResponse, req: HttpRequest): void {
    const ex = begin(res, req, 'admin', this.ctx);
    if (!ex) return;
    const token = tokenOf(req, true);
    const url = req.getUrl();
    // `…/{topic}/groups` lists its groups (a topic that itself ends in `/groups` is sent encoded).
    const path = topicPath(url, '/v1/admin/topics/', ['groups', '']);
    const traced = /^\/v1\/admin\/topics\/(.+)\/messages\/(\d{1,16})\/trace$/.exec(url);
    guard(ex, this.ctx, async () => {
      if (!(await this.principal(ex, token))) return;
      if (traced) return this.traceRoute(ex, traced[1]!, Number(traced[2]));
      if (!path) return ex.error('bad-request', 'the topic in the path is not decodable');
      const invalid = topicError(path.topic, { allowReserved: true });
      if (invalid) return ex.error('invalid-topic', invalid);
      if (path.action === 'groups') return ex.json(200, await this.groups.rows(path.topic));
      const out = await this.topic(path.topic);
      if (!out) return ex.error('not-found', `no topic ${path.topic}`);
      ex.json(200, out);
    });
  }

  /** A message's trace: every node's events merged by time. */
  private async traceRoute(ex: Exchange, rawTopic: string, offset: number): Promise<void> {
    let topic: string;
    try {
      topic = decodeURIComponent(rawTopic);
    } catch {
      return ex.error('bad-request', 'the topic in the path is not decodable');
    }
    const invalid = topicError(topic, { allowReserved: true });
    if (invalid) return ex.error('invalid-topic', invalid);
    const { answers, unanswered } = await this.ctx.nodes.gather<{ events: Wire.TraceEvent[]; dropped: Record<string, number> } | null>('trace', { topic, offset });
    const out: Wire.Trace = { topic, offset, events: [], dropped: {}, unanswered };
    for (const { value } of answers) {
      if (!value) continue;
      out.events.push(...value.events);
      for (const [kind, n] of Object.entries(value.dropped)) out.dropped[kind] = (out.dropped[kind] ?? 0) + n;
    }
    // By time; a stable sort keeps a node's own events of the same millisecond in their order.
    out.events.sort((a, b) => a.at - b.at);
    ex.json(200, out);
  }

  /** PUT (settings) and POST (reset, replay) on one group. Called in the synchronous top. */
  private groupRoute(res: HttpResponse, req: HttpRequest): void {
    const ex = begin(res, req, 'admin', this.ctx);
    if (!ex) return;
    const method = req.getMethod().toUpperCase();
    const url = req.getUrl();
    const token = tokenOf(req, false);
    const body = readBody(ex, req.getHeader('content-length'), this.ctx.http.maxBody);
    guard(ex, this.ctx, async () => {
      if (!(await this.principal(ex, token))) return;
      const path = groupActionPath(url);
      if (path === undefined) return notFound(ex, method, url);
      if (path === null) return ex.error('bad-request', 'the topic or group in the path is not decodable');
      const allow = path.action === undefined ? 'PUT' : 'POST';
      if (method !== allow) return methodNotAllowed(ex, method, `${allow}, OPTIONS`);
      const { topic, group, action } = path;
      const invalid = topicError(topic, { allowReserved: true });
      if (invalid) return ex.error('invalid-topic', invalid);
      const badGroup = groupError(group);
      if (badGroup) return ex.error('invalid-group', badGroup);
      const bytes = await body;
      if (!bytes || !ex.open) return;
      const doc = bytes.length > 0 ? parseJson(bytes) : {};
      if (isBad(doc) || typeof doc !== 'object' || doc === null || Array.isArray(doc)) return ex.error('bad-request', 'the body must be a JSON object');
      const fields = doc as Record<string, unknown>;
      // Only groups that exist: a PUT never creates one (it would start where no member asked).
      if (!(await this.groups.exists(topic, group))) return ex.error('not-found', `no group ${group} of topic ${topic}`);
      try {
        if (action === undefined) {
          const update = settingsUpdate(topic, fields);
          if (typeof update === 'string') return ex.error('bad-request', update);
          if (Object.keys(update).length > 0) await this.ctx.groups.configure(topic, group, update);
          return ex.json(200, await this.groups.rowOf(topic, group));
        }
        if (action === 'reset') {
          const target = resetTarget(fields, (await this.ctx.store.info(topic)).head);
          if (typeof target === 'string') return ex.error('bad-request', target);
          await this.ctx.groups.reset(topic, group, target);
          return ex.json(200, await this.groups.rowOf(topic, group));
        }
        if (Object.keys(fields).length > 0) return ex.error('bad-request', 'replay takes no parameters');
        ex.json(200, { replayed: await this.ctx.groups.replay(topic, group) } satisfies Wire.Replayed);
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err;
        ex.error(err.code, err.message, undefined, { 'retry-after': String(err.retryAfterS) });
      }
    });
  }
}

/**
 * `/v1/admin/topics/<topic>/groups/<group>[/reset|/replay]`, both percent-decoded (the topic may
 * contain `/`): undefined when the path is not a group's, null when it does not decode.
 */
function groupActionPath(url: string): { topic: string; group: string; action: 'reset' | 'replay' | undefined } | null | undefined {
  const m = /^\/v1\/admin\/topics\/(.+)\/groups\/([^/]+?)(?:\/(reset|replay))?$/.exec(url);
  if (!m) return undefined;
  try {
    return { topic: decodeURIComponent(m[1]!), group: decodeURIComponent(m[2]!), action: m[3] as 'reset' | 'replay' | undefined };
  } catch {
    return null;
  }
}

/** An SSE stream's state in the console's terms: backpressured = paused, behind = catchup. */
function sseState(s: TopicStream, head: number): SubState {
  return s.writer.blocked ? 'paused' : s.cursor - 1 < head ? 'catchup' : 'live';
}

function sseSubscriber(s: TopicStream, head: number, node: string): SubscriberRow {
  const cursor = s.cursor - 1;
  return {
    transport: 'sse',
    connection: s.id,
    clientId: s.clientId,
    client: '',
    remoteAddress: s.remoteAddress,
    userAgent: s.userAgent,
    subId: 0,
    state: sseState(s, head),
    credit: null,
    cursor,
    lag: Math.max(0, head - cursor),
    delivered: s.delivered,
    since: s.since,
    node,
  };
}

