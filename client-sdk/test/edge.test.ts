/**
 * The SDK's browser bundles in real edge runtimes: Cloudflare's workerd and Deno (both from npm,
 * binaries included). In each, a worker mints a token with the SDK and publishes with
 * createPublisher to a real gateway that holds only the public key; the test checks what arrived.
 * In workerd, a worker also consumes a topic as a consumer-group member with createConsumer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { spawnGateway, type GatewayProcess } from '@sluice/server/testing';
import { createPublisher } from '../src/publisher.js';
import { mintToken } from '../src/token.js';

const require = createRequire(import.meta.url);
const EDGE_SRC = fileURLToPath(new URL('../../test/edge/', import.meta.url));
const BUNDLES = fileURLToPath(new URL('../browser/', import.meta.url));
const WORKERD = join(require.resolve('workerd/package.json'), '../bin/workerd');
const DENO = require.resolve('deno/bin.cjs');

const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const PRIVATE_PEM = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

let gw: GatewayProcess;
let dir: string;
before(async () => {
  // A short ack wait, so that a lease the consumer failed to acknowledge would show up again quickly.
  gw = await spawnGateway({ store: 'memory', args: ['--group-ack-wait', '1s'], env: { SLUICE_AUTH_PUBLIC_KEY: PUBLIC_PEM } });
  // The worker's files: the shared routine, its entry points, and the SDK bundles as shipped.
  dir = mkdtempSync(join(tmpdir(), 'sluice-edge-'));
  for (const f of ['run.js', 'worker.js', 'deno-main.js', 'consumer-worker.js']) copyFileSync(join(EDGE_SRC, f), join(dir, f));
  copyFileSync(join(BUNDLES, 'sluice.min.js'), join(dir, 'sluice.js'));
  copyFileSync(join(BUNDLES, 'token.min.js'), join(dir, 'token.js'));
  copyFileSync(join(BUNDLES, 'consumer.min.js'), join(dir, 'consumer.js'));
});
after(async () => {
  await gw.kill();
  rmSync(dir, { recursive: true, force: true });
});

interface Published { offset: number; epoch: string; duplicate: boolean }
interface EdgeResult { single: Published[]; retried: Published; batch: (Published | { error: unknown })[] }

/** Checks the worker's answers and what the gateway stored: 12 messages, each once, in order. */
async function verify(runtime: string, topic: string, r: EdgeResult): Promise<void> {
  assert.deepEqual(r.single.map((p) => [p.offset, p.duplicate]), Array.from({ length: 10 }, (_, i) => [i + 1, false]));
  assert.deepEqual([r.retried.offset, r.retried.duplicate], [4, true]);
  assert.deepEqual(r.batch.map((p) => ('offset' in p ? [p.offset, p.duplicate] : p)), [[11, false], [12, false], [2, true]]);
  const reader = await mintToken({ key: PRIVATE_PEM, sub: 'checker', caps: { 'edge.>': ['history'] } });
  const res = await fetch(`${gw.url}/v1/topics/${topic}/messages?from=1&limit=100`, { headers: { authorization: `Bearer ${reader}` } });
  assert.equal(res.status, 200);
  const page = (await res.json()) as { head: number; messages: { offset: number; data: { i: number; runtime: string; retried?: boolean } }[] };
  assert.equal(page.head, 12);
  assert.deepEqual(page.messages.map((m) => m.offset), Array.from({ length: 12 }, (_, i) => i + 1));
  assert.deepEqual(page.messages.map((m) => m.data.i), Array.from({ length: 12 }, (_, i) => i + 1));
  assert.ok(page.messages.every((m) => m.data.runtime === runtime), 'retries were not stored');
}

function output(proc: ReturnType<typeof spawn>): { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  return { out: () => out, err: () => err };
}

/**
 * Runs `main` (with the given extra modules) in workerd with the gateway, topic and private key as
 * bindings, sends it one request, and returns the answer's status and body.
 */
