/**
 * Behind a reverse proxy: `--public-url` (the origin users see is the gateway's own, whatever Host
 * header the proxy sends) and `--trust-proxy` (whose X-Forwarded-For / -Proto are believed) for
 * origin checks, the client addresses the admin API shows, and per-client rate limits. The proxy
 * here is the test itself sending what nginx sends (a rewritten Host, forwarded headers); the real
 * nginx in front of a gateway is e2e/specs/proxy.spec.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mintToken } from '@sluice/client/token';
import WebSocket from 'ws';
import { ConfigError, loadConfig } from '../src/config.js';
import { normalAddress, PeerResolver } from '../src/http/peer.js';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const SECRET = 'proxy-secret-0123456789-abcdefghijklmnop';
const PUBLIC = 'https://sluice.example.com';

/** The status of a WebSocket upgrade to `gw` with these headers (101: accepted). */
function upgrade(gw: RunningServer, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${gw.url.replace(/^http/, 'ws')}/v1/ws`, { headers });
    ws.once('open', () => { ws.close(); resolve(101); });
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.once('error', (err) => { if (ws.readyState !== WebSocket.CLOSED) reject(err); });
  });
}

async function withGateway(edit: Parameters<typeof startGateway>[0], run: (gw: RunningServer) => Promise<void>): Promise<void> {
  const gw = await startGateway(edit);
  try {
    await run(gw);
  } finally {
    await gw.close();
  }
}

describe('PeerResolver: the client address through trusted proxies', () => {
  const peers = new PeerResolver(['10.0.0.0/8', '192.0.2.1', 'fd00::/8', 'loopback']);

  it('believes X-Forwarded-For only from a trusted peer, read from the right past trusted hops', () => {
    assert.deepEqual(peers.resolve('10.1.2.3', '203.0.113.9', 'https'), { address: '203.0.113.9', via: '10.1.2.3', proto: 'https' });
    // A client's own forged entry sits left of what the proxies appended: it is never reached.
    assert.equal(peers.resolve('10.1.2.3', '6.6.6.6, 203.0.113.9, 192.0.2.1', '').address, '203.0.113.9');
    // Every hop trusted: the leftmost one is the client.
    assert.equal(peers.resolve('127.0.0.1', '10.9.9.9, 192.0.2.1', '').address, '10.9.9.9');
    assert.equal(peers.resolve('::1', '2001:db8::7', '').address, '2001:db8::7');
    assert.equal(peers.resolve('fd00::1', '::ffff:198.51.100.4', '').address, '198.51.100.4');
    // Garbage stops the walk at the last good address.
    assert.equal(peers.resolve('10.1.2.3', 'unknown, 203.0.113.9', '').address, '203.0.113.9');
    assert.equal(peers.resolve('10.1.2.3', 'not-an-ip', '').address, '10.1.2.3');
    assert.equal(peers.resolve('10.1.2.3', '', 'gopher').proto, 'http');
    assert.equal(peers.trusts('203.0.113.9'), false);
    assert.equal(peers.trusts('::ffff:10.0.0.5'), true);
    assert.equal(new PeerResolver([]).trusts('127.0.0.1'), false);
  });

  it('spells each address one way: IPv6 compressed, IPv4 on a dual-stack socket as IPv4', () => {
    assert.equal(normalAddress('0000:0000:0000:0000:0000:0000:0000:0001'), '::1');
    assert.equal(normalAddress('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1');
    assert.equal(normalAddress('::FFFF:10.1.2.3'), '10.1.2.3');
    assert.equal(normalAddress('2001:0DB8:0000:0000:0000:0000:0000:0007'), '2001:db8::7');
    assert.equal(normalAddress('198.51.100.4'), '198.51.100.4');
    assert.equal(peers.resolve(normalAddress('0000:0000:0000:0000:0000:ffff:0a00:0001'), '203.0.113.9', '').address, '203.0.113.9');
  });

  it('--trust-proxy and --public-url are checked when the gateway starts', () => {
    assert.deepEqual(loadConfig(['--trust-proxy', '10.0.0.0/8, ::1,loopback'], {}).trustProxy, ['10.0.0.0/8', '::1', 'loopback']);
    assert.deepEqual(loadConfig([], { SLUICE_TRUST_PROXY: '192.0.2.1' }).trustProxy, ['192.0.2.1']);
    for (const bad of ['10.0.0.0/33', 'proxy.local', '10.0.0.1/8/1', 'fd00::/129']) {
      assert.throws(() => loadConfig(['--trust-proxy', bad], {}), ConfigError, bad);
    }
    assert.throws(() => loadConfig(['--public-url', 'sluice.example.com'], {}), ConfigError);
    assert.throws(() => loadConfig(['--public-url', 'ftp://sluice.example.com'], {}), ConfigError);
    assert.throws(() => loadConfig(['--tls-cert', 'cert.pem'], {}), /--tls-cert and --tls-key go together/);
  });
});

describe('behind a proxy that rewrites Host', () => {
  it('without --public-url the console\'s own WebSocket and publish get 403; with it they pass, other origins still do not', async () => {
    const token = await mintToken({ key: SECRET, sub: 'console', caps: { 'px.>': ['pub', 'sub'] } });
    // What nginx sends by default: Host = the upstream's address, Origin = the page's.
    const fromPage = (gw: RunningServer) => ({ host: new URL(gw.url).host, origin: PUBLIC });
    await withGateway((c) => { c.auth.secret = SECRET; }, async (gw) => {
      assert.equal(await upgrade(gw, fromPage(gw)), 403);
      const r = await api(gw.url, '/v1/topics/px.t/messages', { json: 1, token, headers: { origin: PUBLIC } });
      assert.deepEqual([r.status, r.body.error.code], [403, 'forbidden']);
    });
    await withGateway((c) => { c.auth.secret = SECRET; c.publicUrl = `${PUBLIC}/`; }, async (gw) => {
      assert.equal(await upgrade(gw, fromPage(gw)), 101);
      const r = await api(gw.url, '/v1/topics/px.t/messages', { json: 1, token, headers: { origin: PUBLIC } });
      assert.equal(r.status, 201);
      assert.equal(r.headers.get('access-control-allow-origin'), PUBLIC);
      assert.equal(await upgrade(gw, { origin: 'https://evil.example' }), 403);
      assert.equal(await upgrade(gw, { origin: 'http://sluice.example.com' }), 403, 'the scheme is part of the origin');
      assert.equal((await api(gw.url, '/v1/topics/px.t/messages', { json: 1, token, headers: { origin: 'https://evil.example' } })).status, 403);
      const p = await fetch(`${gw.url}/v1/topics/px.t/messages`, { method: 'OPTIONS', headers: { origin: PUBLIC, 'access-control-request-method': 'POST' } });
      assert.equal(p.status, 204, 'the preflight too');
    });
  });
});

describe('--trust-proxy: client addresses and per-client rate limits', () => {
  const rows = async (gw: RunningServer) => (await api(gw.url, '/v1/admin/connections')).body as { kind?: string; remoteAddress: string }[];

  it('a trusted proxy\'s X-Forwarded-For is the address the admin API shows and the rate limit counts', async () => {
    await withGateway((c) => { c.trustProxy = ['127.0.0.1']; c.rates.perClient = 1; }, async (gw) => {
      const ws = await RawClient.connect(gw.url, { headers: { 'x-forwarded-for': '203.0.113.7' } });
      try {
        await waitFor(async () => (await rows(gw)).some((r) => r.remoteAddress === '203.0.113.7'), 'the connection row with the forwarded address');
      } finally {
        ws.close();
      }
      // Two clients behind the one proxy: a budget each. The same client twice: the second waits.
      const from = (addr: string) => api(gw.url, '/v1/topics/px.rl/messages', { json: addr, headers: { 'x-forwarded-for': addr } });
      assert.equal((await from('198.51.100.1')).status, 201);
      assert.equal((await from('198.51.100.2')).status, 201);
      const again = await from('198.51.100.1');
      assert.deepEqual([again.status, again.body.error.code], [429, 'rate-limited']);
    });
  });

  it('the cap on WebSockets waiting for HELLO counts each forwarded client apart', async () => {
    await withGateway((c) => { c.trustProxy = ['loopback']; c.limits.maxPendingPerAddress = 1; }, async (gw) => {
      const open: RawClient[] = [];
      try {
        for (const addr of ['198.51.100.1', '198.51.100.2']) open.push(await RawClient.connect(gw.url, { hello: false, headers: { 'x-forwarded-for': addr } }));
        assert.equal(await upgrade(gw, { 'x-forwarded-for': '198.51.100.1' }), 429, 'a second one from the same client waits');
      } finally {
        for (const c of open) c.close();
      }
    });
  });

  it('from a peer that is not trusted, X-Forwarded-For is ignored', async () => {
    await withGateway((c) => { c.trustProxy = ['10.0.0.0/8']; c.rates.perClient = 1; }, async (gw) => {
      const ws = await RawClient.connect(gw.url, { headers: { 'x-forwarded-for': '203.0.113.7' } });
      try {
        await waitFor(async () => (await rows(gw)).length > 0, 'the connection row');
        assert.deepEqual((await rows(gw)).map((r) => r.remoteAddress), ['127.0.0.1']);
      } finally {
        ws.close();
      }
      const from = (addr: string) => api(gw.url, '/v1/topics/px.rl/messages', { json: addr, headers: { 'x-forwarded-for': addr } });
      assert.equal((await from('198.51.100.1')).status, 201);
      assert.equal((await from('198.51.100.2')).status, 429, 'one client (127.0.0.1), whatever it claims');
    });
  });
});
