/** Dev mode: the console opens directly and says so in a visible banner. */
import { expect, test } from '../fixtures/index.js';

test('in dev mode the console opens without a token and shows the dev-mode banner', async ({ page, gateway }) => {
  await page.goto(`${gateway.url}/console/`);
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await expect(page.getByRole('note')).toContainText('Dev mode');
  await expect(page.getByRole('heading', { name: 'Sign in to the console' })).toHaveCount(0);
});
