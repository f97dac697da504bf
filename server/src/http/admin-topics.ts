/**
 * The topic list of the admin API at any topic count: `GET /v1/admin/topics` pages, searches and
 * sorts on the server, and the admin stream carries only the busiest topics (admin.ts).
 *
 * What a node knows of a topic beyond the store — its subscribers there, the rate it sees — is an
 * `ActiveTopic`. A node has one only for topics with subscribers on it or messages in the last
 * second, so gathering them from every node costs what is active, never what is stored.
 *
 * Paging is keyset paging: a cursor is the sort value and name of the last row sent, and the next
 * page starts after it in the same order (ties by name). A topic whose sort value does not change
 * between two requests is therefore listed exactly once across the pages, even while topics are
 * created or removed; one whose value moves (a rate, a head) may be seen twice or not at all, as
 * with any live list. Sorting by `topic` (the default) never moves.
 */
import type { Admin as Wire } from '@sluice/client/protocol';
import type { TopicInfo } from '../log/log.js';

export type TopicRow = Wire.TopicRow;
export type SortKey = Wire.TopicSortKey;

/** A topic's figures on one node (or summed over nodes, see `mergeActive`). */
export interface ActiveTopic {
  topic: string;
  subscribers: number;
  live: number;
  paused: number;
  msgsPerSec: number;
}

export const DEFAULT_PAGE = 1000;
export const MAX_PAGE = 10_000;
const SORT_KEYS: readonly SortKey[] = ['topic', 'head', 'first', 'count', 'bytes', 'subscribers', 'live', 'paused', 'msgsPerSec', 'lastTs'];

export interface TopicQuery {
  limit: number;
  /** Case-insensitive substring of the name ('' matches every topic). */
  q: string;
  sort: SortKey;
  descending: boolean;
  /** Where the page starts: after this row in the sort order. */
  after: { value: number | string; topic: string } | undefined;
}

/** Parses `?limit=&cursor=&q=&sort=`; a string is the `bad-request` message. */
export function parseTopicQuery(params: { limit?: string; cursor?: string; q?: string; sort?: string }): TopicQuery | string {
  let limit = DEFAULT_PAGE;
  if (params.limit) {
    if (!/^\d{1,9}$/.test(params.limit) || Number(params.limit) < 1) return `limit must be a whole number from 1 (at most ${MAX_PAGE} are sent)`;
    limit = Math.min(Number(params.limit), MAX_PAGE);
  }
  const spec = params.sort || 'topic';
  const descending = spec.startsWith('-');
  const sort = (descending ? spec.slice(1) : spec) as SortKey;
  if (!SORT_KEYS.includes(sort)) return `sort must be one of ${SORT_KEYS.join(', ')}, with - before it for descending`;
  let after: TopicQuery['after'];
  if (params.cursor) {
    const decoded = decodeCursor(params.cursor);
    if (!decoded) return 'the cursor is not one this API made: pass the sluice-next-cursor header of the page before';
    if (decoded.spec !== spec) return `the cursor belongs to sort=${decoded.spec}, not sort=${spec}`;
    if (typeof decoded.value !== (sort === 'topic' ? 'string' : 'number')) return 'the cursor is not one this API made';
    after = { value: decoded.value as number | string, topic: decoded.topic };
  }
  return { limit, q: (params.q ?? '').toLowerCase(), sort, descending, after };
}

/** The cursor of a page that ends with `row`: opaque to clients (base64url of JSON). */
export function cursorAfter(query: TopicQuery, row: TopicRow): string {
  const spec = `${query.descending ? '-' : ''}${query.sort}`;
  return Buffer.from(JSON.stringify([spec, row[query.sort], row.topic])).toString('base64url');
}

function decodeCursor(cursor: string): { spec: string; value: unknown; topic: string } | undefined {
  if (cursor.length > 4096 || !/^[\w-]+$/.test(cursor)) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(v) || v.length !== 3 || typeof v[0] !== 'string' || typeof v[2] !== 'string') return undefined;
    return { spec: v[0], value: v[1], topic: v[2] };
  } catch {
    return undefined;
  }
}

/**
 * Merges what each node answered: subscribers summed, the rate the highest any node saw (a node
 * counts the appends it made and those of topics it follows, so a sum could count one twice).
 */
export function mergeActive(answers: readonly (readonly ActiveTopic[])[]): Map<string, ActiveTopic> {
  const out = new Map<string, ActiveTopic>();
  for (const list of answers) {
    for (const a of list) {
      const m = out.get(a.topic);
      if (!m) out.set(a.topic, { ...a });
      else {
        m.subscribers += a.subscribers;
        m.live += a.live;
        m.paused += a.paused;
        m.msgsPerSec = Math.max(m.msgsPerSec, a.msgsPerSec);
      }
    }
  }
  return out;
}

