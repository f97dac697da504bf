/** Dev mode: the console opens directly and says so in a visible banner. */
import { expect, test } from '../fixtures/index.js';

test('in dev mode the console opens without a token and shows the dev-mode banner', async ({ page, gateway }) => {
  await page.goto(`${gateway.url}/console/`);
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await expect(page.getByRole('note')).toContainText('Dev mode');
  await expect(page.getByRole('heading', { name: 'Sign in to the console' })).toHaveCount(0);
});

test('the Topics page pages, sorts and searches on the gateway', async ({ page, gateway }) => {
  const names = [...Array.from({ length: 110 }, (_, i) => `page.${String(i).padStart(3, '0')}`), 'needle.alpha', 'needle.beta'];
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(names.slice(i, i + 20).map(async (t) => {
      const res = await fetch(`${gateway.url}/v1/topics/${t}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '1' });
      expect(res.status).toBe(201);
    }));
  }
  await page.goto(`${gateway.url}/console/#/topics`);
  const table = page.getByRole('table', { name: 'Topics' });
  const pager = page.getByRole('navigation', { name: 'Topic pages' });
  await expect(pager.getByRole('status')).toHaveText('1–50 of 112');
  await expect(table.getByRole('row')).toHaveCount(51); // the header and one page

  await table.getByRole('button', { name: 'Topic' }).click();
  await expect(table.getByRole('row').nth(1).getByRole('link')).toHaveText('needle.alpha');
  await pager.getByRole('button', { name: 'Next' }).click();
  await expect(pager.getByRole('status')).toHaveText('51–100 of 112');
  await expect(table.getByRole('row').nth(1).getByRole('link')).toHaveText('page.048');
  await pager.getByRole('button', { name: 'Next' }).click();
  await expect(pager.getByRole('status')).toHaveText('101–112 of 112');
  await expect(table.getByRole('row')).toHaveCount(13);
  await expect(pager.getByRole('button', { name: 'Next' })).toBeDisabled();
  await pager.getByRole('button', { name: 'Previous' }).click();
  await expect(pager.getByRole('status')).toHaveText('51–100 of 112');
  await page.screenshot({ path: 'artifacts/console-topics-paged.png', fullPage: true });

  // The search is the gateway's: the request carries it, and the answer starts again at page 1.
  const searched = page.waitForRequest((r) => /\/v1\/admin\/topics\?.*q=NEEDLE/.test(r.url()));
  await page.getByRole('searchbox', { name: 'Filter topics' }).fill('NEEDLE');
  await searched;
  await expect(pager.getByRole('status')).toHaveText('1–2 of 2');
  await expect(table.getByRole('link')).toHaveText(['needle.alpha', 'needle.beta']);
  await page.getByRole('searchbox', { name: 'Filter topics' }).fill('page.10');
  await expect(pager.getByRole('status')).toHaveText('1–10 of 10');
  await page.getByRole('searchbox', { name: 'Filter topics' }).fill('nothing-like-this');
  await expect(page.getByText('No topic matches “nothing-like-this”.')).toBeVisible();
});
