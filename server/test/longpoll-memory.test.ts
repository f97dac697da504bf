import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, it } from 'node:test';
import { startGateway } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';

const CLIENTS = fileURLToPath(new URL('./fixtures/longpoll-clients.js', import.meta.url));

function gc(): void {
  let g = (globalThis as { gc?: () => void }).gc;
  if (!g) {
    setFlagsFromString('--expose-gc');
    g = runInNewContext('gc') as () => void;
  }
  g();
  g();
}

describe('long-poll scale', () => {
  it('holds 10,000 idle long-polls in bounded memory with no busy loop; one publish answers them all', async (t) => {
    const N = 10_000;
    const gw = await startGateway((c) => { c.http.maxWaitS = 600; c.http.maxStreams = 20_000; });
    const child = spawn(process.execPath, [CLIENTS, String(gw.port), String(N), '/v1/topics/lp.scale/messages?from=1&wait=600'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      gc();
      const before = process.memoryUsage();
      await waitFor(() => out.includes(`open ${N}`), 'the clients to connect', 60_000);
      await waitFor(() => gw.http.polls.size === N, `${N} parked pulls`, 60_000);
      gc();
      const held = process.memoryUsage();
      const heapPer = (held.heapUsed - before.heapUsed) / N;
      const rssPer = (held.rss - before.rss) / N;

      // Idle: parked requests cost no CPU (one 100 ms ticker, no timer or promise each).
      const cpu0 = process.cpuUsage();
      await sleep(1000); // a measurement window, not a synchronisation
      const cpu = process.cpuUsage(cpu0);
      const cpuMs = (cpu.user + cpu.system) / 1000;

      const figures = `${N} parked long-polls: ${Math.round(heapPer)} B JS heap and ${Math.round(rssPer)} B RSS per request; ${cpuMs.toFixed(1)} ms CPU in 1 s idle`;
      t.diagnostic(figures);
      assert.ok(heapPer < 1024, `JS heap per parked request: ${heapPer} B`);
      assert.ok(cpuMs < 250, `CPU while idle: ${cpuMs} ms in 1 s`);

      const r = await api(gw.url, '/v1/topics/lp.scale/messages', { json: 'wake up' });
      assert.equal(r.status, 201);
      await waitFor(() => out.includes(`answered ${N}`), 'every parked pull to be answered', 60_000);
      assert.equal(gw.http.polls.size, 0);
    } finally {
      child.stdin.end();
      await exited;
      await gw.close();
    }
  });
});
