// Without demo mode the page signs in with a user name and a password: no user list,
// no "demo mode", a strict HttpOnly session cookie, and Sign out.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { eventually, launchBrowser, screenshot, startApp, watchedContext } from './harness.mjs';

let app;
let browser;

before(async () => {
  app = await startApp({ demo: false });
  app.cli(['user', 'add', 'zoe', '--name', 'Zoe Zimmer'], 'zoe-password-1\n');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await app?.stop();
});

test('a user signs in with a password, shops, and signs out', async () => {
  const problems = [];
  const context = await watchedContext(browser, app.url, problems);
  const page = await context.newPage();
  await page.goto(app.url);
  assert.equal(await page.locator('#user-select').count(), 0, 'no user list without demo mode');
  assert.equal(await page.locator('#demo-mode').count(), 0);

  await page.fill('#sign-in-user', 'zoe');
  await page.fill('#sign-in-password', 'not her password');
  await page.click('#user-picker button[type="submit"]');
  await eventually(async () => (await page.textContent('#flash')).includes('Wrong user name or password.'), 'the refusal');
  assert.equal(await page.locator('#nav ul').count(), 0, 'still signed out');
  await screenshot(page, '13-sign-in-refused');

  await page.fill('#sign-in-user', 'zoe');
  await page.fill('#sign-in-password', 'zoe-password-1');
  await page.click('#user-picker button[type="submit"]');
  await page.locator('#nav ul').waitFor();
  await eventually(() => page.locator('#live').textContent().then((t) => t === 'Live'), 'the stream');
  assert.match(await page.textContent('#user-picker'), /Signed in as\s+zoe/);
  const [cookie] = (await context.cookies()).filter((c) => c.name === 'shopflow_session');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.ok(cookie.expires > Date.now() / 1000 + 6 * 24 * 3600, 'about a week');

  await page.locator('#nav ul').getByRole('button', { name: 'Products', exact: true }).click();
  await eventually(async () => (await page.getAttribute('#input-pane', 'data-view')) === 'products', 'Products');
  await page.click('#add-P001');
  await eventually(async () => (await page.textContent('#flash')).includes('Added 1 × Widget A'), 'the cart line');
  await screenshot(page, '14-signed-in');

  await page.click('#sign-out');
  await page.locator('#sign-in-password').waitFor();
  assert.equal((await context.cookies()).filter((c) => c.name === 'shopflow_session').length, 0);
  assert.deepEqual(problems, []);
});
