import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { importSigningKey, mintToken, pkcs8Algorithm } from '../src/token.js';

/** Decodes a base64url segment of a JWT. */
const part = (jwt: string, i: number) => JSON.parse(Buffer.from(jwt.split('.')[i]!, 'base64url').toString()) as Record<string, unknown>;

async function verify(jwt: string, alg: AlgorithmIdentifier | EcdsaParams, key: CryptoKey): Promise<boolean> {
  const [h, p, s] = jwt.split('.');
  return crypto.subtle.verify(alg, key, Buffer.from(s!, 'base64url'), new TextEncoder().encode(`${h}.${p}`));
}

describe('mintToken (WebCrypto only)', () => {
  it('HS256 from a string secret: header, claims and a valid signature', async () => {
    const jwt = await mintToken({ key: 'a-long-enough-shared-secret-0123456789', sub: 'alice', caps: { 'chat.>': ['sub', 'pub'] }, ttl: 60, now: () => 1_700_000_000_000 });
    assert.deepEqual(part(jwt, 0), { alg: 'HS256', typ: 'JWT' });
    assert.deepEqual(part(jwt, 1), { sub: 'alice', iat: 1_700_000_000, exp: 1_700_000_060, caps: { 'chat.>': ['sub', 'pub'] } });
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode('a-long-enough-shared-secret-0123456789'), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    assert.equal(await verify(jwt, { name: 'HMAC' }, key), true);
  });

  it('ES256 from a JWK and from a PKCS8 PEM; EdDSA from both; admin and aud/iss/kid claims', async () => {
    const ec = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as CryptoKeyPair;
    const ed = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']) as CryptoKeyPair;
    const pem = async (k: CryptoKey) => {
      const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', k)).toString('base64');
      return `-----BEGIN PRIVATE KEY-----\n${der.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
    };
    const cases: [string, Parameters<typeof mintToken>[0]['key'], CryptoKey, AlgorithmIdentifier | EcdsaParams, string][] = [
      ['ES256 JWK', await crypto.subtle.exportKey('jwk', ec.privateKey), ec.publicKey, { name: 'ECDSA', hash: 'SHA-256' }, 'ES256'],
      ['ES256 PEM', await pem(ec.privateKey), ec.publicKey, { name: 'ECDSA', hash: 'SHA-256' }, 'ES256'],
      ['ES256 CryptoKey', ec.privateKey, ec.publicKey, { name: 'ECDSA', hash: 'SHA-256' }, 'ES256'],
      ['EdDSA JWK', await crypto.subtle.exportKey('jwk', ed.privateKey), ed.publicKey, { name: 'Ed25519' }, 'EdDSA'],
      ['EdDSA PEM', await pem(ed.privateKey), ed.publicKey, { name: 'Ed25519' }, 'EdDSA'],
    ];
    for (const [what, key, pub, alg, name] of cases) {
      const jwt = await mintToken({ key, sub: 'console', admin: true, aud: 'sluice', iss: 'edge', kid: 'k1' });
      assert.deepEqual(part(jwt, 0), { alg: name, typ: 'JWT', kid: 'k1' }, what);
      const claims = part(jwt, 1);
      assert.deepEqual([claims.admin, claims.aud, claims.iss, (claims.exp as number) - (claims.iat as number)], [true, 'sluice', 'edge', 3600], what);
      assert.equal(await verify(jwt, alg, pub), true, what);
    }
  });

  it('refuses what cannot make a valid token', async () => {
    const ec = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as CryptoKeyPair;
    const publicJwk = await crypto.subtle.exportKey('jwk', ec.publicKey);
    await assert.rejects(mintToken({ key: publicJwk, sub: 'x' }), /private key/);
    await assert.rejects(mintToken({ key: 'secret', sub: '' }), /sub/);
    await assert.rejects(mintToken({ key: 'secret', sub: 'x', ttl: 0 }), /ttl/);
    await assert.rejects(mintToken({ key: '-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----', sub: 'x' }), /PKCS8/);
    const imported = await importSigningKey('secret');
    assert.equal(imported.alg, 'HS256');
  });
});

describe('pkcs8Algorithm', () => {
  it('reads the algorithm from the key, not by trying imports', async () => {
    const der = async (k: CryptoKey) => new Uint8Array(await crypto.subtle.exportKey('pkcs8', k));
    const ec = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign'])) as CryptoKeyPair;
    const p384 = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign'])) as CryptoKeyPair;
    const ed = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign'])) as CryptoKeyPair;
    assert.equal(pkcs8Algorithm(await der(ec.privateKey)), 'ES256');
    assert.equal(pkcs8Algorithm(await der(ed.privateKey)), 'EdDSA');
    assert.throws(() => pkcs8Algorithm(new Uint8Array(0)), /neither Ed25519 nor P-256/);
    assert.throws(() => pkcs8Algorithm(Uint8Array.from([0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01])), /P-256/);
    await assert.rejects(mintToken({ key: `-----BEGIN PRIVATE KEY-----\n${Buffer.from(await der(p384.privateKey)).toString('base64')}\n-----END PRIVATE KEY-----`, sub: 'x' }), /P-256/);
  });
});
