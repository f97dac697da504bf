/** The Prometheus text the Metrics class renders: series with several labels, escaped values, types. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../src/metrics.js';

describe('Metrics.render', () => {
  it('renders collected series with several labels, escaping their values, under their type', () => {
    const m = new Metrics();
    try {
      m.collect('x_total', 'counter', 'Things.', () => [
        { labels: { topic: 'a.b', group: 'g' }, value: 3 },
        { labels: { topic: 'q"uo\\te\nline', group: 'h' }, value: 1 },
      ]);
      m.gauge('y', 'A plain gauge.', () => 7);
      m.gauge('z', 'A keyed gauge.', () => ({ live: 1, paused: 2 }), 'state');
      m.collect('empty', 'gauge', 'No series now.', () => []);
      const lines = m.render().split('\n');
      const at = (name: string) => lines.slice(lines.indexOf(`# TYPE ${name.split('{')[0]}`) - 1);
      assert.deepEqual(at('x_total counter').slice(0, 4), [
        '# HELP x_total Things.',
        '# TYPE x_total counter',
        'x_total{topic="a.b",group="g"} 3',
        'x_total{topic="q\\"uo\\\\te\\nline",group="h"} 1',
      ]);
      assert.ok(lines.includes('y 7'));
      assert.ok(lines.includes('z{state="live"} 1') && lines.includes('z{state="paused"} 2'));
      assert.deepEqual(at('empty gauge').slice(0, 3), ['# HELP empty No series now.', '# TYPE empty gauge', '']);
    } finally {
      m.stop();
    }
  });
});
