/**
 * Which WebSocket the client uses: the runtime's global one when there is one (browsers, Node 22+,
 * Deno, Workers), else the class passed as `WebSocket` (`ws` on Node 20, an optional peer
 * dependency), and a clear error when there is neither. Stub constructors record what was built;
 * nothing touches the network.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import WS from 'ws';
import { createClient } from '../src/client.js';
import { SluiceError } from '../src/errors.js';
import type { WebSocketConstructor, WebSocketLike } from '../src/transport.js';

/** A WebSocket class that records the URLs it was constructed with and never connects. */
function stub(): { ctor: WebSocketConstructor; urls: string[] } {
  const urls: string[] = [];
  class Stub implements WebSocketLike {
    binaryType = 'blob';
    bufferedAmount = 0;
    readyState = 0;
    onopen = null;
    onmessage = null;
    onclose = null;
    onerror = null;
    constructor(url: string) { urls.push(url); }
    send(): void {}
    close(): void {}
  }
  return { ctor: Stub, urls };
}

/** Starts connecting and waits until one of `stubs` was constructed (the socket never opens). */
async function opened(client: ReturnType<typeof createClient>, ...stubs: { urls: string[] }[]): Promise<void> {
  client.connect().catch(() => undefined);   // rejects with ClosedError at close()
  const deadline = Date.now() + 5000;
  while (stubs.every((s) => s.urls.length === 0)) {
    if (Date.now() > deadline) throw new Error('no socket constructed within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const g = globalThis as { WebSocket?: unknown };
const original = g.WebSocket;
afterEach(() => {
  if (original === undefined) delete g.WebSocket;
  else g.WebSocket = original;
});

describe('the WebSocket class', () => {
  it('with neither a global WebSocket nor an injected one, createClient throws bad-request naming ws', () => {
    delete g.WebSocket;
    assert.throws(() => createClient({ url: 'http://127.0.0.1:9400' }), (err: unknown) => {
      assert.ok(err instanceof SluiceError);
      assert.equal(err.code, 'bad-request');
      assert.match(err.message, /no WebSocket in this runtime.*npm install ws.*createClient\(\{ url, WebSocket \}\)/);
      return true;
    });
  });

  it('uses the global WebSocket when the runtime has one', async () => {
    const global = stub();
    g.WebSocket = global.ctor;
    const client = createClient({ url: 'http://127.0.0.1:9400' });
    await opened(client, global);
    assert.deepEqual(global.urls, ['ws://127.0.0.1:9400/v1/ws']);
    client.close();
  });

  it('an injected class wins over the global one', async () => {
    const global = stub();
    const injected = stub();
    g.WebSocket = global.ctor;
    const client = createClient({ url: 'https://gw.example', WebSocket: injected.ctor });
    await opened(client, global, injected);
    assert.deepEqual([global.urls, injected.urls], [[], ['wss://gw.example/v1/ws']]);
    client.close();
  });

  it('the ws class is accepted as it is, without a cast (checked by the compiler)', () => {
    delete g.WebSocket;
    const client = createClient({ url: 'http://127.0.0.1:9400', WebSocket: WS });
    client.close();
  });
});
