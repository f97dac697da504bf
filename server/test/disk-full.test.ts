/**
 * A full disk, for real: the gateway's data directory sits on a small tmpfs this test mounts (the
 * tests run as root), and a filler file takes the rest of it. Publishers with idempotency keys run
 * until the disk is full; the gateway must stay up, refuse with a retryable code, keep every
 * acknowledged message, resume by itself when space returns, and start read-only on a full disk.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import { decodeEntry, encodeEntry, encodeValue } from '@sluice/client/protocol';
import { DiskLog } from '../src/log/disk.js';
import { DEFAULT_RETENTION } from '../src/log/log.js';
import { RawClient } from './helpers/raw-client.js';
import { removeDir, spawnGateway, tempDir } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';

const TOPIC = 'full.orders';

const mounts: string[] = [];
after(() => {
  for (const m of mounts) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // already unmounted
    }
    removeDir(m);
  }
});

function mountTmpfs(size: string): string {
  const dir = tempDir('sluice-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** Fills the filesystem of `dir` with a file until `leave` bytes are free. */
function fill(dir: string, leave: number): string {
  const path = join(dir, 'filler');
  const s = statfsSync(dir);
  writeFileSync(path, Buffer.alloc(Math.max(0, s.bavail * s.bsize - leave)));
  return path;
}

const payload = (key: string) => ({ key, pad: 'x'.repeat(2000) });

