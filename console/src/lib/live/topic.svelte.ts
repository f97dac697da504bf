/**
 * LiveTopic: one topic's detail and subscribers, pushed by the admin stream every second
 * (`/v1/admin/stream?topic=<name>` adds an `event: topic` to each snapshot).
 */
import { streamUrl } from '../api/http.js';
import type { TopicDetail } from '../api/topics.js';

export class LiveTopic {
  detail = $state<TopicDetail | undefined>();
  private source: EventSource;

  constructor(readonly topic: string) {
    this.source = new EventSource(streamUrl(`/v1/admin/stream?topic=${encodeURIComponent(topic)}`));
    this.source.addEventListener('topic', (e) => {
      this.detail = JSON.parse((e as MessageEvent<string>).data) as TopicDetail;
    });
  }

  close(): void {
    this.source.close();
  }
}
