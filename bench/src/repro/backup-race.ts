/**
 * Reproduction of the `sluice backup` defect (fixed): a backup opened the gateway's LMDB file from a
 * second process, and lmdb-js 3.5.6's LMDB, on every open of an environment, sets the shared lock
 * region's last transaction id from the meta page it read a moment before (mdb_env_open2; upstream
 * LMDB does this only for MDB_PREVSNAPSHOT since ITS#9496). When the gateway commits in between,
 * its next write transaction starts from a stale id: the commit fails (MDB_PROBLEM "mdb_page_touch
 * no parent", 503 `unavailable` for ~1 s), the process crashes, or an acknowledged commit is lost.
 *
 *   node bench/dist/src/repro/backup-race.js [backups=40] [concurrency=8] [mode=data|url|open] [parallel=1]
 *
 * Starts a gateway (this checkout's, or the CLI named by BENCH_SLUICE_OLD_CLI) on a fresh disk
 * store, publishes over HTTP with `concurrency` requests in flight (unique idempotency keys; a 503
 * is counted and sent again), and meanwhile takes `backups` backups one after the other:
 * `mode=data` runs `sluice backup --data <dir> --out ...` (a second process opening the file: the
 * old way, refused on a live store since the fix), `mode=url` runs `sluice backup --url ...` (the
 * gateway copies its own store), `mode=open` only opens the file read-only and closes it again
 * (`backups` times, in one process: the open alone is the cause, whatever follows), `parallel` of
 * them at once. Then checks every acknowledged publish is stored at its offset
 * with its contents, and prints: backups ok/failed, publishes acknowledged, 503s, the gateway's
 * MDB_PROBLEM log lines, acknowledged offsets missing or holding another message, offsets
 * acknowledged for two different publishes (reused), and whether the gateway still runs.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { installCleanup, releaseAll, removeDir, tempDir } from '../cleanup.js';
import { CLI, launchGateway, OLD_CLI_ENV } from '../targets/sluice.js';

const TOPIC = 'repro.backup';

function run(cli: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cli, 'backup', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

/** A process that opens the store read-only and closes it, `n` times (what `sluice backup --data` did first). */
function opens(path: string, n: number): Promise<{ code: number | null; out: string }> {
  const script = `import { open } from 'lmdb';
for (let i = 0; i < ${n}; i++) { const e = open({ path: ${JSON.stringify(path)}, readOnly: true, maxDbs: 8 }); e.openDB('sys', {}).get('epoch'); await e.close(); }`;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dirname(CLI) });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', (code) => resolve({ code, out }));
  });
}

