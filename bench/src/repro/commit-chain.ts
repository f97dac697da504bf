/**
 * Reproduction of a disk-store slowdown the A/B of main found (bench/results/ab-onecore.md): since
 * the disk-full handling (85d39ea), BaseLog.seal issues a loop turn's writes only after the
 * previous batch's LMDB commit completed, so lmdb-js can no longer merge the writes of consecutive
 * loop turns into one transaction. Publishes that arrive one per loop turn (HTTP requests, many
 * publishing connections) then each get their own transaction and fdatasync, one after the other.
 *
 *   node bench/dist/src/repro/commit-chain.js [concurrency=32] [seconds=4]
 *
 * Starts this checkout's gateway (and, when BENCH_SLUICE_OLD_CLI names one, that build too), each
 * with a fresh disk store and default durability, pinned like every bench server, and publishes
 * single messages over HTTP with unique idempotency keys, `concurrency` requests in flight. Prints
 * requests/s and the gateway's fdatasync calls per published message (perf, 2 s mid-run): ~1 means
 * one commit and sync per message.
 */
import { installCleanup, releaseAll, removeDir, tempDir } from '../cleanup.js';
import { httpPublish } from '../clients/http-publisher.js';
import { countSyscalls } from '../syscalls.js';
import { CLI, launchGateway, OLD_CLI_ENV } from '../targets/sluice.js';

async function measure(label: string, cli: string, concurrency: number, seconds: number): Promise<void> {
  const dir = tempDir('sluice-repro-');
  const { p, port } = await launchGateway({ cli, storeArgs: ['--store', 'disk', '--data', dir] });
  try {
    const counting = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return countSyscalls(p.pid, 2);
    })();
    const r = await httpPublish({
      baseUrl: `http://127.0.0.1:${port}`,
      topic: 'repro.chain',
      batch: 1,
      keys: true,
      concurrency,
      durationMs: seconds * 1000,
    });
    const syscalls = await counting;
    const syncs = syscalls.byName.fdatasync ?? syscalls.byName.fsync ?? Number.NaN;
    const perSecond = r.messages / r.seconds;
    console.log(`${label.padEnd(10)} ${perSecond.toFixed(0).padStart(6)} req/s, fdatasync ${(syncs / 2).toFixed(0)}/s = ${(syncs / (perSecond * 2)).toFixed(2)} per message` +
      ` (${syscalls.tool}, counted 2 s mid-run against the mean rate${r.failures ? `; ${r.failures} failures: ${r.firstFailure}` : ''})`);
  } finally {
    await p.stop(30_000);
    removeDir(dir);
  }
}

async function main(): Promise<void> {
  installCleanup();
  const [concurrency = 32, seconds = 4] = process.argv.slice(2).map(Number);
  console.log(`HTTP single publishes with keys, ${concurrency} in flight, ${seconds} s, default durability (flush)`);
  await measure('this build', CLI, concurrency, seconds);
  const old = process.env[OLD_CLI_ENV];
  if (old) await measure('old build', old, concurrency, seconds);
}

main().then(
  () => { releaseAll(); process.exit(0); },
  (err: unknown) => { console.error(err); releaseAll(); process.exit(2); },
);
