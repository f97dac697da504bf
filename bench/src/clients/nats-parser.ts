/**
 * A streaming parser for what a NATS server sends (the core text protocol): INFO, MSG, HMSG, PING,
 * PONG, +OK and -ERR. Over WebSocket the server writes its output buffer as frames, and a message
 * may span two frames, so the parser keeps the unfinished tail and continues with the next chunk.
 *
 * Lean by design: a MSG's payload is handed out as a view into the received bytes, and its control
 * line is turned into a string only when the caller needs the subject or reply.
 */

export interface NatsHandler {
  /** `payload` is valid only during the call. `reply` is '' when the message has none. */
  msg(sid: number, reply: string, payload: Uint8Array, headers: Uint8Array | undefined): void;
  ping(): void;
  pong(): void;
  info(json: string): void;
  err(text: string): void;
}

const CR = 13;
const SPACE = 32;
const MAX_FIELDS = 6;
const spaces = new Int32Array(MAX_FIELDS);

function digits(b: Uint8Array, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * 10 + (b[i]! - 48);
  return v;
}

export class NatsParser {
  private rest: Buffer | undefined;

  constructor(private readonly h: NatsHandler) {}

  feed(chunk: Buffer): void {
    let b = chunk;
    if (this.rest) {
      b = Buffer.concat([this.rest, chunk]);
      this.rest = undefined;
    }
    let pos = 0;
    const len = b.length;
    while (pos < len) {
      const eol = b.indexOf(CR, pos);
      if (eol < 0 || eol + 1 >= len) break; // control line not complete
      const c0 = b[pos]!;
      if (c0 === 77 /* M */ || c0 === 72 /* H */) {
        const hmsg = c0 === 72;
        // MSG <subject> <sid> [reply] <size> / HMSG <subject> <sid> [reply] <hdr> <total>
        let n = 0;
        for (let i = pos; i < eol && n < MAX_FIELDS; i++) if (b[i] === SPACE) spaces[n++] = i;
        const total = digits(b, spaces[n - 1]! + 1, eol);
        const hdr = hmsg ? digits(b, spaces[n - 2]! + 1, spaces[n - 1]!) : 0;
        const nArgs = n - (hmsg ? 2 : 1); // subject, sid and maybe reply
        const sid = digits(b, spaces[1]! + 1, spaces[2]!);
        const reply = nArgs === 3 ? b.toString('latin1', spaces[2]! + 1, spaces[3]!) : '';
        const start = eol + 2;
        if (start + total + 2 > len) break; // payload not complete
        const headers = hmsg ? b.subarray(start, start + hdr) : undefined;
        this.h.msg(sid, reply, b.subarray(start + hdr, start + total), headers);
        pos = start + total + 2;
        continue;
      }
      if (c0 === 80 /* P */) {
        if (b[pos + 1] === 73 /* I */) this.h.ping();
        else this.h.pong();
      } else if (c0 === 73 /* I */) {
        this.h.info(b.toString('utf8', b.indexOf(SPACE, pos) + 1, eol));
      } else if (c0 === 45 /* - */) {
        this.h.err(b.toString('utf8', pos, eol));
      }
      // +OK and anything unknown: skipped
      pos = eol + 2;
    }
    if (pos < len) this.rest = Buffer.from(b.subarray(pos));
  }
}

/** The CONNECT the bench sends: no echo of its own messages, headers on (JetStream status). */
export const CONNECT = `CONNECT ${JSON.stringify({
  verbose: false,
  pedantic: false,
  tls_required: false,
  lang: 'sluice-bench',
  version: '0.1.0',
  protocol: 1,
  headers: true,
  no_responders: true,
  echo: false,
})}\r\n`;
