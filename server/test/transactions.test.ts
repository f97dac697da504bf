/**
 * Half (transactional) messages (protocol 1.4), the way users use them: prepare, then commit or
 * abort, over the SDK and HTTP; the check-back to a real HTTP server that verifies the signature;
 * unknown answers retried until the default (abort) applies; and an order service on the real
 * PostgreSQL of this machine that SIGKILLs itself at random points over 1,000 orders.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import WebSocket from 'ws';
import { createClient, createPublisher, type Client, type SluiceError } from '@sluice/client';
import type { RunningServer } from '../src/server.js';
import { removeDir, startGateway, tempDir } from './helpers/gateway.js';
import { freePort, spawnGateway as spawnProcess } from '../src/testing.js';
import { api, waitFor } from './helpers/http.js';

const SECRET = 'check-secret';
const RUN = `${process.pid}_${Date.now().toString(36)}`;

/** The producer's check-back endpoint: verifies the signature, then answers with `decide`. */
interface CheckBack {
  url: string;
  server: Server;
  calls: { body: any; valid: boolean }[];
  decide: (body: any) => Promise<string> | string;
}

async function checkBackServer(decide: CheckBack['decide']): Promise<CheckBack> {
  const cb = { calls: [], decide } as unknown as CheckBack;
  cb.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const text = Buffer.concat(chunks).toString();
        const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers['sluice-signature']));
        const valid = !!m && createHmac('sha256', SECRET).update(`${m[1]}.${text}`).digest('hex') === m[2];
        const body = JSON.parse(text);
        cb.calls.push({ body, valid });
        if (!valid) {
          res.writeHead(401).end();
          return;
        }
        const action = await cb.decide(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ action }));
      })();
    });
  });
  await new Promise<void>((r) => cb.server.listen(0, '127.0.0.1', r));
  const addr = cb.server.address() as { port: number };
  cb.url = `http://127.0.0.1:${addr.port}/check`;
  return cb;
}

async function history(url: string, topic: string): Promise<{ offset: number; data: any }[]> {
  const out: { offset: number; data: any }[] = [];
  for (let from = 1; ;) {
    const r = await api(url, `/v1/topics/${encodeURIComponent(topic)}/messages?from=${from}&limit=1000`);
    out.push(...r.body.messages);
    if (r.body.messages.length === 0) return out;
    from = r.body.next;
  }
}

const clients: Client[] = [];
function client(url: string): Client {
  const c = createClient({ url, WebSocket: WebSocket as never, backoff: () => 20 });
  clients.push(c);
  return c;
}

