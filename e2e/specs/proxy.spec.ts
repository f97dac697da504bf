/**
 * Behind nginx, as deploy/nginx.conf sets it up: TLS at nginx, Host rewritten to the upstream's
 * name, X-Forwarded-For/-Proto added, and the gateway run with authentication on, --public-url
 * (nginx's https URL) and --trust-proxy loopback. The console loads through the proxy, signs in,
 * goes live, follows a topic over its WebSocket and publishes; an event stream delivers each event as it is
 * published (nginx buffers nothing); a long-poll waits and is answered through the proxy.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { mintToken } from '@sluice/client/token';
import { spawnGateway, type GatewayProcess } from '@sluice/server/testing';
import { expect, test } from '../fixtures/index.js';
import { proxyPorts, startNginx, type Proxy } from '../fixtures/nginx.js';

const secret = randomBytes(32).toString('hex');
let gw: GatewayProcess | undefined;
let proxy: Proxy | undefined;

test.use({ ignoreHTTPSErrors: true }); // the proxy's certificate is the test's own

test.beforeAll(async () => {
  const ports = await proxyPorts();
  gw = await spawnGateway({
    store: 'memory',
    env: { SLUICE_AUTH_SECRET: secret },
    args: ['--public-url', `https://localhost:${ports.tlsPort}`, '--trust-proxy', 'loopback'],
  });
  proxy = await startNginx(ports, gw);
});

test.afterAll(async () => {
  await proxy?.stop();
  await gw?.kill('SIGKILL');
});

const token = (sub: string, opts: { admin?: boolean; caps?: Record<string, ('pub' | 'sub' | 'history')[]> } = {}) =>
  mintToken({ key: secret, sub, ttl: 3600, ...opts });

/**
 * A request through the proxy trusting its certificate. With `onChunk`, the response is a stream:
 * the promise resolves with the status as soon as the headers arrive, chunks go to `onChunk`.
 */
function viaProxy(path: string, opts: { method?: string; body?: string; token?: string; onChunk?: (s: string) => void; signal?: AbortSignal } = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${proxy!.url}${path}`, {
      method: opts.method ?? 'GET',
      ca: proxy!.ca,
      headers: {
        ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      if (opts.onChunk) {
        res.on('data', opts.onChunk);
        res.on('error', () => undefined); // the spec aborts the stream when done
        resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers });
        return;
      }
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.setTimeout(20_000, () => req.destroy(new Error('timed out')));
    req.on('error', (err) => { if (!opts.signal?.aborted) reject(err); });
    req.end(opts.body);
  });
}

test('the console loads through nginx, goes live over its WebSocket and publishes', async ({ page }) => {
  await page.goto(`${proxy!.url}/console/`);
  await expect(page.getByRole('heading', { name: 'Sign in to the console' })).toBeVisible();
  await page.getByLabel('Admin token').fill(await token('proxy-admin', { admin: true }));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  // "live": the console's WebSocket passed the origin check behind a Host-rewriting proxy.
  await expect(page.getByRole('status').filter({ hasText: 'live' })).toBeVisible();

  // The live tail is the console's own WebSocket subscription, through the proxy.
  await page.goto(`${proxy!.url}/console/#/topics/proxy.form`);
  await page.getByRole('tab', { name: 'Live tail' }).click();
  await expect(page.getByText('following new messages')).toBeVisible();
  const edge = await token('edge', { caps: { 'proxy.>': ['pub'] } });
  expect((await viaProxy('/v1/topics/proxy.form/messages', { method: 'POST', body: '{"tail":"via nginx"}', token: edge })).status).toBe(201);
  await expect(page.getByRole('list', { name: 'Live tail' }).getByRole('listitem').first()).toContainText('{"tail":"via nginx"}');
  const rows = JSON.parse((await viaProxy('/v1/admin/connections', { token: await token('proxy-admin', { admin: true }) })).body) as { transport: string; userAgent: string }[];
  expect(rows.some((r) => r.transport === 'ws' && /Chrome/.test(r.userAgent)), 'the console\'s WebSocket, listed by the admin API').toBe(true);

  await page.getByRole('tab', { name: 'Publish' }).click();
  await page.getByLabel('Data (JSON)').fill('{"via": "nginx"}');
  await page.getByRole('button', { name: 'Publish' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Stored at offset 2' })).toBeVisible();
  await page.screenshot({ path: 'artifacts/proxy-console-publish.png', fullPage: true });
});

test('an event stream delivers each event as it is published; a long-poll waits through the proxy', async () => {
  const t = await token('edge', { caps: { 'proxy.>': ['pub', 'sub', 'history'] } });
  const abort = new AbortController();
  let received = '';
  try {
    const stream = await viaProxy(`/v1/topics/proxy.sse/events?token=${t}`, { signal: abort.signal, onChunk: (s) => (received += s) });
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toContain('text/event-stream');
    for (const n of [1, 2, 3]) {
      expect((await viaProxy('/v1/topics/proxy.sse/messages', { method: 'POST', body: JSON.stringify({ n }), token: t })).status).toBe(201);
      // Each small event arrives on its own, before the next publish: nothing waits in a buffer.
      await expect.poll(() => received, { timeout: 5000 }).toContain(`"data":{"n":${n}}}`);
    }
  } finally {
    abort.abort();
  }

  const poll = viaProxy('/v1/topics/proxy.poll/messages?wait=20', { token: t });
  await expect.poll(async () => /^sluice_http_long_polls 1$/m.test((await viaProxy('/metrics')).body), { timeout: 10_000 }).toBe(true);
  expect((await viaProxy('/v1/topics/proxy.poll/messages', { method: 'POST', body: '"woken"', token: t })).status).toBe(201);
  const answered = await poll;
  expect(answered.status).toBe(200);
  expect(answered.body).toContain('woken');
});
