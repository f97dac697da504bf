/**
 * Shared for the whole run: the static site (SDK pages) and, for the console suite, one gateway
 * with authentication on that allows the site's origin. Passed to workers through the environment.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnGateway } from '@sluice/server/testing';
import { startSite } from './fixtures/site.js';

export default async function globalSetup(): Promise<() => Promise<void>> {
  const site = await startSite();
  const secret = randomBytes(32).toString('hex');
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-console-e2e-'));
  const gw = await spawnGateway({ dataDir, env: { SLUICE_AUTH_SECRET: secret, SLUICE_ALLOWED_ORIGINS: site.url } });
  process.env.E2E_SITE_URL = site.url;
  process.env.E2E_CONSOLE_GATEWAY = gw.url;
  process.env.E2E_CONSOLE_SECRET = secret;
  return async () => {
    await gw.kill();
    await site.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
}
