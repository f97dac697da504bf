/**
 * Opening a lean WebSocket client: the `ws` package without compression or UTF-8 validation, so a
 * subscriber spends its CPU on receiving, not on extras. Every bench client opens its socket here.
 */
import WebSocket from 'ws';

/**
 * `onMessage` is attached before the handshake completes: a server may send its first frame in
 * the same TCP segment as the 101 response, and `ws` emits it right after 'open', before any
 * code awaiting the open could attach a listener.
 */
export type OnMessage = (data: Buffer, isBinary: boolean, ws: WebSocket) => void;

export function openSocket(url: string, onMessage: OnMessage, headers?: Record<string, string>): Promise<WebSocket> {
  const ws = new WebSocket(url, {
    perMessageDeflate: false,
    skipUTF8Validation: true,
    maxPayload: 256 * 1024 * 1024,
    handshakeTimeout: 30_000,
    ...(headers ? { headers } : {}),
  });
  ws.binaryType = 'nodebuffer';
  ws.on('message', (data: Buffer, isBinary: boolean) => onMessage(data, isBinary, ws));
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    ws.once('error', onError);
    ws.once('open', () => {
      ws.off('error', onError);
      ws.on('error', () => undefined); // reported through 'close'
      resolve(ws);
    });
  });
}

interface NetSocket {
  pause(): void;
  resume(): void;
}

const held = new WeakMap<NetSocket, () => void>();

/**
 * Stops reading from the socket: the kernel buffers fill and the server sees a slow reader.
 * `ws` itself pauses and resumes its socket for its own flow control, so while stalled its
 * `resume` is held back until `resumeReading`.
 */
export function pauseReading(ws: WebSocket): void {
  const sock = (ws as unknown as { _socket?: NetSocket })._socket;
  if (!sock || held.has(sock)) return;
  sock.pause();
  held.set(sock, sock.resume.bind(sock));
  sock.resume = () => undefined;
}

export function resumeReading(ws: WebSocket): void {
  const sock = (ws as unknown as { _socket?: NetSocket })._socket;
  const resume = sock && held.get(sock);
  if (!sock || !resume) return;
  held.delete(sock);
  delete (sock as Partial<NetSocket>).resume; // back to the prototype's
  resume();
}

/**
 * Sends `frame()` every `ms` while the socket is open, for a subscriber that does not read (see
 * Stall in subscriber.ts): writing needs no reading, and a server that closed the connection
 * answers the next write with a reset, so the paused client also learns of the close.
 * Returns the function that stops it.
 */
export function keepAlive(ws: WebSocket, frame: () => Uint8Array | string, ms: number): () => void {
  const timer = setInterval(() => {
    if (ws.readyState === ws.OPEN) ws.send(frame());
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}

/** Batches the writes made until `uncork` into one syscall. */
export function cork(ws: WebSocket): void {
  (ws as unknown as { _socket?: { cork(): void } })._socket?.cork();
}

export function uncork(ws: WebSocket): void {
  (ws as unknown as { _socket?: { uncork(): void } })._socket?.uncork();
}
