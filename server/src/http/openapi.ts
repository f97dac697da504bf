/**
 * Serves the HTTP API's description, docs/openapi.json, at GET /v1/openapi.json: a client generator
 * or API explorer can read it from the gateway it talks to, at the version that gateway runs.
 *
 * The file is read once at startup (as the console's files are): from the repository's docs/ when
 * the gateway runs from a checkout, else from `openapi.json` of this package — the copy `prepack`
 * puts into @sluice/server's tarball (scripts/pack.mjs). Without either, the route is not mounted
 * (the path answers 404 like any unknown one).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TemplatedApp } from 'uWebSockets.js';
import { begin, type HttpBasics } from './context.js';

export const OPENAPI_ROUTE = '/v1/openapi.json';

/** Where the document is looked for, in this order (server/dist/src/http → repository root, → package root). */
export const DEFAULT_OPENAPI_FILES = [
  fileURLToPath(new URL('../../../../docs/openapi.json', import.meta.url)),
  fileURLToPath(new URL('../../../openapi.json', import.meta.url)),
];

/** Mounts GET /v1/openapi.json; returns the file served, or undefined when there is none. */
export function mountOpenApi(app: TemplatedApp, basics: HttpBasics, files = DEFAULT_OPENAPI_FILES): string | undefined {
  const file = files.find((f) => existsSync(f));
  if (!file) return undefined;
  const body = readFileSync(file);
  app.get(OPENAPI_ROUTE, (res, req) => {
    const ex = begin(res, req, 'openapi', basics);
    if (!ex) return;
    ex.send(200, 'application/json', body, { 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
  });
  return file;
}
