/**
 * Topic names and patterns.
 *
 * A topic is 1–255 bytes of `A-Z a-z 0-9 _ - . : @ /`; `.` separates segments and no segment may be
 * empty. A leading `$` marks a reserved system topic (e.g. `$sys.stats`). In a pattern, a segment may
 * be `*` (exactly one segment) or, as the last segment, `>` (one or more segments).
 */
import { MAX_TOPIC_BYTES } from './limits.js';

const TOPIC_CHARS = /^[A-Za-z0-9_\-.:@/]+$/;

/** Returns null when `name` is a valid topic, else the reason it is not. */
export function topicError(name: unknown, opts: { allowReserved?: boolean } = {}): string | null {
  if (typeof name !== 'string') return 'topic must be a string';
  if (name.length === 0) return 'topic must not be empty';
  if (name.length > MAX_TOPIC_BYTES) return `topic longer than ${MAX_TOPIC_BYTES} bytes`;
  let body = name;
  if (name.charCodeAt(0) === 36 /* $ */) {
    if (!opts.allowReserved) return 'topics starting with $ are reserved for the system';
    body = name.slice(1);
    if (body.length === 0) return 'topic must not be empty';
  }
  if (!TOPIC_CHARS.test(body)) return 'topic may contain only A-Z a-z 0-9 _ - . : @ /';
  if (body.startsWith('.') || body.endsWith('.') || body.includes('..')) return 'topic segments must not be empty';
  return null;
}

export function isValidTopic(name: unknown, opts?: { allowReserved?: boolean }): name is string {
  return topicError(name, opts) === null;
}

export function isReservedTopic(name: string): boolean {
  return name.charCodeAt(0) === 36;
}

/** Returns null when `pattern` is a valid subscription pattern (a topic, or one with `*` / `>`). */
export function patternError(pattern: unknown, opts: { allowReserved?: boolean } = {}): string | null {
  if (typeof pattern !== 'string') return 'pattern must be a string';
  if (!isPattern(pattern)) return topicError(pattern, opts);
  if (pattern.length > MAX_TOPIC_BYTES) return `pattern longer than ${MAX_TOPIC_BYTES} bytes`;
  const segments = pattern.split('.');
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '*') continue;
    if (seg === '>') {
      if (i !== segments.length - 1) return '> may only be the last segment';
      continue;
    }
    const err = topicError(seg, { allowReserved: i === 0 && opts.allowReserved === true });
    if (err) return err;
  }
  return null;
}

export function isPattern(name: string): boolean {
  return name === '*' || name === '>' || name.startsWith('*.') || name.startsWith('>.') ||
    name.includes('.*') || name.endsWith('.>');
}

/** True when `topic` matches `pattern` (`*` one segment, `>` one or more trailing segments). */
export function matchTopic(pattern: string, topic: string): boolean {
  if (pattern === topic) return true;
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    const seg = p[i]!;
    if (seg === '>') return t.length > i;
    if (i >= t.length) return false;
    if (seg !== '*' && seg !== t[i]) return false;
  }
  return p.length === t.length;
}
