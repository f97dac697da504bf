/**
 * TopicLog: the storage contract every store implements (memory, embedded disk, and later a
 * networked engine such as Redis). The gateway talks to storage only through this interface.
 *
 * Contract (checked for every store by test/log.contract.ts):
 * - Offsets: each topic is a log; the first message has offset 1 and every stored message adds
 *   exactly 1. Offsets are assigned by the store, never by the caller.
 * - Epoch: every topic has an epoch (opaque string). It MUST change whenever the topic's data may
 *   have been lost or reset (the memory store gets a new epoch per process), so that no offset is
 *   ever served with two different contents in one epoch; offsets compare only within one epoch.
 *   A store whose history can lose a tail (a Redis failover) MAY also change it while keeping the
 *   data: `history` then names the earlier epochs and the last offset each one holds on this log,
 *   and a position in one of them up to that offset is still valid. A topic that was never written
 *   still has an epoch; its first write keeps it, or records it in `history` (the same thing for
 *   a reader: every position in it is 0).
 * - Atomicity: `append` stores all its messages or none; a message and its idempotency key are
 *   stored in the same commit.
 * - Durability: `append` resolves only once its messages are durable at the configured level.
 *   A resolved append MUST survive a process crash (kill -9) for durable stores.
 * - Idempotency: within the dedup window, a message whose `key` was already stored for the same
 *   topic is not stored again; its result is the original offset with `duplicate: true`. This
 *   holds across restarts for durable stores, and for duplicates inside one `append` call.
 *   A key is stored with its message's `fingerprint` (opaque bytes the caller computes). When
 *   both the stored key and the new message have one and they differ, the key was reused for
 *   another message: nothing is stored and the result has `keyReused: true` (and the original's
 *   offset, with `duplicate: true`). A missing fingerprint on either side matches (keys stored by
 *   versions before fingerprints, callers that pass none).
 * - Notification: every listener given to `watch` is called once per stored batch per topic, after
 *   the batch is durable, with consecutive offsets, in offset order per topic, with the epoch the
 *   batch was stored in. Duplicates are not notified. A store shared by several gateways notifies
 *   the batches of other gateways only for topics someone `follow`s, at most once each: a
 *   listener MUST treat an offset beyond the next one it expects as a hole to read, and one it
 *   has passed as already seen.
 * - Reads: `read` returns only durable messages, in order, starting at max(from, first retained).
 * - Retention: messages beyond the topic's retention (count, age, bytes) may be trimmed at any
 *   time, oldest first; `first` then moves forward. Offsets are never reused.
 * - Failure: a store that cannot write (disk full, I/O error, an unreachable server) MUST NOT end
 *   the process. `append` then rejects with StoreUnavailableError (a retryable code) at once, and
 *   nothing of a rejected append is ever acknowledged, notified or readable; reads go on serving
 *   what is stored. `health()` says so. When writing works again the store resumes by itself,
 *   offsets continuing densely after the last stored message.
 */

import type { HeldStore } from './held.js';

/** One message to store. Payload and headers are MessagePack-encoded (kept byte for byte). */
export interface AppendInput {
  data: Uint8Array;
  key?: string;
  /**
   * What makes two publishes with `key` the same request (see the contract's Idempotency), kept
   * with the key; at most 32 bytes. Only read when `key` is set.
   */
  fingerprint?: Uint8Array;
  headers?: Uint8Array;
  /** The entry's meta (its ordering key), MessagePack-encoded; see the protocol's entry.ts. */
  meta?: Uint8Array;
}

export interface AppendResult {
  offset: number;
  duplicate: boolean;
  /** The key was stored with another message's fingerprint: nothing was stored (see the contract). */
  keyReused?: true;
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
  /** Earlier epochs still valid on this log, oldest first (stores that change epochs keeping data). */
  history?: EpochRecord[];
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
  /** As in TopicInfo. */
  history?: EpochRecord[];
  /** Stored entries: MessagePack `[data, ts, headers?]`, one MSGS element each (see `StoredEntries`). */
  entries: Uint8Array[];
}

/**
 * Lifetime of the entries a store hands out (read results, listener batches): they may be views
 * into the store's own memory (the memory store's chunks), so a store MUST keep their bytes
 * unchanged for as long as anyone holds them (the hub caches them), and no holder may write to them.
 */
export type StoredEntries = readonly Uint8Array[];

export type AppendListener = (topic: string, first: number, entries: StoredEntries, epoch: string) => void;

export interface Following {
  ready: Promise<void>;
  drop(): void;
}

/** An earlier epoch of a topic and the last offset it holds on this log (see the contract). */
export interface EpochRecord {
  epoch: string;
  last: number;
}

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
  /**
   * How many topics `topics()` would list, without building the list: the admin API asks every
   * second, so it MUST NOT cost a pass over every topic (a counter, or one server-side count).
   */
  topicCount(): Promise<number>;
  /** Registers a listener for stored batches; returns a function that removes it. */
  watch(listener: AppendListener): () => void;
  /**
   * Asks for the batches other gateways store on `topic` (a store shared by several gateways;
   * others need not implement it). Counted: each call's `drop` ends one interest. Batches stored
   * after `ready` resolved are notified; a reader MUST await it before reading where it starts.
   */
  follow?(topic: string): Following;
  /** Bytes the store occupies (on disk or in memory). */
  size(): number;
  /**
   * Consumer groups' state (opaque bytes to the store), kept with the same durability as messages:
   * `saveGroup` resolves once it is durable. Rejects with StoreUnavailableError like `append`.
   */
  saveGroup(topic: string, group: string, state: Uint8Array): Promise<void>;
  loadGroup(topic: string, group: string): Promise<Uint8Array | undefined>;
  /** The groups of a topic that have saved state. */
  groupsOf(topic: string): Promise<string[]>;
  /**
   * Cluster mode (a store shared by several gateways; others need not implement it): which node
   * runs a consumer group's engine. Takes the group for this node when nobody holds it, renews it
   * when this node does, and returns the holder's node id. A holder that stops renewing loses it
   * after `ttlMs`. While a store implements it, `saveGroup` saves only for the holder (else rejects
   * with GroupNotOwned), so a node that lost a group never overwrites the new holder's state.
   */
  claimGroup?(topic: string, group: string, ttlMs: number): Promise<string>;
  /** Lets go of a group this node holds (another may claim it at once). */
  releaseGroup?(topic: string, group: string): Promise<void>;
  /** Held messages (scheduled and prepared), with the same durability as messages (see held.ts). */
  readonly held: HeldStore;
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

/** A group's state was not saved: another node holds the group now (cluster mode). */
export class GroupNotOwned extends Error {
  override name = 'GroupNotOwned';
  constructor(readonly topic: string, readonly group: string) {
    super(`group ${group} of ${topic} is held by another node`);
  }
}
