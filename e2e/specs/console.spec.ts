/**
 * The console against a gateway with authentication on, signed in by the console-auth project.
 * Every spec works through what an operator sees (role locators), and saves a screenshot of the
 * page it exercised to e2e/artifacts/.
 */
import WebSocket from 'ws';
import { createClient } from '@sluice/client';
import type { Page } from '@playwright/test';
import { GroupMember } from '../fixtures/group-member.js';
import { expect, test } from '../fixtures/index.js';

const shot = (page: Page, name: string) => page.screenshot({ path: `artifacts/console-${name}.png`, fullPage: true });

/** Publishes over the HTTP API (the edge path). */
async function publish(url: string, token: string, topic: string, data: unknown): Promise<{ offset: number }> {
  const res = await fetch(`${url}/v1/topics/${topic}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(data),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { offset: number };
}

test('overview shows live figures and charts', async ({ page, secured }) => {
  await page.goto(`${secured.url}/console/`);
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await expect(page.getByRole('status').filter({ hasText: 'live' })).toBeVisible();
  await expect(page.getByRole('img', { name: /Messages per second/ })).toBeVisible();
  await shot(page, 'overview');
});

test('the topics table shows a topic published to, with its head offset', async ({ page, secured }) => {
  const token = await secured.token('publisher', { caps: { 'console.>': ['pub'] } });
  for (let i = 1; i <= 7; i++) await publish(secured.url, token, 'console.orders', { order: i });
  await page.goto(`${secured.url}/console/#/topics`);
  const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'console.orders', exact: true }) });
  await expect(row.getByRole('cell').first()).toHaveText('7'); // Head
  await page.getByRole('searchbox', { name: 'Filter topics' }).fill('orders');
  await expect(page.getByRole('link', { name: 'console.orders', exact: true })).toBeVisible();
  await shot(page, 'topics');
});

test('the subscriber count rises and falls as a browser subscriber joins and leaves', async ({ page, context, secured, site }) => {
  const topic = 'console.presence';
  const token = await secured.token('browser-sub', { caps: { 'console.>': ['sub', 'pub'] } });
  await publish(secured.url, token, topic, 'first');
  await page.goto(`${secured.url}/console/#/topics`);
  const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: topic, exact: true }) });
  const subscribers = row.getByRole('cell').nth(4);
  await expect(subscribers).toHaveText(/^0/);

  const other = await context.newPage();
  await other.goto(`${site.url}/sdk.html?gateway=${encodeURIComponent(secured.url)}`);
  await other.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  await other.evaluate((t) => (window as unknown as { harness: { start(o: object): Promise<unknown> } }).harness.start({ topic: 'console.presence', token: t }), token);
  await expect(subscribers).toHaveText(/^1\s\(1 live/);

  await other.close();
  await expect(subscribers).toHaveText(/^0/);
});

test('the live tail shows a newly published message', async ({ page, secured }) => {
  const topic = 'console.tail';
  const token = await secured.token('publisher', { caps: { 'console.>': ['pub'] } });
  await publish(secured.url, token, topic, { hello: 'before' });
  await page.goto(`${secured.url}/console/#/topics/${topic}`);
  await page.getByRole('tab', { name: 'Live tail' }).click();
  await expect(page.getByText('following new messages')).toBeVisible();
  const { offset } = await publish(secured.url, token, topic, { hello: 'tail', n: 42 });
  const tail = page.getByRole('list', { name: 'Live tail' });
  await expect(tail.getByRole('listitem').first()).toContainText(`#${offset}`);
  await expect(tail.getByRole('listitem').first()).toContainText('{"hello":"tail","n":42}');
  await shot(page, 'topic-tail');

  // Pausing withholds credit: once its window (16) is used up, the console's own subscription is
  // paused at the gateway and the rest wait in the log.
  await page.getByRole('button', { name: 'Pause' }).click();
  for (let i = 0; i < 20; i++) await publish(secured.url, token, topic, { hello: 'while paused', i });
  await page.getByRole('tab', { name: 'Subscribers' }).click();
  const own = page.getByRole('row').filter({ hasText: 'sluice-console' });
  await expect(own).toContainText('paused (no credit)');
  // Lag: 22 stored; the tail's window took offsets 2–17 (one handled is below the half-window re-grant).
  await expect(own.getByRole('cell').nth(6)).toHaveText('5');
  await shot(page, 'topic-subscribers');
  await page.getByRole('tab', { name: 'History' }).click();
  await expect(page.getByRole('list', { name: 'History' })).toContainText('while paused');
  await shot(page, 'topic-history');
});

