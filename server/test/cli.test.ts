import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { CLI, removeDir, spawnGateway, tempDir } from './helpers/gateway.js';
import { RawClient } from './helpers/raw-client.js';

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
    assert.throws(() => loadConfig(['--store', 'mongo'], {}), /store must be disk or memory/);
    assert.throws(() => loadConfig(['--nope'], {}), /unknown option/);
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
    const proc = spawn(process.execPath, [CLI, 'serve', '--store', 'mongo'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await new Promise((resolve) => proc.once('exit', resolve));
    assert.equal(code, 2);
    assert.match(err, /store must be disk or memory/);
  });
});
