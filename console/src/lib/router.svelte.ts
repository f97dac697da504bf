/**
 * Hash routing: #/ (overview), #/topics, #/topics/<name>, #/connections, #/nodes.
 * The console is one static page served at /console, so the hash keeps every URL shareable.
 */
export type Route =
  | { name: 'overview' }
  | { name: 'topics' }
  | { name: 'topic'; topic: string }
  | { name: 'connections' }
  | { name: 'nodes' };

function parse(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  if (path === '/topics') return { name: 'topics' };
  if (path.startsWith('/topics/')) return { name: 'topic', topic: decodeURIComponent(path.slice('/topics/'.length)) };
  if (path === '/connections') return { name: 'connections' };
  if (path === '/nodes') return { name: 'nodes' };
  return { name: 'overview' };
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
    case 'connections': return '#/connections';
    case 'nodes': return '#/nodes';
  }
}
