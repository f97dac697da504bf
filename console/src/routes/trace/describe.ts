/**
 * How a trace event reads on the timeline. Pure functions over the admin API's TraceEvent
 * (README, "Message tracing").
 */
import type { TraceEvent } from '../../lib/api/trace.js';
import { delay } from '../../lib/format.js';

export const kindLabels: Record<TraceEvent['kind'], string> = {
  received: 'Received',
  stored: 'Stored',
  delivered: 'Delivered',
  pulled: 'Pulled',
  leased: 'Leased',
  acked: 'Acked',
  nacked: 'Nacked',
  expired: 'Lease expired',
  'dead-lettered': 'Dead-lettered',
  'check-back': 'Checked back',
};

const transports: Record<string, string> = { ws: 'WebSocket', http: 'HTTP', batch: 'HTTP batch' };

/** One line of what happened, with the event's own fields. */
export function describe(e: TraceEvent): string {
  const attempt = e.attempt !== undefined ? `, attempt ${e.attempt}` : '';
  const member = e.member ? ` ${e.member}` : '';
  switch (e.kind) {
    case 'received':
      return `from ${e.client ? `client ${e.client}` : 'an anonymous client'}${e.transport ? ` over ${transports[e.transport] ?? e.transport}` : ''}`;
    case 'stored':
      return e.latencyMs !== undefined ? `durable; publish → ack ${ms(e.latencyMs)}` : 'durable';
    case 'delivered':
      if (e.path === 'live') {
        const n = e.subscribers ?? e.connections?.length ?? 0;
        const shown = e.connections ?? [];
        const more = n > shown.length ? ` and ${n - shown.length} more` : '';
        return `live to ${n} ${n === 1 ? 'subscriber' : 'subscribers'}${shown.length ? `: ${shown.join(', ')}${more}` : ''}`;
      }
      if (e.group) return `to group ${e.group} member${member}${attempt}`;
      return `${e.path === 'sse' ? 'event stream' : 'catch-up'}${e.connection ? ` to ${e.connection}` : ''}`;
    case 'pulled':
      return `by ${e.connection ?? 'a client'}`;
    case 'leased':
      return `group ${e.group ?? '?'} → member${member}${attempt}`;
    case 'acked':
      return `group ${e.group ?? '?'} by member${member}${attempt}`;
    case 'nacked':
      return `group ${e.group ?? '?'} by member${member}${attempt}${e.delayMs !== undefined ? `; again in ${delay(e.delayMs)}` : ''}${e.reason ? ` — “${e.reason}”` : ''}`;
    case 'expired':
      return `group ${e.group ?? '?'}: member${member} did not answer${attempt}`;
    case 'dead-lettered':
      // The gateway's reason names where it went (`to <topic>`).
      return `group ${e.group ?? '?'}${attempt}${e.reason ? `, ${e.reason}` : ''}`;
    case 'check-back':
      return e.reason ?? '';
  }
}

/** A duration in ms, to the microsecond when short: `0.042 ms`, `3.5 ms`, `1.25 s`. */
export function ms(v: number): string {
  if (v < 1) return `${v.toFixed(3)} ms`;
  if (v < 100) return `${Number(v.toFixed(1))} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60_000) return `${Number((v / 1000).toFixed(2))} s`;
  return `${Math.floor(v / 60_000)}m ${Math.round((v % 60_000) / 1000)}s`;
}

/** Time since the first event: `+0`, `+0.120 ms`, `+1.25 s`. */
export function since(v: number): string {
  return v <= 0 ? '+0' : `+${ms(v)}`;
}
