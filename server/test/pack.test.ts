/**
 * The packages as npm would publish them: `npm pack` of @sluice/client and @sluice/server, both
 * tarballs installed into an empty project (with `ws` and the @types TypeScript needs), and then,
 * from that project only:
 * - the tarballs hold what they must (LICENSE, README, the built code, its sources, the console,
 *   docs/openapi.json);
 * - every source map resolves (a file shipped next to it, or `sourcesContent`);
 * - TypeScript with `moduleResolution: node10` resolves every entry point, and the READMEs' `run`
 *   examples type-check against the packages (strict, skipLibCheck off);
 * - `npx sluice serve` starts, answers /healthz, serves the console and /v1/openapi.json, and the installed SDK does a
 *   publish/subscribe round trip over `ws`.
 *
 * npm installs from its cache (`--prefer-offline`); a cold cache fetches from the registry, which is
 * the slow part (the duration is printed). npm runs without the npm_* variables of an enclosing
 * `npm test`, so it treats the project as the root it is.
 *
 * The gateway runs under npx in its own process group, stopped through the group leader's PID
 * (npx does not outlive its gateway, nor the gateway npx, that way). If this test process is
 * SIGKILLed, npx dies with it (setpriv's parent-death signal), but the gateway it started may not:
 * a memory-store gateway on a free port, found by `pgrep -f sluice-pack-`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../src/testing.js';
import { ownedTempDir } from './helpers/processes.js';
import { examples, READMES, REPO } from './helpers/readme.js';

const NPM_TIMEOUT_MS = 240_000;
const SETPRIV = '/usr/bin/setpriv';

interface Run { code: number | null; stdout: string; stderr: string; ms: number }

/** This environment without npm's lifecycle variables (keeping where the cache and config are). */
function npmEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_registry']);
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_') || keep.has(k.toLowerCase())));
}

/** Runs a command to completion (killed, by its PID, after `timeoutMs`). */
function exec(command: string, args: string[], cwd: string, timeoutMs: number): Promise<Run> {
  const started = Date.now();
  const proc = spawn(command, args, { cwd, env: npmEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  return new Promise((done) => {
    proc.once('error', (err) => { clearTimeout(timer); done({ code: -1, stdout, stderr: stderr + String(err), ms: Date.now() - started }); });
    proc.once('close', (code) => { clearTimeout(timer); done({ code, stdout, stderr, ms: Date.now() - started }); });
  });
}

function ok(r: Run, what: string): Run {
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

interface Packed { filename: string; size: number; unpackedSize: number; files: { path: string }[] }

async function pack(dir: string, dest: string): Promise<Packed> {
  const r = ok(await exec('npm', ['pack', '--json', '--pack-destination', dest], join(REPO, dir), NPM_TIMEOUT_MS), `npm pack in ${dir}`);
  const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as Packed[];
  console.log(`# ${info!.filename}: ${(info!.size / 1000).toFixed(1)} kB packed, ${(info!.unpackedSize / 1000).toFixed(1)} kB unpacked, ${info!.files.length} files`);
  return info!;
}

/** The version of a package installed in the repository, so the project's install hits npm's cache. */
function repoVersion(name: string): string {
  return (JSON.parse(readFileSync(join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const ROUND_TRIP = `
import { createClient, createPublisher } from '@sluice/client';
import { FrameType } from '@sluice/client/protocol';
import { mintToken } from '@sluice/client/token';
import * as browser from '@sluice/client/browser';
import WebSocket from 'ws';

const url = process.argv[2];
const client = createClient({ url, WebSocket });
const sub = client.subscribe('pack.round-trip', { from: 1 });
const ws = await client.publish('pack.round-trip', { via: 'ws' });
const http = await createPublisher({ url }).publish('pack.round-trip', { via: 'http' });
const got = [];
for await (const msg of sub) {
  got.push([msg.offset, msg.data]);
  if (got.length === 2) break;
}
client.close();
const token = await mintToken({ key: 'a secret of at least 32 bytes, for HS256', sub: 'me' });
console.log(JSON.stringify({ ws, http: { offset: http.offset, duplicate: http.duplicate }, got,
  ping: FrameType.PING, token: token.split('.').length, browser: typeof browser.createClient }));
`;

/** Every entry point, as a TypeScript user imports them. */
const CONSUMER = `
import { createClient, type Message } from '@sluice/client';
import { mintToken } from '@sluice/client/token';
import { FrameType } from '@sluice/client/protocol';
import { subscriptionStore } from '@sluice/client/svelte';
import { createClient as fromBundle } from '@sluice/client/browser';
import { loadConfig, startServer, type RunningServer } from '@sluice/server';
import { spawnGateway, type GatewayProcess } from '@sluice/server/testing';
import WebSocket from 'ws';

export const used = [createClient, mintToken, FrameType.PING, subscriptionStore, fromBundle, loadConfig, startServer, spawnGateway, WebSocket];
export type Used = [Message<{ n: number }>, RunningServer, GatewayProcess];
`;

let tmp: string;
let project: string;
let client: Packed;
let server: Packed;
let install: Run;
let typecheck: Promise<Run>;
let gateway: ChildProcess | undefined;

/** Stops the gateway's process group (npx and the gateway under it) by the group leader's PID. */
function stopGroup(signal: NodeJS.Signals): void {
  if (gateway?.pid !== undefined && gateway.exitCode === null && gateway.signalCode === null) {
    try { process.kill(-gateway.pid, signal); } catch { /* already gone */ }
  }
}

before(async () => {
  tmp = ownedTempDir('sluice-pack-');
  project = join(tmp, 'project');
  mkdirSync(project);
  client = await pack('client-sdk', tmp);
  server = await pack('server', tmp);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'sluice-pack-test', private: true, type: 'module' }));
  install = ok(await exec('npm', ['install', join(tmp, client.filename), join(tmp, server.filename),
    `ws@${repoVersion('ws')}`, `@types/ws@${repoVersion('@types/ws')}`, `@types/node@${repoVersion('@types/node')}`,
    '--prefer-offline', '--no-audit', '--no-fund'], project, NPM_TIMEOUT_MS), 'npm install of the tarballs');
  console.log(`# npm install of both tarballs: ${(install.ms / 1000).toFixed(1)} s`);

  // Type-check while the gateway tests run: node10 resolution, every entry, the README examples.
  const files = ['consumer.ts'];
  writeFileSync(join(project, 'consumer.ts'), CONSUMER);
  for (const readme of READMES) {
    for (const ex of examples(readme)) {
      if (ex.lang !== 'ts') continue;
      const name = `readme-${ex.where.replace(/[^A-Za-z0-9]+/g, '-')}.ts`;
      writeFileSync(join(project, name), `// ${ex.where}\n${ex.code}`);
      files.push(name);
    }
  }
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'esnext', moduleResolution: 'node10', esModuleInterop: true, target: 'es2022', lib: ['es2022', 'dom'],
      strict: true, noEmit: true, skipLibCheck: false, types: ['node'],
    },
    files,
  }));
  typecheck = exec(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project, NPM_TIMEOUT_MS);
});

