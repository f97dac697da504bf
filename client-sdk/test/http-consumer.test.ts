/**
 * The HTTP consumer (`createConsumer`) against a scripted fetch: the requests it makes, how it reads
 * the answers, and the run loop's acks, nacks and stop.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createConsumer, type HttpConsumerMessage } from '../src/http-consumer.js';

interface Call { url: string; body: Record<string, unknown> | undefined; auth: string | undefined }

/** A fetch that records each request and answers from `answer` (a JSON body, or a Response). */
function scripted(answer: (call: Call, n: number) => unknown) {
  const calls: Call[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    const headers = init.headers as Record<string, string>;
    const call: Call = { url, body: init.body ? JSON.parse(init.body as string) as Record<string, unknown> : undefined, auth: headers.authorization };
    calls.push(call);
    const a = answer(call, calls.length);
    if (a instanceof Response) return a;
    if (a instanceof Error) throw a;
    return new Response(JSON.stringify(a), { status: 200, headers: { 'content-type': 'application/json' } });
  }) as typeof globalThis.fetch;
  return { calls, fetch };
}

const ok = (offsets: number[]) => ({ results: offsets.map((offset) => ({ offset, ok: true })) });
const body = (c: Call) => c.body as { offsets: number[]; delay?: number; reason?: string; consumer?: string };

