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

/**
 * One row of `GET /v1/admin/topics`. The list is paged (the body stays a plain array of rows):
 * `?limit=` rows (default 1000, at most 10,000), `?cursor=` the `sluice-next-cursor` header of the
 * page before (absent on the last page), `?q=` topics containing it (case-insensitive), `?sort=` a
 * `TopicSortKey`, `-` before it for descending (default `topic`). The `sluice-total-count` header
 * counts every topic `q` matches. Across nodes (cluster mode) `subscribers`, `live` and `paused`
 * are summed over every node that answered (`sluice-unanswered-nodes` names the others), and
 * `msgsPerSec` is the highest rate a node saw.
 */
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

/** What `GET /v1/admin/topics?sort=` orders by (ties: by topic name, ascending). */
export type TopicSortKey = 'topic' | 'head' | 'first' | 'count' | 'bytes' | 'subscribers' | 'live' | 'paused' | 'msgsPerSec' | 'lastTs';

/** Figures over every topic, in each admin stream snapshot (whose `topics` are only the busiest). */
export interface TopicTotals {
  /** Stored topics (as `Stats.topics`). */
  topics: number;
  /** Topics that stored messages in the last second (msgsPerSec > 0). */
  active: number;
  /** Topics with at least one subscriber (WebSocket or SSE), on any node that answered. */
  subscribed: number;
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
 * missing from the list (empty when every node answered). `groups`: the names of the topic's
 * consumer groups (saved in the store, or held by this node), sorted; their rows are
 * `GET /v1/admin/topics/{topic}/groups`.
 */
export type TopicDetail = Omit<TopicRow, 'subscribers'> & { subscribers: SubscriberRow[]; unanswered: string[]; groups: string[] };

/** A consumer group's settings; `PUT /v1/admin/topics/{topic}/groups/{group}` changes any of them. */
export interface GroupSettings {
  /** How long a lease may go unacknowledged before the message is delivered again (ms). */
  ackWaitMs: number;
  /** Deliveries after which an unacknowledged message is dead-lettered. */
  maxDeliveries: number;
  /** Delay before delivery n + 1 after delivery n failed (ms): entry n - 1, the last repeats; empty: none. */
  backoffMs: number[];
  /** Where its dead letters are appended (default `<topic>.dlq`). */
  deadLetterTopic: string;
}

/** A member of a group: a WebSocket subscription, or an HTTP consumer (named by `consumer`). */
export interface GroupMemberRow {
  /** WebSocket: `<connection id>:<subId>`; HTTP: `http:<consumer>`. */
  id: string;
  clientId: string;
  transport: 'ws' | 'http';
  /** Leases it may hold at once (its credit; HTTP: while a lease request waits). */
  window: number;
  /** Leases it holds now. */
  leased: number;
}

/**
 * One row of `GET /v1/admin/topics/{topic}/groups`: a consumer group as the node answering holds
 * it. Offsets below `floor` are done; `backlog + leased` are the messages up to `head` that are not.
 */
export interface GroupRow {
  group: string;
  /** The ack floor: every offset below it is acknowledged or dead-lettered, durably. */
  floor: number;
  /** The next offset the group reads from the topic. */
  next: number;
  /** The topic's last offset. */
  head: number;
  /** Messages up to `head` neither done nor leased: ready, waiting for a retry or their ordering key, or not read yet. */
  backlog: number;
  /** Leases out now (in flight). */
  leased: number;
  /** Redeliveries (attempt 2 and later) per second, sampled every second. */
  redeliveriesPerSec: number;
  /** Messages dead-lettered, since this node loaded the group. */
  deadLettered: number;
  /** Messages acknowledged, since this node loaded the group. */
  acked: number;
  members: GroupMemberRow[];
  settings: GroupSettings;
}

/** The body of `PUT /v1/admin/topics/{topic}/groups/{group}`: the settings to change. */
export type GroupSettingsUpdate = Partial<GroupSettings>;

/**
 * The body of `POST /v1/admin/topics/{topic}/groups/{group}/reset`: the offset to move to (1 to
 * head + 1), or a time (ms since the epoch): the first message stored at or after it.
 */
export type GroupReset = { offset: number } | { at: number };

/** `POST /v1/admin/topics/{topic}/groups/{group}/replay`: dead letters appended back to the topic. */
export interface Replayed {
  replayed: number;
}

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

/** The answer of `POST /v1/admin/backup`: a copy of the node's disk store, under its `--backup-dir`. */
export interface Backup {
  /** The copy's directory on the gateway's host: a data directory a gateway can be started on. */
  dir: string;
  bytes: number;
  /** Topics with messages in the copy. */
  topics: number;
  /** The copy's store epoch: new, so clients resuming on a restored store are told. */
  epoch: string;
  /** The store epoch of the store copied. */
  from: string;
  /** How long the copy took (ms). */
  ms: number;
}

/**
 * `event: stats` of `GET /v1/admin/stream`. With `?topic=<name>` a stream also gets `event: topic`
 * (a TopicDetail), and with `?topic=<name>&groups=1` also `event: groups` (its GroupRow list).
 */
export interface Snapshot {
  stats: Stats;
  /**
   * The busiest topics, at most `--admin-stream-topics` (default 20): those with messages in the
   * last second or with subscribers, by `msgsPerSec` (descending), then `subscribers`, then name.
   * Every topic, paged and searchable: `GET /v1/admin/topics` (earlier gateways sent every topic here).
   */
  topics: TopicRow[];
  /** Figures over every topic. */
  topicTotals: TopicTotals;
  /** The nodes, as `GET /v1/admin/nodes` lists them. */
  nodes: NodeRow[];
  /**
   * Nodes that did not answer in time for the busiest topics, or for this stream's connection list
   * or topic detail (its `?connections=1` / `?topic=` parts), whose rows are missing there. Empty
   * when all answered.
   */
  unanswered: string[];
}

/**
 * One second of `GET /v1/admin/stats/history`: this node's rates (as in Stats) and its WebSocket
 * connections and live / paused subscriptions at `at` (ms since the epoch, the node's clock).
 */
export interface StatsSample {
  at: number;
  messagesInPerSec: number;
  messagesOutPerSec: number;
  bytesInPerSec: number;
  bytesOutPerSec: number;
  connections: number;
  live: number;
  paused: number;
}

/**
 * `GET /v1/admin/stats/history`, and `event: history` first on `GET /v1/admin/stream?history=1`: the
 * last 10 minutes of samples, oldest first, one every `intervalMs`. `now` is the node's clock when
 * it answered, so a reader can place the samples on its own clock.
 */
export interface StatsHistory {
  now: number;
  intervalMs: number;
  samples: StatsSample[];
}

/** One step of a traced message's journey, as a node recorded it. */
export interface TraceEvent {
  /** When (ms since the epoch), and on which node. */
  at: number;
  node: string;
  kind: 'received' | 'stored' | 'delivered' | 'pulled' | 'leased' | 'acked' | 'nacked' | 'expired' | 'dead-lettered' | 'check-back';
  /** received: the publisher's client id and transport (`ws`, `http`, `batch`). */
  client?: string;
  transport?: string;
  /** stored: publish → durable commit. */
  latencyMs?: number;
  /** delivered: `live` (one event per fan-out: `subscribers`, and the first few `connections`), `catch-up`, `sse`. */
  path?: 'live' | 'catch-up' | 'sse';
  subscribers?: number;
  connections?: string[];
  /** The connection (catch-up, SSE, a group member's), or the pulling client. */
  connection?: string;
  /** Consumer groups: the group, the member, the delivery attempt; a nack's delay and reason. */
  group?: string;
  member?: string;
  attempt?: number;
  delayMs?: number;
  reason?: string;
}

/** `GET /v1/admin/topics/{topic}/messages/{offset}/trace` */
export interface Trace {
  topic: string;
  offset: number;
  /** Every node's events, by time. Empty: not traced, or forgotten (see README, "Message tracing"). */
  events: TraceEvent[];
  /** Events not kept (a node keeps at most 100 per message), by kind, summed over nodes. */
  dropped: Record<string, number>;
  /** Nodes that did not answer in time (their events are missing). */
  unanswered: string[];
}
