/**
 * Fuzz: random and mutated frames must never crash the gateway, every answer must be a
 * documented error code, and a well-behaved client must keep working throughout.
 * Deterministic (seeded PRNG): a failure prints its seed and is reproducible.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import { decodeServerFrame, encode, ErrorCodes, type ClientFrame } from '@sluice/client/protocol';
import { DEFAULT_LIMITS } from '../src/config.js';
import type { Conn } from '../src/hub/conn.js';
import type { RunningServer } from '../src/server.js';
import { Session } from '../src/session/session.js';
import { startGateway } from './helpers/gateway.js';
import { RawClient } from './helpers/raw-client.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const packr = new Packr({ useRecords: false });

class FrameFactory {
  constructor(readonly rnd: () => number) {}
  int(n: number): number { return Math.floor(this.rnd() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }

  value(depth = 0): unknown {
    const r = this.int(depth > 3 ? 6 : 9);
    switch (r) {
      case 0: return this.int(2 ** 31) - 2 ** 30;
      case 1: return this.pick([0, -1, 2 ** 53, 2 ** 64, 1.5, Number.NaN, -0]);
      case 2: return this.pick(['', 'a.b', 'x'.repeat(this.int(300)), '$sys', 'é', '__proto__', 'a..b', '*', '>']);
      case 3: return this.pick([null, true, false, undefined]);
      case 4: return new Uint8Array(this.int(40)).map(() => this.int(256));
      case 5: return this.int(20);
      case 6: return Array.from({ length: this.int(5) }, () => this.value(depth + 1));
      case 7: {
        const o: Record<string, unknown> = {};
        for (let i = this.int(5); i > 0; i--) {
          // defineProperty: a plain assignment to '__proto__' would set the prototype instead of a key.
          const k = this.pick(['from', 'epoch', 'credit', 'key', 'headers', 'token', 'client', '__proto__', 'constructor', 'x']);
          Object.defineProperty(o, k, { value: this.value(depth + 1), enumerable: true, configurable: true, writable: true });
        }
        return o;
      }
      default: return this.int(16);
    }
  }

  valid(): ClientFrame {
    const topic = this.pick(['fz.a', 'fz.b', 'fz.c']);
    const subId = 1 + this.int(4);
    switch (this.int(7)) {
      case 0: return { type: 3, subId, topic, credit: this.int(10), ...(this.rnd() < 0.5 ? { from: 1 + this.int(5) } : {}) };
      case 1: return { type: 5, subId };
      case 2: return { type: 7, subId, n: this.int(100) };
      case 3: return { type: 8, reqId: this.int(1000), topic, data: this.value(), ...(this.rnd() < 0.5 ? { key: `k${this.int(20)}` } : {}) };
      case 4: return { type: 12, n: this.int(100) };
      case 5: return { type: 13, n: this.int(100) };
      default: return { type: 1, client: 'fuzz' };
    }
  }

  /** A frame: valid, a random MessagePack value, or a mutation of a valid frame. */
  frame(): Uint8Array {
    const kind = this.int(10);
    if (kind < 3) return encode(this.valid());
    if (kind < 5) {
      const arr = [this.int(20), ...Array.from({ length: this.int(6) }, () => this.value())];
      return packr.pack(this.rnd() < 0.8 ? arr : this.value());
    }
    if (kind === 5) {
      // Deep nesting, sometimes past the limit.
      const depth = this.pick([10, 60, 70, 5000]);
      const b = new Uint8Array(5 + depth + 1);
      b.set([0x94, 8, 1, 0xa1, 0x61]);
      b.fill(this.rnd() < 0.5 ? 0x91 : 0x81, 5, 5 + depth);
      b[5 + depth] = 0xc0;
      return b;
    }
    const b = encode(this.valid()).slice();
    const out = Array.from(b);
    for (let m = 1 + this.int(4); m > 0; m--) {
      const at = this.int(out.length + 1);
      switch (this.int(6)) {
        case 0: out[at % out.length] = this.int(256); break;
        case 1: out.splice(at, 0, this.int(256)); break;
        case 2: out.splice(at, 1); break;
        case 3: out.length = Math.max(0, at); break;
        case 4: out[at % out.length] = this.pick([0xc1, 0xdd, 0xdf, 0xdb, 0xc6, 0xcf, 0xd3]); break;
        default: out.splice(at, 0, 0xff, 0xff, 0xff, 0xff); break;
      }
    }
    return Uint8Array.from(out);
  }
}