describe('createConsumer (HTTP)', () => {
  it('leases with max, wait and the consumer name; reads data, binary data, headers, ordering keys', async () => {
    const f = scripted(() => ({
      ackWaitMs: 30000,
      messages: [
        { offset: 4, attempt: 1, ts: 10, data: { n: 1 }, headers: { h: 'v' }, orderingKey: 'k' },
        { offset: 5, attempt: 2, ts: 11, data: 'AAH+/w==', encoding: 'base64' },
        { offset: 6, attempt: 1, ts: 12, data: 'wQ==', encoding: 'msgpack' },
      ],
    }));
    const c = createConsumer({ url: 'http://gw.test/', token: 't0k', topic: 'room/1.jobs', group: 'workers', consumer: 'edge-1', fetch: f.fetch });
    assert.equal(c.ackWaitMs, undefined);
    const msgs = await c.lease({ max: 3, wait: 2.5 });
    assert.equal(f.calls[0]!.url, 'http://gw.test/v1/topics/room%2F1.jobs/groups/workers/lease?max=3&wait=2.5&consumer=edge-1');
    assert.equal(f.calls[0]!.auth, 'Bearer t0k');
    assert.equal(c.ackWaitMs, 30000);
    const [a, b, raw] = msgs as [HttpConsumerMessage, HttpConsumerMessage, HttpConsumerMessage];
    assert.deepEqual(
      { topic: a.topic, group: a.group, offset: a.offset, attempt: a.attempt, ts: a.ts, data: a.data, headers: a.headers, orderingKey: a.orderingKey, encoding: a.encoding },
      { topic: 'room/1.jobs', group: 'workers', offset: 4, attempt: 1, ts: 10, data: { n: 1 }, headers: { h: 'v' }, orderingKey: 'k', encoding: undefined },
    );
    assert.deepEqual([b.attempt, b.data, b.encoding], [2, new Uint8Array([0, 1, 254, 255]), undefined]);
    assert.deepEqual([raw.data, raw.encoding], [new Uint8Array([0xc1]), 'msgpack']);
  });

  it('ack and nack by offset, with the consumer name; msg.ack() once, true only when the gateway took it', async () => {
    const f = scripted((call) => {
      if (call.url.includes('/lease')) return { ackWaitMs: 1000, messages: [{ offset: 1, attempt: 1, ts: 1, data: 1 }, { offset: 2, attempt: 1, ts: 1, data: 2 }] };
      const offsets = body(call).offsets;
      return { results: offsets.map((offset) => (offset === 2 ? { offset, error: { code: 'not-leased', message: 'no' } } : { offset, ok: true })) };
    });
    const c = createConsumer({ url: 'http://gw.test', topic: 't', group: 'g', consumer: 'c1', fetch: f.fetch });
    const [m1, m2] = await c.lease();
    assert.match(f.calls[0]!.url, /lease\?max=10&wait=0&consumer=c1$/);
    assert.equal(await m1!.ack(), true);
    assert.equal(await m1!.ack(), false, 'once');
    assert.equal(await m2!.nack({ delay: 500, reason: 'later' }), false, 'not-leased');
    assert.deepEqual(f.calls.slice(1).map((x) => [x.url.replace('http://gw.test/v1/topics/t/groups/g/', ''), x.body]), [
      ['ack', { offsets: [1], consumer: 'c1' }],
      ['nack', { delay: 500, reason: 'later', offsets: [2], consumer: 'c1' }],
    ]);
    const many = Array.from({ length: 2500 }, (_, i) => i + 1);
    const results = await c.ack(many);
    assert.equal(results.length, 2500);
    assert.deepEqual(f.calls.slice(3).map((x) => body(x).offsets.length), [1000, 1000, 500], 'at most 1000 per request');
  });

  it('retries a lease after a 503 and a network error; a refusal rejects with its code', async () => {
    let n = 0;
    const f = scripted(() => {
      n++;
      if (n === 1) return new Response(JSON.stringify({ error: { code: 'unavailable', message: 'x' } }), { status: 503 });
      if (n === 2) return new TypeError('fetch failed');
      if (n === 3) return { ackWaitMs: 1, messages: [] };
      return new Response(JSON.stringify({ error: { code: 'forbidden', message: 'not allowed to consume t' } }), { status: 403 });
    });
    const c = createConsumer({ url: 'http://gw.test', topic: 't', group: 'g', fetch: f.fetch, backoff: () => 1 });
    assert.deepEqual(await c.lease(), []);
    await assert.rejects(c.lease(), { name: 'ServerError', code: 'forbidden', status: 403 });
  });

  it('run(): handlers at once up to concurrency, one ack request per batch, a nack per throw, stops on abort', async () => {
    const ac = new AbortController();
    let batches = 0;
    const f = scripted((call) => {
      if (call.url.includes('/lease')) {
        batches++;
        if (batches === 3) ac.abort();
        const first = (batches - 1) * 3 + 1;
        return { ackWaitMs: 1000, messages: batches < 3 ? [0, 1, 2].map((i) => ({ offset: first + i, attempt: 1, ts: 1, data: first + i })) : [] };
      }
      return ok(body(call).offsets);
    });
    const c = createConsumer<number>({ url: 'http://gw.test', topic: 't', group: 'g', fetch: f.fetch });
    let running = 0;
    let most = 0;
    await c.run(async (msg) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 1));
      running--;
      if (msg.data === 5) throw new Error('boom');
      if (msg.data === 6) await msg.nack({ delay: 0 });
    }, { concurrency: 3, wait: 1, signal: ac.signal });
    const leases = f.calls.filter((x) => x.url.includes('/lease'));
    assert.equal(leases.length, 3);
    assert.match(leases[0]!.url, /max=3&wait=1$/);
    assert.equal(most, 3);
    const settles = f.calls.filter((x) => !x.url.includes('/lease')).map((x) => [x.url.split('/').at(-1), body(x).offsets, body(x).reason ?? body(x).delay]);
    assert.deepEqual(settles.sort(), [
      ['ack', [1, 2, 3], undefined],
      ['ack', [4], undefined],
      ['nack', [5], 'boom'],
      ['nack', [6], 0],
    ].sort());
  });

  it('run() ends when its signal aborts a waiting lease', async () => {
    const ac = new AbortController();
    let waiting: () => void;
    const leaseWaits = new Promise<void>((resolve) => { waiting = resolve; });
    const fetch = ((url: string, init: RequestInit) => new Promise((_resolve, reject) => {
      init.signal!.addEventListener('abort', () => reject(init.signal!.reason));
      if (url.includes('/lease')) waiting();
    })) as typeof globalThis.fetch;
    const c = createConsumer({ url: 'http://gw.test', topic: 't', group: 'g', fetch });
    const done = c.run(() => undefined, { signal: ac.signal });
    await leaseWaits; // the abort must meet a lease request in flight, not a run that has not asked yet
    ac.abort();
    await done;
  });
});
