/**
 * One subscription: a connection's interest in one topic, with its credit and its place in the log.
 * The hub creates and changes it; everyone else sees a `SubscriptionView`.
 *
 * States (see client-sdk/STATES.md for the client's view):
 *   opening → catchup | paused      after SUBSCRIBED, depending on credit
 *   catchup → live                  cursor reached the tail: joined the native topic
 *   catchup → paused                credit ran out while reading the store
 *   live    → paused                its limit was reached (popped before a publish)
 *   paused  → catchup               CREDIT arrived
 *   any     → closed                UNSUB, the connection closed, or opening failed
 *
 * Invariants (kept by the Hub, the only writer):
 * - Not live: `cursor` is the next offset to deliver and `credit` what it may still receive.
 * - Live: the connection receives every frame published natively for the topic, and `limit` is
 *   the highest offset it may receive. Its credit is `limit - topic tail`; `cursor` is unused.
 * - Nothing for a subscription is ever buffered in the gateway: not live means nothing is sent.
 * - Byte window (`window` > 0, a client of protocol 1.5): it is sent nothing more once the bytes of
 *   messages sent on it since its last CREDIT (or its SUB) reach `window`, as if its credit were 0.
 *   Not live, those bytes are `used`; live, it may receive a message that starts before the topic's
 *   byte position `byteLimit` (= its position at the last CREDIT + `window`).
 */
import type { Conn } from './conn.js';

const PROCESS_START = Date.now();

export type SubState = 'opening' | 'catchup' | 'paused' | 'live' | 'closed';

/** What the hub shows of a subscription to sessions and the admin API. */
export interface SubscriptionView {
  readonly id: number;
  readonly topic: string;
  readonly conn: Conn;
  /** Who subscribed (the token's `sub`), for the admin API. */
  readonly clientId: string;
  readonly state: SubState;
  readonly createdAt: number;
}

/** @internal The hub's own record. MUST NOT be changed outside hub.ts. */
export class Subscription implements SubscriptionView {
  state: SubState = 'opening';
  cursor = 0;
  credit = 0;
  limit = 0;
  /** Key of this subscription's current heap entry (entries with another key are stale). */
  heapKey = -1;
  /** The topic tail when it went live: offsets after it were delivered natively. */
  liveFrom = 0;
  /** Messages delivered (while live, those since `liveFrom` are added on leaving). */
  delivered = 0;
  /** The topic's native byte count when it went live. */
  liveBytesFrom = 0;
  /** Bytes received through the native topic in finished live runs (not sent via its connection). */
  nativeBytes = 0;
  /** Byte window (protocol 1.5: the connection's `maxWindowBytes`); 0: none. */
  window = 0;
  /** Not live: bytes of messages sent since its last CREDIT (or SUB). */
  used = 0;
  /** Live, with a window: it may receive messages that start before this topic byte position. */
  byteLimit = 0;
  /** Key of its current entry in the topic's byte heap (entries with another key are stale). */
  byteKey = -1;
  /** A store read is in progress for it. */
  pumping = false;
  /** When it was created, in ms since the process started (rounded: a small integer for 24 days, which V8 keeps unboxed). */
  private readonly createdMs = Math.round(Date.now() - PROCESS_START);

  constructor(
    readonly id: number,
    readonly topic: string,
    readonly conn: Conn,
    readonly clientId: string,
  ) {}

  get createdAt(): number {
    return PROCESS_START + this.createdMs;
  }
}
