/**
 * Wire protocol v1 frames, as named objects.
 *
 * On the wire every frame is one binary WebSocket message holding one MessagePack array whose first
 * element is the frame type (see PROTOCOL.md). In code every frame is an object of this union, keyed
 * on `type`; only this module turns one into the other: `encode.ts` (and the gateway's fast paths in
 * `entry.ts`) one way, `decode-client.ts` (gateway) and `decode-server.ts` (SDK) the other.
 */

/**
 * The protocol version this module speaks: `major.minor`. A minor adds to the wire (new optional
 * fields, trailing elements, codes) and is announced in HELLO and WELCOME, never required of a peer
 * that did not announce it; a new major is a different protocol. History in PROTOCOL.md.
 */
export const PROTOCOL_VERSION = '1.5';

/** The versions this module can talk to: major 1, any minor (`1`, `1.0`, `1.1`, `1.12`, ...). */
const COMPATIBLE = /^1(?:\.(?:0|[1-9][0-9]{0,8}))?$/;

/**
 * Whether a peer announcing protocol `v` can talk to this module: its major is 1 (any minor; each
 * side uses what both announced). `undefined` is a peer from before versions were announced (1.0):
 * compatible. A gateway refuses a HELLO for which this is false (ERROR bad-frame, then close 4002).
 */
export function protocolCompatible(v: string | undefined): boolean {
  return v === undefined || COMPATIBLE.test(v);
}

/**
 * The minor of a compatible version `v` (`undefined` and `1` are 1.0: 0). What a peer may use of
 * minor m is what both announced: `protocolMinor(theirs) >= m`.
 */
export function protocolMinor(v: string | undefined): number {
  const dot = v === undefined ? -1 : v.indexOf('.');
  return dot < 0 ? 0 : Number(v!.slice(dot + 1)) || 0;
}

