/**
 * Cluster mode's `Nodes` (see nodes.ts for the contract): a registry of the gateway nodes in Redis,
 * and requests between them over Redis pub/sub. It uses its own two connections (commands, and
 * a subscriber), opened from the same target as the store's, so a slow admin request never queues
 * behind appends and the store's shard subscriptions stay its own.
 *
 * Redis layout. The hash tag `{#nodes}` puts every key in one slot (MGET works on a Redis Cluster),
 * and `#` cannot occur in a topic name, so these keys never meet a topic's `sl:{<topic>}:…`:
 *
 *   sl:{#nodes}        ZSET    node id → when it last published its figures (ms): the index
 *   sl:{#nodes}:<id>   STRING  its figures as JSON (a NodeRow without `self`), PX `ttlMs`:
 *                              the expiry is the liveness — a node that stops publishing is gone
 *                              from `list()` once it runs out, whatever the index still says
 *
 * Every `beatMs` a node writes both (MULTI), and lists the others. Index entries older than twice
 * the expiry are removed by whoever lists; a node that shuts down removes its own at once.
 *
 * Requests (classic PUBLISH/SUBSCRIBE, not sharded: on a Redis Cluster every node hears them):
 *
 *   sl:node:<id>       what is sent to node <id>: requests, and the replies to its own requests
 *
 *   request  {"k":"q","r":"<request id>","from":"<asker>","m":"<method>","p":<params>}
 *   reply    {"k":"a","r":"<request id>","from":"<answerer>","v":<value>}   or  …"e":"<message>"}
 *
 * A request waits at most its timeout for the reply, then rejects (NodeUnanswered): a reply that
 * comes later is dropped. With a single Redis or Sentinel, PUBLISH says how many listened; 0 means
 * the node is gone, and the request rejects at once instead of waiting. (On a Redis Cluster the
 * count covers one shard only, so there the timeout decides.)
 */
import { connect, type RedisTarget } from '../log/redis.js';
import {
  DEFAULT_ASK_TIMEOUT_MS,
  gatherFrom,
  LocalNode,
  NodeFailed,
  NodeUnanswered,
  type Gathered,
  type Handler,
  type NodeRow,
  type Nodes,
  type SelfInfo,
} from './nodes.js';
import { logger } from '../logger.js';

type Client = ReturnType<typeof connect>;

const LIST_REUSE_MS = 200;

export const NODES_INDEX = 'sl:{#nodes}';
export const nodeKey = (id: string): string => `sl:{#nodes}:${id}`;
export const nodeChannel = (id: string): string => `sl:node:${id}`;

export interface RedisNodesOptions {
  target: RedisTarget;
  /** How long a Redis command may take (ms), as for the store. */
  commandTimeoutMs: number;
  self: SelfInfo;
  /** How often a node publishes its figures (default 1 s). */
  beatMs?: number;
  /** How long its figures live without a refresh (default 4 s): a dead node is gone after this. */
  ttlMs?: number;
  /** How long a request waits for its reply (default 500 ms). */
  askTimeoutMs?: number;
}

type Message =
  | { k: 'q'; r: string; from: string; m: string; p: unknown }
  | { k: 'a'; r: string; from: string; v?: unknown; e?: string };

