import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api } from './helpers/http.js';

let gw: RunningServer;
before(async () => { gw = await startGateway((c) => { c.http.maxBody = 16 * 1024; }); });
after(async () => { await gw.close(); });

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomValue(r: () => number, depth = 0): unknown {
  const k = Math.floor(r() * (depth > 3 ? 5 : 8));
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return Math.floor(r() * 2 ** 40) * (r() < 0.5 ? -1 : 1);
    case 3: return r() * 1e6;
    case 4: return ['', 'chat.a', 'a..b', '$sys', '>', 'x'.repeat(300), 'ü/ö', 'base64'][Math.floor(r() * 8)];
    case 5: return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (const key of ['topic', 'data', 'key', 'headers', 'encoding', 'messages', '__proto__', 'constructor']) {
        if (r() < 0.4) o[key] = randomValue(r, depth + 1);
      }
      return o;
    }
  }
}

/**
 * Sends raw bytes; resolves with the response's status line as soon as it arrived, or '' if the
 * socket closed or `ms` passed without one.
 */
function statusLine(port: number, text: string, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    let got = '';
    const done = (v: string) => { clearTimeout(t); s.destroy(); resolve(v); };
    const t = setTimeout(() => done(''), ms);
    s.on('data', (d) => {
      got += d.toString('latin1');
      const eol = got.indexOf('\r\n');
      if (eol >= 0) done(got.slice(0, eol));
    });
    s.on('error', () => undefined);
    s.on('close', () => done(''));
  });
}

describe('HTTP bad input', () => {
  it('random batch bodies always get a JSON answer, never a handler failure', async () => {
    const r = rng(20240611);
    for (let i = 0; i < 300; i++) {
      const body = r() < 0.7 ? { messages: Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r)) } : randomValue(r);
      const res = await api(gw.url, '/v1/publish', { json: body });
      assert.ok([200, 400, 413].includes(res.status), `status ${res.status} for ${JSON.stringify(body).slice(0, 200)}`);
      assert.equal(typeof res.body, 'object', res.text);
      if (res.status === 200) {
        for (const x of res.body.results) assert.ok(typeof x.offset === 'number' || typeof x.error?.code === 'string', JSON.stringify(x));
      }
    }
    assert.equal(gw.metrics.handlerFailures.value, 0);
  });

  it('malformed requests and paths get an error status, and the gateway goes on', async () => {
    const port = gw.port;
    const cases: [string, string][] = [
      ['GET /v1/topics/%E0%A4%A/messages HTTP/1.1\r\nHost: x\r\n\r\n', '404'],
      ['GET /v1/topics/%/events HTTP/1.1\r\nHost: x\r\n\r\n', '404'],
      ['GET /v1/admin/topics/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n', '400'],
      ['GET /v1/topics/a/messages?from=99999999999999999999&wait=1e9 HTTP/1.1\r\nHost: x\r\n\r\n', '400'],
      ['POST /v1/topics/a/messages HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\nxyz', '400'],
      ['BREW /v1/topics/a/messages HTTP/1.1\r\nHost: x\r\n\r\n', '405'],
      ['GET /v1/topics/a/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1e400\r\n\r\n', '400'],
      ['POST /v1/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', '400'],
      ['\x00\x01\x02 garbage\r\n\r\n', '505'],
    ];
    for (const [request, status] of cases) {
      const line = await statusLine(port, request);
      assert.match(line, new RegExp(`^HTTP/1.1 ${status} `), JSON.stringify(request));
    }
    const health = await api(gw.url, '/healthz');
    assert.equal(health.status, 200);
    assert.equal(gw.metrics.handlerFailures.value, 0);
  });
});