export const FrameType = {
  HELLO: 1,
  WELCOME: 2,
  SUB: 3,
  SUBSCRIBED: 4,
  UNSUB: 5,
  UNSUBSCRIBED: 6,
  CREDIT: 7,
  PUB: 8,
  ACK: 9,
  MSG: 10,
  ERROR: 11,
  PING: 12,
  PONG: 13,
  GAP: 14,
  MSGS: 15,
  /** c→s, since 1.2: a consumer-group member acknowledges offsets it holds (not the publish ACK, 9). */
  GROUP_ACK: 16,
  /** c→s, since 1.2: a member gives an offset back, to be delivered again (after a delay). */
  GROUP_NACK: 17,
  /** s→c, since 1.2: one message leased to a consumer-group member, with its attempt number. */
  LEASE: 18,
  /** s→c, since 1.4: a PUB with `delay`, `at` or `prepare` is held (not appended yet): its id. */
  HELD: 19,
  /** c→s, since 1.4: commit or abort a prepared message, or cancel a scheduled one, by id. */
  RESOLVE: 20,
  /** s→c, since 1.4: the outcome of RESOLVE. */
  RESOLVED: 21,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/**
 * A message's data that no JS value here represents: an unknown MessagePack extension or a map with
 * non-string keys, which a gateway before protocol 1.1 accepted and stored. Its bytes, as stored,
 * so that a reader gets past it (the SDK delivers it as the message's data).
 */
export class RawData {
  constructor(readonly bytes: Uint8Array, readonly reason: string) {}
}

/** Message headers: string keys to string values. */
export type Headers = Record<string, string>;

/** c→s, must be the first frame. */
export interface HelloFrame {
  type: typeof FrameType.HELLO;
  token?: string;
  client?: string;
  /** The protocol version the client speaks (e.g. '1.1'); absent from 1.0 clients. Since 1.1. */
  protocol?: string;
}

/** s→c, answers HELLO and announces the session's limits. */
export interface WelcomeFrame {
  type: typeof FrameType.WELCOME;
  session: string;
  /** The protocol version the gateway speaks (e.g. '1.1'); absent from 1.0 gateways. Since 1.1. */
  protocol?: string;
  /** The gateway's software version (e.g. '0.1.0'), for humans and logs; not a protocol version. */
  version: string;
  maxFrame: number;
  maxCredit: number;
  heartbeat: number;
  /** Extra field (ignored by clients that do not know it). */
  maxSubscriptions?: number;
  /**
   * Since 1.5: the byte window of a plain subscription on this connection. A 1.5 gateway sends at
   * most this many bytes of messages (one message may pass it) on a subscription after its last
   * CREDIT (or its SUB) — to a client that announced 1.5 or later — as if its credit were 0 then.
   */
  maxWindowBytes?: number;
}

/**
 * c→s. `from` omitted: live only. `credit` omitted: the default credit. With `group` (since 1.2)
 * the subscription joins that consumer group of the topic: messages come as LEASE, each to one
 * member, `credit` is how many unacknowledged leases it may hold, and `from` applies only when the
 * group is created (omitted: the head + 1).
 */
export interface SubFrame {
  type: typeof FrameType.SUB;
  subId: number;
  topic: string;
  from?: number;
  epoch?: string;
  credit?: number;
  group?: string;
}

/** s→c. `from` is the first offset the gateway will deliver. */
export interface SubscribedFrame {
  type: typeof FrameType.SUBSCRIBED;
  subId: number;
  epoch: string;
  head: number;
  from: number;
  recovered: boolean;
}

export interface UnsubFrame {
  type: typeof FrameType.UNSUB;
  subId: number;
}

export interface UnsubscribedFrame {
  type: typeof FrameType.UNSUBSCRIBED;
  subId: number;
}

/** c→s, adds `n` to the subscription's credit (clamped to maxCredit outstanding). */
export interface CreditFrame {
  type: typeof FrameType.CREDIT;
  subId: number;
  n: number;
}

/**
 * c→s. `D` is the payload type: any JS value when the SDK encodes it; on the gateway the payload
 * stays MessagePack-encoded (`Uint8Array`) from receipt to storage so it is never re-interpreted.
 */
export interface PubFrame<D = unknown, H = Headers> {
  type: typeof FrameType.PUB;
  reqId: number;
  topic: string;
  data: D;
  key?: string;
  headers?: H;
  /** Since 1.2: a consumer group hands out messages of one ordering key one at a time, in order. */
  orderingKey?: string;
  /** Since 1.3: 0–9 (default 0); a consumer group hands out its ready messages highest first. */
  priority?: number;
  /** Since 1.3: record the message's journey (admin API, the console's trace view). */
  trace?: boolean;
  /** Since 1.4: append it this many ms from now (answered with HELD, not ACK). */
  delay?: number;
  /** Since 1.4: append it at this time (ms since the epoch; answered with HELD). */
  at?: number;
  /** Since 1.4: hold it as a prepared (half) message until RESOLVE commits or aborts it (answered with HELD). */
  prepare?: boolean;
  /** Since 1.4, with `prepare`: where the gateway checks back if it stays unresolved (allow-listed). */
  checkUrl?: string;
}

/**
 * s→c since 1.4, `[19, reqId, id, {due?, duplicate}]`: the PUB `reqId` (with `delay`, `at` or
 * `prepare`) is held durably with this schedule / transaction id; `due` for a scheduled one. A
 * retried PUB with the same key gets the same id and `duplicate: true`.
 */
export interface HeldFrame {
  type: typeof FrameType.HELD;
  reqId: number;
  id: string;
  due?: number;
  duplicate: boolean;
}

export type ResolveOp = 'commit' | 'abort' | 'cancel';

/** c→s since 1.4, `[20, reqId, id, op]`: commit / abort a prepared message, cancel a scheduled one. */
export interface ResolveFrame {
  type: typeof FrameType.RESOLVE;
  reqId: number;
  id: string;
  op: ResolveOp;
}

/**
 * s→c since 1.4, `[21, reqId, outcome, {offset?, duplicate?}]`: `committed` (with the offset it was
 * appended at; `duplicate` when it had been already), `aborted` or `cancelled`. A refusal is ERROR.
 */
export interface ResolvedFrame {
  type: typeof FrameType.RESOLVED;
  reqId: number;
  outcome: 'committed' | 'aborted' | 'cancelled';
  offset?: number;
  duplicate?: boolean;
}


export interface AckFrame {
  type: typeof FrameType.ACK;
  reqId: number;
  offset: number;
  duplicate: boolean;
}

export interface MsgFrame {
  type: typeof FrameType.MSG;
  topic: string;
  offset: number;
  data: unknown;
  ts: number;
  headers?: Headers;
  /** Since 1.2: the message's ordering key, when it was published with one. */
  orderingKey?: string;
  /** Since 1.3: its priority, when it was published with one above 0. */
  priority?: number;
  /** Since 1.3: its journey is recorded (meta `t`). */
  traced?: boolean;
}

/**
 * s→c, `[11, id, code, message, re]`. `id` is shared by reqIds and subIds: `re` says which one it is.
 */
export interface ErrorFrame {
  type: typeof FrameType.ERROR;
  /** reqId or subId the error refers to, 0 if none. */
  id: number;
  code: string;
  message: string;
  /**
   * The type of the frame this error answers (PUB 8: `id` is a reqId; SUB 3, UNSUB 5, CREDIT 7: a
   * subId; HELLO 1), 0 when none or unknown. Since 1.1: always encoded (0 when absent here);
   * decoded as 0 from 1.0 gateways, which do not send it.
   */
  re?: number;
}

export interface PingFrame {
  type: typeof FrameType.PING;
  n: number;
}

export interface PongFrame {
  type: typeof FrameType.PONG;
  n: number;
}

/** s→c, offsets `from..to` (inclusive) of `topic` are gone (trimmed by retention). */
export interface GapFrame {
  type: typeof FrameType.GAP;
  topic: string;
  from: number;
  to: number;
}

/** One message inside MSGS: offsets are implicit (first + index). */
export interface MsgsItem {
  data: unknown;
  ts: number;
  headers?: Headers;
  /** Since 1.2: its ordering key, when it was published with one. */
  orderingKey?: string;
  /** Since 1.3: its priority, when it was published with one above 0. */
  priority?: number;
  /** Since 1.3: its journey is recorded (meta `t`). */
  traced?: boolean;
}

/** c→s since 1.2, `[16, subId, offsets]`: acknowledges leased offsets (one, or an array). */
export interface GroupAckFrame {
  type: typeof FrameType.GROUP_ACK;
  subId: number;
  offsets: number[];
}

/** c→s since 1.2, `[17, subId, offset, {delay?, reason?}]`: gives a leased offset back. */
export interface GroupNackFrame {
  type: typeof FrameType.GROUP_NACK;
  subId: number;
  offset: number;
  /** Deliver again after this many ms at the earliest (absent: the group's backoff for this attempt). */
  delay?: number;
  /** Why (kept in the dead letter's headers if it ends there); at most 256 bytes. */
  reason?: string;
}

/** s→c since 1.2, `[18, topic, offset, attempt, [data, ts, headers?, meta?]]`: a message leased to this member. */
export interface LeaseFrame {
  type: typeof FrameType.LEASE;
  topic: string;
  offset: number;
  /** 1 for the first delivery, 2 for the first redelivery, ... */
  attempt: number;
  message: MsgsItem;
}

/** s→c, consecutive messages from offset `first`; each counts 1 against credit. */
export interface MsgsFrame {
  type: typeof FrameType.MSGS;
  topic: string;
  first: number;
  messages: MsgsItem[];
}

/** Frames a client sends. */
export type ClientFrame<D = unknown, H = Headers> =
  | HelloFrame
  | SubFrame
  | UnsubFrame
  | CreditFrame
  | PubFrame<D, H>
  | PingFrame
  | PongFrame
  | GroupAckFrame
  | GroupNackFrame
  | ResolveFrame;

/**
 * Client frames as the gateway decodes them: the PUB payload kept encoded, its headers as sent
 * (unchecked: the publish service checks them).
 */
export type EncodedClientFrame = ClientFrame<Uint8Array, unknown>;

/** Frames the gateway sends. */
export type ServerFrame =
  | WelcomeFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | AckFrame
  | MsgFrame
  | ErrorFrame
  | PingFrame
  | PongFrame
  | GapFrame
  | MsgsFrame
  | LeaseFrame
  | HeldFrame
  | ResolvedFrame;

export type Frame = ClientFrame | ServerFrame;