after(() => {
  stopGroup('SIGKILL');
});
process.once('exit', () => stopGroup('SIGKILL'));

describe('npm pack → npm install → npx sluice', { timeout: 2 * NPM_TIMEOUT_MS }, () => {
  it('the tarballs hold LICENSE, README, the built code, its sources and (server) the console — no tests', () => {
    const has = (p: Packed, path: string) => p.files.some((f) => f.path === path);
    for (const path of ['LICENSE', 'README.md', 'package.json', 'STATES.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/protocol/index.js',
      'dist/src/token.js', 'dist/browser/sluice.min.js', 'dist/browser/sluice.min.js.map', 'src/index.ts', 'src/protocol/vectors.json', 'src/protocol/PROTOCOL.md']) {
      assert.ok(has(client, path), `@sluice/client lacks ${path}`);
    }
    for (const path of ['LICENSE', 'README.md', 'package.json', 'bin/sluice.js', 'dist/src/cli.js', 'dist/src/index.d.ts', 'dist/src/testing.js',
      'src/cli.ts', 'console-dist/index.html', 'openapi.json']) {
      assert.ok(has(server, path), `@sluice/server lacks ${path}`);
    }
    for (const p of [client, server]) {
      assert.deepEqual(p.files.filter((f) => /(^|\/)test\//.test(f.path) || f.path.endsWith('.tsbuildinfo')).map((f) => f.path), []);
    }
    assert.ok(server.files.some((f) => /^console-dist\/assets\/.+\.js$/.test(f.path)), 'the console build has its script');
    assert.equal(existsSync(join(REPO, 'server/console-dist')), false, 'postpack removed the console copy from the repository');
    assert.equal(existsSync(join(REPO, 'server/openapi.json')), false, 'postpack removed the openapi.json copy from the repository');
    assert.equal(readFileSync(join(REPO, 'LICENSE'), 'utf8'), readFileSync(join(REPO, 'client-sdk/LICENSE'), 'utf8'));
    assert.equal(readFileSync(join(REPO, 'LICENSE'), 'utf8'), readFileSync(join(REPO, 'server/LICENSE'), 'utf8'));
  });

  it('installed: MIT, engines, repository, public, types at the top; ws an optional peer; the bin linked', () => {
    for (const name of ['@sluice/client', '@sluice/server']) {
      const dir = join(project, 'node_modules', name);
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(pkg.license, 'MIT');
      assert.match(readFileSync(join(dir, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) \d{4} The Sluice authors\n/);
      assert.match(readFileSync(join(dir, 'README.md'), 'utf8'), /\(\.\.\/README\.md\)/, `${name}'s README links the root README`);
      assert.ok((pkg.engines as { node?: string }).node, `${name} has engines.node`);
      assert.ok((pkg.repository as { url?: string }).url, `${name} has a repository`);
      assert.deepEqual(pkg.publishConfig, { access: 'public' });
      assert.ok(existsSync(join(dir, pkg.types as string)), `${name}'s types exist`);
    }
    const clientPkg = JSON.parse(readFileSync(join(project, 'node_modules/@sluice/client/package.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    assert.deepEqual([clientPkg.peerDependencies!.ws !== undefined, clientPkg.peerDependenciesMeta!.ws], [true, { optional: true }]);
    assert.ok(existsSync(join(project, 'node_modules/.bin/sluice')), 'node_modules/.bin/sluice');
  });

  it('every source map resolves: its sources are shipped next to it or carried in sourcesContent', () => {
    let maps = 0;
    for (const name of ['@sluice/client', '@sluice/server']) {
      for (const file of walk(join(project, 'node_modules', name)).filter((f) => f.endsWith('.map'))) {
        maps++;
        const map = JSON.parse(readFileSync(file, 'utf8')) as { sources: string[]; sourceRoot?: string; sourcesContent?: (string | null)[] };
        map.sources.forEach((source, i) => {
          if (map.sourcesContent?.[i]) return;
          const path = resolve(dirname(file), map.sourceRoot ?? '', source);
          assert.ok(existsSync(path), `${file.slice(project.length + 1)}: source ${source} is neither shipped nor inlined`);
        });
      }
    }
    assert.ok(maps > 100, `only ${maps} maps`);
  });

  it('npx sluice serve: /healthz, the console from the package, and a publish/subscribe round trip with the installed SDK over ws', async () => {
    const port = await freePort();
    const args = ['sluice', 'serve', '--host', '127.0.0.1', '--port', String(port), '--store', 'memory'];
    gateway = existsSync(SETPRIV)
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', 'npx', ...args], { cwd: project, env: npmEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('npx', args, { cwd: project, env: npmEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    gateway.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    gateway.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<void>((done) => gateway!.once('exit', () => done()));
    const listening = await new Promise<boolean>((done) => {
      const timer = setTimeout(() => done(false), 60_000);
      gateway!.stdout!.on('data', () => { if (out.includes('sluice listening on')) { clearTimeout(timer); done(true); } });
      void exited.then(() => { clearTimeout(timer); done(false); });
    });
    assert.ok(listening, `npx sluice serve did not start:\n${out}`);
    const url = `http://127.0.0.1:${port}`;
    try {
      assert.match(out, new RegExp(`console at ${url}/console/ \\(from ${project}/node_modules/@sluice/server/console-dist/\\)`));
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      // The HTTP API's description, from the package (the project has no docs/ of the repository).
      const spec = await fetch(`${url}/v1/openapi.json`);
      assert.equal(spec.status, 200);
      assert.deepEqual(await spec.json(), JSON.parse(readFileSync(join(REPO, 'docs/openapi.json'), 'utf8')));
      assert.deepEqual(JSON.parse(readFileSync(join(project, 'node_modules/@sluice/server/openapi.json'), 'utf8')), JSON.parse(readFileSync(join(REPO, 'docs/openapi.json'), 'utf8')));
      const index = await fetch(`${url}/console/`);
      assert.equal(index.status, 200);
      assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
      const html = await index.text();
      const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
      assert.ok(script, `no script in the console's index.html:\n${html}`);
      assert.equal((await fetch(`${url}/console/${script}`)).status, 200);

      writeFileSync(join(project, 'round-trip.mjs'), ROUND_TRIP);
      const r = ok(await exec(process.execPath, ['round-trip.mjs', url], project, 30_000), 'the round trip with the installed SDK');
      assert.deepEqual(JSON.parse(r.stdout), {
        ws: { offset: 1, duplicate: false },
        http: { offset: 2, duplicate: false },
        got: [[1, { via: 'ws' }], [2, { via: 'http' }]],
        ping: 12,
        token: 3,
        browser: 'function',
      });
      assert.equal(r.stderr, '');
    } finally {
      stopGroup('SIGTERM');
      const timer = setTimeout(() => stopGroup('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  });

  it('TypeScript (moduleResolution node10, strict, skipLibCheck off) resolves every entry point and type-checks the README examples', async () => {
    const r = await typecheck;
    console.log(`# tsc over the installed packages: ${(r.ms / 1000).toFixed(1)} s`);
    assert.equal(r.code, 0, `tsc:\n${r.stdout}${r.stderr}`);
  });
});
