import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomKey } from '../src/id.js';

describe('generated idempotency keys', () => {
  it('are 21 URL-safe characters, unique, and sort by creation time', () => {
    const keys = Array.from({ length: 10_000 }, (_, i) => randomKey(1_764_000_000_000 + Math.floor(i / 10)));
    for (const k of keys) assert.match(k, /^[A-Za-z0-9_-]{21}$/);
    assert.equal(new Set(keys).size, keys.length);
    const byTime = keys.map((k) => k.slice(0, 8));
    assert.deepEqual([...byTime].sort(), byTime, 'the time prefix sorts like the times');
    assert.ok(randomKey(Date.UTC(2030, 0, 1)) > randomKey(Date.UTC(2029, 0, 1)));
  });
});
