/**
 * The console's states beyond the happy path, in dev mode (each test has its own gateway): a URL
 * that names no topic, the gateway going away and coming back, charts drawn from the gateway's
 * history right after a page load, a 390 px phone screen, and a traced message's timeline. Each
 * test saves screenshots of what it checked under its test output (test-results/<test>/).
 */
import type { Page, TestInfo } from '@playwright/test';
import { GroupMember } from '../fixtures/group-member.js';
import { expect, test } from '../fixtures/index.js';

const shot = (page: Page, info: TestInfo, name: string) => page.screenshot({ path: info.outputPath(`${name}.png`), fullPage: true });

/** Publishes JSON over HTTP; `trace` asks the gateway to record the message's journey. */
async function publish(url: string, topic: string, data: unknown, trace = false): Promise<number> {
  const res = await fetch(`${url}/v1/topics/${encodeURIComponent(topic)}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(trace ? { 'sluice-trace': '1' } : {}) },
    body: JSON.stringify(data),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { offset: number }).offset;
}

/** The y-axis tick labels a chart describes to assistive technology ("Scale: 0 B, 1 B"). */
async function scale(page: Page, chart: string): Promise<string[]> {
  const ids = (await page.getByRole('img', { name: new RegExp(`^${chart}`) }).getAttribute('aria-describedby')) ?? '';
  const text = (await page.locator(`[id="${ids.split(' ')[1]}"]`).textContent()) ?? '';
  return text.replace(/^Scale:\s*/, '').split(/,\s*/).filter(Boolean);
}

/** The reading of a chart's legend for one series. */
const legend = (page: Page, chart: string, series: string) =>
  page.getByRole('figure', { name: chart }).getByRole('row').filter({ has: page.getByText(series, { exact: true }) }).getByRole('cell');

test('a URL with an invalid topic, a bad offset or no page shows why instead of a blank page', async ({ page, gateway }, info) => {
  await page.goto(`${gateway.url}/console/#/topics/bad..name`);
  await expect(page.getByRole('heading', { name: 'Invalid topic name' })).toBeVisible();
  await expect(page.getByText('“bad..name”: topic segments must not be empty.')).toBeVisible();
  await shot(page, info, 'invalid-topic');
  await page.getByRole('link', { name: 'Go to the topics' }).click();
  await expect(page.getByRole('heading', { name: 'Topics', exact: true })).toBeVisible();

  // Not even decodable: this once threw before the console drew anything.
  await page.goto(`${gateway.url}/console/#/topics/%E0%A4%A`);
  await expect(page.getByRole('heading', { name: 'Invalid topic name' })).toBeVisible();
  await expect(page.getByText('is not a valid URL encoding')).toBeVisible();

  await page.goto(`${gateway.url}/console/#/topics/orders/trace/0`);
  await expect(page.getByRole('heading', { name: 'Invalid offset' })).toBeVisible();
  await page.goto(`${gateway.url}/console/#/nowhere`);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
  await shot(page, info, 'not-found');

  // A valid name nobody used yet: the topic page says so, and still offers to publish.
  await page.goto(`${gateway.url}/console/#/topics/e2e.nobody.yet`);
  await expect(page.getByRole('heading', { name: 'No topic e2e.nobody.yet yet' })).toBeVisible();
  await expect(page.getByRole('tab', { name: 'Publish' })).toBeVisible();
  await shot(page, info, 'unknown-topic');
});

