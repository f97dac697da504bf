/**
 * Tokens from real identity providers: RS256 (what Auth0, Cognito and Firebase issue) with a
 * configured public key, and a remote JWK Set (`--auth-jwks-url`) served by a local HTTP server in
 * the test, with keys the test generates with WebCrypto and tokens signed with jose's SignJWT (an
 * issuer independent of the SDK's mintToken). The JWK Set is cached, refetched for an unknown
 * `kid` (key rotation) at most once per cooldown, and HS256 keeps working next to it.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportSPKI, type JWK } from 'jose';
import { mintToken } from '@sluice/client/token';
import { loadConfig } from '../src/config.js';
import { startServer, type RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const SECRET = 'test-secret-0123456789-abcdefghijklmnop';
const COOLDOWN_MS = 400;

interface Key { kid: string; alg: 'RS256' | 'ES256'; privateKey: CryptoKey; publicKey: CryptoKey; jwk: JWK }

async function makeKey(kid: string, alg: 'RS256' | 'ES256'): Promise<Key> {
  const params = alg === 'RS256'
    ? { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
    : { name: 'ECDSA', namedCurve: 'P-256' };
  const pair = (await crypto.subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as JWK;
  return { kid, alg, privateKey: pair.privateKey, publicKey: pair.publicKey, jwk: { kty: jwk.kty, n: jwk.n, e: jwk.e, crv: jwk.crv, x: jwk.x, y: jwk.y, kid, alg, use: 'sig' } };
}

function sign(key: Key, sub: string, opts: { kid?: string } = {}): Promise<string> {
  return new SignJWT({ caps: { 'idp.>': ['pub', 'sub', 'history'] } })
    .setProtectedHeader({ alg: key.alg, kid: opts.kid ?? key.kid, typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key.privateKey);
}

/** The identity provider: serves `jwks` at /.well-known/jwks.json and counts the fetches. */
class Provider {
  jwks: { keys: JWK[] } = { keys: [] };
  fetches = 0;
  private constructor(private readonly server: Server) {}

