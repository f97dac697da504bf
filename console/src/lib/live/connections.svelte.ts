/** LiveConnections: every connection, pushed by the admin stream (`?connections=1` adds `event: connections`). */
import { streamUrl } from '../api/http.js';
import type { ConnectionRow } from '../api/connections.js';

export class LiveConnections {
  rows = $state<ConnectionRow[] | undefined>();
  private source = new EventSource(streamUrl('/v1/admin/stream?connections=1'));

  constructor() {
    this.source.addEventListener('connections', (e) => {
      this.rows = JSON.parse((e as MessageEvent<string>).data) as ConnectionRow[];
    });
  }

  close(): void {
    this.source.close();
  }
}
