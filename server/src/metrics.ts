/**
 * Gateway metrics: plain counters on the hot path (an increment each), gauges read on demand,
 * rendered in the Prometheus text format at /metrics and sampled once a second for rates.
 *
 * Names follow the Prometheus naming guide: base units (`_seconds`, `_bytes`), `_total` only on
 * counters, and no two families sharing a name once `_total` is stripped (a gauge `x` next to a
 * counter `x_total` is one family to OpenMetrics). `promtool check metrics` runs on the live
 * output in server/test/promtool.test.ts. A rename is a contract change: README's "Changes" lists it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Admin } from '@sluice/client/protocol';

export class Counter {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length).fill(0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) {
      if (v <= this.bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

/** One series of a metric read on demand: its labels (name → value; none: the bare name) and its value. */
export interface Series {
  labels?: Readonly<Record<string, string>>;
  value: number;
}

/** A metric computed when /metrics is read: gauges, and counters kept elsewhere (the groups' counts). */
interface Collected {
  type: 'gauge' | 'counter';
  help: string;
  read: () => Iterable<Series>;
}

/** A label value in the text format: backslash, double quote and line feed escaped. */
function labelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** `{a="x",b="y"}`, or nothing for a series without labels. Label names are the code's, never input. */
function labelSet(labels: Readonly<Record<string, string>> | undefined): string {
  if (!labels) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${labelValue(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Prometheus histogram lines; `labels` is empty or ends with a comma. */
function histogram(lines: string[], name: string, labels: string, h: Histogram): void {
  let cumulative = 0;
  h.bounds.forEach((b, i) => {
    cumulative += h.counts[i]!;
    lines.push(`${name}_bucket{${labels}le="${b}"} ${cumulative}`);
  });
  lines.push(`${name}_bucket{${labels}le="+Inf"} ${h.count}`);
  const sel = labels ? `{${labels.slice(0, -1)}}` : '';
  lines.push(`${name}_sum${sel} ${h.sum}`, `${name}_count${sel} ${h.count}`);
}

export type Rates = Admin.Rates;

export class Metrics {
  readonly startedAt = Date.now();
  /** Messages stored (duplicates excluded). */
  readonly messagesIn = new Counter();
  /** Publishes answered as duplicates of an earlier one. */
  readonly duplicates = new Counter();
  /** Messages delivered to subscribers (one per subscriber per message). */
  readonly messagesOut = new Counter();
  readonly bytesIn = new Counter();
  readonly bytesOut = new Counter();
  readonly connectionsTotal = new Counter();
  /** Connections closed because their send buffer passed the backpressure limit. */
  readonly slowConsumerCloses = new Counter();
  /** Live subscriptions taken off the native topic because their connection's send buffer was full. */
  readonly backpressured = new Counter();
  /** Handler failures caught (each also counted as an `internal` error). */
  readonly handlerFailures = new Counter();
  readonly errors = new Map<string, Counter>();
  readonly appendSeconds = new Histogram([0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
  /** Disk store with `flush`: from a commit's write to its sync (the fsync an ACK waits for). */
  readonly syncSeconds = new Histogram([0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
  /** HTTP requests answered, by route and status code (`route` \0 `code`). 499: the client went away first. */
  readonly httpRequests = new Map<string, Counter>();
  /** Time to the response (SSE: to the stream's start; long-polls include their wait), by route. */
  readonly httpSeconds = new Map<string, Histogram>();
  /** Held messages appended (delayed ones as they fell due, prepared ones as they were committed). */
  readonly heldAppended = new Counter();
  /** How late a delayed message was appended after its due time (seconds). */
  readonly heldLateness = new Histogram([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60]);
  /** Check-backs of prepared messages, by outcome (commit, abort, unknown, failed, default-abort). */
  readonly checkBacks = new Map<string, Counter>();
  private readonly collected = new Map<string, Collected>();
  private last = { at: Date.now(), in: 0, out: 0, bin: 0, bout: 0 };
  rates: Rates = { messagesInPerSec: 0, messagesOutPerSec: 0, bytesInPerSec: 0, bytesOutPerSec: 0 };
  private sampler: ReturnType<typeof setInterval>;
  private readonly loopDelay: IntervalHistogram;

  /** `version`: the gateway's, as `sluice_build_info` shows it. */
  constructor(readonly version = '0.0.0') {
    this.sampler = setInterval(() => this.sample(), 1000);
    this.sampler.unref();
    this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.loopDelay.enable();
  }

  error(code: string): void {
    let c = this.errors.get(code);
    if (!c) this.errors.set(code, (c = new Counter()));
    c.inc();
  }

  checkBack(outcome: string): void {
    let c = this.checkBacks.get(outcome);
    if (!c) this.checkBacks.set(outcome, (c = new Counter()));
    c.inc();
  }

  httpRequest(route: string, status: number, seconds: number): void {
    const key = `${route}\0${status}`;
    let c = this.httpRequests.get(key);
    if (!c) this.httpRequests.set(key, (c = new Counter()));
    c.inc();
    let h = this.httpSeconds.get(route);
    if (!h) this.httpSeconds.set(route, (h = new Histogram(HTTP_BUCKETS)));
    h.observe(seconds);
  }

  /** Errors answered so far, by code. */
  errorCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [code, c] of this.errors) out[code] = c.value;
    return out;
  }

  /** A gauge computed when read; `label` names the label of a keyed result. */
  gauge(name: string, help: string, read: () => number | Record<string, number>, label = 'key'): void {
    this.collect(name, 'gauge', help, () => {
      const v = read();
      if (typeof v === 'number') return [{ value: v }];
      return Object.entries(v).map(([k, n]) => ({ labels: { [label]: k }, value: n }));
    });
  }

  /**
   * A metric computed when read, any number of labels per series. A counter's values MUST only
   * grow while its series exists (a series that disappears and comes back from 0 reads as a reset).
   */
  collect(name: string, type: Collected['type'], help: string, read: () => Iterable<Series>): void {
    this.collected.set(name, { type, help, read });
  }

  stop(): void {
    clearInterval(this.sampler);
    this.loopDelay.disable();
  }

  private sample(): void {
    const now = Date.now();
    const dt = (now - this.last.at) / 1000;
    if (dt <= 0) return;
    this.rates = {
      messagesInPerSec: (this.messagesIn.value - this.last.in) / dt,
      messagesOutPerSec: (this.messagesOut.value - this.last.out) / dt,
      bytesInPerSec: (this.bytesIn.value - this.last.bin) / dt,
      bytesOutPerSec: (this.bytesOut.value - this.last.bout) / dt,
    };
    this.last = { at: now, in: this.messagesIn.value, out: this.messagesOut.value, bin: this.bytesIn.value, bout: this.bytesOut.value };
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const lines: string[] = [];
    const counter = (name: string, help: string, value: number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
    };
    counter('sluice_messages_in_total', 'Messages stored (duplicates excluded).', this.messagesIn.value);
    counter('sluice_duplicates_total', 'Publishes answered as duplicates.', this.duplicates.value);
    counter('sluice_messages_out_total', 'Messages delivered to subscribers.', this.messagesOut.value);
    counter('sluice_bytes_in_total', 'WebSocket and HTTP bytes received.', this.bytesIn.value);
    counter('sluice_bytes_out_total', 'Bytes of messages delivered.', this.bytesOut.value);
    counter('sluice_connections_total', 'WebSocket connections accepted.', this.connectionsTotal.value);
    counter('sluice_slow_consumer_closes_total', 'Connections closed at the backpressure limit.', this.slowConsumerCloses.value);
    counter('sluice_backpressure_pauses_total', 'Live subscriptions moved to reading the log because their send buffer passed the high-water mark.', this.backpressured.value);
    counter('sluice_handler_failures_total', 'Handler failures caught.', this.handlerFailures.value);
    lines.push('# HELP sluice_errors_total Errors answered, by code.', '# TYPE sluice_errors_total counter');
    for (const [code, c] of this.errors) lines.push(`sluice_errors_total{code="${code}"} ${c.value}`);
    lines.push('# HELP sluice_store_append_duration_seconds Time from publish to durable store commit.', '# TYPE sluice_store_append_duration_seconds histogram');
    histogram(lines, 'sluice_store_append_duration_seconds', '', this.appendSeconds);
    lines.push('# HELP sluice_store_sync_duration_seconds Disk store with flush durability: time from a commit being written to its sync (fsync).', '# TYPE sluice_store_sync_duration_seconds histogram');
    histogram(lines, 'sluice_store_sync_duration_seconds', '', this.syncSeconds);
    counter('sluice_held_appended_total', 'Held messages appended: delayed ones when due, prepared ones when committed.', this.heldAppended.value);
    lines.push('# HELP sluice_delayed_lateness_seconds How late a delayed message was appended after its due time.', '# TYPE sluice_delayed_lateness_seconds histogram');
    histogram(lines, 'sluice_delayed_lateness_seconds', '', this.heldLateness);
    lines.push('# HELP sluice_tx_checkbacks_total Check-backs of prepared messages, by outcome (commit, abort, unknown, failed; default-abort: the default applied after the last).', '# TYPE sluice_tx_checkbacks_total counter');
    for (const [outcome, c] of this.checkBacks) lines.push(`sluice_tx_checkbacks_total{outcome="${outcome}"} ${c.value}`);
    lines.push('# HELP sluice_http_requests_total HTTP requests answered, by route and status code (499: client went away).', '# TYPE sluice_http_requests_total counter');
    for (const [key, c] of this.httpRequests) {
      const [route, code] = key.split('\0');
      lines.push(`sluice_http_requests_total{route="${route}",code="${code}"} ${c.value}`);
    }
    lines.push('# HELP sluice_http_request_duration_seconds Time to the HTTP response (long-polls include their wait; SSE until the stream starts).', '# TYPE sluice_http_request_duration_seconds histogram');
    for (const [route, h] of this.httpSeconds) histogram(lines, 'sluice_http_request_duration_seconds', `route="${route}",`, h);
    this.renderRuntime(lines);
    for (const [name, c] of this.collected) {
      lines.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} ${c.type}`);
      for (const s of c.read()) lines.push(`${name}${labelSet(s.labels)} ${s.value}`);
    }
    return lines.join('\n') + '\n';
  }

  /**
   * The process and the Node.js runtime, under the names Prometheus client libraries use
   * (`process_*`, `nodejs_*`), so existing dashboards and alerts apply; and `sluice_build_info`.
   */
  private renderRuntime(lines: string[]): void {
    const one = (name: string, type: 'gauge' | 'counter', help: string, value: number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    };
    lines.push('# HELP sluice_build_info The gateway\'s version and the Node.js running it (always 1).', '# TYPE sluice_build_info gauge');
    lines.push(`sluice_build_info${labelSet({ version: this.version, node: process.versions.node })} 1`);
    const cpu = process.cpuUsage();
    one('process_cpu_user_seconds_total', 'counter', 'User CPU time spent.', cpu.user / 1e6);
    one('process_cpu_system_seconds_total', 'counter', 'System CPU time spent.', cpu.system / 1e6);
    one('process_cpu_seconds_total', 'counter', 'User and system CPU time spent.', (cpu.user + cpu.system) / 1e6);
    one('process_start_time_seconds', 'gauge', 'Start time of the process since the Unix epoch.', Math.round(Date.now() / 1000 - process.uptime()));
    const mem = process.memoryUsage();
    one('process_resident_memory_bytes', 'gauge', 'Resident memory size.', mem.rss);
    const fds = openFds();
    if (fds !== undefined) one('process_open_fds', 'gauge', 'Open file descriptors.', fds);
    const maxFds = maxOpenFds();
    if (maxFds !== undefined) one('process_max_fds', 'gauge', 'Limit of open file descriptors.', maxFds);
    one('nodejs_heap_size_total_bytes', 'gauge', 'V8 heap size.', mem.heapTotal);
    one('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap used.', mem.heapUsed);
    one('nodejs_external_memory_bytes', 'gauge', 'Memory of C++ objects bound to JavaScript objects (buffers).', mem.external);
    // The delay histogram starts at 0 and is reset by nothing else: max and p99 since the last scrape.
    const d = this.loopDelay;
    const ok = d.count > 0;
    one('nodejs_eventloop_lag_seconds', 'gauge', 'Mean event loop delay since the last scrape.', ok ? d.mean / 1e9 : 0);
    one('nodejs_eventloop_lag_p99_seconds', 'gauge', '99th percentile of the event loop delay since the last scrape.', ok ? d.percentile(99) / 1e9 : 0);
    one('nodejs_eventloop_lag_max_seconds', 'gauge', 'Longest event loop delay since the last scrape.', ok ? d.max / 1e9 : 0);
    d.reset();
  }
}

/** Open file descriptors (Linux: /proc/self/fd), undefined where that is not readable. */
function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1; // minus the one readdir holds
  } catch {
    return undefined;
  }
}

let maxFdsRead: number | undefined | null = null;
/** The soft limit of open files (Linux: /proc/self/limits), read once. */
function maxOpenFds(): number | undefined {
  if (maxFdsRead !== null) return maxFdsRead;
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    maxFdsRead = m ? Number(m[1]) : undefined;
  } catch {
    maxFdsRead = undefined;
  }
  return maxFdsRead;
}