describe('half messages: prepare, commit, abort', () => {
  let gw: RunningServer;
  let cb: CheckBack;
  let answer = 'unknown';
  before(async () => {
    cb = await checkBackServer(() => answer);
    gw = await startGateway((c) => {
      c.held.checkAfterMs = 300;
      c.held.checkBackoffMs = 50;
      c.held.maxChecks = 3;
      c.held.checkSecret = SECRET;
      c.held.checkUrl = cb.url;
      c.held.checkAllow = [`${cb.url}?`];
    });
  });
  after(async () => {
    for (const c of clients.splice(0)) c.close();
    await gw.close();
    cb.server.close();
  });

  it('a prepared message is invisible to subscribers and groups until commit; commit and abort are idempotent', async () => {
    const c = client(gw.url);
    const seen: number[] = [];
    const leased: number[] = [];
    c.subscribe('tx.a', (m) => { seen.push(m.offset); });
    client(gw.url).consume('tx.a', 'workers', (m) => { leased.push(m.offset); });
    const tx = await c.prepare('tx.a', { n: 1 }, { key: 'p1' });
    const again = await c.prepare('tx.a', { n: 1 }, { key: 'p1' });
    assert.equal(again.id, tx.id, 'the same key: the same transaction');
    const plain = await c.publish('tx.a', { n: 0 });
    assert.equal(plain.offset, 1, 'the prepared message holds no offset');
    await waitFor(() => seen.length === 1 && leased.length === 1, 'the plain message delivered', 5000);
    const r = await tx.commit();
    assert.deepEqual(r, { offset: 2, duplicate: false });
    assert.deepEqual(await tx.commit(), { offset: 2, duplicate: true });
    await waitFor(() => seen.length === 2 && leased.length === 2, 'the committed one delivered', 5000);
    await assert.rejects(tx.abort(), (e: SluiceError) => e.code === 'already-appended');

    const dropped = await c.prepare('tx.a', { n: 2 });
    await dropped.abort();
    await dropped.abort();
    await assert.rejects(dropped.commit(), (e: SluiceError) => e.code === 'transaction-aborted');
    await assert.rejects(c.transaction('nope').commit(), (e: SluiceError) => e.code === 'unknown-transaction');
    assert.equal((await gw.store.info('tx.a')).head, 2);
  });

  it('HTTP: prepare, commit, abort; codes for unknown and aborted; a check URL outside the allow-list', async () => {
    const pub = createPublisher({ url: gw.url });
    const tx = await pub.prepare('tx.http', { n: 1 });
    const r = await tx.commit();
    assert.equal(r.offset, 1);
    const again = await api(gw.url, `/v1/topics/tx.http/transactions/${tx.id}/commit`, { method: 'POST' });
    assert.deepEqual([again.status, again.body.offset, again.body.duplicate], [200, 1, true]);
    const ab = await pub.prepare('tx.http', 2);
    await ab.abort();
    const late = await api(gw.url, `/v1/topics/tx.http/transactions/${ab.id}/commit`, { method: 'POST' });
    assert.deepEqual([late.status, late.body.error.code], [409, 'transaction-aborted']);
    const unknown = await api(gw.url, '/v1/topics/tx.http/transactions/zzz/abort', { method: 'POST' });
    assert.deepEqual([unknown.status, unknown.body.error.code], [404, 'unknown-transaction']);
    const wrongTopic = await api(gw.url, `/v1/topics/tx.other/transactions/${tx.id}/commit`, { method: 'POST' });
    assert.equal(wrongTopic.body.error.code, 'unknown-transaction');
    const bad = await api(gw.url, '/v1/topics/tx.http/transactions', { raw: '1', headers: { 'content-type': 'application/json', 'sluice-check-url': 'http://evil.example/' } });
    assert.deepEqual([bad.status, bad.body.error.code], [403, 'check-url-not-allowed']);
    const c = client(gw.url);
    await assert.rejects(c.prepare('tx.http', 1, { checkUrl: 'http://127.0.0.1:1/x' }), (e: SluiceError) => e.code === 'check-url-not-allowed');
    assert.equal((await gw.store.info('tx.http')).head, 1);
  });

  it('check-back: signed; commit appends it, with a check-back trace event; unknown is retried, then the default aborts (counted)', async () => {
    const c = client(gw.url);
    answer = 'commit';
    const tx = await c.prepare('tx.check', { n: 1 }, { key: 'order-1', headers: { shop: 'a' }, trace: true });
    await waitFor(async () => (await gw.store.info('tx.check')).head === 1, 'committed by check-back', 5000);
    const call = cb.calls.find((x) => x.body.id === tx.id)!;
    assert.ok(call.valid, 'signature verified');
    assert.deepEqual([call.body.topic, call.body.key, call.body.headers, call.body.attempt], ['tx.check', 'order-1', { shop: 'a' }, 1]);
    assert.deepEqual(await tx.commit(), { offset: 1, duplicate: true });
    const trace = await api(gw.url, '/v1/admin/topics/tx.check/messages/1/trace');
    assert.ok(trace.body.events.some((e: { kind: string }) => e.kind === 'check-back'), JSON.stringify(trace.body.events));

    answer = 'unknown';
    const before = cb.calls.length;
    // Counted from here: on a busy machine an earlier case's prepared message can outlive the
    // 300 ms check-after before its commit and be asked too (answered unknown).
    const checkbacks = async (outcome: string) => {
      const m = new RegExp(`sluice_tx_checkbacks_total\\{outcome="${outcome}"\\} (\\d+)`).exec((await api(gw.url, '/metrics')).text);
      return m ? Number(m[1]) : 0;
    };
    const [unknownBefore, abortsBefore] = [await checkbacks('unknown'), await checkbacks('default-abort')];
    const left = await c.prepare('tx.check', { n: 2 }, { checkUrl: `${cb.url}?shop=b` });
    await waitFor(async () => {
      const rec = await gw.held.get(left.id);
      return rec?.state === 'aborted';
    }, 'the default applied', 5000);
    const asked = cb.calls.slice(before).filter((x) => x.body.id === left.id);
    assert.deepEqual(asked.map((x) => x.body.attempt), [1, 2, 3], 'asked 3 times (--tx-check-attempts), then the default');
    await assert.rejects(left.commit(), (e: SluiceError) => e.code === 'transaction-aborted');
    assert.equal(await checkbacks('default-abort') - abortsBefore, 1, 'the default counted once');
    assert.equal(await checkbacks('unknown') - unknownBefore, 3, 'each unknown answer counted');
    assert.equal((await gw.store.info('tx.check')).head, 1);
  });
});