interface Pending {
  node: string;
  timeoutMs: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class RedisNodes implements Nodes {
  private readonly local: LocalNode;
  private readonly beatMs: number;
  private readonly ttlMs: number;
  private readonly askTimeoutMs: number;
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  /** The ids the last `list` saw (what `count` counts). */
  private known: string[];
  /** The last `list` read and when it started: reused for `LIST_REUSE_MS` (one read serves a whole feed tick). */
  private listing: { at: number; rows: Promise<NodeRow[]> } | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastBeat = 0;
  private closed = false;
  /** Whether the last beat failed: its error is logged once, not every second. */
  private failing = false;

  /** Connects and subscribes to this node's channel; `announce` then makes it listed. */
  static async open(options: RedisNodesOptions): Promise<RedisNodes> {
    const cmd = connect(options.target, options.commandTimeoutMs, { enableAutoPipelining: true });
    const sub = connect(options.target, options.commandTimeoutMs);
    const nodes = new RedisNodes(options, cmd, sub);
    try {
      await Promise.all([cmd.connect(), sub.connect()]);
      await sub.subscribe(nodeChannel(nodes.id));
    } catch (err) {
      cmd.disconnect();
      sub.disconnect();
      throw new Error(`node registry: cannot reach Redis: ${(err as Error).message}`);
    }
    return nodes;
  }

  private constructor(private readonly options: RedisNodesOptions, private readonly cmd: Client, private readonly sub: Client) {
    this.local = new LocalNode(options.self);
    this.beatMs = options.beatMs ?? 1000;
    this.ttlMs = options.ttlMs ?? 4000;
    this.askTimeoutMs = options.askTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
    this.known = [this.id];
    // ioredis reconnects (and resubscribes) by itself; an error event without a listener would be logged as unhandled.
    cmd.on('error', () => undefined);
    sub.on('error', () => undefined);
    sub.on('message', (_channel: string, message: string) => this.onMessage(message));
  }

  get id(): string {
    return this.local.self.id;
  }

  get count(): number {
    return this.known.length;
  }

  handle(method: string, handler: Handler): void {
    this.local.handle(method, handler);
  }

  async announce(address: string): Promise<void> {
    this.local.address = address;
    await this.beat();
    this.timer ??= setInterval(() => void this.beat(), this.beatMs);
    this.timer.unref();
  }

  list(): Promise<NodeRow[]> {
    const now = Date.now();
    if (this.listing && now - this.listing.at < LIST_REUSE_MS) return this.listing.rows;
    this.listing = { at: now, rows: this.read(now) };
    return this.listing.rows;
  }

  private async read(now: number): Promise<NodeRow[]> {
    const rows: NodeRow[] = [this.selfRow(now)];
    try {
      const ids = await this.cmd.zrange(NODES_INDEX, '0', '-1');
      const others = ids.filter((id) => id !== this.id);
      const values = others.length > 0 ? await this.cmd.mget(others.map(nodeKey)) : [];
      let expired = false;
      others.forEach((id, i) => {
        const row = parseRow(id, values[i]);
        if (row) rows.push(row);
        else expired = true;
      });
      if (expired) this.cmd.zremrangebyscore(NODES_INDEX, '-inf', now - 2 * this.ttlMs).catch(() => undefined);
    } catch {
      // Redis unreachable: this node is all that can be said for sure.
    }
    rows.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.id < b.id ? -1 : 1));
    this.known = rows.map((r) => r.id);
    return rows;
  }

  ask<T>(node: string, method: string, params: unknown, timeoutMs = this.askTimeoutMs): Promise<T> {
    if (node === this.id) return this.local.run(method, params) as Promise<T>;
    if (this.closed) return Promise.reject(new NodeUnanswered(node, 'unreachable', timeoutMs));
    const r = String(++this.seq);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => this.settle(r, new NodeUnanswered(node, 'timeout', timeoutMs)), timeoutMs);
      this.pending.set(r, { node, timeoutMs, resolve: resolve as (v: unknown) => void, reject, timer });
      const request: Message = { k: 'q', r, from: this.id, m: method, p: params };
      this.cmd.publish(nodeChannel(node), JSON.stringify(request)).then(
        (listeners) => {
          if (listeners === 0 && this.options.target.mode !== 'cluster') this.settle(r, new NodeUnanswered(node, 'unreachable', timeoutMs));
        },
        () => this.settle(r, new NodeUnanswered(node, 'unreachable', timeoutMs)),
      );
    });
  }

  /** Asks the nodes listed now (a dead node drops out as soon as its figures expire). */
  async gather<T>(method: string, params: unknown, timeoutMs = this.askTimeoutMs): Promise<Gathered<T>> {
    const ids = (await this.list()).map((n) => n.id);
    return gatherFrom(ids, (node) => this.ask<T>(node, method, params, timeoutMs));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const [r, p] of this.pending) this.settle(r, new NodeUnanswered(p.node, 'unreachable', p.timeoutMs));
    if (this.lastBeat > 0) await this.cmd.multi().del(nodeKey(this.id)).zrem(NODES_INDEX, this.id).exec().catch(() => undefined);
    await Promise.allSettled([this.cmd.quit(), this.sub.quit()]);
  }

  // ---- internals ----------------------------------------------------------------------------------

  private selfRow(now: number): NodeRow {
    return { ...this.local.row(now), lastSeen: this.lastBeat || now };
  }

  /** Publishes this node's figures with their expiry, and refreshes whom `gather` asks. */
  private async beat(): Promise<void> {
    if (this.closed) return;
    const now = Date.now();
    const { self: _self, ...figures } = this.local.row(now);
    try {
      await this.cmd.multi().set(nodeKey(this.id), JSON.stringify(figures), 'PX', this.ttlMs).zadd(NODES_INDEX, now, this.id).exec();
      this.lastBeat = now;
      if (this.failing) logger.warn('node registry: publishing again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) logger.error(`node registry: cannot publish this node's figures: ${(err as Error).message}`);
      this.failing = true;
    }
    await this.list();
  }

  private onMessage(raw: string): void {
    let msg: Message;
    try {
      msg = JSON.parse(raw) as Message;
    } catch {
      return;
    }
    if (typeof msg !== 'object' || msg === null || typeof msg.r !== 'string' || typeof msg.from !== 'string') return;
    if (msg.k === 'q' && typeof msg.m === 'string') void this.answer(msg);
    else if (msg.k === 'a') {
      const p = this.pending.get(msg.r);
      if (!p || p.node !== msg.from) return;
      if (typeof msg.e === 'string') this.settle(msg.r, new NodeFailed(msg.from, msg.e));
      else this.settle(msg.r, undefined, msg.v);
    }
  }

  private async answer(q: Extract<Message, { k: 'q' }>): Promise<void> {
    let reply: Message;
    try {
      reply = { k: 'a', r: q.r, from: this.id, v: await this.local.run(q.m, q.p) };
    } catch (err) {
      reply = { k: 'a', r: q.r, from: this.id, e: err instanceof NodeFailed ? err.detail : String(err) };
    }
    if (this.closed) return;
    this.cmd.publish(nodeChannel(q.from), JSON.stringify(reply)).catch(() => undefined);
  }

  private settle(r: string, err: Error | undefined, value?: unknown): void {
    const p = this.pending.get(r);
    if (!p) return;
    this.pending.delete(r);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(value);
  }
}

/** A registry entry, or undefined when it expired (or is not one). */
function parseRow(id: string, raw: string | null | undefined): NodeRow | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as Omit<NodeRow, 'self'>;
    if (v.id !== id) return undefined;
    return {
      id,
      address: String(v.address),
      connections: Number(v.connections),
      subscriptions: Number(v.subscriptions),
      startedAt: Number(v.startedAt),
      uptimeMs: Number(v.uptimeMs),
      lastSeen: Number(v.lastSeen),
      version: String(v.version),
      self: false,
    };
  } catch {
    return undefined;
  }
}
