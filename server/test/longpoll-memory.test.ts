import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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

/** Timers alive in this process (the gateway runs in it). */
function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('long-poll scale', () => {
  it('holds 10,000 idle long-polls in bounded memory with no timer each; one publish answers them all', async (t) => {
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
      const timersBefore = timers();
      await waitFor(() => out.includes(`open ${N}`), 'the clients to connect', 60_000);
      await waitFor(() => gw.http.polls.size === N, `${N} parked pulls`, 60_000);
      gc();
      const held = process.memoryUsage();
      const heapPer = (held.heapUsed - before.heapUsed) / N;
      const rssPer = (held.rss - before.rss) / N;

      // No timer each and no busy loop: whatever N is, the one 100 ms deadline ticker is the only
      // timer the parked requests add.
      const timersHeld = timers();
      const figures = `${N} parked long-polls: ${Math.round(heapPer)} B JS heap and ${Math.round(rssPer)} B RSS per request; timers ${timersBefore} -> ${timersHeld}`;
      t.diagnostic(figures);
      assert.ok(heapPer < 1024, `JS heap per parked request: ${heapPer} B`);
      assert.ok(timersHeld <= timersBefore + 1, `timers: ${timersBefore} before, ${timersHeld} with ${N} parked`);

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
