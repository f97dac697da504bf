/**
 * The browser path: the SDK bundle in real Chromium against a real gateway process.
 */
import type { Page } from '@playwright/test';
import { createPublisher } from '@sluice/client';
import { freePort } from '@sluice/server/testing';
import '../fixtures/harness.js';
import { expect, publishRange, test } from '../fixtures/index.js';


async function openPage(page: Page, site: string, gateway: string): Promise<void> {
  await page.goto(`${site}/sdk.html?gateway=${encodeURIComponent(gateway)}`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
}

async function received(page: Page): Promise<{ offset: number; data: unknown }[]> {
  return page.evaluate(() => window.harness.received);
}

async function waitReceived(page: Page, n: number, timeout = 60_000): Promise<void> {
  await page.waitForFunction((count) => window.harness.received.length >= count, n, { timeout });
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('a page receives messages published over HTTP (the edge path) with exact data, in order', async ({ page, site, gateway }) => {
  await openPage(page, site.url, gateway.url);
  await page.evaluate(() => window.harness.start({ topic: 'e2e.http', from: 1 }));
  const publisher = createPublisher({ url: gateway.url });
  const payloads: unknown[] = [
    { text: 'hello', n: 1 },
    'plain string — ünïcødé ✓',
    42.5,
    [1, 'two', { three: [3] }],
    { nested: { deep: { list: [true, false, null] } } },
    null,
  ];
  for (const [i, data] of payloads.entries()) {
    expect(await publisher.publish('e2e.http', data, { key: `http-${i}` })).toMatchObject({ offset: i + 1, duplicate: false });
  }
  const batch = await publisher.publishBatch([{ topic: 'e2e.http', data: { batch: 1 } }, { topic: 'e2e.http', data: { batch: 2 } }]);
  expect(batch.map((r) => ('offset' in r ? r.offset : r))).toEqual([7, 8]);
  // Raw bytes over HTTP arrive as binary in the browser.
  expect((await publisher.publish('e2e.http', new Uint8Array([0, 1, 254, 255]))).offset).toBe(9);

  await waitReceived(page, 9);
  const got = await page.evaluate(() => window.harness.received.map((m) => ({
    offset: m.offset,
    data: m.data instanceof Uint8Array ? { bytes: [...m.data] } : m.data,
  })));
  expect(got.map((m) => m.offset)).toEqual(range(1, 9));
  expect(got.map((m) => m.data)).toEqual([...payloads, { batch: 1 }, { batch: 2 }, { bytes: [0, 1, 254, 255] }]);
});

test('SIGKILL and restart while a page is subscribed: every acknowledged message exactly once, in order; a reload resumes', async ({ page, site, gateway, publisher }) => {
  await openPage(page, site.url, gateway.url);
  await page.evaluate(() => window.harness.start({ topic: 'e2e.kill', from: 1, persist: true }));

  // A steady stream; the gateway dies a third of the way through and comes back on the same data.
  const first = publishRange(publisher, 'e2e.kill', 1, 600, 50);
  await waitReceived(page, 200);
  await gateway.restart();
  await first;
  await waitReceived(page, 600);
  const got = await received(page);
  expect(got.map((m) => m.offset)).toEqual(range(1, 600));
  expect(got.map((m) => m.data)).toEqual(range(1, 600));
  expect(await page.evaluate(() => window.harness.gaps)).toEqual([]);

  // Reload: the page resumes after the last message it handled — no replay from the start, no gap.
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  const resumed = await page.evaluate(() => window.harness.start({ topic: 'e2e.kill', from: 1, persist: true }));
  expect(resumed).toMatchObject({ recovered: true, from: 601 });
  await publishRange(publisher, 'e2e.kill', 601, 650);
  await waitReceived(page, 50);
  const after = await received(page);
  expect(after.map((m) => m.offset)).toEqual(range(601, 650));
});

test('a slow page (20 ms per message) receives 120 messages in order and never holds more than its window', async ({ page, site, gateway, publisher }) => {
  await openPage(page, site.url, gateway.url);
  await page.evaluate(() => window.harness.start({ topic: 'e2e.slow', window: 8, delayMs: 20 }));
  // 120 published at once is 15 windows behind the page: the gateway holds them back by credit.
  // (A window of 8 proves what 32 did, in a quarter of the 20 ms handler time.)
  await publishRange(publisher, 'e2e.slow', 1, 120, 120);
  await waitReceived(page, 120, 60_000);
  const got = await received(page);
  expect(got.map((m) => m.offset)).toEqual(range(1, 120));
  const maxHeld = await page.evaluate(() => window.harness.maxHeld);
  console.log(`slow page: max in flight ${maxHeld} (window 8)`);
  // Full windows were held (the page really was behind), and never more.
  expect(maxHeld).toBeGreaterThanOrEqual(4);
  expect(maxHeld).toBeLessThanOrEqual(8);
});

/** What the page's client reported, in plain values. */
interface Seen {
  states: { newState: string; code?: number; error?: { name: string; code: string; status?: number } }[];
  outcome: string;
  elapsed: number;
}

/** A client on the page to `url`; publishes once and reports its state changes and how the publish ended. */
function failingClient(page: Page, url: string): Promise<Seen> {
  return page.evaluate(async (gatewayUrl) => {
    const { createClient } = (window as unknown as { sluice: typeof import('@sluice/client') }).sluice;
    const client = createClient({ url: gatewayUrl, suspendAfterMs: 800, suspendedRetryMs: 60_000, backoff: () => 100 });
    const states: Seen['states'] = [];
    client.on('state', (s) => {
      const e = s.error as { name: string; code: string; status?: number } | undefined;
      states.push({ newState: s.newState, code: s.code, error: e && { name: e.name, code: e.code, status: e.status } });
    });
    const started = performance.now();
    const outcome = await client.publish('e2e.down', 1).then(() => 'stored', (e: { name: string; code: string }) => `${e.name} ${e.code}`);
    const elapsed = performance.now() - started;
    client.close();
    return { states, outcome, elapsed };
  }, url);
}

test('in Chromium, a gateway that is down is visible: the cause on each state change, suspended by the deadline, the publish rejects', async ({ page, site, gateway }) => {
  await openPage(page, site.url, gateway.url);
  const port = await freePort(); // nothing listens there
  const down = await failingClient(page, `ws://127.0.0.1:${port}`);
  expect(down.outcome).toBe('SuspendedError suspended');
  expect(down.elapsed).toBeGreaterThanOrEqual(800);
  expect(down.elapsed).toBeLessThan(5000);
  expect(down.states.find((s) => s.newState === 'reconnecting')).toMatchObject({ code: 1006, error: { name: 'ConnectionError', code: 'network' } });
  expect(down.states.find((s) => s.newState === 'suspended')?.error?.code).toBe('network');
  // A wrong path: browsers hide the HTTP status of a refused upgrade, so the cause is `network` here
  // (Node's `ws` reports `not-found` with status 404: server/test/sdk-visible.test.ts).
  const wrong = await failingClient(page, `${gateway.url.replace(/^http/, 'ws')}/v1/wrong`);
  expect(wrong.outcome).toBe('SuspendedError suspended');
  expect(wrong.states.find((s) => s.newState === 'reconnecting')?.error).toMatchObject({ name: 'ConnectionError', code: 'network' });
});
