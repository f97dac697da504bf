/**
 * Idempotency keys reused with another message (IETF draft "The Idempotency-Key HTTP Header
 * Field"): refused with 422 / ERROR `idempotency-key-reused`, nothing stored, on every transport,
 * across a restart of a real gateway process on its data directory, and across the nodes of a
 * cluster on Redis. The store-level rules (fingerprints, keys stored without one) are in
 * log.contract.ts for every store.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { GatewayProcess } from '../src/testing.js';
import { startNodes } from './helpers/cluster.js';
import { removeDir, spawnGateway, tempDir } from './helpers/gateway.js';
import { api } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

const procs: GatewayProcess[] = [];
const dirs: string[] = [];
const redises: RedisServer[] = [];
after(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await Promise.all(redises.map((r) => r.stop()));
  for (const d of dirs) removeDir(d);
});

/** HTTP publish of a JSON body (given as text, so spacing can differ) with an idempotency key. */
function post(url: string, topic: string, body: string, key: string, headers: Record<string, string> = {}) {
  return api(url, `/v1/topics/${topic}/messages`, { raw: body, headers: { 'content-type': 'application/json', 'idempotency-key': key, ...headers } });
}

/** A PUB and the frame that answers it: ACK or ERROR. */
async function pub(c: RawClient, reqId: number, topic: string, data: unknown, opts: { key: string; headers?: Record<string, string>; orderingKey?: string; trace?: boolean }) {
  c.send({ type: 8, reqId, topic, data, ...opts });
  const f = await c.next((x) => (x.type === 9 && x.reqId === reqId) || (x.type === 11 && x.id === reqId));
  return f.type === 9 ? { offset: f.offset, duplicate: f.duplicate } : f.type === 11 ? { code: f.code, re: f.re } : {};
}

const head = async (url: string, topic: string) => (await api(url, `/v1/topics/${topic}/messages?limit=1`)).body.head as number;

