/**
 * The HTTP publish API client side, per the contract in DESIGN.md:
 *   POST /v1/topics/{topic}/messages   body = the payload (raw bytes → binary data),
 *                                      `Idempotency-Key` header; → 201 {offset, epoch, duplicate}
 *   POST /v1/publish                   {"messages":[{"topic","data","key"?}]} → per-message results
 * Requests go over keep-alive connections, `concurrency` of them in flight. A 404 on the route
 * means the gateway has no HTTP API yet.
 */
import { Agent, request } from 'node:http';
import { makePayload, payloadText } from '../payload.js';

export interface HttpRun {
  requests: number;
  messages: number;
  failures: number;
  firstFailure: string;
  seconds: number;
  /** The gateway answered 404 on the route. */
  missing: boolean;
}

interface Reply {
  status: number;
  body: string;
}

function post(agent: Agent, url: URL, path: string, body: Buffer, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({
      agent,
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path,
      headers: { 'content-length': String(body.length), ...headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface HttpPublishOptions {
  baseUrl: string;
  token?: string;
  topic: string;
  /** 1: single-message requests; more: batch requests of this many messages. */
  batch: number;
  keys: boolean;
  concurrency: number;
  durationMs: number;
}

export async function httpPublish(o: HttpPublishOptions): Promise<HttpRun> {
  const url = new URL(o.baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency });
  const auth: Record<string, string> = o.token ? { authorization: `Bearer ${o.token}` } : {};
  let seq = 0;
  let keyN = 0;
  const run: HttpRun = { requests: 0, messages: 0, failures: 0, firstFailure: '', seconds: 0, missing: false };
  const t0 = performance.now();
  const deadline = t0 + o.durationMs;

  const one = async (): Promise<void> => {
    let r: Reply;
    if (o.batch <= 1) {
      const payload = Buffer.from(makePayload(++seq, 0));
      r = await post(agent, url, `/v1/topics/${encodeURIComponent(o.topic)}/messages`, payload, {
        'content-type': 'application/octet-stream',
        ...(o.keys ? { 'idempotency-key': `h${++keyN}` } : {}),
        ...auth,
      });
      if (r.status === 201 || r.status === 200) run.messages++;
    } else {
      const messages = Array.from({ length: o.batch }, () => ({
        topic: o.topic,
        data: payloadText(makePayload(++seq, 0)),
        ...(o.keys ? { key: `b${++keyN}` } : {}),
      }));
      r = await post(agent, url, '/v1/publish', Buffer.from(JSON.stringify({ messages })), { 'content-type': 'application/json', ...auth });
      if (r.status >= 200 && r.status < 300) run.messages += countOk(r.body, o.batch);
    }
    run.requests++;
    if (r.status === 404) run.missing = true;
    if (r.status < 200 || r.status >= 300) {
      run.failures++;
      run.firstFailure ||= `${r.status} ${r.body.slice(0, 200)}`;
    }
  };

  // Probe once: a missing route ends the run at once.
  await one();
  if (!run.missing) {
    await Promise.all(Array.from({ length: o.concurrency }, async () => {
      while (performance.now() < deadline && !run.missing) await one();
    }));
  }
  run.seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  return run;
}

/** Messages of a batch reply that were stored (or were duplicates), whatever the reply's exact shape. */
function countOk(body: string, batch: number): number {
  try {
    type Result = { offset?: number; error?: unknown };
    const r = JSON.parse(body) as { results?: Result[] } | Result[];
    const list = Array.isArray(r) ? r : r.results;
    if (!Array.isArray(list)) return batch;
    return list.filter((x) => x && typeof x === 'object' && x.offset !== undefined && !x.error).length;
  } catch {
    return 0;
  }
}