async function main(): Promise<void> {
  installCleanup();
  const [backupsArg = '40', concurrencyArg = '8', mode = 'data', parallelArg = '1'] = process.argv.slice(2);
  const backups = Number(backupsArg);
  const concurrency = Number(concurrencyArg);
  const parallel = Number(parallelArg);
  if (mode !== 'data' && mode !== 'url' && mode !== 'open') throw new Error('mode is data, url or open');
  const cli = process.env[OLD_CLI_ENV] || CLI;
  const dir = tempDir('sluice-backup-race-');
  const data = join(dir, 'data');
  const storeArgs = ['--store', 'disk', '--data', data];
  if (mode === 'url') storeArgs.push('--backup-dir', join(dir, 'backups'));
  const { p, port } = await launchGateway({ cli, storeArgs });
  const url = `http://127.0.0.1:${port}`;
  const acked = new Map<number, number>(); // offset → i
  let reused = 0; // offsets acknowledged for two different publishes
  let refused = 0;
  let failed = 0;
  let firstFailure = '';
  let stop = false;
  let next = 0;
  const publisher = async (): Promise<void> => {
    while (!stop) {
      const i = ++next;
      for (let attempt = 0; attempt < 50 && !stop; attempt++) {
        try {
          const res = await fetch(`${url}/v1/topics/${TOPIC}/messages`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': `k${i}` },
            body: JSON.stringify({ i }),
          });
          const body = (await res.json()) as { offset?: number };
          if (res.status === 201 || res.status === 200) {
            const before = acked.get(body.offset!);
            if (before !== undefined && before !== i) reused++;
            acked.set(body.offset!, i);
            break;
          }
          if (res.status === 503) { refused++; await new Promise((r) => setTimeout(r, 100)); continue; }
          failed++;
          firstFailure ||= `${res.status} ${JSON.stringify(body)}`;
          break;
        } catch (err) {
          failed++;
          firstFailure ||= String(err);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  };
  const publishers = Array.from({ length: concurrency }, publisher);
  let ok = 0;
  let bad = 0;
  let firstBad = '';
  const started = Date.now();
  let taken = 0;
  const one = async (): Promise<void> => {
    while (taken < backups) {
      const b = taken++;
      const r = mode === 'open'
        ? await opens(join(data, 'sluice.mdb'), Math.ceil(backups / parallel))
        : await run(cli, mode === 'data' ? ['--data', data, '--out', join(dir, `copy-${b}`)] : ['--url', url]);
      if (mode === 'open') taken = backups;
      if (r.code === 0) ok++;
      else { bad++; firstBad ||= `exit ${r.code}: ${r.out.trim().slice(0, 300)}`; }
    }
  };
  try {
    await Promise.all(Array.from({ length: parallel }, one));
  } finally {
    stop = true;
    await Promise.all(publishers);
  }
  const seconds = (Date.now() - started) / 1000;
  // Every acknowledged publish is stored at its offset, with its contents.
  let missing = 0;
  let different = 0;
  let firstMissing: number | undefined;
  let storedCount = 0;
  let alive = true;
  try {
    const stored = new Map<number, number>();
    let from = 1;
    for (let pages = 0; pages < 10_000; pages++) {
      const res = await fetch(`${url}/v1/topics/${TOPIC}/messages?limit=1000&from=${from}`);
      const body = (await res.json()) as { head: number; next: number; messages: { offset: number; data: { i: number } }[] };
      for (const m of body.messages) stored.set(m.offset, m.data.i);
      if (body.messages.length === 0 || body.next > body.head) break;
      from = body.next;
    }
    storedCount = stored.size;
    for (const [offset, i] of acked) {
      const got = stored.get(offset);
      if (got === undefined) { missing++; firstMissing = Math.min(firstMissing ?? offset, offset); }
      else if (got !== i) different++;
    }
  } catch {
    alive = false;
  }
  const log = p.output();
  const problems = (log.match(/MDB_PROBLEM/g) ?? []).length;
  const storeFailures = (log.match(/store cannot write/g) ?? []).length;
  const reason = /store cannot write \(([^)]{0,120})/.exec(log)?.[1];
  const what = mode === 'data' ? 'backup --data (second process)' : mode === 'url' ? 'backup --url (in the gateway)' : `${backups} read-only opens (second process)`;
  console.log(`${what}, ${parallel} at a time, ${cli === CLI ? 'this build' : cli}: ` +
    `${ok} runs ok, ${bad} failed${firstBad ? ` (first: ${firstBad})` : ''}, in ${seconds.toFixed(1)} s; ` +
    `${acked.size} publishes acknowledged, ${refused} answered 503, ${failed} other failures${firstFailure ? ` (first: ${firstFailure})` : ''}; ` +
    `gateway log: ${problems} MDB_PROBLEM, ${storeFailures} "store cannot write"${reason ? ` (first: ${reason})` : ''}; ` +
    `${alive ? `acknowledged offsets: ${missing} missing${firstMissing ? ` (from ${firstMissing}; ${storedCount} readable)` : ''}, ${different} holding another message, ${reused} acknowledged twice for different messages` : 'gateway gone (crashed)'}`);
  await p.stop(10_000);
  removeDir(dir);
  releaseAll();
}

main().catch((err: unknown) => {
  console.error(err);
  releaseAll();
  process.exit(1);
});
