/**
 * Reproduction of a Sluice gateway bug the bench found, now fixed (see bench/README.md, "Gateway
 * bugs"): under a fast publisher, a credit-limited subscriber that fell off the live path could
 * stop receiving for good — its catch-up read right after a commit saw an LMDB read snapshot
 * older than that commit, got nothing, and `Hub.pump` gave up without retrying. Kept as a
 * regression check.
 *
 *   node bench/dist/src/repro/catchup-stall.js [subscribers=100] [window=128] [runs=20]
 *
 * Runs 2 s max-throughput bursts (fan-out, one topic, credit 64) until a subscriber stalls.
 * Exit code 1 when it reproduced, 0 when every run delivered everything.
 */
import { installCleanup, releaseAll } from '../cleanup.js';
import { Feed } from '../load/feed.js';
import { Fleet } from '../load/fleet.js';
import { openProbe } from '../scenarios/measure.js';
import { sluiceTarget } from '../targets/sluice.js';

async function main(): Promise<number> {
  installCleanup();
  const [n = 100, window = 128, runs = 20] = process.argv.slice(2).map(Number);
  const t = await sluiceTarget.start();
  const fleet = new Fleet(3);
  try {
    await fleet.open(t.subscriber({ credit: 64 }), Array.from({ length: n }, () => 0));
    const probe = await openProbe(t, 0);
    const feed = new Feed(await t.publisher({ window: 1000 }), fleet, 1, probe.tally);
    for (let i = 0; i < runs; i++) {
      const r = await feed.run({ durationMs: 2000, windowRounds: window, subscriberWindow: 512, drainTimeoutMs: 5000 });
      if (!r.drained) {
        console.log(`run ${i}: REPRODUCED — published ${feed.sent}, the slowest subscriber stopped at ${fleet.min()} and never resumed`);
        console.log(t.output().split('\n').filter((l) => l.includes('store returned')).slice(0, 3).join('\n'));
        return 1;
      }
      console.log(`run ${i}: every subscriber received all ${feed.sent} messages`);
    }
    return 0;
  } finally {
    await fleet.close();
    await t.stop();
  }
}

main().then(
  (code) => { releaseAll(); process.exit(code); },
  (err: unknown) => { console.error(err); releaseAll(); process.exit(2); },
);
