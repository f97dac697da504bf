/**
 * Cluster mode in tests: gateway processes on one Redis (started by the harness), and SDK
 * subscribers that record everything they are handed, so a test can check the promises users get
 * from several nodes — every acknowledged message delivered once, in order, and any loss told.
 *
 * Why it exists: the cluster tests all need the same bookkeeping (who got which offset under which
 * epoch, which gaps were announced) and the same few process moves (start N nodes, kill one). To
 * extend: add a recorder field or a node helper here; keep assertions in the tests.
 */
import WebSocket from 'ws';
import { createClient, type Client, type GapEvent, type Subscription } from '@sluice/client';
import { spawnGateway, type GatewayProcess } from '../../src/testing.js';
import { pollUntil, notYet } from './poll.js';

/** `count` gateway processes on the Redis at `url`, each with extra `args`. */
export async function startNodes(count: number, url: string, args: string[] = []): Promise<GatewayProcess[]> {
  return Promise.all(Array.from({ length: count }, () => spawnGateway({ args: ['--store', 'redis', '--redis-url', url, ...args] })));
}

export interface Delivery {
  offset: number;
  epoch: string;
  data: unknown;
}

/** An SDK subscriber that records what it is handed. */
export class Recorder {
  readonly got: Delivery[] = [];
  readonly gaps: GapEvent[] = [];
  readonly client: Client;
  readonly sub: Subscription<unknown>;

  constructor(url: string, topic: string, opts: { from?: number; window?: number } = {}) {
    this.client = createClient({ url, WebSocket: WebSocket as never, backoff: () => 50 });
    this.sub = this.client.subscribe(topic, (m) => { this.got.push({ offset: m.offset, epoch: m.epoch, data: m.data }); }, { window: 256, ...opts });
    this.sub.on('gap', (g) => this.gaps.push(g));
  }

  /** Waits until `count` messages were handed over (a deadline, not a sleep). */
  async waitFor(count: number, timeoutMs = 20_000): Promise<void> {
    await pollUntil(`${count} messages`, async () => {
      if (this.got.length < count) notYet(`${this.got.length} of ${count}`);
    }, { timeoutMs, intervalMs: 10 });
  }

  close(): void {
    this.client.close();
  }
}

/** Checks the promises on what one subscriber got: in offset order within each epoch, once each. */
export function orderedOnce(r: Recorder): string | undefined {
  const seen = new Set<string>();
  let last: Delivery | undefined;
  for (const d of r.got) {
    const k = `${d.epoch}:${d.offset}`;
    if (seen.has(k)) return `duplicate ${k}`;
    seen.add(k);
    if (last && last.epoch === d.epoch && d.offset !== last.offset + 1) return `out of order or gap: ${last.offset} then ${d.offset} in ${d.epoch}`;
    last = d;
  }
  return undefined;
}
