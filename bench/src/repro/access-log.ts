/**
 * What `--access-log` costs: HTTP publishes per second to a gateway (memory store, JSON logs piped
 * to this process, as to journald) without and with the access log, alternating runs so the
 * machine's load hits both alike. Each run: `requests` publishes from 64 concurrent loops. The
 * client (Node fetch, in this process) is usually the limit: a ratio near 1 means the log costs less
 * than the client can show, not nothing.
 *
 *   node bench/dist/src/repro/access-log.js [requests=20000] [runs=3]
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const server = dirname(createRequire(import.meta.url).resolve('@sluice/server/package.json'));
const CLI = join(server, 'dist/src/cli.js');

async function run(access: boolean, requests: number): Promise<number> {
  const args = [CLI, 'serve', '--store', 'memory', '--port', '0', '--log-format', 'json', ...(access ? ['--access-log'] : [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let lines = 0;
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      lines += d.toString().split('\n').length - 1;
      if (!out.includes('listening')) {
        out += d.toString();
        const m = /sluice listening on (http:\/\/[^\s"]+)/.exec(out);
        if (m) resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => reject(new Error(`gateway exited ${code}`)));
  });
  try {
    let next = 0;
    const body = JSON.stringify({ hello: 'world', n: 1 });
    const started = performance.now();
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < requests) {
        next++;
        const r = await fetch(`${url}/v1/topics/bench.access/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        if (r.status !== 201) throw new Error(`publish answered ${r.status}`);
        await r.arrayBuffer();
      }
    }));
    const rate = requests / ((performance.now() - started) / 1000);
    if (access && lines < requests) throw new Error(`expected an access line per request, got ${lines}`);
    return rate;
  } finally {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }
}

const requests = Number(process.argv[2] ?? 20_000);
const runs = Number(process.argv[3] ?? 3);
const rates: Record<'off' | 'on', number[]> = { off: [], on: [] };
for (let i = 0; i < runs; i++) {
  rates.off.push(await run(false, requests));
  rates.on.push(await run(true, requests));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const k of ['off', 'on'] as const) console.log(`access log ${k.padEnd(3)}: ${rates[k].map((r) => r.toFixed(0)).join(', ')} publishes/s (median ${median(rates[k]).toFixed(0)})`);
console.log(`on/off: ${(median(rates.on) / median(rates.off)).toFixed(3)}`);
