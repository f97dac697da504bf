/**
 * `sluice backup`. A running gateway copies its own disk store (`--url`, POST /v1/admin/backup):
 * the copies are consistent while publishes go on (offsets dense, contents as acknowledged), and
 * no publish is refused meanwhile — the copy used to be taken by a second process opening the LMDB
 * file, which could make the gateway's next commit fail (503 `unavailable`; log/backup.ts says why).
 * A gateway starts on a copy with every message up to the copy's point, under a new epoch (a
 * resume with the old epoch is told it was not recovered), with its idempotency keys. `--data`
 * copies a stopped gateway's directory and refuses a live one; bad arguments exit with code 2.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { storeHolders } from '../src/log/backup.js';
import type { GatewayProcess } from '../src/testing.js';
import { CLI, removeDir, spawnGateway, tempDir } from './helpers/gateway.js';
import { api } from './helpers/http.js';

let dir: string;
const running: GatewayProcess[] = [];
before(() => { dir = tempDir('sluice-backup-'); });
after(async () => {
  for (const g of running) await g.kill('SIGKILL');
  removeDir(dir);
});

/** `sluice backup` as a child process, without blocking the event loop (the test publishes meanwhile). */
function backup(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return sluice(['backup', ...args]);
}

/** Runs the CLI to its end (killed after 30 s). */
function sluice(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
  });
}

interface Pulled { epoch: string; head: number; next: number; messages: { offset: number; data: unknown }[] }

async function pull(url: string, topic: string, query = ''): Promise<Pulled> {
  const r = await api(url, `/v1/topics/${topic}/messages?limit=1000${query}`);
  assert.equal(r.status, 200, r.text);
  return r.body;
}

/**
 * Every message of a topic, page by page (a pull answers at most 1,000: the publishes during the
 * copy may reach 2,050, and one page would look like a copy, or a read, that stopped short).
 */
async function pullAll(url: string, topic: string): Promise<Pulled> {
  const all = await pull(url, topic);
  for (let pages = 1; all.next <= all.head; pages++) {
    assert.ok(pages < 10, `paging ends (at ${all.next} of ${all.head})`);
    const more = await pull(url, topic, `&from=${all.next}&epoch=${all.epoch}`);
    assert.equal(more.epoch, all.epoch);
    assert.ok(more.messages.length > 0, `a page from ${all.next} of ${more.head}`);
    all.messages.push(...more.messages);
    all.next = more.next;
  }
  return all;
}

/** Publishes `{i}` with key `k<i>` to bk.t; every answer must be a 201 (nothing refused, no retry). */
async function publish(url: string, i: number, gw: GatewayProcess): Promise<void> {
  const res = await api(url, '/v1/topics/bk.t/messages', { json: { i }, headers: { 'idempotency-key': `k${i}` } });
  assert.equal(res.status, 201, `publish ${i}: ${res.status} ${res.text}\ngateway log:\n${gw.stderr()}`);
  assert.equal(res.body.offset, i, `publish ${i} is at offset ${i}`);
}

/**
 * Backups taken under load: the first two by `sluice backup --url`, the rest by POST
 * /v1/admin/backup directly (the same route; a CLI start costs ~0.5 s, a copy here ~20 ms). The
 * old failure was rarer than this can show (1 MDB_PROBLEM in 100 backups with 32 publishers in
 * flight: bench/src/repro/backup-race.ts); here every publish during BACKUPS copies must be a 201.
 */
const BACKUPS = 40;