describe('half messages: listing the prepared ones of a topic', () => {
  let gw: RunningServer;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw.close();
  });

  it('GET …/transactions pages through the unresolved ones by prepare time; commit and abort take them off', async () => {
    const pub = createPublisher({ url: gw.url });
    const txs: Awaited<ReturnType<typeof pub.prepare>>[] = [];
    for (let i = 0; i < 3; i++) txs.push(await pub.prepare('tx.list', { n: i }, i === 0 ? { key: 'order-0' } : {}));
    await pub.prepare('tx.list.other', 'not this topic');
    const first = await api(gw.url, '/v1/topics/tx.list/transactions?limit=2');
    assert.equal(first.status, 200);
    assert.equal(first.body.count, 3);
    assert.equal(first.body.nextDue, undefined);
    assert.equal(first.body.items.length, 2);
    const rest = await api(gw.url, `/v1/topics/tx.list/transactions?limit=2&after=${encodeURIComponent(first.body.cursor)}`);
    assert.deepEqual([rest.body.count, rest.body.items.length, rest.body.cursor], [3, 1, undefined]);
    // Every one exactly once across the pages, by prepare time then id (several may share a millisecond).
    const listed: { id: string; preparedAt: number; state: string; checks: number; nextCheck: number; key?: string }[] = [...first.body.items, ...rest.body.items];
    assert.deepEqual(listed.map((t) => t.id).sort(), txs.map((t) => t.id).sort());
    const order = [...listed].sort((a, b) => a.preparedAt - b.preparedAt || (a.id < b.id ? -1 : 1));
    assert.deepEqual(listed.map((t) => t.id), order.map((t) => t.id));
    const item = listed.find((t) => t.id === txs[0]!.id)!;
    assert.deepEqual(Object.keys(item).sort(), ['checks', 'id', 'key', 'nextCheck', 'preparedAt', 'state']);
    assert.deepEqual([item.state, item.checks, item.key, item.nextCheck - item.preparedAt], ['prepared', 0, 'order-0', 60_000]);
    assert.ok(Math.abs(item.preparedAt - Date.now()) < 10_000, 'preparedAt is when it was prepared');

    await txs[0]!.commit();
    await txs[2]!.abort();
    const left = await api(gw.url, '/v1/topics/tx.list/transactions');
    assert.deepEqual([left.body.count, left.body.items.map((t: { id: string }) => t.id)], [1, [txs[1]!.id]]);
    assert.equal((await api(gw.url, '/v1/topics/tx.list/transactions?limit=0')).status, 400);
    const wrong = await api(gw.url, '/v1/topics/tx.list/transactions', { method: 'PUT', json: 1 });
    assert.deepEqual([wrong.status, wrong.body.error.code, wrong.headers.get('allow')], [405, 'method-not-allowed', 'GET, POST, OPTIONS']);
  });
});