test('when the gateway goes down the console shows its figures as stale, and live again when it is back', async ({ page, gateway }, info) => {
  await publish(gateway.url, 'e2e.stale', { n: 1 });
  await page.goto(`${gateway.url}/console/#/topics/e2e.stale`);
  const status = page.getByRole('banner').getByRole('status');
  await expect(status).toContainText('live');
  await expect(page.getByRole('term').filter({ hasText: 'Head' })).toBeVisible();
  await expect(page.getByRole('alert')).toHaveCount(0);

  // When the charts' samples start (this page's first snapshot).
  await page.getByRole('link', { name: 'Overview' }).click();
  const described = page.getByRole('img', { name: /^Messages per second/ });
  await expect(described).toHaveAccessibleDescription(/^Samples from \d\d:\d\d:\d\d/);
  const spanText = await page.getByRole('figure', { name: 'Messages per second' }).getByText(/Samples from/).textContent();
  const before = /Samples from (\d\d:\d\d:\d\d)/.exec(spanText ?? '')![1];
  await page.goBack();
  await expect(page.getByRole('term').filter({ hasText: 'Head' })).toBeVisible();

  await gateway.stop();
  const alert = page.getByRole('alert').filter({ hasText: 'Gateway unreachable' });
  await expect(alert).toBeVisible();
  await expect(alert).toContainText(/The figures below are from \d\d:\d\d:\d\d \(\d+s ago\) and may be out of date/);
  await expect(status).toContainText('stale');
  await expect(page.getByRole('main')).toHaveAttribute('aria-busy', 'true');
  // The figures stay readable, greyed.
  await expect(page.locator('main .facts')).toHaveCSS('filter', 'grayscale(1)');
  await shot(page, info, 'gateway-down');

  await gateway.start();
  await expect(alert).toHaveCount(0, { timeout: 20_000 });
  await expect(status).toContainText('live');
  await expect(page.getByRole('main')).toHaveAttribute('aria-busy', 'false');
  await expect(page.locator('main .facts')).toHaveCSS('filter', 'none');
  await shot(page, info, 'gateway-back');

  // The charts keep what they showed before the gateway went away (its new process remembers
  // nothing older), with a gap for the time it was gone.
  await page.getByRole('link', { name: 'Overview' }).click();
  const chart = page.getByRole('img', { name: /^Messages per second/ });
  await expect(chart).toHaveAccessibleDescription(new RegExp(`^Samples from ${before}`));
  await shot(page, info, 'gateway-back-overview');
});

test('right after a page load the charts show the history the gateway kept, with readable legends and axes', async ({ page, gateway }, info) => {
  // Traffic for a few seconds before anyone opens the console.
  const deadline = Date.now() + 15_000;
  let samples: { at: number; messagesInPerSec: number }[] = [];
  let n = 0;
  while (samples.filter((s) => s.messagesInPerSec > 0).length < 3) {
    expect(Date.now(), 'three busy samples within 15 s').toBeLessThan(deadline);
    await Promise.all(Array.from({ length: 5 }, () => publish(gateway.url, 'e2e.history', { n: ++n, pad: 'x'.repeat(200) })));
    samples = ((await (await fetch(`${gateway.url}/v1/admin/stats/history`)).json()) as { samples: typeof samples }).samples;
  }
  const firstBusy = samples.find((s) => s.messagesInPerSec > 0)!.at;

  const loadedAt = Date.now();
  await page.goto(`${gateway.url}/console/`);
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  // The first snapshot's description already spans from before the page was loaded.
  const chart = page.getByRole('img', { name: /^Messages per second/ });
  await expect(chart).toHaveAccessibleDescription(/^Samples from \d\d:\d\d:\d\d to \d\d:\d\d:\d\d\. Scale: /);
  const spanId = ((await chart.getAttribute('aria-describedby')) ?? '').split(' ')[0];
  const from = await page.locator(`[id="${spanId}"]`).getAttribute('data-from');
  expect(Number(from) * 1000).toBeLessThanOrEqual(firstBusy + 1500);
  expect(Number(from) * 1000).toBeLessThan(loadedAt - 1000);

  // Legends read the newest values, not placeholders.
  await expect(legend(page, 'Messages per second', 'in')).toHaveText(/^\d+(\.\d)?$|^\d[\d,.]*k?$/);
  await expect(legend(page, 'Bytes per second', 'in')).toHaveText(/^\d+(\.\d)? (B|KB|MB)\/s$/);
  await expect(legend(page, 'Connections and subscriptions', 'connections')).toHaveText(/^\d+$/);

  // Every axis labels its ticks distinctly, bytes in whole units.
  for (const chart of ['Messages per second', 'Bytes per second', 'Connections and subscriptions']) {
    await expect.poll(() => scale(page, chart)).not.toEqual([]);
    const ticks = await scale(page, chart);
    expect(new Set(ticks).size, `${chart}: ${ticks.join(', ')}`).toBe(ticks.length);
  }
  for (const tick of await scale(page, 'Bytes per second')) expect(tick).toMatch(/^\d+ (B|KB|MB)$/);
  await shot(page, info, 'charts-after-load');
});

