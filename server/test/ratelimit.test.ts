import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { mintToken } from '@sluice/client/token';
import { startGateway } from './helpers/gateway.js';
import { api } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

describe('publish rate limits', () => {
  it('per connection: over the rate, PUB gets ERROR rate-limited; after the refill it passes again', async () => {
    const gw = await startGateway((c) => { c.rates.perConnection = 5; });
    try {
      const c = await RawClient.connect(gw.url);
      for (let i = 1; i <= 6; i++) c.send({ type: 8, reqId: i, topic: 'rl.ws', data: i });
      await c.next((f) => f.type === 9 && f.reqId === 5);
      await c.barrier();
      const answers = [1, 2, 3, 4, 5, 6].map((id) => c.frames.find((f) => (f.type === 9 && f.reqId === id) || (f.type === 11 && f.id === id))!);
      assert.deepEqual(answers.map((f) => f.type), [9, 9, 9, 9, 9, 11]);
      const err = answers[5] as { code: string; message: string };
      assert.equal(err.code, 'rate-limited');
      const wait = Number(/retry in (\d+) ms/.exec(err.message)?.[1]);
      assert.ok(wait > 0 && wait <= 200, err.message);
      assert.equal((await gw.store.info('rl.ws')).head, 5, 'the refused publish was not stored');
      await sleep(wait + 20); // the bucket refills with time: waiting is the behaviour under test
      await c.publish(7, 'rl.ws', 7);
      // Another connection has its own bucket.
      const other = await RawClient.connect(gw.url);
      await other.publish(1, 'rl.ws', 'other');
      c.close();
      other.close();
    } finally {
      await gw.close();
    }
  });

  it('per client over HTTP: 429 with Retry-After, for single and batch publishes', async () => {
    const gw = await startGateway((c) => { c.rates.perClient = 3; });
    try {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await api(gw.url, '/v1/topics/rl.http/messages', { json: i })).status);
      assert.deepEqual(statuses, [201, 201, 201, 429]);
      const r = await api(gw.url, '/v1/topics/rl.http/messages', { json: 'x' });
      assert.deepEqual([r.status, r.body.error.code, r.headers.get('retry-after')], [429, 'rate-limited', '1']);
      const batch = await api(gw.url, '/v1/publish', { json: { messages: [{ topic: 'rl.http', data: 1 }] } });
      assert.deepEqual([batch.status, batch.body.error.code], [429, 'rate-limited']);
      assert.equal((await gw.store.info('rl.http')).head, 3);
    } finally {
      await gw.close();
    }
  });

  it('per client with tokens: one budget for all connections of the same sub, another for another sub', async () => {
    const secret = 'rate-secret-0123456789-abcdefghijklmnop';
    const gw = await startGateway((c) => { c.auth.secret = secret; c.rates.perClient = 4; });
    try {
      const caps = { 'rl.>': ['pub'] as const };
      const alice = await mintToken({ key: secret, sub: 'alice', caps });
      const bob = await mintToken({ key: secret, sub: 'bob', caps });
      const a1 = await RawClient.connect(gw.url, { token: alice });
      const a2 = await RawClient.connect(gw.url, { token: alice });
      for (let i = 1; i <= 3; i++) await a1.publish(i, 'rl.jwt', i);
      await a2.publish(1, 'rl.jwt', 4);
      a2.send({ type: 8, reqId: 2, topic: 'rl.jwt', data: 5 });
      const f = await a2.next((x) => (x.type === 9 || x.type === 11) && (x.type === 9 ? x.reqId : x.id) === 2);
      assert.equal(f.type === 11 && f.code, 'rate-limited');
      assert.equal((await api(gw.url, '/v1/topics/rl.jwt/messages', { json: 6, token: alice })).status, 429, 'HTTP shares the budget');
      assert.equal((await api(gw.url, '/v1/topics/rl.jwt/messages', { json: 7, token: bob })).status, 201);
      a1.close();
      a2.close();
    } finally {
      await gw.close();
    }
  });
});
