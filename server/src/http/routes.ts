/**
 * The router's own list of routes: every pattern registered on the uWS app, with its method, as
 * uWS took it. `server/test/openapi.test.ts` compares it with docs/openapi.json, so a route added
 * to the app without being documented fails a test. (Patterns like `/v1/topics/*` dispatch further
 * inside their handler; the test requests every documented route of them for real.)
 */
import type { TemplatedApp } from 'uWebSockets.js';

export interface RegisteredRoute {
  /** uWS's name of the method: `get`, `post`, `put`, `del`, `patch`, `head`, `options`, `any`, or `ws`. */
  method: string;
  /** The uWS pattern: `/v1/publish`, `/v1/topics/*`, `/v1/admin/connections/:id`. */
  pattern: string;
}

const METHODS = ['get', 'post', 'put', 'del', 'patch', 'head', 'options', 'any', 'ws'] as const;

/** Records every route registered on `app` from now on; the list grows as routes are mounted. */
export function recordRoutes(app: TemplatedApp): readonly RegisteredRoute[] {
  const routes: RegisteredRoute[] = [];
  for (const method of METHODS) {
    const register = app[method] as (pattern: string, ...rest: unknown[]) => TemplatedApp;
    (app as unknown as Record<string, unknown>)[method] = function (this: TemplatedApp, pattern: string, ...rest: unknown[]) {
      routes.push({ method, pattern });
      return register.call(this, pattern, ...rest);
    };
  }
  return routes;
}
