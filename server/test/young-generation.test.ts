import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { DEFAULT_YOUNG_GENERATION } from '../src/young-generation.js';

const MODULE = new URL('../src/young-generation.js', import.meta.url).href;
const MiB = 1024 * 1024;

/**
 * In a fresh Node process: optionally caps the young generation, then keeps ~60 MB of small
 * objects alive, allocated in slices with a turn of the event loop between them (as a gateway
 * setting up connections does), and prints the young generation's size before and after.
 */
function youngGenerationGrowth(cap: number | undefined, trafficPerSlice = 0): { start: number; end: number } {
  const script = `
    import { capYoungGeneration, youngGenerationBytes } from ${JSON.stringify(MODULE)};
    const start = youngGenerationBytes();
    let moved = 0;
    ${cap === undefined ? '' : `capYoungGeneration(${cap}, () => moved);`}
    const keep = [];
    for (let slice = 0; slice < 300; slice++) {
      for (let i = 0; i < 2000; i++) keep.push({ i, name: 'topic-' + slice + '-' + i, set: new Set([i]) });
      moved += ${trafficPerSlice};
      await new Promise((resolve) => setImmediate(resolve));
    }
    console.log(JSON.stringify({ start, end: youngGenerationBytes(), kept: keep.length }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out) as { start: number; end: number };
}

describe('young generation cap (sluice serve --young-generation)', () => {
  it('without a cap V8 grows the young generation past 8 MiB while state piles up', () => {
    const { end } = youngGenerationGrowth(undefined);
    assert.ok(end > 8 * MiB, `young generation ${end / MiB} MiB: this check cannot show the cap works`);
  });

  it('with an 8 MiB cap it stays at 8 MiB', () => {
    const { end } = youngGenerationGrowth(8 * MiB);
    assert.ok(end <= 8 * MiB, `young generation ${end / MiB} MiB, cap 8 MiB`);
  });

  it('lets V8 grow it while messages move (traffic since the last GC)', () => {
    const { end } = youngGenerationGrowth(8 * MiB, 10_000);
    assert.ok(end > 8 * MiB, `young generation ${end / MiB} MiB: the cap held under traffic`);
  });

  it('is 8 MiB by default; 0 leaves V8 its own', () => {
    assert.equal(DEFAULT_YOUNG_GENERATION, 8 * MiB);
    assert.equal(loadConfig([], {}).youngGeneration, 8 * MiB);
    assert.equal(loadConfig(['--young-generation', '0'], {}).youngGeneration, 0);
    assert.equal(loadConfig([], { SLUICE_YOUNG_GENERATION: '16MiB' }).youngGeneration, 16 * MiB);
  });
});
