/**
 * The golden vectors (`src/protocol/vectors.json`, shipped as `@sluice/client/protocol/vectors.json`):
 * the executable spec a client in any language can check itself against. Here both decoders must
 * give each valid vector's frame and refuse each invalid one exactly as stated, and the encoder must
 * reproduce the bytes of every vector marked canonical (and only those). Format: PROTOCOL.md.
 *
 * A client vector states what the gateway does with the frame. For a PUB that is the decoder's
 * shape checks and then the message rules every publish meets (`checkMessage`, applied by the
 * gateway's publish service to every transport; on the WebSocket a `bad-request` fault is answered
 * as `bad-frame`), with the headers as the gateway stores them.
 *
 * To extend: add a line to vectors.json (by hand; the expected result is the spec, never the output
 * of this codec pasted back), then run this test.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import {
  checkMessage,
  decodeClientFrame,
  MessageFault,
  type EncodedClientFrame,
  decodeServerFrame,
  decodeValue,
  encode,
  FrameError,
  FrameType,
  PROTOCOL_VERSION,
  type Frame,
} from '../src/protocol/index.js';

interface Vector {
  name: string;
  hex: string;
  maxFrame?: number;
  frame?: Record<string, unknown>;
  canonical?: boolean;
  error?: { code: string; fatal?: boolean; id?: number; re?: number };
}

// Through the package's exports map, as a user of the package would load it.
const file = createRequire(import.meta.url).resolve('@sluice/client/protocol/vectors.json');
const vectors = JSON.parse(readFileSync(file, 'utf8')) as { protocol: string; client: Vector[]; server: Vector[] };

const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** A decoded value in the vectors' JSON convention: bytes become {"$bin": hex}, undefined fields go. */
function toJson(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $bin: hexOf(v) };
  if (Array.isArray(v)) return v.map(toJson);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toJson(x);
    return out;
  }
  return v;
}

/** The inverse: {"$bin": hex} (that key alone) becomes bytes. */
function fromJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromJson);
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === '$bin') return bytes(o.$bin as string);
    return Object.fromEntries(keys.map((k) => [k, fromJson(o[k])]));
  }
  return v;
}

/** The frame a sender would encode: a client PUB's data and headers are values, not their bytes. */
function sendable(frame: Record<string, unknown>): Frame {
  const f = fromJson(frame) as Record<string, unknown>;
  if (f.type === FrameType.PUB) {
    f.data = decodeValue(f.data as Uint8Array);
    if (f.headers !== undefined) f.headers = decodeValue(f.headers as Uint8Array);
  }
  return f as unknown as Frame;
}

/** A client frame as the gateway takes it: a PUB also meets the message rules (see the header). */
function asGateway(f: EncodedClientFrame): EncodedClientFrame {
  if (f.type !== FrameType.PUB) return f;
  const checked = checkMessage(f.data, f.key, f.headers, { orderingKey: f.orderingKey, priority: f.priority });
  if (checked instanceof MessageFault) {
    throw new FrameError(checked.code === 'bad-request' ? 'bad-frame' : checked.code, checked.message, f.reqId, false, FrameType.PUB);
  }
  const out: EncodedClientFrame = { ...f };
  delete out.headers;
  if (checked.headers) out.headers = checked.headers;
  return out;
}

function thrown(fn: () => unknown): FrameError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof FrameError, `expected FrameError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the frame to be refused');
}

describe('golden vectors', () => {
  it('are for this protocol version, with unique names, covering every frame type both ways', () => {
    assert.equal(vectors.protocol, PROTOCOL_VERSION);
    for (const list of [vectors.client, vectors.server]) {
      assert.equal(new Set(list.map((v) => v.name)).size, list.length, 'names are unique on each side');
    }
    const all = [...vectors.client, ...vectors.server];
    const types = (list: Vector[]) => new Set(list.filter((v) => v.frame).map((v) => v.frame!.type));
    assert.deepEqual([...types(vectors.client)].sort((a, b) => Number(a) - Number(b)), [1, 3, 5, 7, 8, 12, 13, 16, 17, 20]);
    assert.deepEqual([...types(vectors.server)].sort((a, b) => Number(a) - Number(b)), [2, 4, 6, 9, 10, 11, 12, 13, 14, 15, 18, 19, 21]);
    for (const v of all) assert.ok((v.frame === undefined) !== (v.error === undefined), `${v.name}: a frame or an error`);
  });

  for (const side of ['client', 'server'] as const) {
    const decode = side === 'client'
      ? (v: Vector) => asGateway(decodeClientFrame(bytes(v.hex), v.maxFrame))
      : (v: Vector) => decodeServerFrame(bytes(v.hex));

    it(`${side} frames decode to the stated frame`, () => {
      for (const v of vectors[side].filter((x) => x.frame)) {
        assert.deepEqual(toJson(decode(v)), v.frame, v.name);
      }
    });

    it(`${side} frames are refused as stated`, () => {
      for (const v of vectors[side].filter((x) => x.error)) {
        const err = thrown(() => decode(v));
        const got = side === 'client' ? { code: err.code, fatal: err.fatal, id: err.id, re: err.re } : { code: err.code };
        assert.deepEqual(got, v.error, `${v.name}: ${err.message}`);
      }
    });

    it(`${side} frames: the encoder reproduces every canonical vector and only those`, () => {
      for (const v of vectors[side].filter((x) => x.frame)) {
        const same = hexOf(encode(sendable(v.frame!))) === v.hex;
        assert.equal(same, v.canonical, `${v.name}: ${v.canonical ? 'encoded differently' : 'marked non-canonical but encodes the same'}`);
      }
    });
  }
});
