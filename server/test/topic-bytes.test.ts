/**
 * The memory store's per-topic chunks (log/topic-bytes.ts) against a plain array of copies: every
 * offset's bytes, ranges and the byte count stay exact through appends and removals, and a view
 * handed out stays intact whatever the topic does after it (the hub caches such views). Sizes are
 * drawn from a seeded generator so a failure repeats; add cases by adding seeds or size mixes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_CHUNK, TopicBytes } from '../src/log/topic-bytes.js';

/** A small seeded generator (mulberry32): the same sequence on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function entry(offset: number, size: number): Uint8Array {
  const e = new Uint8Array(size);
  for (let i = 0; i < size; i++) e[i] = (offset * 31 + i) & 0xff;
  return e;
}

describe('memory store chunks (TopicBytes)', () => {
  for (const seed of [1, 2, 3]) {
    it(`keeps every offset's bytes exact through appends and removals, and views handed out intact (seed ${seed})`, () => {
      const rnd = random(seed);
      const first = 1 + Math.floor(rnd() * 1000);
      const t = new TopicBytes(first);
      const kept = new Map<number, Uint8Array>(); // offset → the bytes appended
      const views: { offset: number; view: Uint8Array }[] = [];
      let next = first;
      let oldest = first;
      let bytes = 0;
      for (let step = 0; step < 3000; step++) {
        const r = rnd();
        if (r < 0.6 || oldest === next) {
          // Mostly small entries, some of a chunk's size, a few larger than any chunk, and empty ones.
          const k = rnd();
          const size = k < 0.02 ? 0 : k < 0.9 ? Math.floor(rnd() * 300) : k < 0.98 ? Math.floor(rnd() * MAX_CHUNK) : MAX_CHUNK + Math.floor(rnd() * 1000);
          const e = entry(next, size);
          // As the store encodes in place (reserve, then fill), or copies an entry in (append).
          let view: Uint8Array;
          if (rnd() < 0.5) {
            view = t.reserve(size);
            view.set(e);
          } else {
            view = t.append(e);
          }
          assert.deepEqual(view, e);
          e.fill(0); // the store kept its own copy
          kept.set(next, entry(next, size));
          if (rnd() < 0.2) views.push({ offset: next, view });
          bytes += size;
          next++;
        } else {
          // Retention: remove the oldest one, or several at once.
          const n = r < 0.95 ? 1 : 1 + Math.floor(rnd() * 50);
          for (let i = 0; i < n && oldest < next; i++) {
            const size = t.dropFirst();
            assert.equal(size, kept.get(oldest)!.length);
            bytes -= size;
            kept.delete(oldest++);
          }
        }
        assert.equal(t.first, oldest);
        assert.equal(t.next, next);
        assert.equal(t.bytes, bytes);
        if (step % 97 === 0 || step === 2999) {
          assert.equal(t.get(oldest - 1), undefined);
          assert.equal(t.get(next), undefined);
          for (const [o, e] of kept) assert.deepEqual(t.get(o), e, `offset ${o}`);
          const all = t.range(first, next, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
          assert.deepEqual(all, [...kept.values()]);
        }
      }
      assert.ok(views.length > 100);
      for (const { offset, view } of views) assert.deepEqual(view, entry(offset, view.length), `view of ${offset}`);
      assert.equal(t.dropFirst() >= 0, true);
    });
  }

  it('reads a range bounded by limit and bytes, the first entry always', () => {
    const t = new TopicBytes(5);
    for (let o = 5; o < 15; o++) t.append(entry(o, 100));
    assert.equal(t.range(1, 100, 3, Number.POSITIVE_INFINITY).length, 3);
    assert.deepEqual(t.range(7, 100, 10, 250), [entry(7, 100), entry(8, 100)]);
    assert.deepEqual(t.range(7, 100, 10, 10), [entry(7, 100)]);
    assert.deepEqual(t.range(13, 11, 10, 1000), []);
    assert.deepEqual(t.range(13, 100, 10, 1000), [entry(13, 100), entry(14, 100)]);
  });

  it('sizes chunks to what the topic keeps: a topic of one small entry stays small', () => {
    const t = new TopicBytes(1);
    const seen = new Set<ArrayBufferLike>();
    for (let o = 1; o <= 1000; o++) {
      seen.add(t.append(entry(o, 50)).buffer);
      if (o > 1) t.dropFirst();
    }
    for (const b of seen) assert.ok(b.byteLength <= 256, `chunk of ${b.byteLength} bytes`);
    const big = new TopicBytes(1);
    const chunks = new Set<ArrayBufferLike>();
    for (let o = 1; o <= 10_000; o++) chunks.add(big.append(entry(o, 200)).buffer);
    // 2 MB kept: chunks grow to 64 KiB, so a few dozen of them, each filled to within one entry.
    assert.ok(chunks.size < 60, `${chunks.size} chunks`);
    let allocated = 0;
    for (const b of chunks) allocated += b.byteLength;
    assert.ok(allocated <= 2 * big.bytes + 128 * 1024, `${allocated} bytes allocated for ${big.bytes}`);
  });
});
