import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { publishingGateway, startGateway } from './helpers/gateway.js';
import { api, SseReader, waitFor } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const fx = publishingGateway((c) => { c.limits.heartbeatMs = 1000; });
const publish = fx.publish;

const offsets = (r: SseReader) => r.messages().map((m) => m.offset);

describe('GET /v1/topics/{topic}/events (SSE)', () => {
  it('streams live messages as events with id = offset and data = the message JSON', async () => {
    await publish('sse.live', 'before');
    const r = await SseReader.open(`${fx.gw.url}/v1/topics/sse.live/events`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    const subscribed = await r.next((e) => e.event === 'subscribed');
    const { epoch } = await fx.gw.store.info('sse.live');
    assert.deepEqual(JSON.parse(subscribed.data), { epoch, head: 1, from: 2, recovered: false });
    await publish('sse.live', { n: 1 }, { n: 2 });
    await r.waitMessages(2);
    const [m] = r.messages();
    assert.equal(m!.id, '2');
    assert.deepEqual({ ...m, ts: undefined }, { offset: 2, ts: undefined, data: { n: 1 }, id: '2' });
    assert.deepEqual(offsets(r), [2, 3]);
    r.close();
  });

  it('resumes after Last-Event-ID, then continues live, with no gap and no duplicate', async () => {
    await publish('sse.resume', 1, 2, 3, 4, 5);
    const r = await SseReader.open(`${fx.gw.url}/v1/topics/sse.resume/events?from=1`, { 'last-event-id': '2' });
    const subscribed = JSON.parse((await r.next((e) => e.event === 'subscribed')).data);
    assert.deepEqual([subscribed.from, subscribed.recovered], [3, true], 'Last-Event-ID wins over ?from=');
    await r.waitMessages(3);
    await publish('sse.resume', 6);
    await r.waitMessages(4);
    assert.deepEqual(offsets(r), [3, 4, 5, 6]);
    r.close();

    const replay = await SseReader.open(`${fx.gw.url}/v1/topics/sse.resume/events?from=5`);
    await replay.waitMessages(2);
    assert.deepEqual(offsets(replay), [5, 6]);
    replay.close();
  });

  it('announces a trimmed range with an explicit gap event', async () => {
    const g = await startGateway((c) => { c.retention.maxCount = 2; });
    try {
      const c = await RawClient.connect(g.url);
      for (let i = 1; i <= 6; i++) await c.publish(i, 'sse.trim', i);
      const r = await SseReader.open(`${g.url}/v1/topics/sse.trim/events`, { 'last-event-id': '1' });
      const subscribed = JSON.parse((await r.next((e) => e.event === 'subscribed')).data);
      assert.deepEqual([subscribed.from, subscribed.recovered], [5, false]);
      const gap = await r.next((e) => e.event === 'gap');
      assert.deepEqual(JSON.parse(gap.data), { from: 2, to: 4 });
      await r.waitMessages(2);
      assert.deepEqual(offsets(r), [5, 6]);
      r.close();
      c.close();
    } finally {
      await g.close();
    }
  });

  it('sends heartbeat comments while idle', async () => {
    const r = await SseReader.open(`${fx.gw.url}/v1/topics/sse.idle/events`);
    await r.next((e) => e.event === 'subscribed');
    await waitFor(() => r.comments.includes('keep-alive'), 'a heartbeat comment', 5000);
    r.close();
  });

  it('refuses a malformed Last-Event-ID or from, and an invalid topic, with 400', async () => {
    const a = await SseReader.open(`${fx.gw.url}/v1/topics/sse.x/events`, { 'last-event-id': 'abc' });
    const b = await SseReader.open(`${fx.gw.url}/v1/topics/sse.x/events?from=-3`);
    const c = await SseReader.open(`${fx.gw.url}/v1/topics/bad..x/events`);
    assert.deepEqual([a.status, b.status, c.status], [400, 400, 400]);
    assert.equal(JSON.parse(c.errorBody).error.code, 'invalid-topic');
    const post = await api(fx.gw.url, '/v1/topics/sse.x/events', { json: 1 });
    assert.equal(post.status, 405);
  });

  it('a reader that stops reading stops the gateway writing: the log is the buffer, nothing is lost', async () => {
    const topic = 'sse.slow';
    const payload = 'z'.repeat(16 * 1024);
    const socket: Socket = connect(fx.gw.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`GET /v1/topics/${topic}/events?from=1 HTTP/1.1\r\nHost: x\r\n\r\n`);
    socket.pause(); // read nothing: the kernel buffers fill, then uWS reports backpressure
    await waitFor(() => fx.gw.http.streams.size === 1, 'the stream to open');
    const stream = [...fx.gw.http.streams.all][0]!;

    const total = 1500; // ~24 MiB
    for (let i = 0; i < total; i += 100) await publish(topic, ...Array.from({ length: 100 }, () => payload));
    await waitFor(() => stream.writer.blocked && !stream.pumping, 'the stream to be backpressured');
    const written = stream.writer.bytesOut;
    assert.ok(written < 16 * 1024 * 1024, `the gateway handed ${written} bytes to a reader that read nothing (of ~24 MiB published)`);
    assert.ok(stream.cursor - 1 < total, 'the cursor stopped inside the log');

    await publish(topic, ...Array.from({ length: 100 }, () => payload));
    assert.equal(stream.writer.bytesOut, written, 'nothing more is written while backpressured');

    // Read everything now: every offset arrives, in order, once.
    const ids: number[] = [];
    let carry = '';
    const done = new Promise<void>((resolve) => {
      socket.on('data', (d: Buffer) => {
        const lines = (carry + d.toString('latin1')).split('\n');
        carry = lines.pop()!;
        for (const line of lines) if (line.startsWith('id: ')) ids.push(Number(line.slice(4)));
        if (ids.length >= total + 100) resolve();
      });
    });
    socket.resume();
    await done;
    assert.deepEqual(ids, Array.from({ length: total + 100 }, (_, i) => i + 1));
    socket.destroy();
    await waitFor(() => fx.gw.http.streams.size === 0, 'the stream to be dropped');
  });
});
