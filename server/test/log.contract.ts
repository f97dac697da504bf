/**
 * The TopicLog contract (see src/log/log.ts), as one suite every store must pass.
 * To add a store: call `topicLogContract(name, factory)` from a *.test.ts file. The factory
 * makes a fresh store; `reopen` (for durable stores) closes it and opens the same data again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeEntry, encodeValue } from '@sluice/client/protocol';
import { resolveStart } from '../src/core/start.js';
import type { AppendInput, StoreOptions, TopicInfo, TopicLog } from '../src/log/log.js';
import { DEFAULT_DEDUP_WINDOW_MS, DEFAULT_RETENTION } from '../src/log/log.js';
import type { HeldRecord } from '../src/log/held.js';

export interface StoreFactory {
  make(options: StoreOptions): Promise<TopicLog>;
  /** Closes `store` and opens the same data again (durable stores only). */
  reopen?(store: TopicLog, options: StoreOptions): Promise<TopicLog>;
}

const msg = (data: unknown, key?: string): AppendInput => (key === undefined ? { data: encodeValue(data) } : { data: encodeValue(data), key });
/** A keyed message with a fingerprint (one byte `n`, repeated: what a fingerprint is, the store does not care). */
const fp = (data: unknown, key: string, n: number): AppendInput => ({ data: encodeValue(data), key, fingerprint: new Uint8Array(16).fill(n) });
const opts = (edit: Partial<StoreOptions['retention']> = {}, dedupWindowMs = DEFAULT_DEDUP_WINDOW_MS): StoreOptions => ({
  retention: { ...DEFAULT_RETENTION, ...edit },
  dedupWindowMs,
});
const values = (entries: Uint8Array[]) => entries.map((e) => decodeEntry(e).data);
/** A position {from: 1, epoch} a reader was told is still honoured (the same epoch, or one in the history). */
const told = (info: TopicInfo, epoch: string) => resolveStart(info, { from: 1, epoch }).recovered;

