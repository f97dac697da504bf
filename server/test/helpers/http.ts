/**
 * HTTP helpers for gateway tests: a JSON request helper over the real `fetch`, an SSE reader that
 * parses a real event stream as it arrives, and `waitFor`, which polls a condition (for states that
 * have no event to await, e.g. "10,000 requests are parked") — never a fixed sleep.
 * To extend: add small helpers here; keep assertions in the tests.
 */

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** A request; the body is JSON unless `raw` is given. Never throws on an HTTP error status. */
export async function api<T = any>(
  base: string,
  path: string,
  opts: { method?: string; json?: unknown; raw?: BodyInit; headers?: Record<string, string>; token?: string; signal?: AbortSignal } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: BodyInit | undefined = opts.raw;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  }
  const init: RequestInit = { method: opts.method ?? (body === undefined ? 'GET' : 'POST'), headers };
  if (body !== undefined) init.body = body;
  if (opts.signal) init.signal = opts.signal;
  const res = await fetch(base + path, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** Polls `cond` every few ms until it holds; throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/** Reads a text/event-stream response with fetch, parsing events per the HTML spec as they arrive. */
export class SseReader {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  ended = false;
  private readPos = 0;
  private waiters: (() => void)[] = [];
  private buffer = '';
  private constructor(readonly status: number, readonly headers: Headers, private readonly abort: AbortController) {}

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const abort = new AbortController();
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
    const r = new SseReader(res.status, res.headers, abort);
    if (res.status !== 200 || !res.body) {
      r.errorBody = await res.text();
      r.ended = true;
      return r;
    }
    void r.pump(res.body);
    return r;
  }

  errorBody = '';

  /** The next event (after those already taken) that matches. */
  async next(match: (e: SseEvent) => boolean = () => true, timeoutMs = 10_000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.readPos < this.events.length) {
        const e = this.events[this.readPos++]!;
        if (match(e)) return e;
      }
      if (this.ended) throw new Error('event stream ended while waiting');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for an event; last: ${JSON.stringify(this.events.slice(-2))}`);
      await this.changed(left);
    }
  }

  /** Messages (default events) received so far, parsed. */
  messages(): { offset: number; data: unknown; id: string | undefined }[] {
    return this.events.filter((e) => e.event === 'message').map((e) => ({ ...(JSON.parse(e.data) as { offset: number; data: unknown }), id: e.id }));
  }

  async waitMessages(count: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages().length < count) {
      if (this.ended) throw new Error(`stream ended after ${this.messages().length} of ${count} messages`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`got ${this.messages().length} of ${count} messages`);
      await this.changed(left);
    }
  }

  /** Resolves when the stream ended (server closed it). */
  async untilEnded(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('stream did not end');
      await this.changed(left);
    }
  }

  close(): void {
    this.abort.abort();
  }

  private changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => { clearTimeout(t); resolve(); });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async pump(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let event = { event: '', id: undefined as string | undefined, data: [] as string[] };
    const reader = body.getReader();
    try {
      for (;;) {
        const { value: chunk, done } = await reader.read();
        if (done) break;
        this.buffer += decoder.decode(chunk, { stream: true });
        const parts = this.buffer.split(/\r\n|\r|\n/);
        this.buffer = parts.pop()!;
        for (const line of parts) {
          if (line === '') {
            if (event.data.length > 0) this.events.push({ event: event.event || 'message', id: event.id, data: event.data.join('\n') });
            event = { event: '', id: event.id, data: [] };
            continue;
          }
          if (line.startsWith(':')) { this.comments.push(line.slice(1).trim()); continue; }
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'event') event.event = value;
          else if (field === 'data') event.data.push(value);
          else if (field === 'id') event.id = value;
        }
        this.wake();
      }
    } catch {
      // aborted by close() or the server
    }
    this.ended = true;
    this.wake();
  }
}
