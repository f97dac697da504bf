/**
 * The HTTP publisher against a scripted fetch: what it sends, and what it refuses to send.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SluiceError } from '../src/errors.js';
import { createPublisher } from '../src/publisher.js';

function recordingFetch() {
  const calls: { url: string; headers: Record<string, string>; body: unknown }[] = [];
  const fake = ((url: string, init: RequestInit) => {
    calls.push({ url, headers: init.headers as Record<string, string>, body: init.body });
    return Promise.resolve(new Response(JSON.stringify({ offset: 1, epoch: 'e', duplicate: false, results: [] }), { status: 201 }));
  }) as typeof globalThis.fetch;
  return { calls, fetch: fake };
}

describe('HTTP publisher', () => {
  it('sends a generated key when none is given, the given one otherwise', async () => {
    const f = recordingFetch();
    const p = createPublisher({ url: 'http://gw.test/', fetch: f.fetch });
    await p.publish('a.b', { x: 1 });
    await p.publish('a.b', { x: 1 }, { key: 'k1' });
    assert.equal(f.calls[0]!.url, 'http://gw.test/v1/topics/a.b/messages');
    assert.match(f.calls[0]!.headers['idempotency-key']!, /^[\w-]{21}$/);
    assert.equal(f.calls[1]!.headers['idempotency-key'], 'k1');
  });

  it('never sends an empty key: the gateway would read it as none and retries would not dedupe', async () => {
    const f = recordingFetch();
    const p = createPublisher({ url: 'http://gw.test', fetch: f.fetch });
    await assert.rejects(p.publish('a', 1, { key: '' }), (e: SluiceError) => e.code === 'bad-request' && /1-128 bytes/.test(e.message));
    await assert.rejects(p.publishBatch([{ topic: 'a', data: 1 }, { topic: 'a', data: 2, key: '' }]), (e: SluiceError) => e.code === 'bad-request');
    assert.equal(f.calls.length, 0);
  });

  it('takes the URLs createClient takes: ws:// → http://, wss:// → https://, /v1/ws dropped', async () => {
    const f = recordingFetch();
    for (const url of ['ws://gw.test:9400', 'ws://gw.test:9400/v1/ws', 'wss://gw.test/prefix/v1/ws/', 'http://gw.test:9400/']) {
      await createPublisher({ url, fetch: f.fetch }).publish('a', 1);
    }
    assert.deepEqual(f.calls.map((c) => c.url), [
      'http://gw.test:9400/v1/topics/a/messages',
      'http://gw.test:9400/v1/topics/a/messages',
      'https://gw.test/prefix/v1/topics/a/messages',
      'http://gw.test:9400/v1/topics/a/messages',
    ]);
  });

  it('sends headers, ordering key and priority as the HTTP API names them', async () => {
    const f = recordingFetch();
    await createPublisher({ url: 'http://gw.test', fetch: f.fetch }).publish('a', 1, { headers: { 'trace-id': 'abc' }, orderingKey: 'user-1', priority: 5 });
    const h = f.calls[0]!.headers;
    assert.equal(h['sluice-headers'], '{"trace-id":"abc"}');
    assert.equal(h['sluice-ordering-key'], 'user-1');
    assert.equal(h['sluice-priority'], '5');
  });
});
