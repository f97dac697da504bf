/**
 * The gateway's log as an operator reads it: a real `sluice serve` process, its stdout and stderr
 * captured. JSON lines with time, level and msg; startup and shutdown; authentication failures
 * (WebSocket and HTTP) and kicks with the client and its address, never the token; the opt-in
 * access log with the address a trusted proxy forwarded; `--log-level` and the pretty format.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, it } from 'node:test';
import { mintToken } from '@sluice/client/token';
import { loadConfig } from '../src/config.js';
import { Logger } from '../src/logger.js';
import { freePort } from '../src/testing.js';
import { CLI } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const SECRET = 'logging-secret-0123456789-abcdefghijklmnop';

interface Running {
  url: string;
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  /** Sends `signal`, resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

async function serve(args: string[]): Promise<Running> {
  const port = await freePort();
  const proc = spawn(process.execPath, [CLI, 'serve', '--store', 'memory', '--port', String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const stop = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  try {
    await waitFor(() => out.includes('sluice listening on') || proc.exitCode !== null, 'the listening line');
    if (proc.exitCode !== null) throw new Error(`gateway exited: ${err}`);
  } catch (e) {
    await stop('SIGKILL');
    throw e;
  }
  return { url: `http://127.0.0.1:${port}`, proc, out: () => out, err: () => err, stop };
}

const lines = (text: string) => text.split('\n').filter((l) => l.length > 0);
const json = (text: string) => lines(text).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('logs', () => {
  it('JSON lines: startup, access log through a trusted proxy, auth failures and kicks without tokens, shutdown', async () => {
    const gw = await serve(['--auth-secret', SECRET, '--log-format', 'json', '--access-log', '--trust-proxy', 'loopback']);
    const forged = await mintToken({ key: 'another-secret-0123456789-abcdefghijklmnop', sub: 'mallory', caps: { '>': ['sub'] } });
    const admin = await mintToken({ key: SECRET, sub: 'ops', caps: {}, admin: true });
    const alice = await mintToken({ key: SECRET, sub: 'alice', caps: { 'lg.>': ['sub', 'pub', 'history'] } });
    try {
      // HTTP: a pull with the token in the query, forwarded for a client; a refused token.
      assert.equal((await api(gw.url, `/v1/topics/lg.t/messages?token=${alice}`, { headers: { 'x-forwarded-for': '203.0.113.5', 'x-forwarded-proto': 'https' } })).status, 200);
      assert.equal((await api(gw.url, '/v1/topics/lg.t/messages', { token: forged, headers: { 'x-forwarded-for': '203.0.113.6' } })).status, 401);
      // WebSocket: a refused token at HELLO; a connection an administrator kicks.
      const refused = await RawClient.connect(gw.url, { hello: false });
      refused.send({ type: 1, token: forged, client: 'log-test' });
      await refused.closed;
      const kicked = await RawClient.connect(gw.url, { token: alice });
      const row = (await api(gw.url, '/v1/admin/connections', { token: admin })).body.find((r: { clientId: string }) => r.clientId === 'alice');
      assert.ok(row, 'alice\'s connection row');
      assert.equal((await api(gw.url, `/v1/admin/connections/${row.id}`, { method: 'DELETE', token: admin })).status, 200);
      await kicked.closed;
      await waitFor(() => gw.out().includes('kicked'), 'the kick line');
    } finally {
      assert.equal(await gw.stop('SIGTERM'), 0);
    }
    const out = json(gw.out());
    const err = json(gw.err());
    for (const l of [...out, ...err]) {
      assert.equal(typeof l.time, 'string');
      assert.ok(!Number.isNaN(Date.parse(l.time as string)));
      assert.ok(['debug', 'info', 'warn', 'error'].includes(l.level as string));
      assert.equal(typeof l.msg, 'string');
    }
    const all = gw.out() + gw.err();
    for (const t of [forged, alice, admin]) assert.ok(!all.includes(t) && !all.includes(t.split('.')[2]!), 'no token, nor its signature, is ever logged');

    assert.ok(out.some((l) => l.level === 'info' && /^sluice listening on http:\/\/127\.0\.0\.1:\d+$/.test(l.msg as string)), 'the listening line');
    assert.ok(out.some((l) => /tokens required/.test(l.msg as string)), 'startup says how clients authenticate');
    const pull = out.find((l) => l.msg === 'http' && l.route === 'pull' && l.status === 200);
    assert.ok(pull, 'an access line for the pull');
    assert.equal(pull.address, '203.0.113.5');
    assert.equal(pull.via, '127.0.0.1');
    assert.equal(pull.proto, 'https');
    assert.equal(pull.method, 'GET');
    assert.equal(pull.url, '/v1/topics/lg.t/messages?token=***');
    assert.equal(typeof pull.ms, 'number');
    assert.ok(out.some((l) => l.msg === 'http' && l.route === 'upgrade' && l.status === 101), 'WebSocket upgrades are logged');

    const httpAuth = err.find((l) => l.msg === 'authentication failed' && l.transport === 'http');
    assert.ok(httpAuth, 'the refused HTTP token');
    assert.deepEqual([httpAuth.level, httpAuth.address, httpAuth.route], ['warn', '203.0.113.6', 'pull']);
    const wsAuth = err.find((l) => l.msg === 'authentication failed' && l.transport === 'ws');
    assert.ok(wsAuth, 'the refused WebSocket token');
    assert.deepEqual([wsAuth.client, wsAuth.address], ['log-test', '127.0.0.1']);
    assert.equal(typeof wsAuth.session, 'string');
    const kick = out.find((l) => l.msg === 'connection kicked by an administrator');
    assert.ok(kick);
    assert.equal(kick.client, 'alice');

    const draining = out.findIndex((l) => l.msg === 'SIGTERM, draining');
    assert.ok(draining >= 0 && out.findIndex((l) => l.msg === 'stopped') > draining, 'shutdown is logged, in order');
  });

  it('--log-level warn keeps only the listening line on stdout; the access log is off by default', async () => {
    const gw = await serve(['--log-level', 'warn', '--log-format', 'json']);
    try {
      assert.equal((await api(gw.url, '/healthz')).status, 200);
    } finally {
      assert.equal(await gw.stop('SIGTERM'), 0);
    }
    assert.deepEqual(lines(gw.out()).map((l) => l.replace(/\d+$/, 'PORT')), ['sluice listening on http://127.0.0.1:PORT']);
    assert.match(gw.err(), /"level":"warn","msg":"WARNING dev mode/);
  });

  it('--log-level debug adds a line per closed WebSocket: who, from where, how it ended', async () => {
    const gw = await serve(['--log-level', 'debug', '--log-format', 'json']);
    try {
      const c = await RawClient.connect(gw.url);
      await c.publish(1, 'lg.debug', 'x');
      c.ws.close(1000, 'bye');
      await c.closed;
      await waitFor(() => gw.out().includes('connection closed'), 'the debug line');
    } finally {
      await gw.stop('SIGTERM');
    }
    const line = json(gw.out()).find((l) => l.msg === 'connection closed')!;
    assert.deepEqual([line.level, line.client, line.address, line.code], ['debug', 'raw-test', '127.0.0.1', 1000]);
    assert.ok((line.bytesIn as number) > 0 && typeof line.ms === 'number' && typeof line.session === 'string');
  });

  it('--log-format pretty: time, level, message, key=value', async () => {
    const gw = await serve(['--log-format', 'pretty', '--access-log']);
    try {
      assert.equal((await api(gw.url, '/healthz', { headers: { 'user-agent': 'probe 1.0' } })).status, 200);
      await waitFor(() => gw.out().includes('route=healthz'), 'the access line');
    } finally {
      await gw.stop('SIGTERM');
    }
    const line = lines(gw.out()).find((l) => l.includes('route=healthz'))!;
    assert.match(line, /^\d\d:\d\d:\d\d\.\d{3} INFO  http method=GET url=\/healthz route=healthz status=200 ms=[\d.]+ address=127\.0\.0\.1 proto=http ua="probe 1\.0"$/);
  });

  it('--log-level, --log-format and --access-log (and their variables) are checked at startup', () => {
    assert.deepEqual(loadConfig(['--log-level', 'debug', '--log-format', 'pretty', '--access-log'], {}).log, { level: 'debug', format: 'pretty', access: true });
    assert.deepEqual(loadConfig([], { SLUICE_LOG_LEVEL: 'error', SLUICE_LOG_FORMAT: 'json', SLUICE_ACCESS_LOG: '1' }).log, { level: 'error', format: 'json', access: true });
    assert.deepEqual(loadConfig([], { SLUICE_ACCESS_LOG: 'off' }).log, { level: 'info', format: undefined, access: false });
    assert.throws(() => loadConfig(['--log-level', 'verbose'], {}), /--log-level must be one of debug, info, warn, error, silent/);
    assert.throws(() => loadConfig(['--log-format', 'xml'], {}), /--log-format must be json or pretty/);
    assert.throws(() => loadConfig([], { SLUICE_ACCESS_LOG: 'maybe' }), /SLUICE_ACCESS_LOG must be 1 or 0/);
    assert.throws(() => loadConfig(['--access-log=yes'], {}), /--access-log takes no value/);
  });

  it('Logger: an error field keeps its name, message, code and stack', () => {
    const got: string[] = [];
    const log = new Logger({ level: 'debug', format: 'json', write: (l) => got.push(l) });
    const err = Object.assign(new Error('disk on fire'), { code: 'EIO' });
    log.error('append failed', { topic: 't', err });
    log.debug('detail', { n: 1, skipped: undefined });
    const [a, b] = got.map((l) => JSON.parse(l));
    assert.deepEqual([a.level, a.msg, a.topic, a.err.name, a.err.message, a.err.code], ['error', 'append failed', 't', 'Error', 'disk on fire', 'EIO']);
    assert.match(a.err.stack, /disk on fire/);
    assert.deepEqual(Object.keys(b), ['time', 'level', 'msg', 'n']);
    const quiet = new Logger({ level: 'error', format: 'pretty', write: (l) => got.push(l) });
    quiet.warn('not shown');
    assert.equal(got.length, 2);
  });
});
