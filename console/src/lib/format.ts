/** Formatting for tables and cards. Pure functions. */

export function bytes(n: number): string {
  if (!Number.isFinite(n)) return '–';
  // A rate under 10 B/s keeps a decimal: 0.4 B/s is not 0.
  if (n < 10 && !Number.isInteger(n)) return `${n.toFixed(1)} B`;
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function rate(n: number): string {
  if (!Number.isFinite(n) || n === 0) return '0';
  if (n < 10) return n.toFixed(1);
  if (n < 10_000) return Math.round(n).toLocaleString('en');
  return `${(n / 1000).toFixed(n < 100_000 ? 1 : 0)}k`;
}

export function count(n: number): string {
  return Number.isFinite(n) ? n.toLocaleString('en') : '–';
}

export function ago(ts: number, now = Date.now()): string {
  if (!ts) return 'never';
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** A time of day to the millisecond (`17:36:11.256`); `ts` may carry microseconds (traces). */
export function time(ts: number): string {
  const ms = Math.floor(ts);
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false }) + '.' + String(ms % 1000).padStart(3, '0');
}

/** A one-line, readable preview of a message payload: JSON, text, or binary as hex. */
export function preview(data: unknown, max = 160): { kind: 'json' | 'binary' | 'text'; text: string } {
  if (data instanceof Uint8Array) {
    const hex = Array.from(data.subarray(0, 24), (b) => b.toString(16).padStart(2, '0')).join(' ');
    return { kind: 'binary', text: `${data.length} bytes: ${hex}${data.length > 24 ? ' …' : ''}` };
  }
  if (typeof data === 'string') return { kind: 'text', text: clip(JSON.stringify(data), max) };
  try {
    return { kind: 'json', text: clip(JSON.stringify(data, (_k, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v)) ?? String(data), max) };
  } catch {
    return { kind: 'text', text: clip(String(data), max) };
  }
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** A configured delay, shortest form: `250 ms`, `30s`, `2m`, `1m 30s`, `1.5s`. */
export function delay(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms % 1000 !== 0 || ms < 60_000) return `${ms / 1000}s`;
  const s = ms / 1000;
  const [h, m, rest] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  return [h ? `${h}h` : '', m ? `${m}m` : '', rest ? `${rest}s` : ''].filter(Boolean).join(' ');
}
