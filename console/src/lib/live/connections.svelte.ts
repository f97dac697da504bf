/**
 * LiveConnections: every connection of every node, pushed by the admin stream (`?connections=1`
 * adds `event: connections`; that stream's `event: stats` names the nodes that did not answer).
 */
import { streamUrl } from '../api/http.js';
import type { ConnectionRow } from '../api/connections.js';
import type { Snapshot } from '../api/stats.js';

export class LiveConnections {
  rows = $state<ConnectionRow[] | undefined>();
  /** Nodes whose connections are missing from `rows`: they did not answer in time. */
  unanswered = $state<string[]>([]);
  private source = new EventSource(streamUrl('/v1/admin/stream?connections=1'));

  constructor() {
    this.source.addEventListener('connections', (e) => {
      this.rows = JSON.parse((e as MessageEvent<string>).data) as ConnectionRow[];
    });
    this.source.addEventListener('stats', (e) => {
      this.unanswered = (JSON.parse((e as MessageEvent<string>).data) as Snapshot).unanswered ?? [];
    });
  }

  close(): void {
    this.source.close();
  }
}
