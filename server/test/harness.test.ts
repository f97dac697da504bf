/**
 * The real-process harness (helpers/redis.ts) does what cluster-mode tests will rely on: a
 * crash-safe single Redis.
 * Each suite's tests run concurrently: they wait on the servers' own clocks (gossip, down-after,
 * health-check intervals), not on the CPU, so the file takes as long as its slowest test.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startRedis } from './helpers/redis.js';

/** True while a process with this PID exists (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('redis harness', { concurrency: true }, () => {
  it('single server with appendfsync always: an acknowledged write survives kill -9 and restart', { timeout: 15_000 }, async () => {
    const redis = await startRedis({ aof: 'always' });
    try {
      assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(await redis.call('SET', 'greeting', 'hello'), 'OK');
      const before = redis.pid;
      await redis.kill();
      assert.equal(alive(before), false, 'the killed process is gone');
      await redis.restart();
      assert.notEqual(redis.pid, before);
      assert.equal(await redis.cli('GET', 'greeting'), 'hello');
    } finally {
      await redis.stop();
    }
    assert.equal(existsSync(redis.dir), false, 'stop() removes the dir');
    assert.equal(alive(redis.pid), false);
  });

  it('a server that cannot start fails fast with its log tail', { timeout: 15_000 }, async () => {
    await assert.rejects(startRedis({ args: ['--no-such-directive', 'x'] }), /redis-server exited[\s\S]*no-such-directive/);
  });
});