export function topicLogContract(name: string, factory: StoreFactory): void {
  describe(`TopicLog contract: ${name}`, () => {
    it('assigns dense offsets from 1 per topic', async () => {
      const log = await factory.make(opts());
      const a = await log.append('t1', [msg('a'), msg('b')]);
      const b = await log.append('t1', [msg('c')]);
      const other = await log.append('t2', [msg('x')]);
      assert.deepEqual(a.map((r) => r.offset), [1, 2]);
      assert.deepEqual(b.map((r) => r.offset), [3]);
      assert.deepEqual(other.map((r) => r.offset), [1]);
      const info = await log.info('t1');
      assert.equal(info.head, 3);
      assert.equal(info.first, 1);
      assert.equal(info.count, 3);
      await log.close();
    });

    it('reads in order from an offset, bounded by limit and bytes', async () => {
      const log = await factory.make(opts());
      await log.append('r', Array.from({ length: 10 }, (_, i) => msg(i)));
      const r = await log.read('r', 4, { limit: 3 });
      assert.equal(r.start, 4);
      assert.deepEqual(values(r.entries), [3, 4, 5]);
      const small = await log.read('r', 1, { limit: 100, maxBytes: 1 });
      assert.equal(small.entries.length, 1, 'at least one message even over maxBytes');
      const past = await log.read('r', 11, { limit: 5 });
      assert.equal(past.entries.length, 0);
      assert.equal(past.head, 10);
      await log.close();
    });

    it('gives a never-written topic an epoch that it keeps when written', async () => {
      const log = await factory.make(opts());
      const before = await log.info('fresh');
      assert.equal(before.head, 0);
      assert.equal(before.first, 1);
      assert.ok(before.epoch.length > 0);
      await log.append('fresh', [msg(1)]);
      assert.ok(told(await log.info('fresh'), before.epoch), 'a reader told the unwritten epoch resumes from 1');
      await log.close();
    });

    it('stores a keyed message once, within and across calls', async () => {
      const log = await factory.make(opts());
      const [first] = await log.append('k', [msg('one', 'key-1')]);
      const [again] = await log.append('k', [msg('one again', 'key-1')]);
      assert.deepEqual([again!.offset, again!.duplicate], [first!.offset, true]);
      const inOne = await log.append('k', [msg('x', 'key-2'), msg('y', 'key-2'), msg('z')]);
      assert.deepEqual(inOne.map((r) => [r.offset, r.duplicate]), [[2, false], [2, true], [3, false]]);
      // The same key on another topic is another message.
      const [elsewhere] = await log.append('k2', [msg('one', 'key-1')]);
      assert.equal(elsewhere!.duplicate, false);
      assert.equal((await log.info('k')).head, 3);
      await log.close();
    });

    it('refuses a key stored with another message (fingerprint); the same fingerprint or none is a duplicate', async () => {
      const log = await factory.make(opts());
      const [first] = await log.append('f', [fp('one', 'key-1', 1)]);
      const [same] = await log.append('f', [fp('one', 'key-1', 1)]);
      assert.deepEqual([same!.offset, same!.duplicate, same!.keyReused], [first!.offset, true, undefined]);
      const [other] = await log.append('f', [fp('two', 'key-1', 2)]);
      assert.deepEqual([other!.offset, other!.duplicate, other!.keyReused], [first!.offset, true, true]);
      // A message with no fingerprint, or a key stored without one (an older gateway), matches.
      const [none] = await log.append('f', [msg('three', 'key-1')]);
      assert.deepEqual([none!.duplicate, none!.keyReused], [true, undefined]);
      await log.append('f', [msg('old', 'key-old')]);
      const [old] = await log.append('f', [fp('new', 'key-old', 3)]);
      assert.deepEqual([old!.duplicate, old!.keyReused], [true, undefined]);
      // Within one call, and while the original is still being committed.
      const inOne = await log.append('f', [fp('x', 'key-2', 4), fp('y', 'key-2', 5), fp('x', 'key-2', 4)]);
      assert.deepEqual(inOne.map((r) => [r.offset, r.duplicate, r.keyReused]), [[3, false, undefined], [3, true, true], [3, true, undefined]]);
      const [a, b] = await Promise.all([log.append('f', [fp(1, 'key-3', 6)]), log.append('f', [fp(2, 'key-3', 7)])]);
      assert.deepEqual([a![0]!.keyReused, b![0]!.keyReused, b![0]!.offset], [undefined, true, a![0]!.offset]);
      assert.equal((await log.info('f')).head, 4, 'nothing of a reused key was stored');
      assert.deepEqual(values((await log.read('f', 1, { limit: 10 })).entries), ['one', 'old', 'x', 1]);
      await log.close();
    });

    it('catches a duplicate whose original is still being committed', async () => {
      const log = await factory.make(opts());
      const [a, b] = await Promise.all([log.append('p', [msg(1, 'same')]), log.append('p', [msg(2, 'same')])]);
      assert.equal(a![0]!.offset, b![0]!.offset);
      assert.deepEqual([a![0]!.duplicate, b![0]!.duplicate], [false, true]);
      await log.close();
    });

    it('forgets keys after the dedup window', async () => {
      const log = await factory.make(opts({}, 1));
      await log.append('w', [msg(1, 'k')]);
      const until = Date.now() + 5;
      while (Date.now() < until) { /* let the 1 ms window pass */ }
      const [r] = await log.append('w', [msg(2, 'k')]);
      assert.equal(r!.duplicate, false);
      assert.equal(r!.offset, 2);
      await log.close();
    });

    it('notifies watchers once per batch, after durability, in order', async () => {
      const log = await factory.make(opts());
      const seen: [string, number, unknown[]][] = [];
      const stop = log.watch((topic, first, entries) => {
        seen.push([topic, first, entries.map((e) => decodeEntry(e).data)]);
      });
      const p1 = log.append('n', [msg('a'), msg('b')]);
      const p2 = log.append('n', [msg('c')]);
      const p3 = log.append('n', [msg('a-dup', undefined)]);
      await Promise.all([p1, p2, p3]);
      await log.append('n', [msg('d', 'kd')]);
      await log.append('n', [msg('d again', 'kd')]); // duplicates are not notified
      stop();
      await log.append('n', [msg('unseen')]);
      const flat = seen.flatMap(([, first, vals]) => vals.map((v, i) => [first + i, v]));
      assert.deepEqual(flat, [[1, 'a'], [2, 'b'], [3, 'c'], [4, 'a-dup'], [5, 'd']]);
      assert.ok(seen.length <= 3, `one batch per loop turn, got ${seen.length}`);
      await log.close();
    });

    it('a read made as soon as a batch is notified sees that batch', async () => {
      // What a paused subscriber's catch-up does on a commit notification. LMDB reuses a read
      // snapshot: one taken while the commit was in flight would miss the batch just notified.
      // A race, so the load is continuous: up to 1,000 appends in flight for about 2 s, and for at
      // least 40 notified batches (a store that sends a topic's batches one at a time makes them
      // large and few, and on a busy machine slow: Redis made 32 in 10 s under a load of 15), at
      // most 30 s.
      const log = await factory.make(opts());
      let short = 0;
      let reads = 0;
      let batches = 0;
      const checks: Promise<void>[] = [];
      const unwatch = log.watch((topic, first, entries) => {
        batches++;
        const check = async () => {
          const r = await log.read(topic, first, { limit: entries.length });
          reads++;
          if (r.entries.length !== entries.length) short++;
        };
        checks.push(check());
        queueMicrotask(() => checks.push(check()));
        setImmediate(() => checks.push(check()));
      });
      const data = 'x'.repeat(200);
      const start = Date.now();
      const loaded = () => (Date.now() - start >= 2000 && batches >= 40) || Date.now() - start >= 30_000;
      let inflight = 0;
      await new Promise<void>((resolve) => {
        const pump = () => {
          for (let i = 0; i < 128 && inflight < 1000; i++) {
            inflight++;
            void log.append('race', [msg(data)]).then(() => {
              inflight--;
              if (inflight === 0 && loaded()) resolve();
            });
          }
          if (!loaded()) setImmediate(pump);
        };
        pump();
      });
      unwatch();
      await new Promise((r) => setImmediate(r));
      // Checks queue more checks (a microtask, the next turn): wait until none was added.
      for (let n = -1; n !== checks.length;) {
        n = checks.length;
        await Promise.all(checks);
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(reads > 100, `reads ${reads}`);
      assert.equal(short, 0, `${short} of ${reads} reads missed entries already notified`);
      await log.close();
    });

    it('trims by count, keeps offsets, and reads from the first retained', async () => {
      const log = await factory.make(opts({ maxCount: 5 }));
      for (let i = 0; i < 4; i++) await log.append('c', Array.from({ length: 3 }, (_, j) => msg(i * 3 + j)));
      const info = await log.info('c');
      assert.equal(info.head, 12);
      assert.equal(info.first, 8);
      assert.equal(info.count, 5);
      const r = await log.read('c', 2, { limit: 100 });
      assert.equal(r.start, 8);
      assert.equal(r.first, 8);
      assert.deepEqual(values(r.entries), [7, 8, 9, 10, 11]);
      const [next] = await log.append('c', [msg('after')]);
      assert.equal(next!.offset, 13, 'offsets are never reused');
      await log.close();
    });

    it('trims by bytes', async () => {
      const log = await factory.make(opts({ maxBytes: 1000 }));
      for (let i = 0; i < 20; i++) await log.append('b', [msg('x'.repeat(200))]);
      const info = await log.info('b');
      assert.ok(info.bytes <= 1000, `bytes ${info.bytes}`);
      assert.equal(info.first, 20 - info.count + 1);
      await log.close();
    });

    it('trims by age on sweep', async () => {
      const log = await factory.make(opts({ maxAgeMs: 60_000 }));
      await log.append('age', [msg(1), msg(2)]);
      await (log as unknown as { sweep(now: number): void | Promise<void> }).sweep(Date.now() + 61_000);
      const info = await log.info('age');
      assert.equal(info.first, 3);
      assert.equal(info.count, 0);
      assert.equal((await log.read('age', 1, { limit: 10 })).entries.length, 0);
      await log.close();
    });

    it('reading topics that were never written keeps nothing in memory', async () => {
      const log = await factory.make(opts());
      await log.append('kept', [msg(1)]);
      // Stores that cache topic state say how many (a store that caches nothing has no count).
      const cached = (log as unknown as { cachedTopics?: number }).cachedTopics;
      for (let i = 0; i < 5000; i++) {
        const info = await log.info(`random.${i}`);
        assert.equal(info.head, 0);
        await log.read(`random.${i}`, 1, { limit: 10 });
      }
      assert.equal((log as unknown as { cachedTopics?: number }).cachedTopics, cached);
      assert.deepEqual((await log.topics()).filter((t) => t.topic.startsWith('random.')), [], 'nothing was written for them');
      // Writing one later still works, with the epoch a reader was told.
      const epoch = (await log.info('random.7')).epoch;
      await log.append('random.7', [msg('now')]);
      assert.ok(told(await log.info('random.7'), epoch));
      await log.close();
    });

    it('lists topics with their heads, and counts them without listing', async () => {
      const o = opts();
      const log = await factory.make(o);
      const before = await log.topicCount();
      assert.equal(before, (await log.topics()).length);
      await log.info('l.never'); // read, never written: not a topic
      await log.append('l.a', [msg(1)]);
      await log.append('l.b', [msg(1), msg(2)]);
      await log.append('l.a', [msg(3)]);
      const list = (await log.topics()).filter((t) => t.topic.startsWith('l.'));
      assert.deepEqual(list.map((t) => [t.topic, t.head]).sort(), [['l.a', 2], ['l.b', 2]]);
      assert.equal(await log.topicCount(), before + 2);
      assert.equal(await log.topicCount(), (await log.topics()).length);
      if (factory.reopen) {
        const again = await factory.reopen(log, o);
        assert.equal(await again.topicCount(), (await again.topics()).length, 'after a reopen too');
        assert.ok((await again.topicCount()) >= 2);
        await again.close();
      } else await log.close();
    });

    if (factory.reopen) {
      const reopen = factory.reopen;
      it('keeps messages, offsets, epoch and keys across a reopen', async () => {
        const o = opts();
        const log = await factory.make(o);
        await log.append('d', [fp('a', 'ka', 1), msg('b'), msg('old', 'k-old')]);
        const epoch = (await log.info('d')).epoch;
        const again = await reopen(log, o);
        const info = await again.info('d');
        assert.equal(info.head, 3);
        assert.equal(info.epoch, epoch);
        const [dup] = await again.append('d', [fp('a', 'ka', 1)]);
        assert.deepEqual([dup!.offset, dup!.duplicate, dup!.keyReused], [1, true, undefined]);
        const [reused] = await again.append('d', [fp('z', 'ka', 2)]);
        assert.deepEqual([reused!.offset, reused!.keyReused], [1, true], 'the fingerprint survives a reopen');
        const [unprinted] = await again.append('d', [fp('z', 'k-old', 2)]);
        assert.deepEqual([unprinted!.offset, unprinted!.keyReused], [3, undefined], 'a key stored without a fingerprint matches');
        const [next] = await again.append('d', [msg('c')]);
        assert.equal(next!.offset, 4);
        assert.deepEqual(values((await again.read('d', 1, { limit: 10 })).entries), ['a', 'b', 'old', 'c']);
        await again.close();
      });
    }

    it('holds held messages: key dedup, CAS updates, exclusive claims by due time, listing, counts by state, removal', async () => {
      const log = await factory.make(opts());
      const tag = Math.random().toString(36).slice(2, 8);
      const t = `held-${tag}`;
      const now = Date.now();
      const rec = (id: string, at: number, kind: HeldRecord['kind'] = 'scheduled'): HeldRecord => ({
        id: `${tag}-${id}`, topic: t, kind, state: kind, at, next: at, attempts: 0, message: { data: encodeValue(id) },
      });
      // The gauge's counts, by state (a store shared with other tests: compared with what it held before).
      const counted = async () => { await log.held.refreshCounts?.(); return { ...log.held.counts() }; };
      const base = await counted();
      const fingerprint = new Uint8Array([1, 2, 3, 4]);
      const a = await log.held.hold({ ...rec('a', now - 10), key: 'k1', fingerprint });
      assert.equal(a.duplicate, false);
      const dup = await log.held.hold({ ...rec('a2', now - 5), key: 'k1' });
      assert.deepEqual([dup.duplicate, dup.record.id], [true, `${tag}-a`]);
      // The first hold's fingerprint comes back with it (the caller compares; held.ts).
      assert.deepEqual(dup.record.fingerprint && [...dup.record.fingerprint], [1, 2, 3, 4]);
      await log.held.hold(rec('b', now + 60_000));
      await log.held.hold(rec('p', now, 'prepared'));
      const page = await log.held.list(t, { kind: 'scheduled', limit: 10 });
      assert.deepEqual([page.count, page.nextDue, page.items.map((r) => r.id)], [2, now - 10, [`${tag}-a`, `${tag}-b`]]);
      // Due ones, lowest next first; a scheduled one becomes appending; a second claim gets none of them.
      const claimed = (await log.held.claim(now, 100, 5000)).filter((r) => r.topic === t);
      assert.deepEqual(claimed.map((r) => [r.id, r.state]), [[`${tag}-a`, 'appending'], [`${tag}-p`, 'prepared']]);
      assert.equal((await log.held.claim(now, 100, 5000)).filter((r) => r.topic === t).length, 0);
      assert.equal((await log.held.get(`${tag}-a`))!.state, 'appending');
      // CAS: cancel refused after the claim; appended accepted from appending.
      const cancel = await log.held.update({ ...claimed[0]!, state: 'cancelled' }, ['scheduled']);
      assert.deepEqual([cancel.ok, cancel.record!.state], [false, 'appending']);
      const done = await log.held.update({ ...claimed[0]!, state: 'appended', offset: 7, next: now + 1000 }, ['appending']);
      assert.equal(done.ok, true);
      assert.equal((await log.held.list(t, { kind: 'scheduled', limit: 10 })).count, 1, 'a final record leaves the listing');
      const counts = await counted();
      const delta = Object.fromEntries([...new Set([...Object.keys(base), ...Object.keys(counts)])]
        .map((k) => [k, (counts[k] ?? 0) - (base[k] ?? 0)] as const).filter(([, n]) => n !== 0));
      assert.deepEqual(delta, { appended: 1, scheduled: 1, prepared: 1 }, 'counts by state: a appended (a tombstone), b scheduled, p prepared');
      const missing = await log.held.update(rec('nope', now), ['scheduled']);
      assert.deepEqual([missing.ok, missing.record], [false, undefined]);
      let again = log;
      if (factory.reopen) again = await factory.reopen(log, opts());
      const kept = await again.held.get(`${tag}-a`);
      assert.deepEqual([kept?.state, kept?.offset], ['appended', 7]);
      assert.equal((await again.held.get(`${tag}-b`))?.state, 'scheduled');
      await again.held.remove(`${tag}-a`);
      assert.equal(await again.held.get(`${tag}-a`), undefined);
      const fresh = await again.held.hold({ ...rec('c', now + 1), key: 'k1' });
      assert.equal(fresh.duplicate, false, 'a removed record frees its key');
      await again.close();
    });
  });
}