describe('an idempotency key reused with another message', () => {
  it('is refused over HTTP, batch and WebSocket; the same message is a duplicate; both survive a restart', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const gw = await spawnGateway(['--data', dir]);
    procs.push(gw);
    const first = await post(gw.url, 'idem.a', '{"text":"hi","n":1}', 'order-1', { 'sluice-headers': '{"trace-id":"t1"}' });
    assert.deepEqual([first.status, first.body.offset, first.body.duplicate], [201, 1, false]);

    // The same request: JSON spacing is not part of it (the stored MessagePack is), nor is `trace`.
    const same = await post(gw.url, 'idem.a', '{ "text": "hi", "n": 1 }', 'order-1', { 'sluice-headers': '{"trace-id":"t1"}', 'sluice-trace': '1' });
    assert.deepEqual([same.status, same.body], [200, { ...first.body, duplicate: true }]);

    // Another message under the key: data, headers, ordering key or priority differ.
    const changes: [string, Promise<Awaited<ReturnType<typeof post>>>][] = [
      ['other data', post(gw.url, 'idem.a', '{"text":"bye","n":1}', 'order-1', { 'sluice-headers': '{"trace-id":"t1"}' })],
      ['other headers', post(gw.url, 'idem.a', '{"text":"hi","n":1}', 'order-1', { 'sluice-headers': '{"trace-id":"t2"}' })],
      ['no headers', post(gw.url, 'idem.a', '{"text":"hi","n":1}', 'order-1')],
      ['an ordering key', post(gw.url, 'idem.a', '{"text":"hi","n":1}', 'order-1', { 'sluice-headers': '{"trace-id":"t1"}', 'sluice-ordering-key': 'c7' })],
      ['a priority', post(gw.url, 'idem.a', '{"text":"hi","n":1}', 'order-1', { 'sluice-headers': '{"trace-id":"t1"}', 'sluice-priority': '5' })],
    ];
    for (const [what, p] of changes) {
      const r = await p;
      assert.deepEqual([r.status, r.body.error?.code], [422, 'idempotency-key-reused'], `${what}: ${r.text}`);
      assert.match(r.body.error.message, /order-1.*another message/, what);
    }

    // The same key on another topic is another key.
    assert.equal((await post(gw.url, 'idem.b', '"elsewhere"', 'order-1')).status, 201);

    // A batch: each entry on its own.
    const batch = await api(gw.url, '/v1/publish', {
      json: { messages: [
        { topic: 'idem.a', data: { text: 'hi', n: 1 }, key: 'order-1', headers: { 'trace-id': 't1' } },
        { topic: 'idem.a', data: { text: 'changed' }, key: 'order-1' },
        { topic: 'idem.a', data: 'second', key: 'order-2' },
      ] },
    });
    assert.equal(batch.status, 200);
    assert.deepEqual(batch.body.results.map((r: { offset?: number; duplicate?: boolean; error?: { code: string } }) => r.error?.code ?? [r.offset, r.duplicate]),
      [[1, true], 'idempotency-key-reused', [2, false]]);

    // WebSocket: ERROR with the PUB's reqId; the same message under the key (sent over HTTP) is a duplicate.
    const ws = await RawClient.connect(gw.url);
    assert.deepEqual(await pub(ws, 1, 'idem.a', { text: 'hi', n: 1 }, { key: 'order-1', headers: { 'trace-id': 't1' }, trace: true }), { offset: 1, duplicate: true });
    assert.deepEqual(await pub(ws, 2, 'idem.a', { text: 'hi', n: 2 }, { key: 'order-1', headers: { 'trace-id': 't1' } }), { code: 'idempotency-key-reused', re: 8 });
    assert.deepEqual(await pub(ws, 3, 'idem.a', 'second', { key: 'order-2' }), { offset: 2, duplicate: true });
    assert.deepEqual(await pub(ws, 4, 'idem.a', 'third', { key: 'order-3' }), { offset: 3, duplicate: false });
    await ws.barrier();
    assert.equal(ws.closeInfo, undefined, 'the connection stays usable');
    ws.close();
    assert.equal(await head(gw.url, 'idem.a'), 3, 'nothing of a refused publish was stored');

    // A restart on the same data directory keeps the keys with their fingerprints.
    assert.equal(await gw.kill('SIGTERM'), 0);
    const again = await spawnGateway(['--data', dir]);
    procs.push(again);
    const retry = await post(again.url, 'idem.a', '{"text":"hi","n":1}', 'order-1', { 'sluice-headers': '{"trace-id":"t1"}' });
    assert.deepEqual([retry.status, retry.body.offset, retry.body.duplicate], [200, 1, true]);
    const changed = await post(again.url, 'idem.a', '{"text":"hi","n":3}', 'order-1', { 'sluice-headers': '{"trace-id":"t1"}' });
    assert.deepEqual([changed.status, changed.body.error?.code], [422, 'idempotency-key-reused']);
    const ws2 = await RawClient.connect(again.url);
    assert.deepEqual(await pub(ws2, 1, 'idem.a', 'not third', { key: 'order-3' }), { code: 'idempotency-key-reused', re: 8 });
    assert.deepEqual(await pub(ws2, 2, 'idem.a', 'third', { key: 'order-3' }), { offset: 3, duplicate: true });
    ws2.close();
    assert.equal(await head(again.url, 'idem.a'), 3);
  });

  it('is refused on every node of a cluster on Redis, and across their restarts', async () => {
    const redis = await startRedis();
    redises.push(redis);
    const [a, b] = await startNodes(2, redis.url);
    procs.push(a!, b!);
    const first = await post(a!.url, 'idem.c', '{"job":1}', 'job-1');
    assert.deepEqual([first.status, first.body.offset], [201, 1]);
    const wsB = await RawClient.connect(b!.url);
    assert.deepEqual(await pub(wsB, 1, 'idem.c', { job: 1 }, { key: 'job-1' }), { offset: 1, duplicate: true });
    assert.deepEqual(await pub(wsB, 2, 'idem.c', { job: 2 }, { key: 'job-1' }), { code: 'idempotency-key-reused', re: 8 });
    assert.deepEqual(await pub(wsB, 3, 'idem.c', { job: 2 }, { key: 'job-2' }), { offset: 2, duplicate: false });
    wsB.close();
    const onA = await post(a!.url, 'idem.c', '{"job":1,"again":true}', 'job-2');
    assert.deepEqual([onA.status, onA.body.error?.code], [422, 'idempotency-key-reused']);

    await Promise.all([a!.kill('SIGTERM'), b!.kill('SIGTERM')]);
    const [c] = await startNodes(1, redis.url);
    procs.push(c!);
    assert.deepEqual((await post(c!.url, 'idem.c', '{"job": 2}', 'job-2')).body.duplicate, true);
    assert.equal((await post(c!.url, 'idem.c', '{"job":3}', 'job-2')).status, 422);
    assert.equal(await head(c!.url, 'idem.c'), 2);
  });
});