describe('sluice backup', () => {
  it('a running gateway copies its store consistently, refusing no publish meanwhile; a gateway on a copy has every message to that point, under a new epoch', async (t) => {
    const data = join(dir, 'data');
    const backups = join(dir, 'backups');
    const gw = await spawnGateway(['--data', data, '--backup-dir', backups]);
    running.push(gw);
    for (let i = 1; i <= 50; i++) await publish(gw.url, i, gw);
    const original = await pull(gw.url, 'bk.t');

    // Load: one publisher in order on bk.t (publish i acknowledged at offset i, so a copy must hold a
    // prefix), and four more on another topic, all the while BACKUPS backups are taken one after the
    // other. Bounded: the publishers stop when the backups end.
    let copying = true;
    let i = 50;
    const ordered = (async () => {
      while (copying && i < 20_000) await publish(gw.url, ++i, gw);
    })();
    let other = 0;
    const load = Array.from({ length: 4 }, async () => {
      while (copying && other < 100_000) {
        const n = ++other;
        const res = await api(gw.url, '/v1/topics/bk.load/messages', { json: { n }, headers: { 'idempotency-key': `l${n}` } });
        assert.equal(res.status, 201, `publish to bk.load: ${res.status} ${res.text}\ngateway log:\n${gw.stderr()}`);
      }
    });
    const lines: { dir: string; epoch: string }[] = [];
    try {
      for (let b = 0; b < BACKUPS; b++) {
        if (b < 2) {
          const r = await backup(['--url', gw.url, ...(b === 1 ? ['--compact'] : [])]);
          assert.equal(r.code, 0, r.err);
          const m = new RegExp(`backed up its store to (\\S+) \\(on its host\\): (1|2) topic\\(s\\), \\d+ bytes, in \\d+ ms; new epoch (\\S+) \\(was ${original.epoch}\\)`).exec(r.out);
          assert.ok(m, r.out);
          lines.push({ dir: m[1]!, epoch: m[3]! });
        } else {
          const r = await api(gw.url, '/v1/admin/backup', { method: 'POST', json: b % 2 ? { compact: true } : {} });
          assert.equal(r.status, 201, r.text);
          assert.equal(r.body.from, original.epoch);
          lines.push({ dir: r.body.dir, epoch: r.body.epoch });
        }
      }
    } finally {
      copying = false;
      await Promise.all([ordered, ...load]);
    }
    // Each backup is a new directory under --backup-dir, with its own new epoch.
    assert.deepEqual(new Set(lines.map((l) => dirname(l.dir))), new Set([backups]));
    assert.equal(new Set(lines.map((l) => l.dir)).size, BACKUPS);
    assert.equal(new Set(lines.map((l) => l.epoch)).size, BACKUPS);
    assert.ok(!lines.some((l) => l.epoch === original.epoch));
    assert.ok(i > 50 && other > 0, `publishes went on during the backups (${i - 50} in order, ${other} more)`);
    t.diagnostic(`${BACKUPS} backups; meanwhile ${i - 50} publishes in order and ${other} more, every one a 201`);
    assert.doesNotMatch(gw.stderr(), /MDB_|store cannot write/, 'the gateway logged no store failure');
    await gw.kill('SIGKILL');

    // The last copy, restored.
    const last = lines.at(-1)!;
    const restored = await spawnGateway(['--data', last.dir]);
    running.push(restored);
    const copy = await pullAll(restored.url, 'bk.t');
    assert.equal(copy.epoch, last.epoch, 'the copy runs under the epoch the backup printed');
    assert.ok(copy.head >= 50 && copy.head <= i, `head ${copy.head} is between 50 and the last acknowledged, ${i}`);
    assert.deepEqual(copy.messages.map((m) => m.offset), Array.from({ length: copy.head }, (_, k) => k + 1), 'offsets dense from 1');
    assert.deepEqual(copy.messages.map((m) => m.data), Array.from({ length: copy.head }, (_, k) => ({ i: k + 1 })), 'contents as acknowledged');
    assert.notEqual(copy.epoch, original.epoch, 'a restored store is a new epoch');

    // A client resuming with the old epoch is not silently given reused offsets: it starts after the head.
    const resumed = await pull(restored.url, 'bk.t', `&from=10&epoch=${original.epoch}`);
    assert.deepEqual([resumed.epoch, resumed.messages.length], [copy.epoch, 0]);
    // Idempotency keys came along: a retry of an acknowledged publish is a duplicate, same offset.
    const retry = await api(restored.url, '/v1/topics/bk.t/messages', { json: { i: 7 }, headers: { 'idempotency-key': 'k7' } });
    assert.deepEqual([retry.status, retry.body.offset, retry.body.duplicate, retry.body.epoch], [200, 7, true, copy.epoch]);
    const next = await api(restored.url, '/v1/topics/bk.t/messages', { json: 'after restore' });
    assert.deepEqual([next.status, next.body.offset], [201, copy.head + 1]);
    await restored.kill('SIGKILL');

    // --data copies the directory of a stopped gateway (here: killed): every acknowledged message.
    const out = join(dir, 'offline');
    const r = await backup(['--data', data, '--out', out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`backed up .* 2 topic\\(s\\), \\d+ bytes, in \\d+ ms; new epoch (\\S+) \\(was ${original.epoch}\\)`));
    const offline = await spawnGateway(['--data', out]);
    running.push(offline);
    const all = await pullAll(offline.url, 'bk.t');
    assert.deepEqual([all.head, all.messages.length, all.messages.at(-1)?.data], [i, i, { i }], 'every acknowledged publish');
    assert.notEqual(all.epoch, original.epoch);
  });

  it('--data, and a second gateway, refuse a store a running gateway has open, which goes on unharmed', async () => {
    const data = join(dir, 'live');
    const gw = await spawnGateway(['--data', data]);
    running.push(gw);
    await publish(gw.url, 1, gw);
    const r = await backup(['--data', data, '--out', join(dir, 'never')]);
    assert.equal(r.code, 2, r.out);
    assert.match(r.err, new RegExp(`a running process \\(pid ${gw.proc.pid}\\) has the store in ${data} open.*sluice backup --url`));
    assert.equal(existsSync(join(dir, 'never')), false, 'no directory made');
    assert.deepEqual(storeHolders(data), [gw.proc.pid], 'the holder, from /proc/locks');
    assert.equal(storeHolders(data, join(dir, 'no-such-locks-table')), undefined, 'unknown without a lock table');
    // Nor does a second gateway start on it: two writers would overwrite each other's offsets.
    const second = await sluice(['serve', '--data', data, '--port', '0', '--quiet']);
    assert.equal(second.code, 2, second.out + second.err);
    assert.match(second.err, new RegExp(`another process \\(pid ${gw.proc.pid}\\) has the store in ${data} open; stop it first`));
    await publish(gw.url, 2, gw);
    // The gateway takes no backups without --backup-dir: --url says so.
    const u = await backup(['--url', gw.url]);
    assert.equal(u.code, 2, u.out);
    assert.match(u.err, /did not back up \(404 not-found: this gateway takes no backups: start it with --backup-dir/);
    await gw.kill('SIGTERM');
  });

  it('refuses a non-empty target, a directory without a store, a missing --out or --url, and --url with --out (exit 2)', async () => {
    const full = join(dir, 'full');
    mkdirSync(full, { recursive: true });
    writeFileSync(join(full, 'x'), 'x');
    const [a, b, c, d, e] = await Promise.all([
      backup(['--data', join(dir, 'data'), '--out', full]),
      backup(['--data', join(dir, 'nothing-here'), '--out', join(dir, 'b2')]),
      backup(['--data', join(dir, 'data')]),
      backup(['--url', 'http://127.0.0.1:1', '--out', join(dir, 'd2')]),
      backup(['--url', 'http://127.0.0.1:1']),
    ]);
    assert.deepEqual([a.code, /is not empty/.test(a.err)], [2, true], a.err);
    assert.deepEqual([b.code, /no disk store in/.test(b.err)], [2, true], b.err);
    assert.deepEqual([c.code, /needs --url <running gateway>, or --out/.test(c.err)], [2, true], c.err);
    assert.deepEqual([d.code, /takes no --data or --out/.test(d.err)], [2, true], d.err);
    assert.deepEqual([e.code, /cannot reach http:\/\/127\.0\.0\.1:1/.test(e.err)], [2, true], e.err);
    // Only the disk store is backed up by the gateway.
    assert.throws(() => loadConfig(['--store', 'memory', '--backup-dir', join(dir, 'x')], {}), /--backup-dir \(SLUICE_BACKUP_DIR\) backs up the disk store; the memory store has none/);
  });
});
