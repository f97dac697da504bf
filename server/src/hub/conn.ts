/**
 * What the hub and a session need from a connection, independent of uWebSockets.js, so both can
 * be driven by a fake in tests and by another transport later.
 */
export interface Conn {
  readonly id: string;
  /** The peer, as seen at the upgrade (for the admin API and per-address limits). */
  readonly remoteAddress: string;
  readonly userAgent: string;
  /** True once the socket is gone; every method is then a no-op. */
  readonly closed: boolean;
  /** Bytes of frames written by `send` so far (native fan-out is not included), if the transport counts. */
  readonly bytesSent?: number;
  /**
   * Queues a frame. Frames go out in the order queued, at the latest at the end of this loop turn
   * (all queued frames of a connection in one corked write).
   */
  send(frame: Uint8Array): void;
  /** Writes queued frames now. MUST be called before `join` so nothing queued overtakes a live frame. */
  flush(): void;
  /** Joins the native (uWS) topic: from now on the connection receives every frame published to it. */
  join(topic: string): void;
  leave(topic: string): void;
  /** Bytes queued or written but not yet taken by the kernel. */
  bufferedAmount(): number;
  /** Resolves when the buffered amount fell below the low-water mark (or the socket closed). */
  drained(): Promise<void>;
  /** Flushes, then closes with a WebSocket close code. */
  close(code: number, reason: string): void;
  /** The session said WELCOME: the connection no longer counts as waiting for HELLO. */
  greeted?(): void;
}

/**
 * Publishes one encoded frame to every connection joined to a native topic. The frame is valid only
 * during the call (the hub reuses its memory): uWS copies it before `publish` returns.
 */
export interface Fanout {
  publish(topic: string, frame: Uint8Array): void;
}