test('an idle gateway\'s bytes axis reads 0 B, 1 B — not "1 B, 1 B, 0 B"', async ({ page, gateway }, info) => {
  await page.goto(`${gateway.url}/console/`);
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await expect.poll(() => scale(page, 'Bytes per second')).toEqual(['0 B', '1 B']);
  await expect.poll(() => scale(page, 'Connections and subscriptions')).toEqual(['0', '1']);
  await expect(legend(page, 'Bytes per second', 'out')).toHaveText('0 B/s');
  await shot(page, info, 'charts-idle');
});

test('at 390 px wide no page scrolls sideways', async ({ page, gateway, publisher }, info) => {
  const topic = 'e2e.phone.a-rather-long-topic-name.with.several.segments';
  publisher.subscribe(topic, () => undefined);
  await publisher.connect();
  const offset = await publish(gateway.url, topic, { text: 'a message with a long payload '.repeat(8) }, true);
  await page.setViewportSize({ width: 390, height: 844 });
  const pages: [string, string, () => Promise<void>][] = [
    ['overview', '#/', () => expect(page.getByRole('img', { name: /^Messages per second/ })).toBeVisible()],
    ['topics', '#/topics', () => expect(page.getByRole('link', { name: topic })).toBeVisible()],
    ['topic', `#/topics/${topic}`, () => expect(page.getByRole('table', { name: 'Subscribers' })).toBeVisible()],
    ['connections', '#/connections', () => expect(page.getByRole('table', { name: 'Connections' })).toBeVisible()],
    ['nodes', '#/nodes', () => expect(page.getByRole('table', { name: 'Nodes' })).toBeVisible()],
    ['trace', `#/topics/${topic}/trace/${offset}`, () => expect(page.getByRole('list', { name: 'Trace timeline' })).toBeVisible()],
    ['invalid-topic', '#/topics/a..b', () => expect(page.getByRole('heading', { name: 'Invalid topic name' })).toBeVisible()],
  ];
  const scrollWidth = () => page.evaluate(() => document.documentElement.scrollWidth);
  for (const [name, hash, ready] of pages) {
    await page.goto(`${gateway.url}/console/${hash}`);
    await ready();
    expect(await scrollWidth(), `${name} scrolls sideways`).toBeLessThanOrEqual(390);
    await shot(page, info, `390-${name}`);
  }
  // Every tab of the topic page.
  await page.goto(`${gateway.url}/console/#/topics/${topic}`);
  for (const [tab, ready] of [
    ['Groups', () => expect(page.getByRole('heading', { name: 'No consumer groups' })).toBeVisible()],
    ['Live tail', () => expect(page.getByText('following new messages')).toBeVisible()],
    ['History', () => expect(page.getByRole('list', { name: 'History' })).toBeVisible()],
    ['Publish', () => expect(page.getByRole('form', { name: 'Publish a message' })).toBeVisible()],
  ] as const) {
    await page.getByRole('tab', { name: tab }).click();
    await ready();
    expect(await scrollWidth(), `the ${tab} tab scrolls sideways`).toBeLessThanOrEqual(390);
    await shot(page, info, `390-topic-${tab.toLowerCase().replace(' ', '-')}`);
  }
});