  static async start(): Promise<Provider> {
    const server = createServer();
    const p = new Provider(server);
    server.on('request', (req, res) => {
      if (req.url !== '/.well-known/jwks.json') { res.writeHead(404).end(); return; }
      p.fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(p.jwks));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return p;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const publish = (gw: RunningServer, token: string) => api(gw.url, '/v1/topics/idp.events/messages', { json: { ok: 1 }, token });

async function wsHello(gw: RunningServer, token: string): Promise<string> {
  const c = await RawClient.connect(gw.url, { hello: false });
  c.send({ type: 1, token, client: 'jwks-test' });
  const f = await c.next((x) => x.type === 2 || x.type === 11);
  c.close();
  return f.type === 2 ? 'welcome' : f.type === 11 ? f.code : '?';
}

let provider: Provider;
let gw: RunningServer;
let a: Key, b: Key, c: Key, ec: Key;
before(async () => {
  [a, b, c, ec] = await Promise.all([makeKey('key-a', 'RS256'), makeKey('key-b', 'RS256'), makeKey('key-c', 'RS256'), makeKey('key-ec', 'ES256')]);
  provider = await Provider.start();
  provider.jwks = { keys: [a.jwk, ec.jwk] };
  // Through the flags, as an operator sets them; HS256 next to the provider's keys.
  gw = await startServer(loadConfig(['--port', '0', '--store', 'memory', '--quiet', '--auth-jwks-url', provider.url,
    '--auth-jwks-cooldown', `${COOLDOWN_MS}ms`, '--auth-secret', SECRET], {}));
});
after(async () => {
  await gw?.close();
  await provider?.close();
});

describe('a remote JWK Set (--auth-jwks-url)', () => {
  it('accepts RS256 and ES256 tokens of its keys, over HTTP and WebSocket, fetching the set once', async () => {
    await waitFor(() => provider.fetches >= 1, 'the set is fetched at startup');
    for (const [key, who] of [[a, 'rsa-user'], [ec, 'ec-user']] as const) {
      const token = await sign(key, who);
      const r = await publish(gw, token);
      assert.equal(r.status, 201, `${who}: ${r.text}`);
      assert.equal(await wsHello(gw, token), 'welcome', who);
    }
    assert.equal(provider.fetches, 1, 'cached: one fetch for every token of known keys');
  });

  it('rotation: a token with a new kid refetches the set and is accepted; a retired key and an unknown kid are refused', async () => {
    provider.jwks = { keys: [b.jwk, ec.jwk] };
    const before = provider.fetches;
    const tokenB = await sign(b, 'rotated');
    // Refused only while the cooldown since the last fetch runs; then one refetch lets it in.
    let last = await publish(gw, tokenB);
    const deadline = Date.now() + 5_000;
    while (last.status !== 201 && Date.now() < deadline) {
      assert.deepEqual([last.status, last.headers.get('www-authenticate')], [401, 'Bearer error="invalid_token"'], last.text);
      await new Promise((resolve) => setTimeout(resolve, COOLDOWN_MS / 4));
      last = await publish(gw, tokenB);
    }
    assert.equal(last.status, 201, last.text);
    assert.equal(provider.fetches, before + 1, 'one refetch');
    assert.equal(await wsHello(gw, tokenB), 'welcome');

    // A token signed by a key the provider never published, and one of the retired key A.
    const forged = await sign(c, 'mallory', { kid: 'key-unknown' });
    // (Another sub: the very token verified before stays accepted until its exp — verified tokens are cached.)
    const retired = await sign(a, 'rsa-user-later');
    for (const [what, token] of [['unknown kid', forged], ['retired key', retired]] as const) {
      const r = await publish(gw, token);
      assert.deepEqual([r.status, r.body.error?.code, r.headers.get('www-authenticate')], [401, 'unauthorized', 'Bearer error="invalid_token"'], what);
      assert.equal(await wsHello(gw, token), 'unauthorized', what);
    }
    // A key the set has, under another key's kid, is no key at all.
    assert.equal((await publish(gw, await sign(c, 'mallory', { kid: 'key-b' }))).status, 401);
  });

  it('refetches at most once per cooldown, however many unknown kids arrive', async () => {
    const forged = await Promise.all(Array.from({ length: 30 }, (_, i) => sign(c, 'mallory', { kid: `flood-${i}` })));
    const start = Date.now();
    const before = provider.fetches;
    const answers = await Promise.all(forged.map((t) => publish(gw, t)));
    const elapsed = Date.now() - start;
    assert.ok(answers.every((r) => r.status === 401));
    const fetched = provider.fetches - before;
    assert.ok(fetched <= 1 + Math.floor(elapsed / COOLDOWN_MS), `${fetched} fetches for 30 unknown kids in ${elapsed} ms (cooldown ${COOLDOWN_MS} ms)`);
  });

  it('HS256 keeps working next to it, and an HS256 token never verifies with the set', async () => {
    const hs = await mintToken({ key: SECRET, sub: 'hs-user', caps: { 'idp.>': ['pub'] } });
    assert.equal((await publish(gw, hs)).status, 201);
    // An HS256 token "signed" with a published public key's text (algorithm confusion).
    const confused = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'key-b' }).setSubject('x').setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(b.jwk)));
    assert.equal((await publish(gw, confused)).status, 401);
  });

  it('keeps known keys working while the provider is down', async () => {
    const token = await sign(b, 'during-outage');
    await provider.close();
    assert.equal((await publish(gw, token)).status, 201);
    assert.equal((await publish(gw, await sign(c, 'mallory', { kid: 'during-outage' }))).status, 401);
  });
});

describe('RS256 with a configured public key (--auth-public-key)', () => {
  it('accepts tokens of the RSA key as PEM or JWK, refuses another RSA key', async () => {
    const key = await makeKey('pem-key', 'RS256');
    const other = await makeKey('pem-key', 'RS256');
    const spki = await exportSPKI(key.publicKey);
    for (const publicKey of [spki, JSON.stringify(key.jwk)]) {
      const server = await startGateway((cfg) => { cfg.auth.publicKey = publicKey; });
      try {
        assert.equal((await publish(server, await sign(key, 'pem-user'))).status, 201);
        assert.equal(await wsHello(server, await sign(key, 'pem-user')), 'welcome');
        assert.equal((await publish(server, await sign(other, 'mallory'))).status, 401);
      } finally {
        await server.close();
      }
    }
  });
});
