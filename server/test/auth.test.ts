import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mintToken } from '@sluice/client/token';
import type { RunningServer } from '../src/server.js';
import { CLI, removeDir, spawnGateway, startGateway, tempDir } from './helpers/gateway.js';
import { api, SseReader } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const SECRET = 'test-secret-0123456789-abcdefghijklmnop';
const ed = generateKeyPairSync('ed25519');
const edPublicPem = ed.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const edPrivateJwk = ed.privateKey.export({ format: 'jwk' });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ecPublicJwk = JSON.stringify(ec.publicKey.export({ format: 'jwk' }));
const ecPrivatePem = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** A hand-made HS256 token (for what mintToken rightly refuses to make). */
const hs256 = (secret: string, claims: unknown) => {
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
};

/** Gateway A: HS256 secret and an Ed25519 public key. Gateway B: only a P-256 key, with audience and issuer. */
let a: RunningServer;
let b: RunningServer;
const dirs: string[] = [];
before(async () => {
  a = await startGateway((c) => { c.auth.secret = SECRET; c.auth.publicKey = edPublicPem; });
  b = await startGateway((c) => { c.auth.publicKey = ecPublicJwk; c.auth.audience = 'sluice'; c.auth.issuer = 'https://issuer.test'; });
});
after(async () => {
  await a.close();
  await b.close();
  dirs.forEach(removeDir);
});

const publish = (gw: RunningServer, topic: string, token?: string) =>
  api(gw.url, `/v1/topics/${topic}/messages`, token === undefined ? { json: 'x' } : { json: 'x', token });

/** Opens a WebSocket, sends HELLO with `token`, and returns how the gateway answered. */
async function wsHello(gw: RunningServer, token: string): Promise<{ welcome: boolean; error?: string; close?: number }> {
  const c = await RawClient.connect(gw.url, { hello: false });
  c.send({ type: 1, token, client: 'auth-test' });
  const f = await c.next((x) => x.type === 2 || x.type === 11);
  if (f.type === 2) { c.close(); return { welcome: true }; }
  const closed = await c.closed;
  return { welcome: false, error: f.type === 11 ? f.code : '', close: closed.code };
}

describe('tokens: accepted', () => {
  it('tokens from the SDK mintToken (HS256, EdDSA, ES256) open WebSockets and publish over HTTP', async () => {
    const caps = { 'chat.>': ['sub', 'pub', 'history'] as const };
    const hs = await mintToken({ key: SECRET, sub: 'alice', caps });
    const eddsa = await mintToken({ key: edPrivateJwk as JsonWebKey, sub: 'bob', caps });
    const es = await mintToken({ key: ecPrivatePem, sub: 'carol', caps, aud: 'sluice', iss: 'https://issuer.test' });
    for (const [gw, token, who] of [[a, hs, 'alice'], [a, eddsa, 'bob'], [b, es, 'carol']] as const) {
      const r = await publish(gw, 'chat.room', token);
      assert.equal(r.status, 201, `${who}: ${r.text}`);
      assert.deepEqual(await wsHello(gw, token), { welcome: true }, who);
      const c = await RawClient.connect(gw.url, { token });
      await c.subscribe(1, 'chat.room', { from: 1 });
      await c.waitDelivered('chat.room', 1);
      assert.equal([...gw.sessions].find((s) => s.id && s.clientId === who)?.clientId, who);
      c.close();
    }
  });
});