test.describe('with a redelivery backoff of 100 ms', () => {
  test.use({ gatewayArgs: ['--group-backoff', '100ms'] });

  test('a traced message\'s timeline: delivered to subscribers and to a group member that nacks once, from History and the Live tail', async ({ page, gateway, publisher }, info) => {
    const topic = 'e2e.traced';
    const other = publisher;
    other.subscribe(topic, () => undefined);
    await other.connect();
    const member = await GroupMember.join(gateway.url, '', topic, 'workers', 5);
    try {
      const plain = await publish(gateway.url, topic, { plain: true });
      const offset = await publish(gateway.url, topic, { order: 42 }, true);
      await expect.poll(() => member.leases.filter((l) => l.offset === offset).length).toBe(1);
      member.nack(offset, 'try again');
      // Delivered again after the group's first backoff (100 ms here), then acknowledged.
      await expect.poll(() => member.leases.filter((l) => l.offset === offset).length, { timeout: 10_000 }).toBe(2);
      member.ack(offset);

      // From the topic's History: only the traced row links to a trace.
      await page.goto(`${gateway.url}/console/#/topics/${topic}`);
      await page.getByRole('tab', { name: 'History' }).click();
      const rows = page.getByRole('list', { name: 'History' }).getByRole('listitem');
      await expect(rows.filter({ hasText: `#${plain}` }).getByRole('link', { name: /^Trace/ })).toHaveCount(0);
      await rows.filter({ hasText: `#${offset}` }).getByRole('link', { name: `Trace of message ${offset}` }).click();
      await expect(page.getByRole('heading', { name: `Trace of ${topic} #${offset}` })).toBeVisible();

      const items = page.getByRole('list', { name: 'Trace timeline' }).getByRole('listitem');
      const step = (kind: string) => items.filter({ has: page.getByText(kind, { exact: true }) });
      await expect(step('Acked')).toHaveCount(1);
      const kinds = await items.locator('strong').allTextContents();
      // Every step, in order: received → stored → delivered live and leased (attempt 1) → nacked → leased (attempt 2) → acked.
      const at = (kind: string, from = 0) => kinds.indexOf(kind, from);
      expect(kinds.slice(0, 2)).toEqual(['Received', 'Stored']);
      expect(at('Delivered')).toBeGreaterThan(1);
      const lease1 = at('Leased');
      expect(lease1).toBeGreaterThan(1);
      expect(at('Nacked')).toBeGreaterThan(lease1);
      expect(at('Leased', at('Nacked'))).toBeGreaterThan(at('Nacked'));
      expect(at('Acked')).toBe(kinds.length - 1);
      await expect(step('Received')).toContainText('over HTTP');
      await expect(step('Stored')).toContainText(/publish → ack [\d.]+ (ms|s)/);
      await expect(step('Delivered')).toContainText(/live to 1 subscriber: \S+/);
      await expect(step('Nacked')).toContainText('group workers by member');
      await expect(step('Nacked')).toContainText('attempt 1');
      await expect(step('Nacked')).toContainText('“try again”');
      await expect(step('Acked')).toContainText('attempt 2');
      await expect(items.first()).toContainText('+0');
      await expect(items.last()).toContainText(/\+\d/);
      await expect(page.getByText(/2 delivery attempts in groups/)).toBeVisible();
      await shot(page, info, 'trace-timeline');

      // The untraced message, and an offset with no message: clear empty states.
      await page.goto(`${gateway.url}/console/#/topics/${topic}/trace/${plain}`);
      await expect(page.getByRole('heading', { name: 'This message is not traced' })).toBeVisible();
      await shot(page, info, 'trace-not-traced');
      await page.goto(`${gateway.url}/console/#/topics/${topic}/trace/999`);
      await expect(page.getByRole('heading', { name: 'No message at offset 999' })).toBeVisible();

      // From the Live tail: a traced message arriving links to its trace too.
      await page.goto(`${gateway.url}/console/#/topics/${topic}`);
      await page.getByRole('tab', { name: 'Live tail' }).click();
      await expect(page.getByText('following new messages')).toBeVisible();
      const next = await publish(gateway.url, topic, { order: 43 }, true);
      const tail = page.getByRole('list', { name: 'Live tail' }).getByRole('listitem');
      await tail.filter({ hasText: `#${next}` }).getByRole('link', { name: `Trace of message ${next}` }).click();
      await expect(page.getByRole('heading', { name: `Trace of ${topic} #${next}` })).toBeVisible();
      // Live to both subscribers now: the SDK client and the console's own tail.
      await expect(page.getByRole('list', { name: 'Trace timeline' }).getByRole('listitem').filter({ has: page.getByText('Delivered', { exact: true }) }))
        .toContainText('live to 2 subscribers');
      await shot(page, info, 'trace-from-tail');
    } finally {
      member.close();
    }
  });
});

test.describe('with a gateway that keeps one trace', () => {
  test.use({ gatewayArgs: ['--trace-max', '1'] });

  test('a traced message whose trace was forgotten says so', async ({ page, gateway }, info) => {
    const topic = 'e2e.forgotten';
    const first = await publish(gateway.url, topic, { n: 1 }, true);
    await publish(gateway.url, topic, { n: 2 }, true); // the node now keeps this one's journey only
    await page.goto(`${gateway.url}/console/#/topics/${topic}`);
    await page.getByRole('tab', { name: 'History' }).click();
    await page.getByRole('link', { name: `Trace of message ${first}` }).click();
    await expect(page.getByRole('heading', { name: 'No trace kept for this message' })).toBeVisible();
    await expect(page.getByText('--trace-max')).toBeVisible();
    await shot(page, info, 'trace-forgotten');
  });
});
