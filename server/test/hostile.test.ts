/**
 * What an outsider can do to a gateway without breaking the rules it checks: connect and never
 * say HELLO, open many such connections, open more connections than allowed, and publish while it
 * shuts down. Each gets a documented close code or error, and the gateway goes on.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { CloseCode } from '@sluice/client/protocol';
import { spawnGateway, startGateway } from './helpers/gateway.js';
import { api } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

/** A raw WebSocket upgrade that sends nothing after it; resolves with the close code, or the refusal status. */
function silentSocket(url: string): Promise<{ ws?: WebSocket; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/ws');
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode }));
    ws.once('error', () => undefined);
  });
}

const closeCode = (ws: WebSocket) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

describe('hostile clients', () => {
  it('a connection that never says HELLO is closed with 4204 after the deadline', async () => {
    const gw = await startGateway((c) => { c.limits.helloTimeoutMs = 300; });
    try {
      const started = Date.now();
      const { ws } = await silentSocket(gw.url);
      const code = await closeCode(ws!);
      assert.equal(code, CloseCode.HELLO_TIMEOUT);
      assert.ok(Date.now() - started >= 250, 'not before the deadline');
      // A client that says HELLO in time stays.
      const ok = await RawClient.connect(gw.url);
      // A silent one opened after it is closed at its own deadline, so by then ok's has passed too.
      const { ws: later } = await silentSocket(gw.url);
      assert.equal(await closeCode(later!), CloseCode.HELLO_TIMEOUT);
      await ok.barrier();
      ok.close();
    } finally {
      await gw.close();
    }
  });

  it('connections waiting for HELLO are capped per address, and all connections globally', async () => {
    const gw = await startGateway((c) => { c.limits.maxPendingPerAddress = 3; c.limits.maxConnections = 6; });
    try {
      // Connections that said HELLO do not count as waiting.
      const greeted = [await RawClient.connect(gw.url), await RawClient.connect(gw.url)];
      const silent = await Promise.all(Array.from({ length: 3 }, () => silentSocket(gw.url)));
      assert.ok(silent.every((s) => s.ws));
      assert.equal((await silentSocket(gw.url)).status, 429, 'a 4th waiting one from this address');
      // One leaves: a greeted client fits, and then the cap of 6 in all is reached.
      silent[0]!.ws!.close();
      await new Promise((r) => silent[0]!.ws!.once('close', r));
      greeted.push(await RawClient.connect(gw.url));
      const sixth = await silentSocket(gw.url);
      assert.ok(sixth.ws, 'the 6th connection');
      const full = await silentSocket(gw.url);
      assert.equal(full.status, 503, 'over --max-connections');
      for (const s of [...silent.slice(1), sixth]) s.ws!.close();
      for (const c of greeted) c.close();
    } finally {
      await gw.close();
    }
  });

  it('shutting down: every WebSocket gets 1001, and an HTTP publish arriving meanwhile gets 503 shutting-down', async () => {
    const gw = await startGateway();
    const clients = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(gw.url)));
    for (const [i, c] of clients.entries()) void c.publish(1, 'hostile.drain', i).catch(() => undefined);
    // An HTTP publish whose body is still on its way when the drain starts.
    const port = Number(new URL(gw.url).port);
    const sock = connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('POST /v1/topics/hostile.drain/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n');
    let answer = '';
    sock.on('data', (d) => { answer += d.toString(); });
    // The gateway closes its connections at the end of the drain, and on a busy machine that close
    // can arrive as a reset (ECONNRESET, once in a full run under a load of 18): kept to be shown if
    // the answer is missing, which is what this case checks.
    let reset: Error | undefined;
    sock.on('error', (err) => { reset = err; });
    const closing = gw.close();
    sock.write('42');
    await closing;
    await new Promise<void>((r) => { if (/\r\n\r\n.*\}/s.test(answer) || sock.destroyed) r(); else sock.once('close', () => r()); });
    const codes = await Promise.all(clients.map((c) => c.closed.then((x) => x.code)));
    assert.deepEqual([...new Set(codes)], [CloseCode.GOING_AWAY]);
    assert.match(answer, /^HTTP\/1\.1 503/, `the answer to the publish (${reset?.message ?? 'no socket error'})`);
    assert.match(answer, /retry-after: 1/i);
    assert.match(answer, /"code":"shutting-down"/);
    sock.destroy();
  });

  it('a pull asking to wait 1e9 s is capped at --max-wait, not refused', async () => {
    const gw = await startGateway((c) => { c.http.maxWaitS = 0; });
    try {
      const r = await api(gw.url, '/v1/topics/hostile.wait/messages?wait=1e9');
      assert.equal(r.status, 200);
    } finally {
      await gw.close();
    }
  });

  it('JSON nested far too deep is refused before parsing', async () => {
    const gw = await startGateway();
    try {
      const deep = '['.repeat(30_000) + ']'.repeat(30_000);
      const r = await api(gw.url, '/v1/topics/hostile.deep/messages', { raw: deep, headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 400);
      assert.match(r.body.error.message, /nested deeper/);
      assert.equal(gw.metrics.handlerFailures.value, 0);
    } finally {
      await gw.close();
    }
  });

  it('a request with 8 KiB of headers (a large token) gets a JSON answer, not uWS\'s 431', async () => {
    const gw = await spawnGateway(['--store', 'memory', '--auth-secret', 'a-secret-long-enough-for-hs256-tokens!']);
    try {
      const r = await api(gw.url, '/v1/topics/hostile.big/messages', { json: 1, headers: { authorization: `Bearer ${'x'.repeat(8 * 1024)}` } });
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'unauthorized');
    } finally {
      await gw.kill('SIGKILL');
    }
  });
});