describe('tokens: the attack table', () => {
  it('refuses every forged, expired or confused token with 401 over HTTP and ERROR unauthorized + close 4101 over WebSocket', async () => {
    const claims = { sub: 'mallory', exp: now() + 600, caps: { '>': ['sub', 'pub', 'history'] } };
    const valid = await mintToken({ key: SECRET, sub: 'mallory', caps: claims.caps as Record<string, ('sub' | 'pub' | 'history')[]> });
    const [vh, , vs] = valid.split('.');
    const otherEd = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }) as JsonWebKey;
    const attacks: [string, string][] = [
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`],
      ['alg none, with a signature', `${b64({ alg: 'none' })}.${b64(claims)}.${vs}`],
      ['HS256 with the wrong secret', await mintToken({ key: 'another-secret-0123456789-abcdefghijk', sub: 'mallory' })],
      ['expired', await mintToken({ key: SECRET, sub: 'mallory', exp: now() - 3600 })],
      ['not yet valid (nbf)', await mintToken({ key: SECRET, sub: 'mallory', claims: { nbf: now() + 3600 } })],
      ['HS256 signed with the public key text (algorithm confusion)', hs256(edPublicPem, claims)],
      ['EdDSA from another key pair', await mintToken({ key: otherEd, sub: 'mallory' })],
      ['ES256 where no P-256 key is configured', await mintToken({ key: ecPrivatePem, sub: 'mallory' })],
      ['payload swapped under a valid signature', `${vh}.${b64({ ...claims, sub: 'admin', admin: true })}.${vs}`],
      ['forged payload, no exp', `${vh}.${b64({ sub: 'mallory' })}.${vs}`],
      ['no exp', hs256(SECRET, { sub: 'mallory' })],
      ['no sub', hs256(SECRET, { exp: now() + 600 })],
      ['caps not an object', hs256(SECRET, { ...claims, caps: ['pub'] })],
      ['malformed caps', await mintToken({ key: SECRET, sub: 'mallory', caps: { 'a..b': ['pub'] } })],
      ['garbage', 'not.a.token'],
      ['empty', ''],
    ];
    for (const [what, token] of attacks) {
      const r = await api(a.url, '/v1/topics/chat.attack/messages', { json: 'x', headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 401, `${what}: HTTP ${r.status} ${r.text}`);
      assert.equal(r.body.error.code, 'unauthorized', what);
      // RFC 6750 §3.1: a token that was sent and refused is `invalid_token`; "Bearer " alone sends none.
      assert.equal(r.headers.get('www-authenticate'), token ? 'Bearer error="invalid_token"' : 'Bearer', what);
      if (token) assert.deepEqual(await wsHello(a, token), { welcome: false, error: 'unauthorized', close: 4101 }, what);
    }
    assert.equal((await a.store.info('chat.attack')).head, 0, 'nothing was published by a refused token');
  });

  it('a gateway with only a public key refuses HS256; audience and issuer are checked when configured', async () => {
    const hs = await mintToken({ key: SECRET, sub: 'x', aud: 'sluice', iss: 'https://issuer.test' });
    const wrongAud = await mintToken({ key: ecPrivatePem, sub: 'x', aud: 'other', iss: 'https://issuer.test' });
    const wrongIss = await mintToken({ key: ecPrivatePem, sub: 'x', aud: 'sluice', iss: 'https://evil.test' });
    const noAud = await mintToken({ key: ecPrivatePem, sub: 'x', iss: 'https://issuer.test' });
    for (const [what, token] of [['HS256', hs], ['wrong aud', wrongAud], ['wrong iss', wrongIss], ['no aud', noAud]] as const) {
      const r = await publish(b, 'chat.x', token);
      assert.equal(r.status, 401, `${what}: ${r.text}`);
    }
  });

  it('no token: 401 on every route when authentication is on', async () => {
    for (const [method, path] of [['POST', '/v1/topics/chat.a/messages'], ['GET', '/v1/topics/chat.a/messages'], ['POST', '/v1/publish'], ['GET', '/v1/admin/stats']]) {
      const r = await api(a.url, path!, method === 'POST' ? { json: { messages: [{ topic: 'chat.a', data: 1 }] } } : {});
      assert.deepEqual([r.status, r.body.error.code], [401, 'unauthorized'], `${method} ${path}`);
      // RFC 6750 §3.1: no credentials, no error code in the challenge.
      assert.equal(r.headers.get('www-authenticate'), 'Bearer', `${method} ${path}`);
    }
    const basic = await api(a.url, '/v1/topics/chat.a/messages', { headers: { authorization: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' } });
    assert.deepEqual([basic.status, basic.headers.get('www-authenticate')], [401, 'Bearer'], 'another scheme counts as no Bearer token');
    const sse = await SseReader.open(`${a.url}/v1/topics/chat.a/events`);
    assert.equal(sse.status, 401);
    const c = await RawClient.connect(a.url, { hello: false });
    c.send({ type: 1, client: 'no-token' });
    assert.equal((await c.closed).code, 4101);
  });
});

describe('tokens: capabilities', () => {
  it('caps are checked per action and topic pattern on every path', async () => {
    const pubOnly = await mintToken({ key: SECRET, sub: 'writer', caps: { 'chat.*': ['pub'] } });
    const reader = await mintToken({ key: SECRET, sub: 'reader', caps: { 'chat.>': ['sub', 'history'] } });
    assert.equal((await publish(a, 'chat.caps', pubOnly)).status, 201);
    const denied: [string, Promise<{ status: number; body: any }>][] = [
      ['* is one segment', publish(a, 'chat.caps.deeper', pubOnly)],
      ['other topic', publish(a, 'news.caps', pubOnly)],
      ['pull needs history', api(a.url, '/v1/topics/chat.caps/messages', { token: pubOnly })],
      ['publish needs pub', publish(a, 'chat.caps', reader)],
      ['batch needs pub per message', api(a.url, '/v1/publish', { token: pubOnly, json: { messages: [{ topic: 'news.caps', data: 1 }] } })
        .then((r) => ({ status: r.body.results[0].error ? 403 : 200, body: { error: r.body.results[0].error } }))],
      ['admin needs admin', api(a.url, '/v1/admin/stats', { token: reader })],
      ['the stats history needs admin', api(a.url, '/v1/admin/stats/history', { token: reader })],
    ];
    for (const [what, p] of denied) {
      const r = await p;
      assert.deepEqual([r.status, r.body.error.code], [403, 'forbidden'], what);
    }
    const sse = await SseReader.open(`${a.url}/v1/topics/chat.caps/events?token=${pubOnly}`);
    assert.equal(sse.status, 403, 'SSE needs sub');
    const ok = await SseReader.open(`${a.url}/v1/topics/chat.caps/events?from=1&token=${reader}`);
    await ok.waitMessages(1);
    ok.close();
    assert.equal((await api(a.url, '/v1/topics/chat.caps/messages', { token: reader })).status, 200);

    const ws = await RawClient.connect(a.url, { token: pubOnly });
    ws.send({ type: 3, subId: 1, topic: 'chat.caps' });
    assert.equal(((await ws.next((f) => f.type === 11)) as { code: string }).code, 'forbidden');
    ws.send({ type: 8, reqId: 2, topic: 'news.caps', data: 1 });
    assert.equal(((await ws.next((f) => f.type === 11 && f.id === 2)) as { code: string }).code, 'forbidden');
    ws.close();
  });

  it('admin: true opens the admin API (also with ?token= for EventSource)', async () => {
    const admin = await mintToken({ key: SECRET, sub: 'ops', admin: true });
    assert.equal((await api(a.url, '/v1/admin/stats', { token: admin })).status, 200);
    const viaQuery = await api(a.url, `/v1/admin/topics?token=${admin}`);
    assert.equal(viaQuery.status, 200);
    assert.ok(Array.isArray(viaQuery.body));
    assert.equal((await api(a.url, `/v1/publish?token=${admin}`, { json: { messages: [{ topic: 'x', data: 1 }] } })).status, 401,
      'a query token is taken on GET routes only');
  });
});

describe('tokens: expiry', () => {
  it('a WebSocket whose token expires gets ERROR unauthorized and close 4101; an SSE stream gets event end', async () => {
    const g = await startGateway((c) => { c.auth.secret = SECRET; c.auth.clockSkewS = 0; });
    try {
      const exp = now() + 2;
      const token = await mintToken({ key: SECRET, sub: 'short', exp, caps: { '>': ['sub'] } });
      const c = await RawClient.connect(g.url, { token });
      const sse = await SseReader.open(`${g.url}/v1/topics/t.exp/events?token=${token}`);
      assert.equal(sse.status, 200);
      const closed = await c.closed;
      assert.equal(closed.code, 4101);
      const err = c.frames.find((f) => f.type === 11) as { code: string; message: string } | undefined;
      assert.deepEqual([err?.code, err?.message], ['unauthorized', 'token expired']);
      assert.ok(Date.now() >= exp * 1000 - 50, 'not before exp');
      const end = await sse.next((e) => e.event === 'end');
      assert.equal(JSON.parse(end.data).code, 'unauthorized');
      await sse.untilEnded();
    } finally {
      await g.close();
    }
  });
});

describe('sluice token / keygen / serve with auth', () => {
  it('prints tokens the gateway accepts (HS256 from SLUICE_AUTH_SECRET, EdDSA and ES256 from --key)', async () => {
    const out = spawnSync(process.execPath, [CLI, 'token', '--sub', 'cli-user', '--caps', 'chat.>=sub,pub', '--ttl', '1h'], {
      env: { ...process.env, SLUICE_AUTH_SECRET: SECRET }, encoding: 'utf8',
    });
    assert.equal(out.status, 0, out.stderr);
    const token = out.stdout.trim();
    assert.equal((await publish(a, 'chat.cli', token)).status, 201);
    assert.equal((await publish(a, 'news.cli', token)).status, 403);

    const dir = tempDir();
    dirs.push(dir);
    const keys = spawnSync(process.execPath, [CLI, 'keygen', '--alg', 'EdDSA'], { encoding: 'utf8' });
    assert.equal(keys.status, 0, keys.stderr);
    const [priv, pub] = keys.stdout.split(/(?=-----BEGIN PUBLIC KEY-----)/);
    writeFileSync(join(dir, 'private.pem'), priv!);
    writeFileSync(join(dir, 'public.pem'), pub!);
    const g = await startGateway((c) => { c.auth.publicKey = join(dir, 'public.pem'); });
    try {
      const adminOut = spawnSync(process.execPath, [CLI, 'token', '--sub', 'ops', '--admin', '--key', join(dir, 'private.pem'), '--ttl', '5m'], { encoding: 'utf8', env: { ...process.env, SLUICE_AUTH_SECRET: '' } });
      assert.equal(adminOut.status, 0, adminOut.stderr);
      assert.equal((await api(g.url, '/v1/admin/stats', { token: adminOut.stdout.trim() })).status, 200);
    } finally {
      await g.close();
    }
    // ES256 from a PKCS8 file, with aud and iss from the environment (gateway B checks both).
    writeFileSync(join(dir, 'ec.pem'), ecPrivatePem);
    const esOut = spawnSync(process.execPath, [CLI, 'token', '--sub', 'es-cli', '--caps', 'chat.>=pub', '--key', join(dir, 'ec.pem')], {
      encoding: 'utf8', env: { ...process.env, SLUICE_AUTH_SECRET: '', SLUICE_AUTH_AUDIENCE: 'sluice', SLUICE_AUTH_ISSUER: 'https://issuer.test' },
    });
    assert.equal(esOut.status, 0, esOut.stderr);
    assert.equal(JSON.parse(Buffer.from(esOut.stdout.split('.')[0]!, 'base64url').toString()).alg, 'ES256');
    assert.equal((await publish(b, 'chat.cli', esOut.stdout.trim())).status, 201);

    const bad = spawnSync(process.execPath, [CLI, 'token', '--sub', 'x', '--caps', 'chat.>=read'], { env: { ...process.env, SLUICE_AUTH_SECRET: SECRET }, encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /not one of sub, pub, history/);
  });

  it('serve with SLUICE_AUTH_SECRET requires tokens (no longer refuses to start)', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const gw = await spawnGateway(['--store', 'memory'], { SLUICE_AUTH_SECRET: SECRET });
    try {
      const r = await api(gw.url, '/v1/topics/chat.s/messages', { json: 1 });
      assert.equal(r.status, 401);
      const token = await mintToken({ key: SECRET, sub: 'x', caps: { 'chat.>': ['pub'] } });
      assert.equal((await api(gw.url, '/v1/topics/chat.s/messages', { json: 1, token })).status, 201);
      assert.doesNotMatch(gw.stderr(), /dev mode/);
    } finally {
      await gw.kill('SIGTERM');
    }
  });
});
