/**
 * TLS served by the gateway itself (`--tls-cert` / `--tls-key`, uWS SSLApp): a real gateway
 * process with a certificate this test makes with openssl for 127.0.0.1, and real TLS clients that
 * trust only that certificate (Node https and ws with `ca`) — health, HTTP publish, and a
 * WebSocket subscription that receives it. A client that does not trust the certificate is refused
 * by its own TLS check, and a key that does not match the certificate stops the gateway at startup.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FrameType } from '@sluice/client/protocol';
import type { GatewayProcess } from '../src/testing.js';
import { CLI, removeDir, spawnGateway, tempDir } from './helpers/gateway.js';
import { RawClient } from './helpers/raw-client.js';

const OPENSSL = '/usr/bin/openssl';

/** A self-signed P-256 certificate for 127.0.0.1 and localhost, valid for a day. */
function certificate(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(OPENSSL, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert,
  ], { stdio: 'pipe' });
  return { cert, key };
}

/** A request over https trusting `ca` only; resolves to status and body. */
function https(url: string, ca: Buffer | undefined, opts: { method?: string; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: opts.method ?? 'GET',
      ...(ca ? { ca } : {}),
      headers: opts.body === undefined ? {} : { 'content-type': 'application/json' },
      timeout: 10_000,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

let dir: string;
let gw: GatewayProcess;
let ca: Buffer;
before(async () => {
  dir = tempDir('sluice-tls-');
  const { cert, key } = certificate(dir, 'gateway');
  ca = readFileSync(cert);
  gw = await spawnGateway(['--store', 'memory', '--tls-cert', cert, '--tls-key', key]);
});
after(async () => {
  await gw?.kill('SIGTERM');
  removeDir(dir);
});

describe('TLS (--tls-cert, --tls-key)', () => {
  it('serves https: health and publish to a client that trusts the certificate', async () => {
    assert.match(gw.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(await https(`${gw.url}/healthz`, ca), { status: 200, body: '{"status":"ok"}' });
    const r = await https(`${gw.url}/v1/topics/tls.t/messages`, ca, { method: 'POST', body: '{"hello":"tls"}' });
    assert.equal(r.status, 201, r.body);
    assert.ok(Number.isInteger(JSON.parse(r.body).offset), r.body);
  });

  it('serves wss: a WebSocket subscription gets what is published over https', async () => {
    const c = await RawClient.connect(gw.url, { ca });
    try {
      const sub = await c.subscribe(1, 'tls.ws', { from: 0, credit: 10 });
      assert.equal(sub.type, FrameType.SUBSCRIBED);
      assert.equal((await https(`${gw.url}/v1/topics/tls.ws/messages`, ca, { method: 'POST', body: '"over wss"' })).status, 201);
      const msg = await c.next((f) => f.type === FrameType.MSG);
      assert.equal(msg.type === FrameType.MSG && msg.data, 'over wss');
      await c.publish(1, 'tls.ws', 'from the socket');
    } finally {
      c.close();
    }
  });

  it('a client that does not trust the certificate refuses it; plain HTTP gets no answer', async () => {
    await assert.rejects(https(`${gw.url}/healthz`, undefined), (err: NodeJS.ErrnoException) => err.code === 'DEPTH_ZERO_SELF_SIGNED_CERT');
    await assert.rejects(fetch(`${gw.url.replace('https:', 'http:')}/healthz`, { signal: AbortSignal.timeout(5000) }));
  });

  it('a key that is not the certificate\'s stops the gateway at startup with exit code 2', () => {
    const other = certificate(dir, 'other');
    const { cert } = certificate(dir, 'mismatch');
    const r = spawnSync(process.execPath, [CLI, 'serve', '--store', 'memory', '--port', '0', '--tls-cert', cert, '--tls-key', other.key], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--tls-cert and --tls-key do not make a usable pair/);
    const missing = spawnSync(process.execPath, [CLI, 'serve', '--store', 'memory', '--port', '0', '--tls-cert', join(dir, 'nope.crt'), '--tls-key', other.key], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(missing.status, 2, missing.stderr);
    assert.match(missing.stderr, /cannot read the TLS certificate/);
  });
});
