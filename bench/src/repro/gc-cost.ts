/**
 * What a cap on V8's young generation costs on the publish path: GC pauses and gateway CPU per
 * message, this checkout's gateway against another build (BENCH_SLUICE_OLD_CLI), in one run.
 *
 *   node bench/dist/src/repro/gc-cost.js [messages=100000] [layout=1000x1|1x1000] [memory|disk] [rounds=2]
 *
 * Per build and round: a fresh gateway preloaded with gc-probe.js, the layout's subscribers (one
 * load worker fleet), then `messages` publishes of 200 bytes, round-robin over the topics, in a
 * closed loop of 1,000 unacknowledged; the gateway's GC sums and CPU time are read (SIGUSR2) before
 * and after, and divided by the messages. Builds alternate within a round, so both see the same
 * machine. CPU time and GC pauses per message move much less with other load on the machine than
 * rates and latencies do. Bounded: every gateway serves one fleet and one publisher, then stops.
 */
import { fileURLToPath } from 'node:url';
import { installCleanup, releaseAll, removeDir, tempDir } from '../cleanup.js';
import { SluicePublisher } from '../clients/sluice-publisher.js';
import { Fleet } from '../load/fleet.js';
import { CLI, launchGateway, OLD_CLI_ENV, TOPIC_PREFIX } from '../targets/sluice.js';
import type { GcReading } from './gc-probe.js';

const PROBE = fileURLToPath(new URL('./gc-probe.js', import.meta.url));

async function probe(pid: number, output: () => string): Promise<GcReading> {
  const seen = output().split('gc-probe ').length;
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 300; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const parts = output().split('gc-probe ');
    if (parts.length > seen) return JSON.parse(parts[parts.length - 1]!.split('\n')[0]!) as GcReading;
  }
  throw new Error('the gateway did not answer the gc probe within 15 s');
}

async function run(label: string, cli: string, messages: number, topics: number, perTopic: number, store: string): Promise<string> {
  const dir = tempDir('sluice-gc-');
  const { p, port } = await launchGateway({ cli, storeArgs: store === 'disk' ? ['--store', 'disk', '--data', dir] : ['--store', 'memory'], nodeArgs: ['--import', PROBE] });
  const url = `ws://127.0.0.1:${port}`;
  const fleet = new Fleet(3);
  try {
    const subs: number[] = [];
    for (let t = 0; t < topics; t++) for (let k = 0; k < perTopic; k++) subs.push(t);
    const opened = await fleet.open({ kind: 'sluice', url, prefix: TOPIC_PREFIX, credit: 64 }, subs);
    if (opened.failed) throw new Error(`${opened.failed} subscribers failed: ${opened.firstError}`);
    const pub = await SluicePublisher.open({ url, prefix: TOPIC_PREFIX, window: 1000, keys: false });
    const payload = new Uint8Array(200).fill(120);
    const before = await probe(p.pid, () => p.output());
    const started = Date.now();
    let sent = 0;
    await new Promise<void>((resolve) => {
      const pump = () => {
        pub.cork();
        while (sent < messages && pub.canSend()) pub.send(sent++ % topics, payload);
        pub.uncork();
        if (sent >= messages) { pub.onReady = undefined; resolve(); }
      };
      pub.onReady = pump;
      pump();
    });
    await pub.settle();
    const ms = Date.now() - started;
    const after = await probe(p.pid, () => p.output());
    pub.close();
    if (pub.failures) throw new Error(`publish failures: ${pub.firstFailure}`);
    const per = (a: number, b: number) => ((b - a) * 1000 / messages).toFixed(2);
    return `${label.padEnd(5)} ${(messages / ms * 1000 / 1000).toFixed(1).padStart(6)}k msgs/s acked` +
      `  CPU ${per(before.cpuMs, after.cpuMs)} µs/msg  scavenges ${after.minor - before.minor} (${per(before.minorMs, after.minorMs)} µs/msg)` +
      `  mark-compacts ${after.major - before.major} (${per(before.majorMs, after.majorMs)} µs/msg)  young generation ${(after.youngGeneration / 2 ** 20).toFixed(0)} MiB`;
  } finally {
    await fleet.close();
    await p.stop(30_000);
    removeDir(dir);
  }
}

async function main(): Promise<void> {
  installCleanup();
  const messages = Number(process.argv[2] ?? 100_000);
  const layout = process.argv[3] ?? '1000x1';
  const store = process.argv[4] ?? 'memory';
  const rounds = Number(process.argv[5] ?? 2);
  const [topics, perTopic] = layout.split('x').map(Number) as [number, number];
  const builds: [string, string][] = [['new', CLI]];
  const old = process.env[OLD_CLI_ENV];
  if (old) builds.push(['old', old]);
  console.log(`gc-cost: ${messages} publishes, ${layout}, ${store} store, ${rounds} rounds`);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? builds : [...builds].reverse();
    for (const [label, cli] of order) console.log(await run(label, cli, messages, topics, perTopic, store));
  }
}

main().then(() => { releaseAll(); process.exit(0); }, (err: unknown) => {
  console.error(err);
  releaseAll();
  process.exit(1);
});