async function inWorkerd(config: string, main: string, modules: string[], topic: string, path = '/'): Promise<{ status: number; body: string }> {
  const capnp = (s: string) => JSON.stringify(s);
  writeFileSync(join(dir, config), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    # Raw workerd refuses loopback egress unless its outbound network allows it.
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [
${[main, ...modules].map((m) => `    (name = "${m}", esModule = embed "${m}"),`).join('\n')}
  ],
  compatibilityDate = "2024-09-23",
  globalOutbound = "net",
  bindings = [
    (name = "GATEWAY", text = ${capnp(gw.url)}),
    (name = "TOPIC", text = ${capnp(topic)}),
    (name = "PRIVATE_KEY", text = ${capnp(PRIVATE_PEM)}),
  ],
);
`);
  const proc = spawn(WORKERD, ['serve', join(dir, config), '--control-fd=3'], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false' },
  });
  const logs = output(proc);
  try {
    // workerd reports each socket it listens on through the control fd.
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      (proc.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /"event":"listen","socket":"http","port":(\d+)/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      proc.once('exit', (code) => reject(new Error(`workerd exited ${code}: ${logs.err()}`)));
    });
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, body: await res.text() };
  } finally {
    proc.kill();
  }
}

describe('SDK in edge runtimes', () => {
  it('Cloudflare workerd: mintToken + createPublisher publish once, in order, retries deduplicated', async () => {
    const topic = 'edge.workerd';
    const res = await inWorkerd('config.capnp', 'worker.js', ['run.js', 'sluice.js', 'token.js'], topic);
    assert.equal(res.status, 200, res.body);
    await verify('workerd', topic, JSON.parse(res.body) as EdgeResult);
  });

  it('Cloudflare workerd: createConsumer leases and acknowledges 200 messages, each exactly once', async () => {
    const topic = 'edge.consume';
    const N = 200;
    const key = PRIVATE_PEM;
    const lease = async (consumer: string) => {
      const token = await mintToken({ key, sub: consumer, caps: { 'edge.>': ['consume'] } });
      const res = await fetch(`${gw.url}/v1/topics/${topic}/groups/edge-workers/lease?wait=0`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
      return ((await res.json()) as { messages: unknown[] }).messages;
    };
    // The group starts where its first member finds the topic: create it, then publish.
    assert.deepEqual(await lease('edge-consumer'), []);
    const publisher = createPublisher({ url: gw.url, token: await mintToken({ key, sub: 'edge-test', caps: { 'edge.>': ['pub'] } }) });
    const batch = await publisher.publishBatch(Array.from({ length: N }, (_, i) => ({ topic, data: { i: i + 1 } })));
    assert.ok(batch.every((r) => 'offset' in r));

    const started = Date.now();
    const res = await inWorkerd('consumer.capnp', 'consumer-worker.js', ['consumer.js', 'token.js'], topic, `/?expected=${N}`);
    assert.equal(res.status, 200, res.body);
    const { handled, ackWaitMs } = JSON.parse(res.body) as { handled: { offset: number; attempt: number; data: { i: number } }[]; ackWaitMs: number };
    console.log(`# workerd consumer: ${handled.length} messages in ${Date.now() - started} ms (workerd start included)`);
    assert.equal(ackWaitMs, 1000);
    assert.deepEqual(handled.map((m) => m.offset).sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i + 1), 'each once');
    assert.ok(handled.every((m) => m.attempt === 1 && m.data.i === m.offset));
    // Every one was acknowledged, as the group's durable state says: its ack floor is past the last
    // offset and nothing is leased, so nothing can come back to another member after the ack wait.
    const admin = await mintToken({ key, sub: 'edge-admin', admin: true });
    const groups = await fetch(`${gw.url}/v1/admin/topics/${topic}/groups`, { headers: { authorization: `Bearer ${admin}` } });
    const row = ((await groups.json()) as { group: string; floor: number; leased: number; backlog: number }[]).find((g) => g.group === 'edge-workers');
    assert.deepEqual([row?.floor, row?.leased, row?.backlog], [N + 1, 0, 0]);
    assert.deepEqual(await lease('edge-checker'), []);
  });

  it('Deno: mintToken + createPublisher publish once, in order, retries deduplicated', async () => {
    const topic = 'edge.deno';
    const proc = spawn(process.execPath, [DENO, 'run', '--allow-net=127.0.0.1', join(dir, 'deno-main.js'), gw.url, topic, PRIVATE_PEM], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', DENO_DIR: join(dir, 'deno-cache'), NO_COLOR: '1' },
    });
    const logs = output(proc);
    const code = await new Promise((resolve) => proc.once('exit', resolve));
    assert.equal(code, 0, logs.err());
    await verify('deno', topic, JSON.parse(logs.out()) as EdgeResult);
  });
});