export function rowOf(info: TopicInfo, a: ActiveTopic | undefined): TopicRow {
  return {
    topic: info.topic,
    epoch: info.epoch,
    head: info.head,
    first: info.first,
    count: info.count,
    bytes: info.bytes,
    subscribers: a?.subscribers ?? 0,
    live: a?.live ?? 0,
    paused: a?.paused ?? 0,
    msgsPerSec: a?.msgsPerSec ?? 0,
    lastTs: info.lastTs,
  };
}

/**
 * One page of `infos` (every topic) under `query`, in one pass: O(topics × log limit) comparisons,
 * no copy of the list, rows built for the page only. `total` counts every topic `q` matches.
 */
export function pageOf(infos: Iterable<TopicInfo>, active: ReadonlyMap<string, ActiveTopic>, query: TopicQuery): { rows: TopicRow[]; next: string | undefined; total: number } {
  const { sort, q, after } = query;
  const dir = query.descending ? -1 : 1;
  const value = (i: TopicInfo): number | string => {
    switch (sort) {
      case 'topic': return i.topic;
      case 'subscribers': case 'live': case 'paused': case 'msgsPerSec': return active.get(i.topic)?.[sort] ?? 0;
      default: return i[sort];
    }
  };
  const compare = (av: number | string, at: string, bv: number | string, bt: string): number => {
    const byValue = typeof av === 'string' ? (av < bv ? -1 : av > bv ? 1 : 0) : av - (bv as number);
    return byValue * dir || (at < bt ? -1 : at > bt ? 1 : 0);
  };
  // The first `limit + 1` rows after the cursor (one more tells whether a next page exists).
  const best = new Bounded<{ v: number | string; info: TopicInfo }>(query.limit + 1, (a, b) => compare(a.v, a.info.topic, b.v, b.info.topic));
  // Case-insensitive without a lower-cased copy of every name.
  const match = q ? new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i') : undefined;
  let total = 0;
  for (const info of infos) {
    if (match && !match.test(info.topic)) continue;
    total++;
    const v = value(info);
    if (after && compare(v, info.topic, after.value, after.topic) <= 0) continue;
    // Most topics do not make the page: one comparison with the worst kept, no allocation.
    const worst = best.full ? best.worst : undefined;
    if (worst && compare(v, info.topic, worst.v, worst.info.topic) >= 0) continue;
    best.offer({ v, info });
  }
  const sorted = best.sorted();
  const page = sorted.slice(0, query.limit).map((c) => rowOf(c.info, active.get(c.info.topic)));
  const last = page[page.length - 1];
  return { rows: page, next: sorted.length > query.limit && last ? cursorAfter(query, last) : undefined, total };
}

/**
 * The `size` smallest items offered, by `compare`: a max-heap whose root is the largest kept, so
 * an item that does not belong costs one comparison.
 */
class Bounded<T> {
  private readonly heap: T[] = [];
  constructor(private readonly size: number, private readonly compare: (a: T, b: T) => number) {}

  get full(): boolean {
    return this.heap.length >= this.size;
  }

  /** The largest kept (the first to go). */
  get worst(): T | undefined {
    return this.heap[0];
  }

  offer(item: T): void {
    const { heap, compare } = this;
    if (heap.length < this.size) {
      heap.push(item);
      let i = heap.length - 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (compare(heap[i]!, heap[parent]!) <= 0) break;
        [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
        i = parent;
      }
      return;
    }
    if (compare(item, heap[0]!) >= 0) return;
    heap[0] = item;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let top = i;
      if (l < heap.length && compare(heap[l]!, heap[top]!) > 0) top = l;
      if (r < heap.length && compare(heap[r]!, heap[top]!) > 0) top = r;
      if (top === i) return;
      [heap[i], heap[top]] = [heap[top]!, heap[i]!];
      i = top;
    }
  }

  sorted(): T[] {
    return this.heap.slice().sort(this.compare);
  }
}

/** The busiest of the active topics: by rate, then subscribers, then name; at most `n`. */
export function busiest(active: Iterable<ActiveTopic>, n: number): ActiveTopic[] {
  if (n <= 0) return [];
  const best = new Bounded<ActiveTopic>(n, (a, b) => b.msgsPerSec - a.msgsPerSec || b.subscribers - a.subscribers || (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  for (const a of active) best.offer(a);
  return best.sorted();
}
