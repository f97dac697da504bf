import { defineConfig } from '@playwright/test';

/**
 * Playwright drives Debian's Chromium (test tools cannot download browsers here).
 * One worker: tests start and kill their own gateway processes and measure timings.
 */
export default defineConfig({
  testDir: './specs',
  outputDir: './test-results',
  workers: 1,
  timeout: 180_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  use: {
    headless: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  globalSetup: './global-setup.ts',
  projects: [
    // The browser path with the SDK, and the console in dev mode (one gateway, and a cluster; its error,
    // stale, history, phone-width and trace states), and behind nginx (proxy.spec.ts signs in itself): no shared sign-in.
    { name: 'browser', testMatch: ['sdk.spec.ts', 'groups.spec.ts', 'cluster.spec.ts', 'console-dev.spec.ts', 'console-cluster.spec.ts', 'console-states.spec.ts', 'console-scheduled.spec.ts', 'proxy.spec.ts'], use: { browserName: 'chromium' } },
    // Signs in to the console through its token prompt once and keeps the session for the suite.
    { name: 'console-auth', testMatch: 'console.setup.ts', use: { browserName: 'chromium' } },
    {
      name: 'console',
      testMatch: 'console.spec.ts',
      dependencies: ['console-auth'],
      use: { browserName: 'chromium', storageState: '.auth/admin.json' },
    },
  ],
});
