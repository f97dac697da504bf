/**
 * `promtool check metrics` (Prometheus's own linter, Debian package `prometheus`) on the live
 * /metrics of a gateway that has served traffic: WebSocket publishes and subscribers, HTTP
 * publishes, a consumer group, refused requests. Every family must pass the naming rules and the
 * exposition format; the runtime metrics and `sluice_build_info` must be there.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { FrameType } from '@sluice/client/protocol';
import { VERSION, type RunningServer } from '../src/server.js';
import { startGateway } from './helpers/gateway.js';
import { api, waitFor } from './helpers/http.js';
import { RawClient } from './helpers/raw-client.js';

const PROMTOOL = '/usr/bin/promtool';

/** Runs `promtool check metrics` on `text`; resolves to its exit code and output. */
function promtool(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.on('error', reject);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, output }); });
    p.stdin.end(text);
  });
}

let gw: RunningServer;
const clients: RawClient[] = [];
before(async () => { gw = await startGateway(); });
after(async () => {
  for (const c of clients) c.close();
  await gw.close();
});

describe('GET /metrics under promtool', () => {
  it('passes `promtool check metrics` after publishes, subscribers, a group and errors', async () => {
    const pub = await RawClient.connect(gw.url);
    const sub = await RawClient.connect(gw.url);
    const member = await RawClient.connect(gw.url);
    clients.push(pub, sub, member);
    sub.send({ type: FrameType.SUB, subId: 1, topic: 'prom.t', credit: 100 });
    member.send({ type: FrameType.SUB, subId: 1, topic: 'prom.q', group: 'workers', credit: 1 });
    await sub.next((f) => f.type === FrameType.SUBSCRIBED);
    await member.next((f) => f.type === FrameType.SUBSCRIBED);
    for (let i = 0; i < 5; i++) await pub.publish(i + 1, 'prom.t', { i });
    for (let i = 0; i < 3; i++) await pub.publish(10 + i, 'prom.q', { i });
    assert.equal((await api(gw.url, '/v1/topics/prom.t/messages', { json: 'over http' })).status, 201);
    assert.equal((await api(gw.url, '/v1/topics/bad..topic/messages', { json: 1 })).status, 400);
    assert.equal((await api(gw.url, '/v1/nothing')).status, 404);
    // A delayed message due at once: held, then appended by the scheduler (the held families get samples).
    assert.equal((await api(gw.url, '/v1/topics/prom.t/messages', { json: 'delayed', headers: { 'sluice-delay': '0' } })).status, 202);
    await waitFor(() => sub.frames.filter((f) => f.type === FrameType.MSG).length >= 7, 'deliveries to the subscriber');
    // Counted once its record is marked appended, just after the append the subscriber saw.
    await waitFor(async () => /^sluice_held_appended_total 1$/m.test(await (await fetch(`${gw.url}/metrics`)).text()), 'the held message counted as appended');

    const res = await fetch(`${gw.url}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    for (const family of [
      'sluice_open_connections', 'sluice_connections_total', 'sluice_messages_in_total', 'sluice_errors_total',
      'sluice_http_requests_total', 'sluice_http_request_duration_seconds', 'sluice_store_append_duration_seconds',
      'sluice_group_backlog', 'sluice_build_info', 'process_cpu_seconds_total', 'process_resident_memory_bytes',
      'process_start_time_seconds', 'process_open_fds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds',
      'sluice_held_messages', 'sluice_held_appended_total', 'sluice_delayed_lateness_seconds', 'sluice_tx_checkbacks_total',
    ]) assert.match(text, new RegExp(`^# TYPE ${family} `, 'm'), `${family} is exposed`);
    assert.match(text, /^sluice_http_requests_total\{route="publish",code="201"\} 1$/m);
    assert.match(text, new RegExp(`^sluice_build_info\\{version="${VERSION.replace(/\./g, '\\.')}",node="${process.versions.node.replace(/\./g, '\\.')}"\\} 1$`, 'm'));
    assert.match(text, /^sluice_open_connections 3$/m);
    assert.match(text, /^sluice_held_appended_total 1$/m);
    assert.match(text, /^sluice_delayed_lateness_seconds_count 1$/m);
    // The runtime figures are this process's (the gateway runs in it here).
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    const startedAt = Date.now() / 1000 - process.uptime();
    assert.ok(Math.abs(value('process_start_time_seconds') - startedAt) <= 2, 'start time');
    assert.ok(value('process_resident_memory_bytes') >= process.memoryUsage().heapUsed / 2, 'resident memory');
    assert.ok(value('process_open_fds') > 3 && value('process_open_fds') <= value('process_max_fds'), 'open fds');
    assert.ok(value('process_cpu_seconds_total') > 0 && value('nodejs_heap_size_used_bytes') > 0);
    assert.ok(value('nodejs_eventloop_lag_seconds') >= 0 && value('nodejs_eventloop_lag_max_seconds') >= value('nodejs_eventloop_lag_seconds'));

    // promtool 2.42 does not see this one: OpenMetrics strips `_total` from a counter's name, so a
    // gauge `x` beside a counter `x_total` would be two families of one name.
    const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1]!, type: m[2]! }));
    const names = new Set(families.map((f) => f.name));
    for (const f of families) {
      if (f.type === 'counter') assert.ok(f.name.endsWith('_total'), `counter ${f.name} ends in _total`);
      if (f.type === 'counter') assert.ok(!names.has(f.name.slice(0, -'_total'.length)), `${f.name} and ${f.name.slice(0, -6)} clash`);
      else assert.ok(!f.name.endsWith('_total'), `${f.type} ${f.name} does not end in _total`);
    }

    const check = await promtool(text);
    assert.equal(check.code, 0, `promtool check metrics found problems:\n${check.output}`);
    assert.equal(check.output.trim(), '', 'promtool has nothing to say');
  });
});
