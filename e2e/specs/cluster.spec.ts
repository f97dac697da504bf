/**
 * A page in real Chromium, subscribed through a load balancer in front of two gateway nodes on
 * one Redis, while the node it is connected to is killed: it reconnects through the balancer to
 * the other node and resumes, receiving every message in order, none twice, no gap.
 */
import type { Page } from '@playwright/test';
import WebSocket from 'ws';
import { createClient } from '@sluice/client';
import { startCluster } from '../fixtures/cluster.js';
import { startLoadBalancer } from '../fixtures/haproxy.js';
import '../fixtures/harness.js';
import { expect, publishRange, test } from '../fixtures/index.js';


/** Which gateway the page's WebSocket landed on: the cluster-wide connection list says which node. */
async function nodeOfPage(nodes: { url: string }[], ua: string): Promise<number> {
  const rows = (await (await fetch(`${nodes[0]!.url}/v1/admin/connections`)).json()) as { userAgent: string; node: string; transport: string }[];
  const row = rows.find((r) => r.userAgent === ua && r.transport === 'ws');
  if (!row) throw new Error('the page is connected to no node');
  const list = (await (await fetch(`${nodes[0]!.url}/v1/admin/nodes`)).json()) as { id: string; address: string }[];
  const address = list.find((n) => n.id === row.node)!.address;
  return nodes.findIndex((n) => n.url === address);
}

test('a page behind the load balancer keeps receiving, in order and without duplicates, while its node is killed', async ({ page, site }) => {
  const cluster = await startCluster(2);
  const lb = await startLoadBalancer(cluster.gateways);
  const publisher = createClient({ url: lb.url, WebSocket: WebSocket as never, backoff: () => 50 });
  try {
    await openPage(page, site.url, lb.url);
    await page.evaluate(() => window.harness.start({ topic: 'e2e.cluster', from: 1 }));
    const ua = await page.evaluate(() => navigator.userAgent);
    const victim = await nodeOfPage(cluster.gateways, ua);
    // A steady stream of keyed publishes (the SDK retries with the same key across nodes).
    const stream = publishRange(publisher, 'e2e.cluster', 1, 600, 50);
    await page.waitForFunction(() => window.harness.received.length >= 150);
    await cluster.gateways[victim]!.kill('SIGKILL');
    await stream;
    await page.waitForFunction(() => window.harness.received.length >= 600, undefined, { timeout: 60_000 });
    const got = await page.evaluate(() => window.harness.received);
    expect(got.map((m) => m.offset)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    expect(got.map((m) => m.data)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    expect(await page.evaluate(() => window.harness.gaps)).toEqual([]);
  } finally {
    publisher.close();
    await lb.stop();
    await cluster.stop();
  }
});

async function openPage(page: Page, site: string, gateway: string): Promise<void> {
  await page.goto(`${site}/sdk.html?gateway=${encodeURIComponent(gateway)}`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
}
