/**
 * Serves the built console (a static Vite build) at /console.
 *
 * The directory is `--console-dir`, or else the first build found of DEFAULT_CONSOLE_DIRS. Its files
 * are read once at startup into memory (a console build is a few hundred KB): a request is a map
 * lookup, so no request path ever reaches the file system and `..` cannot escape the directory.
 * Restart the gateway to serve a new build.
 *
 * Hashed assets (`assets/…`) are cached for a year; everything else is revalidated. Paths without
 * a file extension fall back to index.html (client-side routes); a missing asset is a 404.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TemplatedApp } from 'uWebSockets.js';
import { logger } from '../logger.js';
import { requestInfo, type HttpBasics } from './context.js';
import { Exchange } from './exchange.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** A console build larger than this is not loaded into memory. */
const MAX_TOTAL_BYTES = 64 * 1024 * 1024;

interface StaticFile {
  type: string;
  body: Buffer;
}

/**
 * Where a console build is looked for without `--console-dir`, in this order: `console/dist` of this
 * repository (server/dist/src/http → repository root), then `console-dist/` of this package — the
 * copy that `prepack` puts into @sluice/server's tarball (scripts/pack.mjs). The repository's build
 * comes first so that a copy left behind by an interrupted pack never shadows a newer build.
 */
export const DEFAULT_CONSOLE_DIRS = [
  fileURLToPath(new URL('../../../../console/dist/', import.meta.url)),
  fileURLToPath(new URL('../../../console-dist/', import.meta.url)),
];

function load(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  let total = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const st = statSync(path);
      if (st.isDirectory()) { walk(path); continue; }
      total += st.size;
      if (total > MAX_TOTAL_BYTES) throw new Error(`console build in ${dir} is larger than ${MAX_TOTAL_BYTES} bytes`);
      const rel = relative(dir, path).split(sep).join('/');
      files.set(rel, { type: TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream', body: readFileSync(path) });
    }
  };
  walk(dir);
  return files;
}

/** Mounts /console; returns the directory served, or undefined when there is no build to serve. */
export function mountConsole(app: TemplatedApp, basics: HttpBasics, configured: string | undefined): string | undefined {
  const { metrics } = basics;
  const dir = configured ?? DEFAULT_CONSOLE_DIRS.find((d) => existsSync(join(d, 'index.html')));
  if (!dir) return undefined;
  if (!existsSync(join(dir, 'index.html'))) {
    logger.error(`no index.html in the console directory ${dir}; /console is not served`);
    return undefined;
  }
  const files = load(dir);
  const index = files.get('index.html')!;

  app.get('/console', (res) => {
    res.writeStatus('301 Moved Permanently').writeHeader('location', '/console/').end();
    metrics.httpRequest('console', 301, 0);
  });
  app.get('/console/*', (res, req) => {
    const ex = new Exchange(res, 'console', metrics, '', requestInfo(res, req, basics));
    let path: string;
    try {
      path = decodeURIComponent(req.getUrl().slice('/console/'.length));
    } catch {
      return ex.error('bad-request', 'undecodable path');
    }
    // Only files of the build are ever served; a path with `..` names none of them.
    const file = path.split('/').includes('..') ? undefined : files.get(path || 'index.html') ?? (extname(path) === '' ? index : undefined);
    if (!file) return ex.error('not-found', `no console file ${path.slice(0, 200)}`);
    ex.send(200, file.type, file.body, {
      'cache-control': path.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      // Admin tokens may ride in EventSource URLs: never leak them in a Referer.
      'referrer-policy': 'no-referrer',
    });
  });
  return dir;
}
