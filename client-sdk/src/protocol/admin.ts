/**
 * The admin HTTP API's response bodies (`/v1/admin/...`): a wire contract like the frames, shared by
 * the gateway that produces them and the console that reads them. Types only.
 */

export interface Rates {
  messagesInPerSec: number;
  messagesOutPerSec: number;
  bytesInPerSec: number;
  bytesOutPerSec: number;
}

/** `GET /v1/admin/stats` */
export interface Stats {
  version: string;
  authMode: 'dev' | 'jwt';
  uptimeMs: number;
  /** WebSocket connections (SSE streams and long-polls are counted in `http`). */
  connections: number;
  /** WebSocket subscriptions by state. */
  subscriptions: { live: number; paused: number; catchup: number };
  rates: Rates;
  storeBytes: number;
  topics: number;
  errors: Record<string, number>;
  http: { longPolls: number; eventStreams: number; adminStreams: number };
  /** Gateway nodes alive now (1 unless the store is Redis: cluster mode). The other figures are this node's. */
  nodes: number;
}

/**
 * One row of `GET /v1/admin/nodes`: a gateway node of the cluster, from the figures it publishes
 * every second. A node that stops publishing is dropped within a few seconds. Without cluster mode
 * the list holds one row: the node answering.
 */
export interface NodeRow {
  /** The node's id (in cluster mode: the id its Redis store publishes under). */
  id: string;
  /** Where it is reached: `--public-url`, else the URL it listens on. */
  address: string;
  /** Its WebSocket connections. */
  connections: number;
  /** Its WebSocket subscriptions (every state). */
  subscriptions: number;
  /** When it started (ms since the epoch). */
  startedAt: number;
  uptimeMs: number;
  /** When it last published its figures (ms since the epoch, its own clock). */
  lastSeen: number;
  version: string;
  /** True for the node that answered this request. */
  self: boolean;
}

/** One row of `GET /v1/admin/topics`. */
export interface TopicRow {
  topic: string;
  epoch: string;
  head: number;
  first: number;
  count: number;
  bytes: number;
  subscribers: number;
  live: number;
  paused: number;
  msgsPerSec: number;
  lastTs: number;
}

export interface SubscriberRow {
  transport: 'ws' | 'sse';
  connection: string;
  clientId: string;
  client: string;
  remoteAddress: string;
  userAgent: string;
  subId: number;
  state: 'live' | 'paused' | 'catchup';
  /** Credit left (null for SSE: TCP backpressure governs it). */
  credit: number | null;
  /** Last offset delivered. */
  cursor: number;
  lag: number;
  delivered: number;
  since: number;
  /** The id of the node the subscriber is connected to (see `NodeRow`). */
  node: string;
}

/**
 * `GET /v1/admin/topics/{topic}`: the row with its subscribers listed, from every node; `live` and
 * `paused` count those rows. `unanswered`: nodes that did not answer in time, whose subscribers are
 * missing from the list (empty when every node answered).
 */
export type TopicDetail = Omit<TopicRow, 'subscribers'> & { subscribers: SubscriberRow[]; unanswered: string[] };

/** One row of `GET /v1/admin/connections`. */
export interface ConnectionRow {
  transport: 'ws' | 'sse';
  id: string;
  clientId: string;
  client: string;
  userAgent: string;
  remoteAddress: string;
  connectedAt: number;
  subscriptions: number;
  bytesIn: number;
  bytesOut: number;
  /**
   * WebSocket: bytes the gateway holds for it, written but not yet taken by the kernel (bounded by
   * the high-water mark plus one delivery; see README "Slow and stuck readers"). Absent for event
   * streams, which stop writing at the first write the socket does not take.
   */
  buffered?: number;
  /** The id of the node it is connected to (see `NodeRow`). */
  node: string;
}

/** `DELETE /v1/admin/connections/{id}[?node=<id>]` */
export interface Kicked {
  id: string;
  closed: true;
  /** The node that held the connection and closed it. */
  node: string;
}

/** `event: stats` of `GET /v1/admin/stream`. */
export interface Snapshot {
  stats: Stats;
  topics: TopicRow[];
  /** The nodes, as `GET /v1/admin/nodes` lists them. */
  nodes: NodeRow[];
  /**
   * Nodes that did not answer in time for this stream's connection list or topic detail (its
   * `?connections=1` / `?topic=` parts), whose rows are missing there. Empty when all answered.
   */
  unanswered: string[];
}
