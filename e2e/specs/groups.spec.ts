/**
 * Consumer groups in the browser: two pages are members of one group through the SDK bundle
 * (`client.consume`); closing one page's tab hands its leases to the other once they expire: the
 * group's ack wait (1 s on this spec's gateway instead of the default 30 s), then its first retry
 * backoff (1 s by default).
 */
import type { Page } from '@playwright/test';
import '../fixtures/harness.js';
import { expect, publishRange, test } from '../fixtures/index.js';

test.use({ gatewayArgs: ['--group-ack-wait', '1s'] });

async function openPage(page: Page, site: string, gateway: string): Promise<void> {
  await page.goto(`${site}/sdk.html?gateway=${encodeURIComponent(gateway)}`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
}

const consumed = (page: Page) => page.evaluate(() => window.harness.consumed);

test('two pages share a group; closing one tab hands its leases to the other after the ack wait', async ({ page, context, site, gateway, publisher }) => {
  const holder = page;
  const worker = await context.newPage();
  await openPage(holder, site.url, gateway.url);
  await openPage(worker, site.url, gateway.url);
  // The holder takes up to 5 leases and never finishes one; the worker handles what it gets.
  await holder.evaluate(() => window.harness.consume({ topic: 'e2e.group', group: 'pages', from: 1, window: 5, hold: true }));
  await worker.evaluate(() => window.harness.consume({ topic: 'e2e.group', group: 'pages', from: 1, window: 4, concurrency: 2 }));

  const N = 40;
  await publishRange(publisher, 'e2e.group', 1, N);
  await holder.waitForFunction(() => window.harness.consumed.length === 1);
  await worker.waitForFunction((n) => window.harness.consumed.length >= n, N - 5);
  const held = await consumed(holder);
  expect(held.map((m) => m.attempt)).toEqual([1]); // the one it is handling; four more wait in its queue
  const firstRound = (await consumed(worker)).filter((m) => m.attempt === 1);
  const missing = Array.from({ length: N }, (_, i) => i + 1).filter((o) => !firstRound.some((m) => m.offset === o));
  expect(missing).toHaveLength(5);
  expect(missing).toContain(held[0]!.offset);

  // Close the holder's tab: its socket goes, its five leases stay with the group until they expire.
  const closedAt = Date.now();
  await holder.close();
  await worker.waitForFunction((n) => new Set(window.harness.consumed.map((m) => m.offset)).size >= n, N, { timeout: 15_000 });
  const elapsed = Date.now() - closedAt;
  const all = await consumed(worker);
  const again = all.filter((m) => m.attempt > 1);
  expect(again.map((m) => m.offset).sort((a, b) => a - b)).toEqual(missing);
  expect(again.every((m) => m.attempt === 2)).toBe(true);
  expect(again.map((m) => m.data).sort((a, b) => Number(a) - Number(b))).toEqual(missing);
  expect(all).toHaveLength(N); // the worker handled each message once
  console.log(`group: the closed tab's 5 leases reached the other page ${elapsed} ms after the close (ack wait 1 s + backoff 1 s from the lease)`);
});
