/**
 * The gateway nodes an admin request can reach: who they are (`list`), and a way to ask each of
 * them something only it knows — its connections, a topic's subscribers on it, to close one of its
 * connections.
 *
 * Two implementations, one contract:
 * - `SoloNode` (disk and memory stores): the node alone; asking it runs the handler in-process.
 * - `RedisNodes` (cluster mode, redis-nodes.ts): a registry in Redis that every node refreshes each
 *   second, and requests over Redis pub/sub.
 *
 * Contract (what the admin API relies on):
 * - `list()` always holds the node itself (`self: true`), also when Redis cannot be read.
 * - `ask` settles within `timeoutMs` whatever the other node does: with the handler's answer, or
 *   with a NodeUnanswered (no reply in time, or nobody listening), or a NodeFailed (the handler
 *   threw there). It never hangs.
 * - `gather` asks every listed node at once and settles within the same bound; a node that did not
 *   answer is named in `unanswered`, never waited for longer.
 * - Handlers MUST be registered before the node is announced, and answer JSON-serialisable values.
 */
import type { Admin } from '@sluice/client/protocol';
import { logger } from '../logger.js';

export type NodeRow = Admin.NodeRow;

/** What a node publishes about itself every second, besides its identity. */
export interface NodeFigures {
  connections: number;
  subscriptions: number;
}

/** The identity of this node, and where its live figures come from. */
export interface SelfInfo {
  id: string;
  version: string;
  startedAt: number;
  figures: () => NodeFigures;
}

export type Handler = (params: unknown) => unknown;

/** One `gather`: each answering node's value, and the nodes that did not answer. */
export interface Gathered<T> {
  answers: { node: string; value: T }[];
  unanswered: string[];
}

/** A request's time limit when none is given (ms): an admin page must never wait longer. */
export const DEFAULT_ASK_TIMEOUT_MS = 500;

export interface Nodes {
  /** This node's id. */
  readonly id: string;
  /** How many nodes the last `list` saw (1 until then). */
  readonly count: number;
  /** The live nodes, this one included. */
  list(): Promise<NodeRow[]>;
  /** Asks one node; see the contract above. */
  ask<T>(node: string, method: string, params: unknown, timeoutMs?: number): Promise<T>;
  /** Asks every live node (this one in-process). */
  gather<T>(method: string, params: unknown, timeoutMs?: number): Promise<Gathered<T>>;
  /** What this node answers to `method`. */
  handle(method: string, handler: Handler): void;
  /** Starts being listed, under `address` (its URL). */
  announce(address: string): Promise<void>;
  /** Stops being listed (at once, not after the expiry) and stops answering. */
  close(): Promise<void>;
}

/** Another node did not answer in time, or nobody listens on its channel any more. */
export class NodeUnanswered extends Error {
  override name = 'NodeUnanswered';
  constructor(readonly node: string, readonly reason: 'timeout' | 'unreachable', timeoutMs: number) {
    super(reason === 'timeout' ? `node ${node} did not answer within ${timeoutMs} ms` : `node ${node} is not reachable`);
  }
}

/** The handler threw on the asked node (or there is no such method there). */
export class NodeFailed extends Error {
  override name = 'NodeFailed';
  constructor(readonly node: string, readonly detail: string) {
    super(`node ${node}: ${detail}`);
  }
}

/**
 * Asks each node with `ask` at once; a node whose request rejects (unanswered, or failed there) is
 * named in `unanswered`. Settles when every request has, so as fast as `ask`'s own bound.
 */
export async function gatherFrom<T>(nodes: readonly string[], ask: (node: string) => Promise<T>): Promise<Gathered<T>> {
  const settled = await Promise.allSettled(nodes.map(ask));
  const out: Gathered<T> = { answers: [], unanswered: [] };
  settled.forEach((r, i) => {
    if (r.status === 'fulfilled') out.answers.push({ node: nodes[i]!, value: r.value });
    else {
      out.unanswered.push(nodes[i]!);
      if (r.reason instanceof NodeFailed) logger.error(r.reason.message);
    }
  });
  return out;
}

/** The handlers of this node, and the row that describes it. Shared by both implementations. */
export class LocalNode {
  private readonly handlers = new Map<string, Handler>();
  address = '';

  constructor(readonly self: SelfInfo) {}

  handle(method: string, handler: Handler): void {
    this.handlers.set(method, handler);
  }

  /** Runs a handler here; rejects with NodeFailed when it throws or does not exist. */
  async run(method: string, params: unknown): Promise<unknown> {
    const h = this.handlers.get(method);
    if (!h) throw new NodeFailed(this.self.id, `no method ${method}`);
    try {
      return await h(params);
    } catch (err) {
      throw new NodeFailed(this.self.id, err instanceof Error ? err.message : String(err));
    }
  }

  row(now = Date.now()): NodeRow {
    const { id, version, startedAt } = this.self;
    return { id, address: this.address, ...this.self.figures(), startedAt, uptimeMs: now - startedAt, lastSeen: now, version, self: true };
  }
}

/** Without cluster mode: one node, asked in-process. */
export class SoloNode implements Nodes {
  readonly count = 1;
  private readonly local: LocalNode;

  constructor(self: SelfInfo) {
    this.local = new LocalNode(self);
  }

  get id(): string {
    return this.local.self.id;
  }

  list(): Promise<NodeRow[]> {
    return Promise.resolve([this.local.row()]);
  }

  async ask<T>(node: string, method: string, params: unknown): Promise<T> {
    if (node !== this.id) throw new NodeUnanswered(node, 'unreachable', 0);
    return (await this.local.run(method, params)) as T;
  }

  gather<T>(method: string, params: unknown): Promise<Gathered<T>> {
    return gatherFrom([this.id], (node) => this.ask<T>(node, method, params));
  }

  handle(method: string, handler: Handler): void {
    this.local.handle(method, handler);
  }

  announce(address: string): Promise<void> {
    this.local.address = address;
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
