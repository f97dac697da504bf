/**
 * Wire protocol v1 frames, as named objects.
 *
 * On the wire every frame is one binary WebSocket message holding one MessagePack array whose first
 * element is the frame type (see PROTOCOL.md). In code every frame is an object of this union, keyed
 * on `type`; only this module turns one into the other: `encode.ts` (and the gateway's fast paths in
 * `entry.ts`) one way, `decode-client.ts` (gateway) and `decode-server.ts` (SDK) the other.
 */

export const PROTOCOL_VERSION = '1';

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
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Message headers: string keys to string values. */
export type Headers = Record<string, string>;

/** c→s, must be the first frame. */
export interface HelloFrame {
  type: 1;
  token?: string;
  client?: string;
}

/** s→c, answers HELLO and announces the session's limits. */
export interface WelcomeFrame {
  type: 2;
  session: string;
  version: string;
  maxFrame: number;
  maxCredit: number;
  heartbeat: number;
  /** Extra field (ignored by clients that do not know it). */
  maxSubscriptions?: number;
}

/** c→s. `from` omitted: live only. `credit` omitted: the default credit. */
export interface SubFrame {
  type: 3;
  subId: number;
  topic: string;
  from?: number;
  epoch?: string;
  credit?: number;
}

/** s→c. `from` is the first offset the gateway will deliver. */
export interface SubscribedFrame {
  type: 4;
  subId: number;
  epoch: string;
  head: number;
  from: number;
  recovered: boolean;
}

export interface UnsubFrame {
  type: 5;
  subId: number;
}

export interface UnsubscribedFrame {
  type: 6;
  subId: number;
}

/** c→s, adds `n` to the subscription's credit (clamped to maxCredit outstanding). */
export interface CreditFrame {
  type: 7;
  subId: number;
  n: number;
}

/**
 * c→s. `D` is the payload type: any JS value when the SDK encodes it; on the gateway the payload
 * stays MessagePack-encoded (`Uint8Array`) from receipt to storage so it is never re-interpreted.
 */
export interface PubFrame<D = unknown, H = Headers> {
  type: 8;
  reqId: number;
  topic: string;
  data: D;
  key?: string;
  headers?: H;
}

/** A PUB as the gateway holds it: payload and headers still MessagePack-encoded. */
export type EncodedPubFrame = PubFrame<Uint8Array, Uint8Array>;

export interface AckFrame {
  type: 9;
  reqId: number;
  offset: number;
  duplicate: boolean;
}

export interface MsgFrame {
  type: 10;
  topic: string;
  offset: number;
  data: unknown;
  ts: number;
  headers?: Headers;
}

export interface ErrorFrame {
  type: 11;
  /** reqId or subId the error refers to, 0 if none. */
  id: number;
  code: string;
  message: string;
}

export interface PingFrame {
  type: 12;
  n: number;
}

export interface PongFrame {
  type: 13;
  n: number;
}

/** s→c, offsets `from..to` (inclusive) of `topic` are gone (trimmed by retention). */
export interface GapFrame {
  type: 14;
  topic: string;
  from: number;
  to: number;
}

/** One message inside MSGS: offsets are implicit (first + index). */
export interface MsgsItem {
  data: unknown;
  ts: number;
  headers?: Headers;
}

/** s→c, consecutive messages from offset `first`; each counts 1 against credit. */
export interface MsgsFrame {
  type: 15;
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
  | PongFrame;

/** Client frames as the gateway decodes them (PUB payload kept encoded). */
export type EncodedClientFrame = ClientFrame<Uint8Array, Uint8Array>;

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
  | MsgsFrame;

export type Frame = ClientFrame | ServerFrame;
