/**
 * TopicLog: the storage contract every store implements (memory, embedded disk, and later a
 * networked engine such as Redis). The gateway talks to storage only through this interface.
 *
 * Contract (checked for every store by test/log.contract.ts):
 * - Offsets: each topic is a log; the first message has offset 1 and every stored message adds
 *   exactly 1. Offsets are assigned by the store, never by the caller.
 * - Epoch: every topic has an epoch (opaque string). It MUST stay the same for as long as the
 *   topic's data survives (restarts included) and MUST change when the data is lost or reset
 *   (the memory store gets a new epoch per process). Offsets compare only within one epoch.
 *   A topic that was never written still has an epoch, and keeps it when first written.
 * - Atomicity: `append` stores all its messages or none; a message and its idempotency key are
 *   stored in the same commit.
 * - Durability: `append` resolves only once its messages are durable at the configured level.
 *   A resolved append MUST survive a process crash (kill -9) for durable stores.
 * - Idempotency: within the dedup window, a message whose `key` was already stored for the same
 *   topic is not stored again; its result is the original offset with `duplicate: true`. This
 *   holds across restarts for durable stores, and for duplicates inside one `append` call.
 * - Notification: every listener given to `watch` is called once per stored batch per topic, after
 *   the batch is durable, with consecutive offsets, in offset order per topic, never twice for
 *   the same offset. Duplicates are not notified.
 * - Reads: `read` returns only durable messages, in order, starting at max(from, first retained).
 * - Retention: messages beyond the topic's retention (count, age, bytes) may be trimmed at any
 *   time, oldest first; `first` then moves forward. Offsets are never reused.
 * - Failure: a store that cannot write (disk full, I/O error, an unreachable server) MUST NOT end
 *   the process. `append` then rejects with StoreUnavailableError (a retryable code) at once, and
 *   nothing of a rejected append is ever acknowledged, notified or readable; reads go on serving
 *   what is stored. `health()` says so. When writing works again the store resumes by itself,
 *   offsets continuing densely after the last stored message.
 */

/** One message to store. Payload and headers are MessagePack-encoded (kept byte for byte). */
export interface AppendInput {
  data: Uint8Array;
  key?: string;
  headers?: Uint8Array;
}

export interface AppendResult {
  offset: number;
  duplicate: boolean;
  /** The topic's epoch the offset belongs to (callers never need a separate `info` round trip). */
  epoch: string;
  /** Store timestamp (ms since epoch) of the stored message (of the original for duplicates). */
  ts: number;
}

export interface TopicInfo {
  topic: string;
  epoch: string;
  /** Offset of the last stored message, 0 when none. */
  head: number;
  /** Offset of the earliest retained message; head + 1 when none is retained. */
  first: number;
  /** Retained messages and their stored size in bytes. */
  count: number;
  bytes: number;
  /** Timestamp of the last stored message, 0 when none. */
  lastTs: number;
}

export interface ReadOptions {
  /** Most messages to return. */
  limit: number;
  /** Stop before exceeding this many bytes (at least one message is returned if any exists). */
  maxBytes?: number;
}

export interface ReadResult {
  epoch: string;
  head: number;
  first: number;
  /** Offset of entries[0]: max(from, first). */
  start: number;
  /** Stored entries: MessagePack `[data, ts, headers?]`, one MSGS element each. */
  entries: Uint8Array[];
}

export type AppendListener = (topic: string, first: number, entries: readonly Uint8Array[]) => void;

export interface Retention {
  /** Keep at most this many messages per topic. */
  maxCount: number;
  /** Keep messages at most this long (ms). */
  maxAgeMs: number;
  /** Keep at most this many bytes per topic. */
  maxBytes: number;
}

export interface StoreOptions {
  retention: Retention;
  /** How long an idempotency key is remembered (ms). */
  dedupWindowMs: number;
}

export interface TopicLog {
  /** `memory`, `disk`, ... */
  readonly kind: string;
  append(topic: string, messages: readonly AppendInput[]): Promise<AppendResult[]>;
  read(topic: string, from: number, opts: ReadOptions): Promise<ReadResult>;
  info(topic: string): Promise<TopicInfo>;
  /** Every topic that has stored messages (or had them), for the admin API. */
  topics(): Promise<TopicInfo[]>;
  /** Registers a listener for stored batches; returns a function that removes it. */
  watch(listener: AppendListener): () => void;
  /** Bytes the store occupies (on disk or in memory). */
  size(): number;
  /** Whether appends can succeed now (readiness, metrics). */
  health(): StoreHealth;
  /** Waits for pending appends, then releases resources. */
  close(): Promise<void>;
}

export const DEFAULT_RETENTION: Retention = {
  maxCount: 1_000_000,
  maxAgeMs: 7 * 24 * 3600_000,
  maxBytes: 256 * 1024 * 1024,
};

export const DEFAULT_DEDUP_WINDOW_MS = 24 * 3600_000;

/** Why a store does not take writes: its disk is full, or it failed / cannot be reached. */
export type UnavailableCode = 'insufficient-storage' | 'unavailable';

export interface StoreHealth {
  writable: boolean;
  /** Set when not writable. */
  code?: UnavailableCode;
  reason?: string;
  /** When it stopped being writable (ms since the epoch). */
  since?: number;
}

/**
 * An append the store refused, or could not make durable. Nothing of it was acknowledged; the same
 * append (with the same idempotency keys) may be retried after `retryAfterS`.
 */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
  constructor(readonly code: UnavailableCode, message: string, readonly retryAfterS = 1) {
    super(message);
  }
}
