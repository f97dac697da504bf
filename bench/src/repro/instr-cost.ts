/**
 * Instructions the gateway executes per delivery on a fixed workload, counted by valgrind's
 * callgrind: unlike time, the count barely depends on what else runs on the machine, so an A/B of
 * two builds means something on a busy one.
 *
 *   node bench/dist/src/repro/instr-cost.js [layout=1000x1] [messages=20000] [store=disk|commit|memory] [window=200] [warmup=5000]
 *
 * Runs this checkout's gateway and, when BENCH_SLUICE_OLD_CLI names one, that build, each under
 * `valgrind --tool=callgrind` (about 50× slower; BENCH_COST_BUILDS="label=CLI,..." adds builds): T × S subscribers (S on each of T topics), a
 * closed-loop publisher (at most `window` unacknowledged) sending round-robin over the topics;
 * `warmup` messages (whole rounds) first, then the counters are zeroed (`callgrind_control --zero`), `messages` more are
 * published and delivered, and the counts are dumped. Prints instructions per delivery (every
 * thread: V8, uWS, LMDB's writer) and the bytes the process wrote (/proc/PID/io). The dumps stay
 * in a temp dir (printed): `callgrind_annotate FILE` lists native functions; JIT-compiled
 * JavaScript shows as addresses, named by /tmp/perf-PID.map (the gateway runs with --perf-basic-prof). Timers run on the wall clock, which callgrind stretches: work done
 * per second (the store's sweep, samplers) weighs ~50× more per message than at full speed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCleanup, releaseAll, removeDir, tempDir } from '../cleanup.js';
import { SluicePublisher } from '../clients/sluice-publisher.js';
import { Fleet } from '../load/fleet.js';
import { makePayload, nowUs } from '../payload.js';
import { launch } from '../targets/server-process.js';
import { CLI, OLD_CLI_ENV, TOPIC_PREFIX } from '../targets/sluice.js';

interface Options { topics: number; perTopic: number; messages: number; warmup: number; store: string; window: number; out: string }

function storeArgs(store: string, dir: string): string[] {
  if (store === 'memory') return ['--store', 'memory'];
  return ['--store', 'disk', '--data', dir, ...(store === 'commit' ? ['--durability', 'commit'] : [])];
}

function writtenBytes(pid: number): number {
  return Number(/^wchar: (\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? Number.NaN);
}

/** Publishes `count` messages round-robin from message number `from`, at most `window` in flight. */
async function publish(pub: SluicePublisher, o: Options, from: number, count: number): Promise<void> {
  let sent = from;
  const end = from + count;
  await new Promise<void>((resolve) => {
    const fill = () => {
      pub.cork();
      while (sent < end && pub.canSend()) {
        const topic = sent % o.topics;
        pub.send(topic, makePayload(Math.floor(sent / o.topics) + 1, topic, nowUs()));
        sent++;
      }
      pub.uncork();
      if (sent >= end) resolve();
    };
    pub.onReady = fill;
    fill();
  });
  await pub.settle();
}

async function measure(label: string, cli: string, o: Options): Promise<string> {
  const dir = tempDir('sluice-instr-');
  const name = label.replace(/\W+/g, '-');
  const p = await launch('valgrind', [
    '--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${join(o.out, name)}.%p.out`,
    // --perf-basic-prof: /tmp/perf-PID.map names the JIT code's addresses in the dumps.
    process.execPath, '--perf-basic-prof', cli, 'serve', '--host', '127.0.0.1', '--port', '0', ...storeArgs(o.store, dir), '--quiet',
  ], { readyPattern: /sluice listening on http:\/\/127\.0\.0\.1:(\d+)/, env: { SLUICE_MAX_PENDING_PER_ADDRESS: '100000' }, timeoutMs: 300_000, cwd: dir }); // cwd: where V8's isolate log (from --perf-basic-prof) goes
  const fleet = new Fleet(3);
  try {
    const url = `ws://127.0.0.1:${p.ready}`;
    const opened = await fleet.open({ kind: 'sluice', url, prefix: TOPIC_PREFIX, credit: 64 }, Array.from({ length: o.topics * o.perTopic }, (_, i) => i % o.topics), 0, false, 16);
    if (opened.failed) throw new Error(`${opened.failed} subscribers failed: ${opened.firstError}`);
    const pub = await SluicePublisher.open({ url, prefix: TOPIC_PREFIX, window: o.window, keys: false });
    // Warm-up: JIT, every topic's first write, the heap grown to its working size.
    const warm = Math.max(1, Math.ceil(o.warmup / o.topics));
    await publish(pub, o, 0, warm * o.topics);
    if (!(await fleet.waitMin(warm, 300_000))) throw new Error('warm-up not delivered');
    execFileSync('callgrind_control', ['--zero', String(p.pid)], { stdio: 'ignore' });
    const w0 = writtenBytes(p.pid);
    const t0 = performance.now();
    const rounds = Math.ceil(o.messages / o.topics);
    await publish(pub, o, warm * o.topics, rounds * o.topics);
    if (!(await fleet.waitMin(warm + rounds, 600_000))) throw new Error('not delivered');
    const wallS = (performance.now() - t0) / 1000;
    const w1 = writtenBytes(p.pid);
    execFileSync('callgrind_control', ['--dump=measured', String(p.pid)], { stdio: 'ignore' });
    pub.close();
    const dumps = readdirSync(o.out).filter((f) => f.startsWith(`${name}.${p.pid}.out`));
    let ir = 0;
    for (const f of dumps) {
      const text = readFileSync(join(o.out, f), 'utf8');
      if (!/^desc: Trigger: .*measured/m.test(text)) continue;
      ir += Number(/^(?:summary|totals): (\d+)/m.exec(text)?.[1] ?? 0);
    }
    const deliveries = rounds * o.topics * o.perTopic;
    return `| ${label} | ${(ir / deliveries).toFixed(0)} | ${(ir / 1e9).toFixed(2)} | ${((w1 - w0) / deliveries).toFixed(0)} | ${wallS.toFixed(0)} s |`;
  } finally {
    await fleet.close();
    await p.stop(60_000);
    removeDir(dir);
  }
}

async function main(): Promise<void> {
  installCleanup();
  const a = process.argv.slice(2);
  const [topics = 1000, perTopic = 1] = (a[0] ?? '1000x1').split('x').map(Number);
  const o: Options = { topics, perTopic, messages: Number(a[1] ?? 20_000), store: a[2] ?? 'disk', window: Number(a[3] ?? 200), warmup: Number(a[4] ?? 5000), out: mkdtempSync(join(tmpdir(), 'sluice-callgrind-')) };
  console.log(`${topics} topics × ${perTopic}, ${o.messages} messages, window ${o.window}, store ${o.store}; dumps in ${o.out}`);
  console.log('| build | instructions per delivery | instructions (10⁹) | bytes written per delivery | wall |');
  console.log('|---|---:|---:|---:|---:|');
  console.log(await measure('this build', CLI, o));
  const old = process.env[OLD_CLI_ENV];
  if (old) console.log(await measure('old build', old, o));
  // More builds (variants of a change): BENCH_COST_BUILDS="label=/path/cli.js,label=/path/cli.js".
  for (const b of (process.env.BENCH_COST_BUILDS ?? '').split(',').filter(Boolean)) {
    const [label = '', cli = ''] = b.split('=');
    console.log(await measure(label, cli, o));
  }
}

main().then(
  () => { releaseAll(); process.exit(0); },
  (err: unknown) => { console.error(err); releaseAll(); process.exit(2); },
);
