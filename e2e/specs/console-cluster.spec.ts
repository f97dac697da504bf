/**
 * The console of a two-node cluster (dev mode, one Redis; the `cluster` fixture): whichever node
 * serves it, it shows both nodes, the subscribers and connections of both, and closes a
 * connection held by the other node. Screenshots go to e2e/artifacts/ like the console suite's.
 */
import WebSocket from 'ws';
import { createClient, type Client } from '@sluice/client';
import type { Page } from '@playwright/test';
import { expect, test } from '../fixtures/index.js';

const shot = (page: Page, name: string) => page.screenshot({ path: `artifacts/console-${name}.png`, fullPage: true });
const hostPort = (url: string) => url.replace(/^https?:\/\//, '');

/** The SDK in Node, connected to one node with a client name the pages can be searched for. */
async function connectTo(url: string, name: string, states: { newState: string; code?: number }[] = []): Promise<Client> {
  const client = createClient({ url, WebSocket: WebSocket as never, client: name, backoff: () => 50 });
  client.on('state', (s) => states.push(s));
  client.subscribe('cluster.room', () => undefined);
  await client.connect();
  return client;
}

test('the Nodes view lists both gateways of a two-node cluster, with live figures', async ({ page, cluster }) => {
  const [a, b] = [cluster.gateways[0]!, cluster.gateways[1]!];
  await page.goto(`${a.url}/console/#/nodes`);
  await expect(page.getByRole('heading', { name: 'Nodes' })).toBeVisible();
  const table = page.getByRole('table', { name: 'Nodes' });
  await expect(table.getByRole('row')).toHaveCount(3); // the header and two nodes
  const rowA = table.getByRole('row').filter({ hasText: a.url });
  const rowB = table.getByRole('row').filter({ hasText: b.url });
  await expect(rowA).toContainText('this node');
  await expect(rowB).not.toContainText('this node');

  const client = await connectTo(b.url, 'nodes-view-client');
  try {
    // Connections and subscriptions of node B, as B publishes them and A's page shows them.
    await expect(rowB.getByRole('cell').nth(3)).toHaveText('1');
    await expect(rowB.getByRole('cell').nth(4)).toHaveText('1');
    await expect(rowA.getByRole('cell').nth(3)).toHaveText('0');
    await shot(page, 'nodes');
  } finally {
    client.close();
  }
});

test('one node\'s console lists a subscriber on the other node with its node, and disconnects it', async ({ page, cluster }) => {
  const [a, b] = [cluster.gateways[0]!, cluster.gateways[1]!];
  const states: { newState: string; code?: number }[] = [];
  const client = await connectTo(b.url, 'on-node-b', states);
  try {
    await page.goto(`${a.url}/console/#/topics/cluster.room`);
    const sub = page.getByRole('table', { name: 'Subscribers' }).getByRole('row').filter({ hasText: 'on-node-b' });
    await expect(sub).toHaveCount(1);
    await expect(page.getByRole('columnheader', { name: 'Node' })).toBeVisible();
    await expect(sub.getByRole('cell').last()).toHaveText(hostPort(b.url));
    await shot(page, 'cluster-subscribers');

    await page.getByRole('link', { name: 'Connections' }).click();
    const row = page.getByRole('table', { name: 'Connections' }).getByRole('row').filter({ hasText: 'on-node-b' });
    await expect(row).toHaveCount(1);
    await expect(row).toContainText(hostPort(b.url));
    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: /^Disconnect / }).click();
    await expect(page.getByRole('status').filter({ hasText: /^Disconnected / })).toBeVisible();
    await expect.poll(() => states.map((s) => s.newState).join(' ')).toContain('reconnecting connecting connected');
    expect(states.find((s) => s.newState === 'reconnecting')?.code).toBe(4202);
  } finally {
    client.close();
  }
});
