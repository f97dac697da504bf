/**
 * Hash routing: #/ (overview), #/topics, #/topics/<name>, #/topics/<name>/trace/<offset>,
 * #/connections, #/nodes. The console is one static page served at /console, so the hash keeps
 * every URL shareable. A URL that names no page, or a topic that breaks the naming rules, or does
 * not decode, is a `not-found` route with the reason: the page says so instead of going blank.
 */
import { topicError } from '@sluice/client/protocol';

export type Route =
  | { name: 'overview' }
  | { name: 'topics' }
  | { name: 'topic'; topic: string }
  | { name: 'trace'; topic: string; offset: number }
  | { name: 'connections' }
  | { name: 'nodes' }
  | { name: 'not-found'; kind: NotFoundKind; reason: string };

/** What in the URL is wrong: the topic's name, a trace's offset, or the whole path. */
export type NotFoundKind = 'topic' | 'offset' | 'page';

/** A topic from the URL, or why it is not one. */
function topicOf(raw: string): { topic: string } | { kind: 'topic'; reason: string } {
  let topic: string;
  try {
    topic = decodeURIComponent(raw);
  } catch {
    return { kind: 'topic', reason: `“${raw}” is not a valid URL encoding.` };
  }
  const invalid = topicError(topic, { allowReserved: true });
  return invalid ? { kind: 'topic', reason: `“${topic}”: ${invalid}.` } : { topic };
}

export function parse(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  if (path === '/') return { name: 'overview' };
  if (path === '/topics' || path === '/topics/') return { name: 'topics' };
  if (path === '/connections') return { name: 'connections' };
  if (path === '/nodes') return { name: 'nodes' };
  // The console's links encode a topic's `/`, so a raw `/trace/<n>` after one segment is a trace.
  const trace = /^\/topics\/([^/]+)\/trace\/([^/]*)$/.exec(path);
  if (trace) {
    const t = topicOf(trace[1]!);
    if (!('topic' in t)) return { name: 'not-found', ...t };
    const offset = /^[1-9]\d{0,15}$/.test(trace[2]!) ? Number(trace[2]) : NaN;
    if (!Number.isSafeInteger(offset)) return { name: 'not-found', kind: 'offset', reason: `“${trace[2]}” is not an offset: offsets are whole numbers from 1.` };
    return { name: 'trace', topic: t.topic, offset };
  }
  if (path.startsWith('/topics/')) {
    const t = topicOf(path.slice('/topics/'.length));
    return 'topic' in t ? { name: 'topic', topic: t.topic } : { name: 'not-found', ...t };
  }
  return { name: 'not-found', kind: 'page', reason: `The console has no page at “${path}”.` };
}

class Router {
  route = $state<Route>(parse(location.hash));
  constructor() {
    addEventListener('hashchange', () => { this.route = parse(location.hash); });
  }
}

export const router = new Router();

export function href(route: Route): string {
  switch (route.name) {
    case 'overview': return '#/';
    case 'topics': return '#/topics';
    case 'topic': return `#/topics/${encodeURIComponent(route.topic)}`;
    case 'trace': return `#/topics/${encodeURIComponent(route.topic)}/trace/${route.offset}`;
    case 'connections': return '#/connections';
    case 'nodes': return '#/nodes';
    case 'not-found': return '#/';
  }
}
