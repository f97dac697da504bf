/**
 * What one WebSocket publish allocates in the gateway (issue 16): JavaScript heap bytes per PUB
 * → ACK on the memory store, keyed and unkeyed, this checkout's gateway against another build
 * (BENCH_SLUICE_OLD_CLI), alternating in one run.
 *
 *   node bench/dist/src/repro/pub-garbage.js [messages=50000] [rounds=2] [sites=0] [topics=1]
 *
 * Per build, round and kind (unkeyed, keyed): a fresh gateway preloaded with alloc-probe.js, one
 * publisher (no subscribers) that sends `messages` PUBs of 200 bytes round-robin over `topics` topics in a closed loop
 * of 1,000 unacknowledged, after a warm-up of the same size; the probe counts the heap bytes the
 * gateway allocated over the measured stretch, divided by the messages. With `sites` > 0 the
 * sampling heap profiler also runs over the stretch (slower) and the largest allocating functions
 * are printed. Bounded: every gateway serves one publisher, then stops.
 */
import { fileURLToPath } from 'node:url';
import { installCleanup, releaseAll } from '../cleanup.js';
import { SluicePublisher } from '../clients/sluice-publisher.js';
import { CLI, launchGateway, OLD_CLI_ENV, TOPIC_PREFIX } from '../targets/sluice.js';
import type { AllocReading } from './alloc-probe.js';

const PROBE = fileURLToPath(new URL('./alloc-probe.js', import.meta.url));

async function waitFor(output: () => string, marker: string, seen: number): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const parts = output().split(marker);
    if (parts.length > seen + 1) return parts[seen + 1]!.split('\n')[0]!;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the gateway did not print ${marker.trim()} within 30 s`);
}

async function publish(pub: SluicePublisher, messages: number, payload: Uint8Array, topics: number): Promise<void> {
  let sent = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      pub.cork();
      while (sent < messages && pub.canSend()) { pub.send(sent % topics, payload); sent++; }
      pub.uncork();
      if (sent >= messages) { pub.onReady = undefined; resolve(); }
    };
    pub.onReady = pump;
    pump();
  });
  await pub.settle();
  if (pub.failures) throw new Error(`publish failures: ${pub.firstFailure}`);
}

async function run(label: string, cli: string, messages: number, keys: boolean, sites: number, topics: number): Promise<string> {
  const { p, port } = await launchGateway({
    cli,
    storeArgs: ['--store', 'memory'],
    nodeArgs: ['--import', PROBE],
    env: sites > 0 ? { ALLOC_PROBE_SITES: String(sites) } : {},
  });
  try {
    const pub = await SluicePublisher.open({ url: `ws://127.0.0.1:${port}`, prefix: TOPIC_PREFIX, window: 1000, keys });
    const payload = new Uint8Array(200).fill(120);
    await publish(pub, messages, payload, topics); // warm-up: compiled code, the topic, the store's arrays
    const started = p.output().split('alloc-probe started').length - 1;
    process.kill(p.pid, 'SIGUSR2');
    await waitFor(() => p.output(), 'alloc-probe started', started);
    await publish(pub, messages, payload, topics);
    const seen = p.output().split('alloc-probe {').length - 1;
    process.kill(p.pid, 'SIGUSR2');
    const r = JSON.parse(`{${await waitFor(() => p.output(), 'alloc-probe {', seen)}`) as AllocReading;
    pub.close();
    let line = `${label.padEnd(4)} ${keys ? 'keyed  ' : 'unkeyed'}  ${(r.bytes / messages).toFixed(0).padStart(6)} B/publish  (${r.gcs} GCs)`;
    if (r.sites) {
      line += `  sampled ${(r.sampledBytes! / messages).toFixed(0)} B/publish; top sites, B/publish:`;
      for (const [site, bytes] of r.sites) line += `\n     ${(bytes / messages).toFixed(0).padStart(6)}  ${site}`;
    }
    return line;
  } finally {
    await p.stop(30_000);
  }
}

async function main(): Promise<void> {
  installCleanup();
  const messages = Number(process.argv[2] ?? 50_000);
  const rounds = Number(process.argv[3] ?? 2);
  const sites = Number(process.argv[4] ?? 0);
  const topics = Number(process.argv[5] ?? 1);
  const builds: [string, string][] = [['new', CLI]];
  const old = process.env[OLD_CLI_ENV];
  if (old) builds.push(['old', old]);
  console.log(`pub-garbage: ${messages} publishes of 200 bytes to ${topics === 1 ? 'one topic' : `${topics} topics, round-robin`}, memory store, ${rounds} rounds${sites ? `, ${sites} sites` : ''}`);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? builds : [...builds].reverse();
    for (const keys of [false, true]) for (const [label, cli] of order) console.log(await run(label, cli, messages, keys, sites, topics));
  }
}

main().then(() => { releaseAll(); process.exit(0); }, (err: unknown) => {
  console.error(err);
  releaseAll();
  process.exit(1);
});
