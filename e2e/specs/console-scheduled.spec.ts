/**
 * The console's Scheduled tab on a topic page (dev mode): the topic's delayed messages with their
 * count and next due time, and the cancel action; and its prepared (half) messages until they are
 * resolved — against a real gateway.
 */
import { expect, test } from '../fixtures/index.js';

test('a topic page lists its scheduled messages and cancels one', async ({ page, gateway }) => {
  const post = (body: string, delay: number, key: string) => fetch(`${gateway.url}/v1/topics/e2e.later/messages`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', 'sluice-delay': String(delay), 'idempotency-key': key },
  }).then((r) => r.json() as Promise<{ id: string; due: number }>);
  const first = await post('{"n":1}', 600_000, 'later-1');
  await post('{"n":2}', 900_000, 'later-2');

  await page.goto(`${gateway.url}/console/#/topics/e2e.later`);
  await page.getByRole('tab', { name: 'Scheduled' }).click();
  await expect(page.getByTestId('scheduled-count')).toHaveText('2');
  const table = page.getByRole('table', { name: 'Scheduled messages' });
  await expect(table.getByRole('row')).toHaveCount(3); // the header and two
  await expect(table.getByRole('row').nth(1)).toContainText('later-1');

  await page.getByRole('button', { name: `Cancel ${first.id}` }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Cancelled' })).toContainText(first.id);
  await expect(page.getByTestId('scheduled-count')).toHaveText('1');
  await expect(table.getByRole('row')).toHaveCount(2);
  await expect(table).toContainText('later-2');
  const left = await fetch(`${gateway.url}/v1/topics/e2e.later/scheduled`).then((r) => r.json() as Promise<{ count: number }>);
  expect(left.count).toBe(1);
});

test('the Scheduled tab also lists the topic\'s prepared (half) messages until they are resolved', async ({ page, gateway }) => {
  const prepare = (body: string, key: string) => fetch(`${gateway.url}/v1/topics/e2e.tx/transactions`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', 'idempotency-key': key },
  }).then((r) => r.json() as Promise<{ id: string }>);
  const first = await prepare('{"order":1}', 'order-1');
  await prepare('{"order":2}', 'order-2');

  await page.goto(`${gateway.url}/console/#/topics/e2e.tx`);
  await page.getByRole('tab', { name: 'Scheduled' }).click();
  await expect(page.getByTestId('prepared-count')).toHaveText('2');
  const table = page.getByRole('table', { name: 'Prepared messages' });
  await expect(table.getByRole('row')).toHaveCount(3); // the header and two
  await expect(table).toContainText('order-1');
  await expect(table).toContainText(first.id);

  const commit = await fetch(`${gateway.url}/v1/topics/e2e.tx/transactions/${encodeURIComponent(first.id)}/commit`, { method: 'POST' });
  expect(commit.status).toBe(200);
  await page.getByRole('button', { name: 'Refresh prepared' }).click();
  await expect(page.getByTestId('prepared-count')).toHaveText('1');
  await expect(table.getByRole('row')).toHaveCount(2);
  await expect(table).toContainText('order-2');
  await expect(table).not.toContainText('order-1');
});
