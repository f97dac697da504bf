import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DEFAULT_HUB_CONFIG, loadConfig, parseDuration, parseSize } from '../src/config.js';
import { CLI, removeDir, spawnGateway, tempDir } from './helpers/gateway.js';
import { api } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

/** Runs `sluice <args>` to completion (asynchronously: several may run at once). */
function sluice(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [CLI, ...args], { env: hermeticEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => proc.once('close', (status) => resolve({ status, stdout, stderr })));
}

/** This process's environment without any SLUICE_* setting that could leak into a child gateway. */
function hermeticEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter(([k, v]) => !k.startsWith('SLUICE_') && v !== undefined)) as Record<string, string>;
}

const dirs: string[] = [];
after(() => dirs.forEach(removeDir));

describe('sluice serve', () => {
  it('reads PORT, HOST, SLUICE_DATA_DIR, SLUICE_STORE, and the same as flags (flags win)', () => {
    const env = { PORT: '1234', HOST: '0.0.0.0', SLUICE_DATA_DIR: '/tmp/x', SLUICE_STORE: 'memory' };
    const c = loadConfig([], env);
    assert.deepEqual([c.port, c.host, c.dataDir, c.store], [1234, '0.0.0.0', '/tmp/x', 'memory']);
    const f = loadConfig(['--port', '99', '--store=disk', '--data', 'd', '--host', '::1'], env);
    assert.deepEqual([f.port, f.host, f.dataDir, f.store], [99, '::1', 'd', 'disk']);
    const d = loadConfig([], {});
    assert.deepEqual([d.port, d.host, d.dataDir, d.store], [9400, '127.0.0.1', './data', 'disk']);
    assert.throws(() => loadConfig(['--store', 'mongo'], {}), /store must be disk, memory or redis/);
    assert.throws(() => loadConfig(['--nope'], {}), /unknown option --nope/);
  });

  it('parses flags strictly: missing values, stray arguments and values given to --quiet are errors', () => {
    assert.throws(() => loadConfig(['--port'], {}), /--port needs a value/);
    assert.throws(() => loadConfig(['--port', '--quiet'], {}), /--port needs a value/);
    assert.throws(() => loadConfig(['memory'], {}), /unexpected argument "memory"/);
    assert.throws(() => loadConfig(['--quiet=yes'], {}), /--quiet takes no value/);
    assert.equal(loadConfig(['--quiet'], {}).quiet, true);
    assert.equal(loadConfig(['--port', '1', '--port', '2'], {}).port, 2, 'the last one wins');
    assert.throws(() => loadConfig([], { SLUICE_MAX_WAIT_S: 'soon' }), /SLUICE_MAX_WAIT_S must be a duration/, 'an environment error names the variable');
  });

  it('durations and sizes take units; a bare number keeps the unit the option always had', () => {
    const units = loadConfig(['--retention-age', '7d', '--dedup-window=90m', '--heartbeat', '5s', '--auth-clock-skew', '2m', '--max-wait', '1m',
      '--retention-bytes', '1GiB', '--max-frame', '512KiB', '--max-body', '1MB'], {});
    assert.deepEqual(
      [units.retention.maxAgeMs, units.dedupWindowMs, units.limits.heartbeatMs, units.auth.clockSkewS, units.http.maxWaitS],
      [7 * 86_400_000, 90 * 60_000, 5000, 120, 60],
    );
    assert.deepEqual([units.retention.maxBytes, units.limits.maxFrame, units.http.maxBody], [1024 ** 3, 512 * 1024, 1_000_000]);
    const bare = loadConfig(['--retention-age', '3600000', '--max-wait', '30', '--auth-clock-skew', '5', '--heartbeat', '20000', '--max-frame', '2048'], {});
    assert.deepEqual([bare.retention.maxAgeMs, bare.http.maxWaitS, bare.auth.clockSkewS, bare.limits.heartbeatMs, bare.limits.maxFrame], [3_600_000, 30, 5, 20_000, 2048]);
    const env = loadConfig([], { SLUICE_RETENTION_AGE_MS: '24h', SLUICE_MAX_BODY: '2MiB', SLUICE_MAX_WAIT_S: '45' });
    assert.deepEqual([env.retention.maxAgeMs, env.http.maxBody, env.http.maxWaitS], [86_400_000, 2 * 1024 ** 2, 45]);

    assert.equal(parseDuration('d', '500ms', 'ms'), 500);
    assert.equal(parseDuration('d', '1.5s', 'ms'), 1500);
    assert.equal(parseDuration('d', '1.1s', 'ms'), 1100, 'no floating-point residue');
    assert.equal(parseDuration('d', '2H', 's'), 7200, 'units in any case');
    assert.equal(parseSize('s', '1kB'), 1000);
    assert.equal(parseSize('s', '1KiB'), 1024);
    assert.equal(parseSize('s', '1.5MiB'), 1.5 * 1024 ** 2);
    assert.throws(() => parseDuration('--max-wait', '1500ms', 's'), /--max-wait must be a whole number of seconds/);
    assert.throws(() => parseDuration('--heartbeat', '500ms', 'ms', 1000), /at least 1000ms/);
    assert.throws(() => parseDuration('--ttl', '1w', 's'), /duration like 500ms, 30s, 5m, 24h or 7d/);
    assert.throws(() => parseDuration('--ttl', '-5s', 's'), /duration like/);
    assert.throws(() => parseDuration('--ttl', '', 's'), /duration like/);
    assert.throws(() => parseSize('--max-frame', '1.5B'), /whole number of bytes/);
    assert.throws(() => parseSize('--max-frame', '1TB'), /size like 512KiB/);
    assert.throws(() => parseSize('--max-frame', '1 constructor'), /size like/, 'no unit lookup through the prototype');
    assert.throws(() => loadConfig(['--max-frame', '1000'], {}), /--max-frame must be at least 1024 bytes/);
  });

  it('carries the hub tunables with their defaults', () => {
    assert.deepEqual(loadConfig([], {}).hub, {
      cacheEntries: 1024, cacheBytes: 512 * 1024, cacheTotalBytes: 64 * 1024 * 1024, highWater: 128 * 1024,
    });
    const c = loadConfig([], {});
    c.hub.cacheEntries = 1;
    assert.equal(DEFAULT_HUB_CONFIG.cacheEntries, 1024, 'each config has its own copy');
  });

  it('prints its listening line, answers /healthz, warns about dev mode, and drains on SIGTERM', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const gw = await spawnGateway([], { SLUICE_DATA_DIR: dir });
    const health = await fetch(`${gw.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    assert.match(gw.stderr(), /dev mode/);
    const c = await RawClient.connect(gw.url);
    await c.publish(1, 'cli.t', 1);
    const code = await gw.kill('SIGTERM');
    assert.equal(code, 0);
    assert.equal((await c.closed).code, 1001, 'clients are told the gateway is going away');
  });

  it('refuses bad configuration with a clear message and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['serve', '--store', 'mongo'], /--store must be disk, memory or redis/],
      [['serve', '--retention-age', 'forever'], /--retention-age must be a duration/],
      [['serve', '--nope'], /unknown option --nope for sluice serve/],
      [['token', '--sub', 'x', '--secret', 's', '--ttl', '1y'], /--ttl must be a duration/],
      [['token', '--sub', 'x', '--secret', 's', '--scope', 'all'], /unknown option --scope for sluice token/],
      [['keygen', '--alg'], /--alg needs a value/],
      [['keygen', 'EdDSA'], /unexpected argument "EdDSA" for sluice keygen/],
    ];
    const results = await Promise.all(cases.map(([args]) => sluice(args)));
    results.forEach((r, i) => {
      const [args, message] = cases[i]!;
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    });
  });
});

describe('sluice keygen', () => {
  it('prints the private then the public key without --out', async () => {
    const r = await sluice(['keygen', '--alg', 'ES256']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^-----BEGIN PRIVATE KEY-----\n[^]+-----END PRIVATE KEY-----\n-----BEGIN PUBLIC KEY-----\n[^]+-----END PUBLIC KEY-----\n$/);
  });

  it('--out writes <prefix>.private.pem (mode 0600) and <prefix>.public.pem, and never overwrites a key', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const r = await sluice(['keygen', '--out', join(dir, 'k')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(readFileSync(join(dir, 'k.private.pem'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    assert.match(readFileSync(join(dir, 'k.public.pem'), 'utf8'), /^-----BEGIN PUBLIC KEY-----/);
    assert.equal(statSync(join(dir, 'k.private.pem')).mode & 0o777, 0o600);
    assert.equal(r.stdout.includes('PRIVATE KEY'), false, 'the key is not printed');

    writeFileSync(join(dir, 'only.public.pem'), 'keep me');
    const again = await sluice(['keygen', '--out', join(dir, 'only')]);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /only\.public\.pem exists/);
    assert.equal(readFileSync(join(dir, 'only.public.pem'), 'utf8'), 'keep me');
    assert.throws(() => statSync(join(dir, 'only.private.pem')), /ENOENT/, 'neither file is written when one exists');
  });

  it('the README\'s keygen → token → serve example works as written', async () => {
    // The README block that runs `sluice keygen`, run line by line by bash in an empty directory,
    // with `sluice` the built CLI (serve also gets a free port and the memory store).
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const block = [...readme.matchAll(/```sh\n([^]*?)```/g)].map((m) => m[1]!).find((b) => /^sluice keygen/m.test(b));
    assert.ok(block, 'the README has a sh block with sluice keygen');
    assert.match(block, /--out (\S+)[^]*--key \1\.private\.pem[^]*SLUICE_AUTH_PUBLIC_KEY=\1\.public\.pem sluice serve/);
    const dir = tempDir();
    dirs.push(dir);
    const fn = 'sluice() { if [ "$1" = serve ]; then exec "$NODE" "$CLI" "$@" --host 127.0.0.1 --port 0 --store memory --quiet; fi; "$NODE" "$CLI" "$@"; }';
    const proc = spawn('bash', ['-ec', `${fn}\n${block}`], {
      cwd: dir, env: { ...hermeticEnv(), NODE: process.execPath, CLI }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
    let out = '';
    let err = '';
    proc.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const url = await new Promise<string>((resolve, reject) => {
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /sluice listening on ([^\s"]+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      void exited.then((code) => reject(new Error(`the example exited (${code}) before the gateway listened: ${err}`)));
    });
    try {
      const token = /^ey\S+$/m.exec(out)?.[0];
      assert.ok(token, `the example printed a token: ${out}`);
      assert.equal(statSync(join(dir, 'issuer.private.pem')).mode & 0o777, 0o600);
      assert.equal((await api(url, '/v1/topics/events.signup/messages', { json: 1, token })).status, 201, 'the gateway accepts the token');
      assert.equal((await api(url, '/v1/topics/chat.x/messages', { json: 1, token })).status, 403, 'within its caps only');
      assert.equal((await api(url, '/v1/topics/events.signup/messages', { json: 1 })).status, 401, 'and requires one');
    } finally {
      proc.kill('SIGTERM');
      await exited;
    }
  });
});
