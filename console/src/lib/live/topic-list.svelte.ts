/**
 * TopicList: one page of the topics table, searched, sorted and paged by the gateway
 * (`GET /v1/admin/topics`), refreshed every two seconds while shown. The console never holds more than
 * a page, whatever the topic count.
 *
 * Paging is by cursor: `cursors[i]` starts page i (undefined for the first), so Previous goes back
 * to a cursor already seen. Changing the search or the order starts again at page 1. A response
 * that arrives after a newer request was made is dropped (`seq`); the timer's refresh is skipped
 * while a request is out, so a slow gateway still gets its answers shown.
 */
import { ApiError } from '../api/http.js';
import { listTopics, type TopicRow, type TopicSortKey } from '../api/topics.js';

export const PAGE_SIZE = 50;
/**
 * Each refresh reads every topic on the gateway (tens of ms at 100,000 topics, see bench/README.md),
 * so an open Topics page refreshes every 2 s, and not at all while its tab is hidden.
 */
const REFRESH_MS = 2000;
const SEARCH_DEBOUNCE_MS = 200;

export class TopicList {
  rows = $state<TopicRow[]>([]);
  /** Topics the search matches, over every page. */
  total = $state(0);
  /** 0-based page shown. */
  page = $state(0);
  hasNext = $state(false);
  query = $state('');
  sort = $state<TopicSortKey>('lastTs');
  descending = $state(true);
  status = $state<'loading' | 'ready' | 'error'>('loading');
  error = $state('');
  private cursors: (string | undefined)[] = [undefined];
  private next: string | undefined;
  private seq = 0;
  private loading = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private debounce: ReturnType<typeof setTimeout> | undefined;

  start(): void {
    this.stop();
    void this.load();
    // A refresh waits for the request before it (a slow gateway is not asked twice at once).
    this.timer = setInterval(() => { if (!this.loading && !document.hidden) void this.load(); }, REFRESH_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
    this.timer = undefined;
    this.debounce = undefined;
  }

  /** A new search, sent once typing pauses. */
  search(q: string): void {
    this.query = q;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.restart(), SEARCH_DEBOUNCE_MS);
  }

  /** Orders by `key`; the same key again flips the direction. Names ascend first, figures descend. */
  sortBy(key: TopicSortKey): void {
    if (this.sort === key) this.descending = !this.descending;
    else {
      this.sort = key;
      this.descending = key !== 'topic';
    }
    this.restart();
  }

  nextPage(): void {
    if (!this.hasNext) return;
    this.cursors[this.page + 1] = this.next;
    this.page++;
    void this.load();
  }

  previousPage(): void {
    if (this.page === 0) return;
    this.page--;
    void this.load();
  }

  private restart(): void {
    this.page = 0;
    this.cursors = [undefined];
    void this.load();
  }

  private async load(): Promise<void> {
    const seq = ++this.seq;
    this.loading = true;
    try {
      const got = await listTopics({ limit: PAGE_SIZE, q: this.query.trim(), sort: this.sort, descending: this.descending, cursor: this.cursors[this.page] });
      if (seq !== this.seq) return;
      // A page emptied by topics that went away: back to the one before.
      if (got.rows.length === 0 && this.page > 0) {
        this.page--;
        void this.load();
        return;
      }
      this.rows = got.rows;
      this.total = got.total;
      this.next = got.next;
      this.hasNext = got.next !== undefined;
      this.status = 'ready';
      this.error = '';
    } catch (err) {
      if (seq !== this.seq) return;
      this.status = 'error';
      this.error = err instanceof ApiError ? err.message : String(err);
    } finally {
      if (seq === this.seq) this.loading = false;
    }
  }
}
