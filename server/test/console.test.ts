import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../src/server.js';
import { removeDir, startGateway, tempDir } from './helpers/gateway.js';
import { api } from './helpers/http.js';

let gw: RunningServer;
let dir: string;
before(async () => {
  dir = tempDir('sluice-console-');
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Sluice console</title><script type="module" src="./assets/app-1a2b.js"></script>');
  writeFileSync(join(dir, 'assets', 'app-1a2b.js'), 'console.log("console");');
  gw = await startGateway((c) => { c.consoleDir = dir; });
});
after(async () => {
  await gw.close();
  removeDir(dir);
});

/** GET with the path sent as is (fetch would normalise `..` away); resolves with the status line. */
function rawGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
    let got = '';
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const eol = got.indexOf('\r\n');
      if (eol >= 0) { s.destroy(); resolve(got.slice(0, eol)); }
    });
  });
}

describe('/console', () => {
  it('serves the console build: index, hashed assets with long caching, client routes fall back to index', async () => {
    const redirect = await fetch(`${gw.url}/console`, { redirect: 'manual' });
    assert.deepEqual([redirect.status, redirect.headers.get('location')], [301, '/console/']);
    const index = await fetch(`${gw.url}/console/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assert.equal(index.headers.get('referrer-policy'), 'no-referrer');
    assert.match(await index.text(), /Sluice console/);
    const js = await fetch(`${gw.url}/console/assets/app-1a2b.js`);
    assert.deepEqual([js.status, js.headers.get('content-type'), js.headers.get('cache-control')],
      [200, 'text/javascript; charset=utf-8', 'public, max-age=31536000, immutable']);
    assert.match(await (await fetch(`${gw.url}/console/topics/chat`)).text(), /Sluice console/);
  });

  it('answers 404 for missing files and never reads outside the build', async () => {
    const missing = await api(gw.url, '/console/assets/nope.js');
    assert.deepEqual([missing.status, missing.body.error.code], [404, 'not-found']);
    assert.match(await rawGet(gw.port, '/console/../../../../etc/passwd'), /^HTTP\/1.1 404/);
    assert.match(await rawGet(gw.port, '/console/%2e%2e/%2e%2e/package.json'), /^HTTP\/1.1 404/);
  });
});