describe('a full disk', () => {
  it('refuses publishes with a retryable code, stays up, resumes when space returns and starts read-only when full', async () => {
    const mnt = mountTmpfs('8m');
    const data = join(mnt, 'data');
    const gw = await spawnGateway(['--data', data]);
    const filler = fill(mnt, 1536 * 1024);

    const sub = await RawClient.connect(gw.url);
    await sub.subscribe(1, TOPIC, { from: 1, credit: 4096 });
    const pub = await RawClient.connect(gw.url);
    const acked = new Map<string, number>(); // key → offset
    const refused = new Map<string, string>(); // key → code
    let req = 0;
    let httpRefusal: { status: number; retryAfter: string | null; code: string } | undefined;

    // Publish keyed messages in rounds (WebSocket and HTTP) until both have been refused.
    for (let round = 0; round < 500 && (refused.size < 10 || !httpRefusal); round++) {
      const ws = Array.from({ length: 20 }, async () => {
        const key = `ws-${++req}`;
        try {
          acked.set(key, (await pub.publish(req, TOPIC, payload(key), key)).offset);
        } catch (err) {
          refused.set(key, /failed: (\S+)/.exec((err as Error).message)?.[1] ?? 'unknown');
        }
      });
      const http = Array.from({ length: 4 }, async () => {
        const key = `http-${++req}`;
        const r = await api(gw.url, `/v1/topics/${TOPIC}/messages`, { json: payload(key), headers: { 'idempotency-key': key } });
        if (r.status === 201) acked.set(key, r.body.offset);
        else {
          refused.set(key, r.body.error.code);
          httpRefusal ??= { status: r.status, retryAfter: r.headers.get('retry-after'), code: r.body.error.code };
        }
      });
      await Promise.all([...ws, ...http]);
    }
    assert.ok(acked.size > 100, `some publishes were stored before the disk filled (${acked.size})`);
    assert.ok(refused.size >= 10, 'the full disk refused publishes');
    assert.deepEqual([...new Set(refused.values())], ['insufficient-storage'], 'one stable, retryable code');
    assert.deepEqual(httpRefusal, { status: 507, retryAfter: '1', code: 'insufficient-storage' });

    // The gateway is up, says it is not ready, and shows the state.
    assert.equal(gw.proc.exitCode, null, 'the gateway process is alive');
    assert.equal((await api(gw.url, '/healthz')).status, 200);
    const ready = await api(gw.url, '/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.body.reason, /disk full/);
    assert.match((await api(gw.url, '/metrics')).text, /^sluice_store_writable 0$/m);

    // The subscriber received exactly what was acknowledged: offsets 1..n, no refused message.
    const n = acked.size;
    const got = await sub.waitDelivered(TOPIC, n);
    assert.deepEqual(got.map((d) => d.offset), Array.from({ length: n }, (_, i) => i + 1));
    assert.deepEqual(new Map(got.map((d) => [(d.data as { key: string }).key, d.offset])), acked);

    // Space returns: the store takes writes again by itself, and the retries continue the offsets.
    unlinkSync(filler);
    await waitFor(async () => (await api(gw.url, '/readyz')).status === 200, 'the store to be writable again');
    for (const key of refused.keys()) {
      const ack = await pub.publish(++req, TOPIC, payload(key), key);
      assert.equal(ack.duplicate, false, `${key} was never stored before`);
      acked.set(key, ack.offset);
    }
    const total = acked.size;
    const all = await sub.waitDelivered(TOPIC, total);
    assert.deepEqual(all.map((d) => d.offset), Array.from({ length: total }, (_, i) => i + 1), 'no hole in the offsets');
    assert.match((await api(gw.url, '/metrics')).text, /^sluice_store_writable 1$/m);
    sub.close();
    pub.close();
    await gw.kill('SIGKILL');

    // A restart on a still-full disk starts read-only, says so, and serves what is stored.
    fill(mnt, 256 * 1024);
    const again = await spawnGateway(['--data', data]);
    try {
      assert.match(again.stderr(), /read-only/);
      assert.equal((await api(again.url, '/readyz')).status, 503);
      const c = await RawClient.connect(again.url);
      await assert.rejects(c.publish(1, TOPIC, payload('late'), 'late'), /insufficient-storage/);
      const r = await api(again.url, `/v1/topics/${TOPIC}/messages`, { json: payload('late-http'), headers: { 'idempotency-key': 'late-http' } });
      assert.equal(r.status, 507);
      await c.subscribe(2, TOPIC, { from: 1, credit: 4096 });
      const stored = await c.waitDelivered(TOPIC, total);
      assert.deepEqual(new Map(stored.map((d) => [(d.data as { key: string }).key, d.offset])), acked, 'every acknowledged message survived');
      c.close();
    } finally {
      await again.kill('SIGKILL');
    }
  });

  // The gateway stops writing while --min-free (1 MiB) is still free, so the run above rarely sees a
  // commit fail. With no margin one does fail with ENOSPC (lmdb-js rejects it, its cause apart, and
  // a promise of its own unhandled): the process MUST stay up, refuse with insufficient-storage and
  // lose nothing.
  it('a commit that fails for lack of space (--min-free 0) is refused as insufficient-storage, and nothing acknowledged is lost', async () => {
    const mnt = mountTmpfs('4m');
    const gw = await spawnGateway(['--data', join(mnt, 'data'), '--min-free', '0']);
    try {
      const filler = fill(mnt, 256 * 1024);
      const pub = await RawClient.connect(gw.url);
      const acked = new Map<string, number>();
      let refusal: string | undefined;
      let req = 0;
      for (let round = 0; round < 200 && refusal === undefined; round++) {
        await Promise.all(Array.from({ length: 20 }, async () => {
          const key = `e-${++req}`;
          try {
            acked.set(key, (await pub.publish(req, TOPIC, payload(key), key)).offset);
          } catch (err) {
            refusal ??= (err as Error).message;
          }
        }));
      }
      assert.match(refusal ?? 'none', /insufficient-storage/, 'a commit failed on the full disk');
      assert.equal(gw.proc.exitCode, null, 'the gateway process is alive');
      assert.equal((await api(gw.url, '/readyz')).status, 503);

      unlinkSync(filler);
      await waitFor(async () => (await api(gw.url, '/readyz')).status === 200, 'the store to be writable again');
      const next = await pub.publish(++req, TOPIC, payload('after'), 'after');
      assert.equal(next.offset, acked.size + 1, 'the offsets go on with no hole');
      const sub = await RawClient.connect(gw.url);
      await sub.subscribe(1, TOPIC, { from: 1, credit: 4096 });
      const got = await sub.waitDelivered(TOPIC, acked.size + 1);
      acked.set('after', next.offset);
      assert.deepEqual(new Map(got.map((d) => [(d.data as { key: string }).key, d.offset])), acked, 'every acknowledged message, in order');
      sub.close();
      pub.close();
    } finally {
      await gw.kill('SIGKILL');
    }
  });

  // Store format 2 migrates a format 1 directory at open, which needs space: on a full disk the
  // gateway MUST still start (read-only, in format 1, saying so), serve what is stored, and
  // migrate once space returns, then take publishes with offsets continuing.
  it('a format 1 data directory on a full disk starts read-only and is migrated when space returns', async () => {
    const mnt = mountTmpfs('8m');
    const data = join(mnt, 'data');
    const topics = ['full.f1.a', 'full.f1.b'];
    const PER = 300;
    {
      const root = open({ path: join(data, 'sluice.mdb'), maxDbs: 12 });
      const msgs = root.openDB<Uint8Array, [string, number]>('msgs', { encoding: 'binary' });
      await root.transaction(() => {
        void root.openDB<string, string>('sys', {}).put('epoch', 'format-1-epoch');
        const ts = Date.now();
        for (const t of topics) for (let o = 1; o <= PER; o++) void msgs.put([t, o], encodeEntry(encodeValue(payload(`${t}#${o}`)), ts));
        void root.openDB<object, string>('meta', {}).put(topics[0]!, { head: PER, first: 1, count: PER, bytes: 0, lastTs: ts });
      });
      await root.close();
    }
    const filler = fill(mnt, 256 * 1024);
    const gw = await spawnGateway(['--data', data]);
    try {
      assert.match(gw.stderr(), /read-only in store format 1/);
      assert.equal((await api(gw.url, '/readyz')).status, 503);
      const c = await RawClient.connect(gw.url);
      await assert.rejects(c.publish(1, topics[0]!, payload('late'), 'late'), /insufficient-storage/);
      for (const [i, t] of topics.entries()) {
        const s = await c.subscribe(10 + i, t, { from: 1, credit: 4096 });
        assert.equal(s.head, PER, `${t}: head`);
        const got = await c.waitDelivered(t, PER);
        assert.deepEqual(got.map((d) => [d.offset, (d.data as { key: string }).key]), Array.from({ length: PER }, (_, k) => [k + 1, `${t}#${k + 1}`]));
      }

      // Space returns: migrated, then writable; offsets continue after format 1's.
      unlinkSync(filler);
      await waitFor(async () => (await api(gw.url, '/readyz')).status === 200, 'the store to be migrated and writable');
      assert.match(gw.stderr(), /migrated to store format 2/);
      const ack = await c.publish(2, topics[0]!, payload('after'), 'after');
      assert.deepEqual([ack.offset, ack.duplicate], [PER + 1, false]);
      const got = await c.waitDelivered(topics[0]!, PER + 1);
      assert.equal((got[PER]!.data as { key: string }).key, 'after');
      c.close();
    } finally {
      await gw.kill('SIGKILL');
    }
    // The next start finds format 2, and every message.
    const again = await spawnGateway(['--data', data]);
    try {
      assert.doesNotMatch(again.stderr(), /read-only|migrat/);
      const c = await RawClient.connect(again.url);
      const s = await c.subscribe(1, topics[1]!, { from: 1, credit: 4096 });
      assert.deepEqual([s.head, s.epoch], [PER, 'format-1-epoch']);
      assert.equal((await c.subscribe(2, topics[0]!, { from: PER + 1, credit: 10 })).head, PER + 1);
      assert.equal((await c.waitDelivered(topics[1]!, PER)).length, PER);
      c.close();
    } finally {
      await again.kill('SIGKILL');
    }
  });

  // The disk fills during the migration: the chunks moved so far stay moved, the store opens
  // read-only with each topic's offsets part in the log, part in format 1, and reads find them all.
  it('a format 1 migration the disk fills midway: read-only with every message readable, finished when space returns', async () => {
    const mnt = mountTmpfs('8m');
    const dir = join(mnt, 'data');
    // Messages of growing sizes: the first chunks are small, later ones need more than is free.
    const pads: Record<string, number> = { 'mid.a': 100, 'mid.b': 1500, 'mid.c': 6000 };
    const topics = Object.keys(pads);
    const PER = 300;
    const key = (t: string, o: number) => `${t}#${o}`;
    {
      const root = open({ path: join(dir, 'sluice.mdb'), maxDbs: 12 });
      const msgs = root.openDB<Uint8Array, [string, number]>('msgs', { encoding: 'binary' });
      await root.transaction(() => {
        void root.openDB<string, string>('sys', {}).put('epoch', 'format-1-epoch');
        for (const t of topics) for (let o = 1; o <= PER; o++) void msgs.put([t, o], encodeEntry(encodeValue({ key: key(t, o), pad: 'x'.repeat(pads[t]!) }), Date.now()));
      });
      await root.close();
    }
    // Room for some chunks of the migration (each writes its messages again), not for all of it;
    // a lower floor than the default, so the start tries it.
    const filler = fill(mnt, 500 * 1024);
    const options = { dir, minFreeBytes: 64 * 1024, migrateChunk: 70, dedupWindowMs: 60_000, retention: { ...DEFAULT_RETENTION } };
    const readAll = async (log: DiskLog, t: string) => {
      const info = await log.info(t);
      const r = await log.read(t, 1, { limit: 1000 });
      return { head: info.head, count: info.count, keys: r.entries.map((e) => (decodeEntry(e).data as { key: string }).key) };
    };
    const want = (t: string, n = PER) => ({ head: n, count: n, keys: Array.from({ length: n }, (_, i) => key(t, i + 1)) });
    const log = DiskLog.open(options);
    try {
      assert.equal(log.health().writable, false, 'read-only');
      assert.equal(log.health().code, 'insufficient-storage');
      const inner = log as unknown as { log: { getKeysCount(): number }; format1?: { getKeysCount(): number } };
      const moved = inner.log.getKeysCount();
      const left = inner.format1?.getKeysCount() ?? 0;
      // mid.a moved, mid.b in part (a chunk ends inside it), mid.c not.
      assert.ok(moved > PER && left > PER && moved + left === topics.length * PER, `a migration cut short inside mid.b: ${moved} moved, ${left} left`);
      for (const t of topics) assert.deepEqual(await readAll(log, t), want(t), t);
      await assert.rejects(log.append('mid.a', [{ data: encodeValue('x') }]), /out of disk space/);

      unlinkSync(filler);
      await waitFor(() => log.health().writable, 'migrated and writable again');
      assert.equal(inner.format1, undefined);
      const [r] = await log.append('mid.b', [{ data: encodeValue(payload(key('mid.b', PER + 1))) }]);
      assert.equal(r!.offset, PER + 1);
      for (const t of topics) assert.deepEqual(await readAll(log, t), want(t, t === 'mid.b' ? PER + 1 : PER), t);
    } finally {
      await log.close();
    }
    const again = DiskLog.open(options);
    try {
      assert.equal(again.health().writable, true);
      for (const t of topics) assert.deepEqual(await readAll(again, t), want(t, t === 'mid.b' ? PER + 1 : PER), t);
    } finally {
      await again.close();
    }
  });
});