test('the publish form stores a message and reports a repeated key as a duplicate', async ({ page, secured }) => {
  const topic = 'console.form';
  await page.goto(`${secured.url}/console/#/topics/${topic}`);
  await page.getByRole('tab', { name: 'Publish' }).click();
  await page.getByLabel('Data (JSON)').fill('{"via": "console"}');
  await page.getByLabel(/Idempotency key/).fill('form-key-1');
  await page.getByRole('button', { name: 'Publish' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Stored at offset 1' })).toBeVisible();
  await page.getByRole('button', { name: 'Publish' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Duplicate: already stored at offset 1' })).toBeVisible();
  await shot(page, 'topic-publish');
});

test('disconnecting a connection from the console makes that client reconnect', async ({ page, secured }) => {
  const token = await secured.token('kick-me', { caps: { 'console.>': ['sub'] } });
  const client = createClient({ url: secured.url, token, WebSocket: WebSocket as never, client: 'kick-me-client', backoff: () => 50 });
  const changes: { newState: string; code?: number }[] = [];
  client.on('state', (s) => changes.push(s));
  try {
    client.subscribe('console.kick', () => undefined);
    await client.connect();
    await page.goto(`${secured.url}/console/#/connections`);
    const row = page.getByRole('row').filter({ hasText: 'kick-me-client' });
    await expect(row).toHaveCount(1);
    await shot(page, 'connections');
    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: /Disconnect kick-me/ }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Disconnected kick-me' })).toBeVisible();
    await expect.poll(() => changes.map((c) => c.newState).join(' ')).toContain('reconnecting connecting connected');
    expect(changes.find((c) => c.newState === 'reconnecting')?.code).toBe(4202);
    await expect(page.getByRole('row').filter({ hasText: 'kick-me-client' })).toHaveCount(1); // back again
  } finally {
    client.close();
  }
});

test('the Groups tab shows a group with its member and backlog; replaying its dead letters and resetting it work', async ({ page, secured }) => {
  const topic = 'console.jobs';
  const admin = await secured.token('e2e-ops', { admin: true });
  const worker = await secured.token('worker-1', { caps: { 'console.>': ['consume', 'pub'] } });
  const member = await GroupMember.join(secured.url, worker, topic, 'billing', 2);
  try {
    // One delivery per message, so a nack dead-letters it at once.
    const put = await fetch(`${secured.url}/v1/admin/topics/${topic}/groups/billing`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ maxDeliveries: 1 }),
    });
    expect(put.status).toBe(200);
    for (let i = 1; i <= 5; i++) await publish(secured.url, worker, topic, { job: i });
    await expect.poll(() => member.leases.map((l) => l.offset)).toEqual([1, 2]);
    member.nack(1, 'card declined');
    member.ack(2);
    await expect.poll(() => member.leases.map((l) => l.offset)).toEqual([1, 2, 3, 4]);

    await page.goto(`${secured.url}/console/#/topics/${topic}`);
    await page.getByRole('tab', { name: 'Groups' }).click();
    const group = page.getByRole('region', { name: 'billing' });
    const fact = (label: string) => group.locator('dl > div').filter({ has: page.getByRole('term').filter({ hasText: label }) }).getByRole('definition');
    await expect(fact('Ack floor')).toHaveText('3'); // 1 dead-lettered, 2 acknowledged
    await expect(fact('Leased')).toHaveText('2'); // 3 and 4
    await expect(fact('Ready backlog')).toHaveText('1'); // 5
    await expect(fact('Dead-lettered')).toHaveText('1');
    await expect(fact('Acknowledged')).toHaveText('1');
    const row = group.getByRole('table', { name: 'Members of billing' }).getByRole('row').filter({ hasText: 'worker-1' });
    await expect(row.getByRole('cell')).toHaveText([/:1$/, 'worker-1', 'WebSocket', '2', '2']);
    await shot(page, 'groups');

    page.once('dialog', (d) => void d.accept());
    await group.getByRole('button', { name: 'Replay the dead letters of billing' }).click();
    await expect(page.getByRole('status').filter({ hasText: `Replayed 1 dead letter of billing from ${topic}.dlq.` })).toBeVisible();
    await expect(fact('Ready backlog')).toHaveText('2'); // 5, and the replayed message at 6

    await group.getByRole('button', { name: 'Reset the position of billing' }).click();
    const form = page.getByRole('form', { name: 'Reset billing' });
    await form.getByRole('spinbutton', { name: 'Offset' }).fill('7');
    page.once('dialog', (d) => void d.accept());
    await form.getByRole('button', { name: 'Reset' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Reset billing to offset 7.' })).toBeVisible();
    await expect(fact('Ack floor')).toHaveText('7');
    await expect(fact('Leased')).toHaveText('0');
    await expect(fact('Ready backlog')).toHaveText('0');
  } finally {
    member.close();
  }
});
