/**
 * Auth setup for the console suite: with authentication on, the console asks for an admin token;
 * sign in through that prompt once and keep the session (the token lives in localStorage).
 */
import { expect, test } from '../fixtures/index.js';

test('sign in to the console with an admin token', async ({ page, secured }) => {
  await page.goto(`${secured.url}/console/`);
  await expect(page.getByRole('heading', { name: 'Sign in to the console' })).toBeVisible();

  // A valid token without admin rights is refused with a clear reason.
  await page.getByLabel('Admin token').fill(await secured.token('someone', { caps: { '>': ['sub'] } }));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('not an admin token');

  await page.getByLabel('Admin token').fill(await secured.token('e2e-admin', { admin: true }));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await expect(page.getByRole('note')).toHaveCount(0); // no dev-mode banner with auth on
  await page.context().storageState({ path: '.auth/admin.json' });
});