describe('half messages with PostgreSQL: an order service killed at random points', () => {
  const table = `orders_${RUN}`;
  const topic = `orders.${RUN}`;
  let db: pg.Pool;
  let gw: RunningServer;
  let cb: CheckBack;
  before(async () => {
    db = new pg.Pool({ host: '127.0.0.1', port: 5432, database: 'test', user: 'postgres', max: 8 });
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, state text NOT NULL)`);
    // The check-back settles an order: placed stays placed; anything else is voided first, so a
    // database transaction still running can no longer place it (the same primary key).
    cb = await checkBackServer(async (body: { key: string }) => {
      const id = Number(body.key.slice('order-'.length));
      await db.query(`INSERT INTO ${table} (id, state) VALUES ($1, 'void') ON CONFLICT (id) DO NOTHING`, [id]);
      const r = await db.query(`SELECT state FROM ${table} WHERE id = $1`, [id]);
      return r.rows[0]?.state === 'placed' ? 'commit' : 'abort';
    });
    gw = await startGateway((c) => {
      c.port = 0;
      c.held.checkAfterMs = 1000;
      c.held.checkBackoffMs = 100;
      c.held.checkSecret = SECRET;
      c.held.checkUrl = cb.url;
    });
  });
  after(async () => {
    await gw.close();
    cb.server.close();
    await db.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await db.end();
  });

  it('1,000 orders: every placed order has exactly one message, no other order has one', async () => {
    const N = 1000;
    const script = fileURLToPath(new URL('./fixtures/order-service.js', import.meta.url));
    let next = 1;
    let runs = 0;
    const deadline = Date.now() + 60_000;
    while (next <= N) {
      assert.ok(Date.now() < deadline, 'the order service made no progress');
      runs++;
      const child = spawn(process.execPath, [script, gw.url, table, topic, String(next), String(N), '0.004'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
      const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.on('exit', (c, s) => r([c, s])));
      const started = [...out.matchAll(/^start (\d+)$/gm)].map((m) => Number(m[1]));
      if (signal === null) assert.equal(code, 0, `the order service failed: ${out.slice(-500)}`);
      if (out.includes('finished')) break;
      next = Math.max(next - 1, ...started) + 1;
    }
    // Every prepared message is settled: by the service, or by the check-back.
    await waitFor(async () => (await gw.held.list(topic, 'prepared', 1)).count === 0, 'every transaction resolved', 30_000);
    const rows = (await db.query(`SELECT id, state FROM ${table}`)).rows as { id: number; state: string }[];
    const placed = new Set(rows.filter((r) => r.state === 'placed').map((r) => r.id));
    const msgs = await history(gw.url, topic);
    const counts = new Map<number, number>();
    for (const m of msgs) counts.set(m.data.order, (counts.get(m.data.order) ?? 0) + 1);
    for (const id of placed) assert.equal(counts.get(id), 1, `placed order ${id} has ${counts.get(id) ?? 0} messages`);
    for (const id of counts.keys()) assert.ok(placed.has(id), `order ${id} was not placed but has a message`);
    // Every 5th order rolls back on purpose; of the others only those in flight when the service was
    // killed (at most its 16 workers per kill) may be left unplaced.
    assert.ok([...placed].every((id) => id % 5 !== 0), 'no rolled-back order is placed');
    const floor = (N * 4) / 5 - 16 * (runs - 1);
    assert.ok(placed.size >= floor && placed.size <= (N * 4) / 5, `${placed.size} placed: between ${floor} and ${(N * 4) / 5}`);
    const checks = (await api(gw.url, '/metrics')).text.match(/sluice_tx_checkbacks_total\{outcome="(commit|abort)"\} (\d+)/g);
    console.log(`order service: ${runs} runs (${runs - 1} SIGKILLs), ${placed.size} placed, check-backs: ${checks?.join(', ') ?? 'none'}`);
    assert.ok(runs > 1, 'the service crashed at least once');
  });
});

describe('half messages across kill -9 of the gateway (real process, disk store)', () => {
  it('prepared and committed transactions survive: commits after the restart append, earlier ones answer the same offset, aborted stay aborted', async () => {
    const dir = tempDir('sluice-tx-');
    const port = await freePort();
    let gw = await spawnProcess({ dataDir: dir, port });
    try {
      const pub = createPublisher({ url: gw.url });
      const txs = await Promise.all(Array.from({ length: 60 }, (_, i) => pub.prepare('tx.crash', { i }, { key: `c${i}` })));
      const committed = await Promise.all(txs.slice(0, 20).map((t) => t.commit()));
      await Promise.all(txs.slice(20, 30).map((t) => t.abort()));
      await gw.kill('SIGKILL');
      gw = await spawnProcess({ dataDir: dir, port });
      assert.equal((await history(gw.url, 'tx.crash')).length, 20, 'prepared ones stay invisible');
      const again = await Promise.all(txs.slice(0, 20).map((t) => pub.transaction('tx.crash', t.id).commit()));
      assert.deepEqual(again.map((r) => [r.offset, r.duplicate]), committed.map((r) => [r.offset, true]));
      await assert.rejects(pub.transaction('tx.crash', txs[20]!.id).commit(), (e: SluiceError) => e.code === 'transaction-aborted');
      const late = await Promise.all(txs.slice(30).map((t) => pub.transaction('tx.crash', t.id).commit()));
      assert.deepEqual(late.map((r) => r.offset).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => 21 + i));
      const retried = await pub.prepare('tx.crash', { i: 0 }, { key: 'c0' });
      assert.equal(retried.id, txs[0]!.id, 'the prepare key still names the same transaction');
      const msgs = await history(gw.url, 'tx.crash');
      assert.equal(msgs.length, 50);
      assert.equal(new Set(msgs.map((m) => m.data.i)).size, 50);
    } finally {
      await gw.kill('SIGKILL');
      removeDir(dir);
    }
  });
});
