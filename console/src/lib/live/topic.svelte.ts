/**
 * LiveTopic: one topic's detail, subscribers and consumer groups, pushed by the admin stream every
 * second (`/v1/admin/stream?topic=<name>&groups=1` adds `event: topic` and `event: groups` to each
 * snapshot).
 */
import { streamUrl } from '../api/http.js';
import type { GroupRow } from '../api/groups.js';
import type { TopicDetail } from '../api/topics.js';

export class LiveTopic {
  detail = $state<TopicDetail | undefined>();
  /** Undefined until the first snapshot. */
  groups = $state<GroupRow[] | undefined>();
  private source: EventSource;

  constructor(readonly topic: string) {
    this.source = new EventSource(streamUrl(`/v1/admin/stream?topic=${encodeURIComponent(topic)}&groups=1`));
    this.source.addEventListener('topic', (e) => {
      this.detail = JSON.parse((e as MessageEvent<string>).data) as TopicDetail;
    });
    this.source.addEventListener('groups', (e) => {
      this.groups = JSON.parse((e as MessageEvent<string>).data) as GroupRow[];
    });
  }

  /** Shows a row an action just answered, until the next snapshot. */
  update(row: GroupRow): void {
    this.groups = (this.groups ?? []).map((g) => (g.group === row.group ? row : g));
  }

  close(): void {
    this.source.close();
  }
}