class FakeConn implements Conn {
  readonly id = 'fuzz';
  readonly remoteAddress = 'fuzz';
  readonly userAgent = 'fuzz';
  closed = false;
  readonly sent: Uint8Array[] = [];
  send(frame: Uint8Array): void { if (!this.closed) this.sent.push(frame); }
  flush(): void {}
  join(): void {}
  leave(): void {}
  bufferedAmount(): number { return 0; }
  drained(): Promise<void> { return Promise.resolve(); }
  close(): void { this.closed = true; }
}

let gw: RunningServer;
before(async () => { gw = await startGateway(); });
after(async () => { await gw.close(); });

/** Every frame the gateway answered with must decode, and every ERROR must carry a known code. */
function checkAnswers(frames: Uint8Array[]): number {
  let errors = 0;
  for (const bytes of frames) {
    const f = decodeServerFrame(bytes);
    if (f.type === 11) {
      errors++;
      assert.ok(Object.hasOwn(ErrorCodes, f.code), `undocumented error code ${f.code}`);
      assert.notEqual(f.code, 'internal', `internal error: ${f.message}`);
    }
  }
  return errors;
}

describe(`fuzz (seed ${SEED})`, () => {
  it('50,000 frames in process: no crash, no handler failure, documented codes only', async () => {
    const gen = new FrameFactory(prng(SEED));
    const ctx = { hub: gw.hub, groups: gw.groups, publisher: gw.publisher, held: gw.held, rates: gw.rates, auth: gw.auth, limits: DEFAULT_LIMITS, metrics: gw.metrics, version: 'fuzz' };
    let conn = new FakeConn();
    let session = new Session(conn, ctx);
    let errors = 0;
    const control = await RawClient.connect(gw.url);
    for (let i = 0; i < 50_000; i++) {
      // Most sessions get a HELLO first so the frames reach the handlers behind it.
      if (conn.closed || session.state === 'closed' || i % 500 === 0) {
        errors += checkAnswers(conn.sent);
        session.closed();
        conn = new FakeConn();
        session = new Session(conn, ctx);
        if (gen.rnd() < 0.9) {
          session.receive(encode({ type: 1 }), true);
          await Promise.resolve(); // dev-mode authentication resolves in a microtask
        }
      }
      session.receive(gen.frame(), gen.int(50) !== 0);
      if (i % 5_000 === 4_999) {
        // Let appends commit and subscriptions deliver, then prove the gateway still serves.
        await control.publish(i, 'fz.control', i);
      }
    }
    session.closed();
    errors += checkAnswers(conn.sent);
    assert.ok(errors > 5_000, `fuzzing produced errors (${errors})`);
    assert.equal(gw.metrics.handlerFailures.value, 0);
    const s = await control.subscribe(1, 'fz.control', { from: 1, credit: 100 });
    assert.equal(s.head, 10);
    await control.waitDelivered('fz.control', 10);
    control.close();
  });

  it('3,000 frames over live sockets while a control client keeps working', async () => {
    const gen = new FrameFactory(prng(SEED + 1));
    const control = await RawClient.connect(gw.url);
    await control.subscribe(1, 'fz.live', { credit: 4096 });
    let sock = await RawClient.connect(gw.url);
    let sockets = 1;
    for (let i = 0; i < 3000; i++) {
      if (sock.closeInfo) {
        sock = await RawClient.connect(gw.url);
        sockets++;
      }
      sock.sendRaw(gen.frame(), gen.int(100) !== 0);
      if (i % 100 === 99) {
        await control.publish(i, 'fz.live', i);
        if (!sock.closeInfo) await sock.barrier().catch(() => undefined);
      }
    }
    await control.waitDelivered('fz.live', 30);
    assert.deepEqual(control.delivered('fz.live').map((d) => d.offset), Array.from({ length: 30 }, (_, i) => i + 1));
    assert.equal(gw.metrics.handlerFailures.value, 0);
    assert.ok(sockets > 1, 'some frames were fatal and closed their socket');
    const health = await fetch(`${gw.url}/healthz`);
    assert.equal(health.status, 200);
    control.close();
  });
});
