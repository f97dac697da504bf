/**
 * The browser bundles: their size budgets (printed), no Node built-ins, and that this exact file —
 * the one browsers, Workers and Deno load — works against a real gateway (the consumer bundle is
 * run against one in workerd by edge.test.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { spawnGateway } from '@sluice/server/testing';

const BUNDLE = new URL('../browser/sluice.min.js', import.meta.url);
const BUDGET = 21 * 1024; // 20 KiB until protocol 1.5 (byte window) added ~260 bytes
const TOKEN_BUNDLE = new URL('../browser/token.min.js', import.meta.url);
const TOKEN_BUDGET = 1536;
const CONSUMER_BUNDLE = new URL('../browser/consumer.min.js', import.meta.url);
const CONSUMER_BUDGET = 3072;

describe('browser bundle', () => {
  it(`is at most ${BUDGET} bytes gzipped and uses no Node API`, () => {
    const code = readFileSync(BUNDLE);
    const gz = gzipSync(code, { level: 9 }).length;
    console.log(`# bundle size: dist/browser/sluice.min.js ${code.length} bytes minified, ${gz} bytes gzip (budget ${BUDGET})`);
    assert.ok(gz <= BUDGET, `${gz} bytes gzip > ${BUDGET}`);
    const text = code.toString();
    assert.doesNotMatch(text, /\brequire\(|from\s*["']node:|import\(["'](?:node:|fs|net|crypto)["']\)/);
  });

  it(`token.min.js is under ${TOKEN_BUDGET} bytes gzipped (README: "under 1.5 KiB") and uses no Node API`, () => {
    const code = readFileSync(TOKEN_BUNDLE);
    const gz = gzipSync(code, { level: 9 }).length;
    console.log(`# bundle size: dist/browser/token.min.js ${code.length} bytes minified, ${gz} bytes gzip (budget ${TOKEN_BUDGET})`);
    assert.ok(gz < TOKEN_BUDGET, `${gz} bytes gzip >= ${TOKEN_BUDGET}`);
    assert.doesNotMatch(code.toString(), /\brequire\(|from\s*["']node:|import\(["'](?:node:|fs|net|crypto)["']\)/);
  });

  it(`consumer.min.js (createConsumer, for edge workers) is at most ${CONSUMER_BUDGET} bytes gzipped and uses no Node API`, () => {
    const code = readFileSync(CONSUMER_BUNDLE);
    const gz = gzipSync(code, { level: 9 }).length;
    console.log(`# bundle size: dist/browser/consumer.min.js ${code.length} bytes minified, ${gz} bytes gzip (budget ${CONSUMER_BUDGET})`);
    assert.ok(gz <= CONSUMER_BUDGET, `${gz} bytes gzip > ${CONSUMER_BUDGET}`);
    assert.doesNotMatch(code.toString(), /\brequire\(|from\s*["']node:|import\(["'](?:node:|fs|net|crypto)["']\)|msgpackr/);
  });

  it('the svelte subpath loads no SDK code of its own (it is handed a client), so it costs the core bundle nothing', () => {
    const code = readFileSync(new URL('../src/svelte.js', import.meta.url), 'utf8');
    assert.doesNotMatch(code, /^\s*import\s[^;]*from/m, 'svelte.js imports nothing at run time');
    assert.doesNotMatch(readFileSync(BUNDLE, 'utf8'), /subscriptionStore/);
  });

  it('works against a real gateway', async () => {
    const sdk = (await import(BUNDLE.href)) as typeof import('../src/index.js');
    const gw = await spawnGateway({ store: 'memory' });
    try {
      const client = sdk.createClient({ url: gw.url, WebSocket: WebSocket as never });
      const sub = client.subscribe('bundle.t', { from: 1 });
      const r = await client.publish('bundle.t', { hello: 'bundle' });
      assert.deepEqual(r, { offset: 1, duplicate: false });
      const first = await sub[Symbol.asyncIterator]().next();
      assert.deepEqual(first.value?.data, { hello: 'bundle' });
      client.close();
    } finally {
      await gw.kill();
    }
  });
});
