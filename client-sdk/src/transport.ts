/**
 * The transport moves bytes; it knows nothing of frames. The default wraps a WebSocket
 * constructor: the global one in browsers, Deno and Workers, or one you pass (e.g. `ws` in Node).
 */

/**
 * An event handler property, compared bivariantly (as methods are): each implementation types its
 * handlers' events its own way (`ws` with its own Event classes), and the SDK only reads the fields
 * named here — so `createClient({ WebSocket })` takes the `ws` class or a global one without a cast.
 */
type Handler<E> = { bivarianceHack(ev: E): void }['bivarianceHack'] | null;

/** The part of the WebSocket API the SDK uses (browser, `ws`, Deno and Workers all have it). */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown>;
  onmessage: Handler<{ data: unknown }>;
  onclose: Handler<{ code: number; reason: string }>;
  onerror: Handler<{ error?: unknown; message?: string }>;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface TransportHandlers {
  open(): void;
  message(bytes: Uint8Array): void;
  /**
   * Called exactly once per transport, whatever ended it. `error`: what the runtime reported before
   * the close, when it reported anything (`ws` gives an Error such as `connect ECONNREFUSED …` or
   * `Unexpected server response: 404`; browsers give nothing, on purpose).
   */
  close(code: number, reason: string, error?: unknown): void;
}

export interface Transport {
  send(bytes: Uint8Array): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
}

export type TransportFactory = (url: string, handlers: TransportHandlers) => Transport;

export function webSocketTransport(WS: WebSocketConstructor): TransportFactory {
  return (url, handlers) => {
    const ws = new WS(url);
    ws.binaryType = 'arraybuffer';
    let ended = false;
    const end = (code: number, reason: string, error?: unknown) => {
      if (ended) return;
      ended = true;
      ws.onopen = ws.onmessage = ws.onclose = null;
      // Keep a no-op error listener: `ws` emits 'error' when a socket still connecting is closed,
      // and an EventEmitter error without a listener would crash the process.
      ws.onerror = () => undefined;
      handlers.close(code, reason, error);
    };
    ws.onopen = () => handlers.open();
    ws.onmessage = (ev) => {
      const d = ev.data;
      if (d instanceof ArrayBuffer) handlers.message(new Uint8Array(d));
      else if (ArrayBuffer.isView(d)) handlers.message(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      // Text frames are not part of the protocol: ignore them.
    };
    ws.onclose = (ev) => end(ev.code, ev.reason);
    ws.onerror = (ev) => {
      // An error is always followed by close in browsers; `ws` may not close a never-opened socket.
      // The runtime's error (an ErrorEvent's `error`, else its message) is the cause we keep.
      try { ws.close(); } catch { /* already closing */ }
      const error = ev?.error ?? (ev?.message ? new Error(ev.message) : undefined);
      end(1006, error instanceof Error ? error.message : 'connection error', error);
    };
    return {
      send: (bytes) => ws.send(bytes),
      close: (code = 1000, reason = '') => {
        try { ws.close(code, reason); } catch { /* already closed */ }
        end(code, reason);
      },
      get bufferedAmount() { return ws.bufferedAmount; },
    };
  };
}

/** The runtime's WebSocket, if it has one. */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}
