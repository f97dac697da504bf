/**
 * A one-shot Redis client for the test harness: open a connection, (AUTH,) send one command, read
 * its reply, close. It exists so helpers can poll PING / INFO / CLUSTER / SENTINEL many times a
 * second with structured replies and real error replies, without spawning a redis-cli each time
 * and without adding a Redis client dependency to the repository.
 *
 * It speaks RESP2 only (what a fresh connection gets without HELLO) and is not a driver: no
 * pipelining beyond the AUTH prefix, no pooling, no cluster redirects. Tests of the gateway's Redis
 * store use the store's own client; this is for driving and observing the servers around it.
 * To extend: add a reply type to `parse` only if a command the harness needs returns it.
 */
import { connect } from 'node:net';

/** A RESP2 reply: simple and bulk strings as strings, integers as numbers, nil as null. */
export type Reply = string | number | null | Reply[];

export interface RedisAddress {
  host: string;
  port: number;
}

/** An error reply (`-ERR …`, `-LOADING …`); `code` is its first word. */
export class RedisReplyError extends Error {
  override name = 'RedisReplyError';
  readonly code: string;
  constructor(message: string) {
    super(message);
    this.code = message.split(' ', 1)[0] ?? '';
  }
}

export interface CallOptions {
  password?: string | undefined;
  /** Bound on connect + reply (default 2 s). */
  timeoutMs?: number;
}

export function redisCall(addr: RedisAddress, args: (string | number)[], opts: CallOptions = {}): Promise<Reply> {
  const commands = opts.password === undefined ? [args] : [['AUTH', opts.password], args];
  return new Promise((resolve, reject) => {
    const sock = connect(addr.port, addr.host);
    const what = `${addr.host}:${addr.port} ${String(args[0])}`;
    sock.setTimeout(opts.timeoutMs ?? 2_000, () => sock.destroy(new Error(`no reply within ${opts.timeoutMs ?? 2_000} ms`)));
    let buf = Buffer.alloc(0);
    const replies: (Reply | RedisReplyError)[] = [];
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        for (;;) {
          const parsed = parse(buf, 0);
          if (!parsed) break;
          replies.push(parsed.value);
          buf = buf.subarray(parsed.end);
        }
      } catch (err) {
        sock.destroy(err as Error);
        return;
      }
      if (replies.length < commands.length) return;
      sock.destroy();
      const failed = replies.find((r) => r instanceof RedisReplyError);
      if (failed) reject(failed);
      else resolve(replies[replies.length - 1] as Reply);
    });
    sock.on('error', (err) => reject(new Error(`${what}: ${err.message}`)));
    sock.on('close', () => reject(new Error(`${what}: connection closed before the reply`)));
    sock.write(commands.map(encode).join(''));
  });
}

function encode(args: (string | number)[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('');
}

type Parsed = { value: Reply | RedisReplyError; end: number } | undefined;

/** One reply starting at `pos`, or undefined when `buf` does not hold all of it yet. */
function parse(buf: Buffer, pos: number): Parsed {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return undefined;
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  switch (String.fromCharCode(buf[pos]!)) {
    case '+': return { value: line, end: next };
    case '-': return { value: new RedisReplyError(line), end: next };
    case ':': return { value: Number(line), end: next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return undefined;
      return { value: buf.toString('utf8', next, next + len), end: next + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const items: Reply[] = [];
      let at = next;
      for (let i = 0; i < n; i++) {
        const item = parse(buf, at);
        if (!item) return undefined;
        // An error inside an array (e.g. EXEC) is kept as its text; the harness never needs more.
        items.push(item.value instanceof RedisReplyError ? item.value.message : item.value);
        at = item.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new Error(`unexpected RESP type byte ${buf[pos]} in ${JSON.stringify(buf.toString('utf8', pos, Math.min(buf.length, pos + 40)))}`);
  }
}

/** `INFO`-style text (`key:value` lines, `#` headers) as a map. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

/** A flat `[field, value, field, value, …]` reply (SENTINEL MASTER, REPLICAS) as an object. */
export function fieldsOf(reply: Reply): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
  return out;
}
