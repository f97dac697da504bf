/**
 * `sluice` on the PATH of a repository checkout: `npm ci` links node_modules/.bin/sluice to the
 * committed shim server/bin/sluice.js (npm skips a bin whose target is missing at install time, so it
 * cannot name the built dist/src/cli.js), and the shim runs the build.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from './helpers/readme.js';

describe('sluice in the repository', () => {
  it('node_modules/.bin/sluice is the committed shim and runs the built CLI', () => {
    const bin = join(REPO, 'node_modules/.bin/sluice');
    assert.equal(realpathSync(bin), realpathSync(join(REPO, 'server/bin/sluice.js')), 'run `npm ci` (or npm install) after pulling this change');
    const r = spawnSync(bin, ['version'], { encoding: 'utf8' });
    const { version } = JSON.parse(readFileSync(join(REPO, 'server/package.json'), 'utf8')) as { version: string };
    assert.deepEqual([r.status, r.stdout.trim(), r.stderr], [0, version, '']);
  });
});
