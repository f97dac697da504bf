import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const APP = 'https://app.example.com';
const EVIL = 'https://evil.example.net';

let dev: RunningServer;
let listed: RunningServer;
let secured: RunningServer;
before(async () => {
  dev = await startGateway();
  listed = await startGateway((c) => { c.allowedOrigins = [APP]; });
  secured = await startGateway((c) => { c.auth.secret = 'cors-secret-0123456789-abcdefghijklmnop'; });
});
after(async () => {
  await Promise.all([dev.close(), listed.close(), secured.close()]);
});

const preflight = (gw: RunningServer, origin: string) => fetch(`${gw.url}/v1/topics/cors.t/messages`, {
  method: 'OPTIONS',
  headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, idempotency-key' },
});

describe('CORS', () => {
  it('dev mode: any origin may call the API; preflight and responses carry the CORS headers', async () => {
    const p = await preflight(dev, EVIL);
    assert.equal(p.status, 204);
    assert.equal(p.headers.get('access-control-allow-origin'), EVIL);
    assert.match(p.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(p.headers.get('access-control-allow-headers') ?? '', /idempotency-key/);
    const r = await api(dev.url, '/v1/topics/cors.t/messages', { json: 1, headers: { origin: EVIL } });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('access-control-allow-origin'), EVIL);
    assert.match(r.headers.get('access-control-expose-headers') ?? '', /Retry-After/);
    assert.equal(r.headers.get('vary'), 'Origin');
  });

  it('with an allowlist: listed origins pass, others get 403 before anything happens', async () => {
    assert.equal((await preflight(listed, APP)).status, 204);
    const refused = await preflight(listed, EVIL);
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('access-control-allow-origin'), null);

    const ok = await api(listed.url, '/v1/topics/cors.l/messages', { json: 1, headers: { origin: APP } });
    assert.deepEqual([ok.status, ok.headers.get('access-control-allow-origin')], [201, APP]);
    // A "simple" cross-site request (no preflight) must not publish either.
    const simple = await api(listed.url, '/v1/topics/cors.l/messages', { raw: 'csrf', headers: { origin: EVIL, 'content-type': 'text/plain' } });
    assert.deepEqual([simple.status, simple.body.error.code], [403, 'forbidden']);
    const pull = await api(listed.url, '/v1/topics/cors.l/messages', { headers: { origin: EVIL } });
    assert.equal(pull.status, 403);
    // No Origin (servers, edge workers) and the gateway's own origin always pass.
    assert.equal((await api(listed.url, '/v1/topics/cors.l/messages', { json: 2 })).status, 201);
    const own = await api(listed.url, '/v1/topics/cors.l/messages', { json: 3, headers: { origin: listed.url } });
    assert.equal(own.status, 201);
    assert.equal((await listed.store.info('cors.l')).head, 3);
  });
});

describe('WebSocket Origin allowlist (cross-site WebSocket hijacking)', () => {
  it('refuses an upgrade from an origin not on the list with 403; listed, own and absent origins connect', async () => {
    await assert.rejects(RawClient.connect(listed.url, { headers: { origin: EVIL } }), /403/);
    for (const headers of [{ origin: APP }, { origin: listed.url }, {}] as Record<string, string>[]) {
      const c = await RawClient.connect(listed.url, { headers });
      assert.ok(c.welcome, JSON.stringify(headers));
      c.close();
    }
  });

  it('with authentication on and no list configured, only the gateway\'s own origin may connect', async () => {
    await assert.rejects(RawClient.connect(secured.url, { hello: false, headers: { origin: EVIL } }), /403/);
    const own = await RawClient.connect(secured.url, { hello: false, headers: { origin: secured.url } });
    own.close();
    assert.equal((await preflight(secured, EVIL)).status, 403);
  });

  it('dev mode accepts any origin', async () => {
    const c = await RawClient.connect(dev.url, { headers: { origin: EVIL } });
    assert.ok(c.welcome);
    c.close();
  });
});
