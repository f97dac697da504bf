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
}

/** `GET /v1/admin/topics/{topic}`: the row with its subscribers listed. */
export type TopicDetail = Omit<TopicRow, 'subscribers'> & { subscribers: SubscriberRow[] };

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
}

/** `event: stats` of `GET /v1/admin/stream`. */
export interface Snapshot {
  stats: Stats;
  topics: TopicRow[];
}
